"""Every way a rule is refused (SPEC §3), with the path to the bad node."""

import json
import re
from pathlib import Path

import pytest

from segments.rules import validate_rule
from segments.services import check_rule
from tests.factories import ManualSegmentFactory, SegmentFactory, SurveyFactory
from tests.rules import answer, attribute, event, group, reference, survey


def errors_of(*conditions) -> dict[str, str]:
    return validate_rule(group(*conditions))


def test_it_accepts_the_spec_example(workspace):
    target = SegmentFactory(workspace=workspace)
    poll = SurveyFactory(workspace=workspace)
    rule = group(
        attribute("plan", "equals", "enterprise"),
        attribute("signed_up_at", "more_than_days_ago", 30),
        {
            "type": "event",
            "event": "report_exported",
            "operator": "at_least",
            "value": 5,
            "within_days": 30,
        },
        group(
            {"type": "segment", "segment": target.pk, "operator": "in"},
            {
                "type": "answer",
                "survey": poll.pk,
                "question": "nps",
                "operator": "greater_than_or_equal",
                "value": 9,
            },
            match="any",
        ),
    )
    assert check_rule(rule, workspace_id=workspace.pk) == {}


def test_it_names_the_path_of_a_deep_error():
    rule = group(
        attribute("plan", "is_set"), group(attribute("plan", "equals", ["x"]), match="any")
    )
    assert validate_rule(rule) == {
        "conditions[1].conditions[0].value": "Must be a string, a number or a boolean."
    }


def test_it_reports_every_error_at_once():
    errors = errors_of(
        attribute("plan", "bigger", 1), attribute("plan", "equals"), attribute("plan", "is_set", 1)
    )
    assert set(errors) == {"conditions[0].operator", "conditions[1].value", "conditions[2].value"}


# Groups ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule, path",
    [
        (None, "rules"),
        ([], "rules"),
        ("all", "rules"),
        ({"type": "group", "match": "all"}, "conditions"),
        ({"type": "group", "match": "all", "conditions": {}}, "conditions"),
        ({"type": "grup", "match": "all", "conditions": []}, "type"),
        ({"match": "all", "conditions": []}, "type"),
        ({"type": "group", "match": "some", "conditions": []}, "match"),
        ({"type": "group", "conditions": []}, "match"),
        ({"type": "group", "match": "all", "conditions": [], "name": "x"}, "name"),
        (group("plan"), "conditions[0]"),
        (group({"type": "trait"}), "conditions[0].type"),
        (group(group(match="ANY")), "conditions[0].match"),
    ],
)
def test_it_refuses_bad_groups(rule, path):
    assert path in validate_rule(rule)


def test_it_accepts_nesting_five_deep():
    rule = group(group(group(group(group(attribute("plan", "is_set"))))))
    assert validate_rule(rule) == {}


def test_it_refuses_nesting_six_deep():
    rule = group(group(group(group(group(group(attribute("plan", "is_set")))))))
    errors = validate_rule(rule)
    path = "conditions[0].conditions[0].conditions[0].conditions[0].conditions[0]"
    assert errors == {path: "Groups may be nested at most 5 deep."}


def test_it_accepts_200_conditions():
    assert validate_rule(group(*[attribute("plan", "is_set")] * 200)) == {}


def test_it_refuses_201_conditions():
    assert validate_rule(group(*[attribute("plan", "is_set")] * 201)) == {
        "conditions": "A rule holds at most 200 conditions."
    }


def test_groups_count_towards_the_200_conditions():
    rule = group(
        *[group(attribute("plan", "is_set")) for _ in range(100)], attribute("plan", "is_set")
    )
    assert "conditions" in validate_rule(rule)


# Attribute conditions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "", "-plan", " plan", "plan.tier", "plan!", "x" * 101, "account.", "account.-x",
        "account.a.b", "account.email", 12, None, ["plan"],
    ],
)  # fmt: skip
def test_it_refuses_bad_attribute_keys(key):
    assert "conditions[0].attribute" in errors_of(attribute(key, "is_set"))


@pytest.mark.parametrize(
    "key",
    [
        "plan", "signed up", "signed-up", "_private", "x" * 100, "Größe", "user_id", "email",
        "name", "first_seen_at", "last_seen_at", "account.id", "account.name", "account.plan",
    ],
)  # fmt: skip
def test_it_accepts_good_attribute_keys(key):
    assert errors_of(attribute(key, "is_set")) == {}


@pytest.mark.parametrize(
    "operator", ["bigger", "EQUALS", "", None, "at_least", "seen", 1, [], ["equals"], {"$gt": 1}]
)
def test_it_refuses_unknown_operators(operator):
    errors = errors_of(attribute("plan", operator, 1))
    assert list(errors) == ["conditions[0].operator"]
    assert errors["conditions[0].operator"].startswith("Unknown operator")


@pytest.mark.parametrize("operator", [[], {"$gt": 1}])
def test_it_refuses_unknown_operators_of_answers(operator):
    condition = {"type": "answer", "survey": 1, "question": "nps", "operator": operator}
    assert list(errors_of(condition)) == ["conditions[0].operator"]


@pytest.mark.parametrize(
    "condition, path",
    [
        (attribute("plan", "is_set", True), "value"),
        (attribute("plan", "is_true", None), "value"),
        (attribute("plan", "equals"), "value"),
        (attribute("plan", "equals", None), "value"),
        (attribute("plan", "equals", ["a"]), "value"),
        (attribute("plan", "equals", {"a": 1}), "value"),
        (attribute("plan", "equals", float("inf")), "value"),
        (attribute("plan", "not_equals", float("nan")), "value"),
        (attribute("plan", "in", "a"), "value"),
        (attribute("plan", "in", None), "value"),
        (attribute("plan", "in", ["a", True]), "value[1]"),
        (attribute("plan", "not_in", ["a", ["b"]]), "value[1]"),
        (attribute("plan", "in", [None]), "value[0]"),
        (attribute("plan", "contains", 12), "value"),
        (attribute("plan", "starts_with", None), "value"),
        (attribute("plan", "ends_with", ["a"]), "value"),
        (attribute("plan", "not_contains", True), "value"),
        (attribute("plan", "greater_than", "12"), "value"),
        (attribute("plan", "less_than", True), "value"),
        (attribute("plan", "greater_than_or_equal", None), "value"),
        (attribute("plan", "less_than_or_equal", float("inf")), "value"),
        (attribute("plan", "before", "2024-02-30"), "value"),
        (attribute("plan", "after", "yesterday"), "value"),
        (attribute("plan", "before", 20240101), "value"),
        (attribute("plan", "more_than_days_ago", -1), "value"),
        (attribute("plan", "less_than_days_ago", 1.5), "value"),
        (attribute("plan", "less_than_days_ago", "7"), "value"),
        (attribute("plan", "more_than_days_ago", True), "value"),
        (attribute("plan", "greater_than", 1, ignore_case=True), "ignore_case"),
        (attribute("plan", "is_set", ignore_case=False), "ignore_case"),
        (attribute("plan", "equals", "a", ignore_case="yes"), "ignore_case"),
        (attribute("plan", "equals", "a", colour="red"), "colour"),
    ],
)
def test_it_refuses_wrong_values(condition, path):
    assert f"conditions[0].{path}" in errors_of(condition)


@pytest.mark.parametrize(
    "condition",
    [
        attribute("plan", "equals", "a"),
        attribute("plan", "equals", 12.5),
        attribute("plan", "equals", False),
        attribute("plan", "equals", "", ignore_case=True),
        attribute("plan", "in", []),
        attribute("plan", "in", ["a", 1, 2.5]),
        attribute("plan", "contains", ""),
        attribute("plan", "greater_than", -1),
        attribute("plan", "before", "2024-01-31"),
        attribute("plan", "after", "2022-01-22T13:00:00+02:00"),
        attribute("plan", "more_than_days_ago", 0),
        attribute("plan", "less_than_days_ago", 10**12),
        attribute("plan", "is_false"),
    ],
)
def test_it_accepts_right_values(condition):
    assert errors_of(condition) == {}


def test_strings_are_limited_to_1000_characters():
    assert errors_of(attribute("plan", "contains", "x" * 1000)) == {}
    assert errors_of(attribute("plan", "contains", "x" * 1001)) == {
        "conditions[0].value": "Must be at most 1000 characters."
    }
    assert "conditions[0].value" in errors_of(attribute("plan", "equals", "x" * 1001))
    assert "conditions[0].value[1]" in errors_of(attribute("plan", "in", ["a", "x" * 1001]))
    event = {"type": "event", "event": "x" * 1001, "operator": "at_least", "value": 1}
    assert "conditions[0].event" in errors_of(event)


def test_lists_are_limited_to_1000_values():
    assert errors_of(attribute("plan", "in", list(range(1000)))) == {}
    assert errors_of(attribute("plan", "in", list(range(1001)))) == {
        "conditions[0].value": "Must hold at most 1000 values."
    }


# Events, surveys and answers ------------------------------------------------------------

# Valid conditions; each case below changes one field.
EVENT = event("login", "at_least", 1)
SURVEY = survey("any", "seen")
ANSWER = answer(1, "nps", "greater_than", 8)


@pytest.mark.parametrize(
    "condition, path",
    [
        (EVENT | {"event": ""}, "event"),
        (EVENT | {"event": None}, "event"),
        (EVENT | {"operator": "more_than"}, "operator"),
        (EVENT | {"value": -1}, "value"),
        (EVENT | {"value": 1.0}, "value"),
        (EVENT | {"value": None}, "value"),
        (EVENT | {"within_days": -1}, "within_days"),
        (EVENT | {"within_days": None}, "within_days"),
        (EVENT | {"within_days": True}, "within_days"),
        (EVENT | {"ignore_case": True}, "ignore_case"),
    ],
)
def test_it_refuses_bad_event_conditions(condition, path):
    assert f"conditions[0].{path}" in errors_of(condition)


def test_it_accepts_event_conditions():
    assert errors_of(EVENT, EVENT | {"operator": "exactly", "value": 0, "within_days": 0}) == {}


@pytest.mark.parametrize(
    "condition, path",
    [
        (SURVEY | {"survey": "all"}, "survey"),
        (SURVEY | {"survey": None}, "survey"),
        (SURVEY | {"survey": "3"}, "survey"),
        (SURVEY | {"operator": "viewed"}, "operator"),
        (SURVEY | {"within_days": -3}, "within_days"),
        (SURVEY | {"value": 1}, "value"),
    ],
)
def test_it_refuses_bad_survey_conditions(condition, path):
    assert f"conditions[0].{path}" in errors_of(condition)


@pytest.mark.parametrize(
    "condition, path",
    [
        (ANSWER | {"survey": "any"}, "survey"),
        (ANSWER | {"question": ""}, "question"),
        (ANSWER | {"question": "q" * 101}, "question"),
        (ANSWER | {"question": 7}, "question"),
        (ANSWER | {"operator": "at_least"}, "operator"),
        (ANSWER | {"value": "8"}, "value"),
        (ANSWER | {"within_days": 3}, "within_days"),
    ],
)
def test_it_refuses_bad_answer_conditions(condition, path):
    assert f"conditions[0].{path}" in errors_of(condition)


def test_it_refuses_surveys_of_another_workspace(workspace, other_workspace):
    theirs = SurveyFactory(workspace=other_workspace)
    ours = SurveyFactory(workspace=workspace)
    rule = group(
        SURVEY | {"survey": ours.pk},
        SURVEY | {"survey": theirs.pk},
        ANSWER | {"survey": theirs.pk},
        ANSWER | {"survey": 0},
    )
    errors = check_rule(rule, workspace_id=workspace.pk)
    assert errors == {
        "conditions[1].survey": f"There is no survey {theirs.pk} in this workspace.",
        "conditions[2].survey": f"There is no survey {theirs.pk} in this workspace.",
        "conditions[3].survey": "There is no survey 0 in this workspace.",
    }


# Segment references ----------------------------------------------------------------------


def test_it_refuses_bad_segment_conditions():
    errors = errors_of(reference("vip"), reference(1, "equals"), reference(1) | {"match": "all"})
    assert set(errors) == {
        "conditions[0].segment",
        "conditions[1].operator",
        "conditions[2].match",
    }


def test_it_refuses_a_segment_of_another_workspace(workspace, other_workspace):
    theirs = SegmentFactory(workspace=other_workspace)
    ours = ManualSegmentFactory(workspace=workspace)
    rule = group(reference(ours.pk), reference(theirs.pk, "not_in"))
    assert check_rule(rule, workspace_id=workspace.pk) == {
        "conditions[1].segment": f"There is no segment {theirs.pk} in this workspace."
    }


def test_it_refuses_a_missing_segment(workspace):
    assert check_rule(group(reference(10**9)), workspace_id=workspace.pk) == {
        "conditions[0].segment": f"There is no segment {10**9} in this workspace."
    }


def test_it_refuses_a_segment_that_names_itself(workspace):
    segment = SegmentFactory(workspace=workspace)
    rule = group(group(reference(segment.pk, "not_in"), match="none"))
    errors = check_rule(rule, workspace_id=workspace.pk, segment_id=segment.pk)
    assert errors == {"rules": f"Referencing segment {segment.pk} would make a cycle of segments."}


def test_it_refuses_a_cycle_through_other_segments(workspace):
    first = SegmentFactory(workspace=workspace)
    second = SegmentFactory(workspace=workspace, rules=group(reference(first.pk)))
    third = SegmentFactory(workspace=workspace, rules=group(reference(second.pk)))
    # Saving `first` to name `third` would close first → third → second → first.
    errors = check_rule(group(reference(third.pk)), workspace_id=workspace.pk, segment_id=first.pk)
    assert errors == {"rules": f"Referencing segment {third.pk} would make a cycle of segments."}


def test_it_accepts_references_that_make_no_cycle(workspace):
    first = SegmentFactory(workspace=workspace)
    second = SegmentFactory(workspace=workspace, rules=group(reference(first.pk)))
    third = SegmentFactory(workspace=workspace)
    # A diamond is fine: third names first twice, directly and through second.
    rule = group(reference(first.pk), reference(second.pk, "not_in"))
    assert check_rule(rule, workspace_id=workspace.pk, segment_id=third.pk) == {}


def _documented_rules() -> list[dict]:
    text = (Path(__file__).parent.parent / "docs" / "segments.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.DOTALL)
    return [json.loads(block) for block in blocks]


def test_every_rule_in_the_documentation_is_valid():
    documented = _documented_rules()
    # Seven audiences (two of them in two ways) and the fragments of the reference part.
    assert len([rule for rule in documented if rule["type"] == "group"]) >= 9
    for rule in documented:
        whole = rule if rule["type"] == "group" else group(rule)
        assert validate_rule(whole) == {}, rule

"""Hostile rule documents: validation never raises, and what it accepts both evaluators can run."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import rules
from segments.memory import matches
from segments.models import Contact
from segments.services import segment_definitions, snapshot_of
from segments.sql import compile_rule
from tests.factories import ContactFactory
from tests.strategies import json_values

HOSTILE_STRINGS = [
    "a'--",
    "'; DROP TABLE segments_contact; --",
    "$.x",
    '{"$gt":1}',
    "%",
    "_",
    "\\",
    "\x00",
    "\ud800",
    "𝕌𝕟𝕚𝕔𝕠𝕕𝕖",
    "",
    " ",
    "x" * 2000,
    "account.",
    "account.plan",
    "user_id",
    "first_seen_at",
    "NaN",
    "1e400",
    "2024-02-30",
    "2024-01-31T09:00:00+99:00",
]

any_json = json_values(HOSTILE_STRINGS, int_bound=10**30, text_size=30, key_size=10, max_leaves=20)

values = (
    any_json
    | st.integers(min_value=0, max_value=10**6)
    | st.sampled_from(["2024-01-31", "2024-01-31T09:00:00Z", "enterprise", "10", "any"])
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
)


def mostly(good, bad=any_json):
    """Usually a plausible value, sometimes anything at all."""
    return st.one_of(good, good, good, bad)


def condition(children):
    """A node shaped like one kind of condition, with any field possibly wrong."""
    kinds = {
        "attribute": {
            "attribute": st.sampled_from(["plan", "email", "account.plan", "first_seen_at"]),
            "operator": st.sampled_from(sorted(rules.ATTRIBUTE_OPERATORS)),
        },
        "event": {
            "event": st.sampled_from(["report_exported", ""]),
            "operator": st.sampled_from(rules.EVENT_OPERATORS),
        },
        "survey": {
            "survey": st.integers(min_value=0, max_value=3) | st.just("any"),
            "operator": st.sampled_from(rules.SURVEY_OPERATORS),
        },
        "answer": {
            "survey": st.integers(min_value=0, max_value=3),
            "question": st.sampled_from(["nps", "q"]),
            "operator": st.sampled_from(sorted(rules.ATTRIBUTE_OPERATORS)),
        },
        "segment": {
            "segment": st.integers(min_value=0, max_value=3),
            "operator": st.sampled_from(rules.SEGMENT_OPERATORS),
        },
        "group": {
            "match": st.sampled_from(rules.GROUP_MATCHES),
            "conditions": st.lists(children, max_size=3),
        },
    }
    optional = {
        "value": values,
        "ignore_case": mostly(st.booleans()),
        "within_days": mostly(st.integers(min_value=-1, max_value=100_000)),
        "junk": any_json,
    }
    return st.one_of(
        *(
            st.fixed_dictionaries(
                {"type": mostly(st.just(kind))} | {k: mostly(v) for k, v in fields.items()},
                optional=optional,
            )
            for kind, fields in kinds.items()
        )
    )


rule_like = st.recursive(
    st.fixed_dictionaries(
        {
            "type": st.just("group"),
            "match": st.sampled_from(rules.GROUP_MATCHES),
            "conditions": st.just([]),
        }
    ),
    lambda children: st.fixed_dictionaries(
        {
            "type": st.just("group") | any_json,
            "match": st.sampled_from(rules.GROUP_MATCHES) | any_json,
            "conditions": st.lists(condition(children) | children | any_json, max_size=4)
            | any_json,
        }
    ),
    max_leaves=12,
)


def check_problems(problems) -> None:
    assert isinstance(problems, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in problems.items())


@given(st.one_of(any_json, rule_like))
@settings(max_examples=400, deadline=None)
def test_validation_never_raises_on_any_json(document):
    check_problems(rules.validate_rule(document))
    check_problems(rules.validate_rule(document, segments={1: None}, surveys=[1], segment_id=2))


def test_validation_survives_nesting_far_past_the_limit():
    document: dict = {"type": "group", "match": "all", "conditions": []}
    for _ in range(5000):
        document = {"type": "group", "match": "all", "conditions": [document]}

    problems = rules.validate_rule(document)

    assert problems  # too deep, and said so


def test_validation_survives_deeply_nested_values():
    deep: list = []
    for _ in range(800):
        deep = [deep]
    document = {
        "type": "group",
        "match": "all",
        "conditions": [{"type": "attribute", "attribute": "plan", "operator": "in", "value": deep}],
    }

    assert "conditions[0].value[0]" in rules.validate_rule(document)


@pytest.mark.django_db
@given(rule_like)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
def test_a_rule_that_validates_runs_in_sql_and_in_memory(workspace, now, document):
    if rules.validate_rule(document, segments={}, surveys=[]):
        return
    if not Contact.objects.filter(workspace=workspace).exists():
        ContactFactory(workspace=workspace, traits={"plan": "enterprise"})
    definitions = segment_definitions(workspace.pk)

    query = compile_rule(document, now, definitions)
    count = Contact.objects.filter(workspace=workspace).filter(query).count()
    for contact in Contact.objects.filter(workspace=workspace):
        matches(document, snapshot_of(contact), now, definitions)

    assert 0 <= count <= 1


@pytest.mark.parametrize("operator", [[], {}, ["equals"], {"$gt": 1}])
@pytest.mark.parametrize("kind", ["attribute", "answer"])
def test_an_operator_that_is_a_list_or_object_is_a_problem_not_a_crash(kind, operator):
    condition = {"type": kind, "attribute": "plan", "survey": 1, "question": "q"}
    document = {"type": "group", "match": "all", "conditions": [condition | {"operator": operator}]}

    assert "conditions[0].operator" in rules.validate_rule(document)

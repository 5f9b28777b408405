"""SPEC §3.6: the SQL and the in-memory evaluators agree on every rule and contact.

Hypothesis builds a small world per example (contacts written through identify,
events, displays, answers, other segments) and a random rule over it, then
checks every node of the rule, groups and leaves alike, on both evaluators.
Values come from small pools so that conditions match as often as they miss. An
explicit example, run every time, makes every operator hold for some contact and
fail for another; the test checks that after the run, whatever was drawn.
"""

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segments.ingest import clean_user, identify_contact
from segments.memory import matches
from segments.models import Contact, Event
from segments.rules import (
    ATTRIBUTE_OPERATORS,
    CASE_OPERATORS,
    DATE_OPERATORS,
    DAYS_OPERATORS,
    EVENT_OPERATORS,
    GROUP_MATCHES,
    LIST_OPERATORS,
    MAX_DEPTH,
    NO_VALUE_OPERATORS,
    NUMBER_OPERATORS,
    SCALAR_OPERATORS,
    SEGMENT_OPERATORS,
    STRING_OPERATORS,
    SURVEY_OPERATORS,
)
from segments.services import add_members, check_rule, rule_count, segment_definitions, snapshot_of
from segments.sets import set_count
from segments.snapshot import EventReads, load_snapshot
from surveys.services import clean_answers, dismiss_display, record_answers, record_display
from tests.agreement import members_both_ways, rolled_back
from tests.conftest import NOW
from tests.factories import ManualSegmentFactory, SegmentFactory, SurveyFactory, WorkspaceFactory
from tests.rules import answer, attribute, nodes

pytestmark = pytest.mark.django_db

# Pools ------------------------------------------------------------------------

TEXTS = [
    "enterprise", "Enterprise", "ENTERPRISE", "Ent", "ent", "prise", "free", "", "u1",
    "Émile", "émile", "ÉMILE", "É", "é", "straße", "STRASSE", "ß", "İ", "i", "I",
    "12", "12.0", "1e3", " 1", "-12", "0", "1000", "abc12", "Reports", "reports",
    "e\u0301mile", "😀", "a😀b",
]  # fmt: skip
NUMBERS = [0, 3, 12, 12.0, 12.5, 1000, 1e3, -12, 0.1, 9, 10]
DATES = [
    "2026-06-15", "2026-06-15T12:00:00Z", "2026-06-15T12:00:00", "2026-06-15T14:00:00+02:00",
    "2026-06-08T12:00:00Z", "2026-06-08T14:00:00+02:00", "2026-06-08T11:59:59.999999Z",
    "2026-06-08", "2026-05-16T12:00:00Z", "2026-05-16", "2026-06-16", "2022-01-22T13:00:00+02:00",
    "2022-01-22T11:00:00Z", "2024-02-29", "0001-01-01",
]  # fmt: skip
INVALID_DATES = ["2024-02-30", "2026-06-15T24:00:00Z", "2026-06-15 12:00", "2026-06-15T12:00+24:00"]
LISTS = [["a", "b"], [], ["enterprise"], [12]]
TRAIT_VALUES = [
    *TEXTS, *NUMBERS, *DATES, *INVALID_DATES, *LISTS, True, False, None, {"k": 1},
]  # fmt: skip
DAYS = [0, 1, 7, 30, 31, 365, 10**6, 10**12]
TRAIT_KEYS = ["plan", "n", "since", "flag", "tags"]
ATTRIBUTES = [
    *TRAIT_KEYS, "nope", "user_id", "email", "name", "first_seen_at", "last_seen_at",
    "account.id", "account.name", "account.tier", "account.seats",
]  # fmt: skip
EVENT_NAMES = ["report_exported", "login"]
EVENT_AGES = [
    timedelta(0), timedelta(hours=1), timedelta(days=7), timedelta(days=7, microseconds=1),
    timedelta(days=6, hours=23), timedelta(days=30), timedelta(days=31), timedelta(days=-1),
]  # fmt: skip
# Survey "A" and "B" are placeholders for the ids of the surveys each example creates.
QUESTIONS = {
    "A": [
        {"key": "nps", "type": "nps", "text": "Recommend us?"},
        {
            "key": "features",
            "type": "multiple_choice",
            "text": "Which features?",
            "choices": ["Reports", "reports", "Émile", "12", "Export"],
        },
        {"key": "comment", "type": "text", "text": "Anything else?"},
    ],
    "B": [
        {
            "key": "plan",
            "type": "single_choice",
            "text": "Your plan?",
            "choices": ["Enterprise", "free", "12.0"],
        },
        {"key": "score", "type": "rating", "text": "Rate us"},
    ],
}
ANSWER_VALUES = {
    ("A", "nps"): st.sampled_from([0, 6, 9, 10]),
    ("A", "features"): st.lists(
        st.sampled_from(QUESTIONS["A"][1]["choices"]), unique=True, max_size=3
    ),
    # Free text that is sometimes a date, so the date operators on answers also match.
    ("A", "comment"): st.sampled_from([*TEXTS, *DATES]),
    ("B", "plan"): st.sampled_from(QUESTIONS["B"][0]["choices"]),
    ("B", "score"): st.integers(1, 5),
}

# Rules --------------------------------------------------------------------------

scalars = st.sampled_from(TEXTS) | st.sampled_from(NUMBERS)


def operator_and_value(operator: str) -> st.SearchStrategy[dict]:
    if operator in NO_VALUE_OPERATORS:
        values = st.just({})
    elif operator in SCALAR_OPERATORS:
        values = st.builds(lambda v: {"value": v}, scalars | st.booleans())
    elif operator in LIST_OPERATORS:
        values = st.builds(lambda v: {"value": v}, st.lists(scalars, max_size=3))
    elif operator in STRING_OPERATORS:
        values = st.builds(lambda v: {"value": v}, st.sampled_from(TEXTS))
    elif operator in NUMBER_OPERATORS:
        values = st.builds(lambda v: {"value": v}, st.sampled_from(NUMBERS))
    elif operator in DATE_OPERATORS:
        values = st.builds(lambda v: {"value": v}, st.sampled_from(DATES))
    else:
        assert operator in DAYS_OPERATORS
        values = st.builds(lambda v: {"value": v}, st.sampled_from(DAYS))
    if operator in CASE_OPERATORS:
        cases = st.sampled_from([{}, {"ignore_case": True}, {"ignore_case": False}])
    else:
        cases = st.just({})
    return st.builds(lambda v, c: {"operator": operator, **v, **c}, values, cases)


operators = st.sampled_from(sorted(ATTRIBUTE_OPERATORS)).flatmap(operator_and_value)

attribute_conditions = st.builds(
    lambda key, op: {"type": "attribute", "attribute": key, **op},
    st.sampled_from(TRAIT_KEYS) | st.sampled_from(ATTRIBUTES),
    operators,
)

event_conditions = st.builds(
    lambda name, op, n, window: (
        {"type": "event", "event": name, "operator": op, "value": n} | window
    ),
    st.sampled_from([*EVENT_NAMES, "never"]),
    st.sampled_from(EVENT_OPERATORS),
    st.sampled_from([0, 1, 2, 3, 5, 16, 17, 10**20]),
    st.just({}) | st.builds(lambda d: {"within_days": d}, st.sampled_from(DAYS)),
)

survey_conditions = st.builds(
    lambda survey, op, window: {"type": "survey", "survey": survey, "operator": op} | window,
    st.sampled_from(["A", "B", "any"]),
    st.sampled_from(SURVEY_OPERATORS),
    st.just({}) | st.builds(lambda d: {"within_days": d}, st.sampled_from(DAYS)),
)

answer_conditions = st.builds(
    lambda question, op: {
        "type": "answer",
        "survey": question[0],
        "question": question[1],
        **op,
    },  # fmt: skip
    st.sampled_from([*ANSWER_VALUES, ("A", "unasked")]),
    operators,
)


def segment_conditions(available: int) -> st.SearchStrategy[dict]:
    # `segment` holds the index of another generated segment until the example runs.
    return st.builds(
        lambda index, op: {"type": "segment", "segment": index, "operator": op},
        st.integers(0, available - 1),
        st.sampled_from(SEGMENT_OPERATORS),
    )


def leaves(available_segments: int) -> st.SearchStrategy[dict]:
    conditions = attribute_conditions | event_conditions | survey_conditions | answer_conditions
    if available_segments:
        conditions |= segment_conditions(available_segments)
    return conditions


def rules(available_segments: int, depth: int = 1, max_depth: int = MAX_DEPTH):
    children = leaves(available_segments)
    if depth < max_depth:
        children |= rules(available_segments, depth + 1, max_depth)
    # Fewer children deeper down keeps a rule well under 200 conditions.
    size = {1: 5, 2: 3}.get(depth, 2)
    return st.builds(
        lambda match, conditions: {"type": "group", "match": match, "conditions": conditions},
        st.sampled_from(GROUP_MATCHES),
        st.lists(children, max_size=size),
    )


# Worlds -------------------------------------------------------------------------


@st.composite
def displays(draw) -> dict:
    survey = draw(st.sampled_from(["A", "B"]))
    keys = draw(st.lists(st.sampled_from([q["key"] for q in QUESTIONS[survey]]), unique=True))
    return {
        "survey": survey,
        "age": draw(st.sampled_from(EVENT_AGES)),
        "outcome": draw(st.sampled_from(["open", "dismissed", "completed"])),
        "answers": {key: draw(ANSWER_VALUES[(survey, key)]) for key in keys},
    }


contacts = st.fixed_dictionaries(
    {
        "email": st.sampled_from([None, "ann@example.com", "ANN@example.com", "émile@exämple.com"]),
        "name": st.sampled_from([None, "Émile", "straße", "İ", "Ann", "12"]),
        "traits": st.dictionaries(
            st.sampled_from(TRAIT_KEYS), st.sampled_from(TRAIT_VALUES), min_size=2
        ),
        "account": st.none()
        | st.fixed_dictionaries(
            {
                "id": st.sampled_from(["acme", "globex", "12"]),
                "name": st.sampled_from([None, "Acme", "ACME", "Émile SA"]),
                "tier": st.sampled_from(TRAIT_VALUES),
                "seats": st.sampled_from([*NUMBERS, "12.0", "many", None]),
            }
        ),
        "age": st.sampled_from(
            [
                timedelta(0),
                timedelta(days=3),
                timedelta(days=7),
                timedelta(days=30),
                timedelta(days=400),
            ]
        ),  # fmt: skip
        "events": st.lists(
            st.tuples(st.sampled_from(EVENT_NAMES), st.sampled_from(EVENT_AGES)), max_size=6
        ),
        # Many events of one name at one moment: more than the totals keep moments of
        # (segments.totals.MOMENTS), so windowed counts also take the fallback, with ties.
        "burst": st.none()
        | st.tuples(
            st.sampled_from(EVENT_NAMES), st.sampled_from(EVENT_AGES), st.sampled_from([15, 16, 17])
        ),
        "displays": st.lists(displays(), max_size=3),
    }
)


@st.composite
def worlds(draw) -> dict:
    people = draw(st.lists(contacts, min_size=1, max_size=5))
    others = []
    for index in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            members = draw(st.lists(st.integers(0, len(people) - 1), unique=True))
            others.append({"kind": "manual", "members": members})
        else:
            # Other segments only name earlier ones, so no cycle is ever generated.
            others.append({"kind": "rules", "rules": draw(rules(index, depth=4))})
    # Probes: single conditions of every kind, checked beside the rule so that each
    # example exercises many leaves even when the rule drawn is small.
    probes = draw(st.lists(leaves(len(others)), min_size=6, max_size=12))
    return {
        "contacts": people,
        "segments": others,
        "rule": draw(rules(len(others))),
        "probes": {"type": "group", "match": "all", "conditions": probes},
    }


# Every operator, every run ------------------------------------------------------------

# What each run must exercise: every operator of every kind of condition, and every match.
EVERY_OPERATOR = {
    *(("attribute", op) for op in ATTRIBUTE_OPERATORS),
    *(("event", op) for op in EVENT_OPERATORS),
    *(("survey", op) for op in SURVEY_OPERATORS),
    *(("answer", op) for op in ATTRIBUTE_OPERATORS),
    *(("segment", op) for op in SEGMENT_OPERATORS),
    *(("group", match) for match in GROUP_MATCHES),
}
# No question type stores a boolean, so these hold for no contact.
NEVER_MATCH = {("answer", "is_true"), ("answer", "is_false")}


def _operator_of(node: dict) -> tuple[str, str]:
    return node["type"], node["match"] if node["type"] == "group" else node["operator"]


# Three contacts and, for each operator, conditions that hold for some of them and not for
# others. Run as an explicit example in every run, whatever the profile and random draws.
EVERY_OPERATOR_WORLD = {
    "contacts": [
        {
            "email": "ann@example.com",
            "name": "Ann",
            "traits": {"plan": "enterprise", "n": 12, "since": "2026-06-08T12:00:00Z",
                       "flag": True, "tags": ["a", "b"]},
            "account": {"id": "acme", "name": "Acme", "tier": "enterprise", "seats": 12},
            "age": timedelta(days=3),
            "events": [("report_exported", timedelta(0)), ("report_exported", timedelta(hours=1)),
                       ("login", timedelta(days=30))],
            # Tomorrow's, more than the moments a total keeps: its window counts its events.
            "burst": ("report_exported", timedelta(days=-1), 17),
            "displays": [{"survey": "A", "age": timedelta(0), "outcome": "completed",
                          "answers": {"nps": 9, "features": ["Reports", "Émile"],
                                      "comment": "Enterprise"}}],
        },
        {
            "email": None,
            "name": "Émile",
            "traits": {"plan": "free", "n": "1000", "since": "2022-01-22T13:00:00+02:00",
                       "flag": False},
            "account": {"id": "globex", "name": None, "tier": "free", "seats": "many"},
            "age": timedelta(days=400),
            "events": [("login", timedelta(days=7))],
            "displays": [{"survey": "B", "age": timedelta(days=31), "outcome": "dismissed",
                          "answers": {"plan": "free", "score": 2}}],
        },
        {
            "email": "émile@exämple.com",
            "name": None,
            "traits": {"plan": "", "n": "abc12"},
            "account": None,
            "age": timedelta(0),
            "events": [],
            "displays": [{"survey": "A", "age": timedelta(days=7), "outcome": "open",
                          "answers": {"nps": 0, "comment": "2026-06-08T12:00:00Z"}}],
        },
    ],
    "segments": [
        {"kind": "manual", "members": [0]},
        {"kind": "rules", "rules": {"type": "group", "match": "any", "conditions": [
            {"type": "segment", "segment": 0, "operator": "in"},
            attribute("plan", "equals", "free"),
        ]}},
    ],
    "rule": {"type": "group", "match": "any", "conditions": [
        {"type": "group", "match": "all", "conditions": [
            attribute("plan", "is_set"), attribute("n", "greater_than", 100),
        ]},
        {"type": "group", "match": "none", "conditions": [
            attribute("flag", "is_set"), {"type": "segment", "segment": 1, "operator": "in"},
        ]},
    ]},
    "probes": {"type": "group", "match": "all", "conditions": [
        attribute("flag", "is_set"),
        attribute("flag", "is_not_set"),
        attribute("flag", "is_true"),
        attribute("flag", "is_false"),
        attribute("plan", "equals", "enterprise"),
        attribute("plan", "equals", "ENTERPRISE", ignore_case=True),
        attribute("n", "equals", 1000),
        attribute("plan", "not_equals", "enterprise"),
        attribute("plan", "in", ["enterprise", "free"]),
        attribute("plan", "not_in", ["enterprise", "free"]),
        attribute("plan", "contains", "e"),
        attribute("plan", "not_contains", "prise"),
        attribute("plan", "starts_with", "ENT", ignore_case=True),
        attribute("plan", "ends_with", "ee"),
        attribute("n", "greater_than", 100),
        attribute("n", "greater_than_or_equal", 12),
        attribute("n", "less_than", 100),
        attribute("account.seats", "less_than_or_equal", 12),
        attribute("since", "before", "2026-01-01"),
        attribute("since", "after", "2026-01-01"),
        attribute("since", "more_than_days_ago", 30),
        attribute("first_seen_at", "less_than_days_ago", 30),
        answer("A", "nps", "is_set"),
        answer("A", "nps", "is_not_set"),
        answer("A", "nps", "is_true"),
        answer("A", "nps", "is_false"),
        answer("A", "features", "equals", "Reports"),
        answer("A", "features", "not_equals", "Reports"),
        answer("A", "features", "in", ["reports", "Export"], ignore_case=True),
        answer("A", "features", "not_in", ["Émile", "Export"]),
        answer("A", "comment", "contains", "prise"),
        answer("A", "comment", "not_contains", "prise"),
        answer("A", "comment", "starts_with", "Ent"),
        answer("A", "comment", "ends_with", "Z"),
        answer("A", "nps", "greater_than", 5),
        answer("A", "nps", "greater_than_or_equal", 0),
        answer("A", "nps", "less_than", 5),
        answer("A", "nps", "less_than_or_equal", 0),
        answer("A", "comment", "before", "2026-06-10"),
        answer("A", "comment", "after", "2026-01-01"),
        answer("A", "comment", "more_than_days_ago", 1),
        answer("A", "comment", "less_than_days_ago", 30),
        {"type": "event", "event": "report_exported", "operator": "at_least", "value": 2},
        {"type": "event", "event": "login", "operator": "at_most", "value": 0},
        {"type": "event", "event": "login", "operator": "exactly", "value": 1, "within_days": 7},
        {"type": "event", "event": "report_exported", "operator": "exactly", "value": 2,
         "within_days": 7},
        {"type": "survey", "survey": "A", "operator": "seen"},
        {"type": "survey", "survey": "A", "operator": "not_seen"},
        {"type": "survey", "survey": "any", "operator": "dismissed", "within_days": 31},
        {"type": "survey", "survey": "A", "operator": "completed", "within_days": 0},
        {"type": "survey", "survey": "any", "operator": "not_completed"},
        {"type": "segment", "segment": 1, "operator": "in"},
        {"type": "segment", "segment": 0, "operator": "not_in"},
    ]},
}  # fmt: skip


# Building the world through the real write paths ---------------------------------


def _identify(workspace, index: int, person: dict) -> None:
    """Identify twice: once with placeholders, then with the real traits, so nulls remove keys."""
    first_seen = NOW - person["age"]
    account = person["account"]
    user = {"id": f"u{index}", "email": person["email"], "name": person["name"]}
    user |= {key: "placeholder" for key in person["traits"]}
    if account is not None:
        user["account"] = {"id": account["id"], "tier": "placeholder", "seats": "placeholder"}
    identify_contact(workspace=workspace, user=clean_user(user), now=first_seen)
    user = {"id": f"u{index}", **person["traits"]}
    if account is not None:
        user["account"] = account
    identify_contact(workspace=workspace, user=clean_user(user), now=first_seen)


def _record_displays(contact: Contact, person: dict, surveys: dict) -> None:
    for facts in person["displays"]:
        survey = surveys[facts["survey"]]
        shown = NOW - facts["age"]
        display = record_display(survey=survey, contact=contact, now=shown)
        completed = facts["outcome"] == "completed"
        if facts["answers"] or completed:
            answers = clean_answers(survey, facts["answers"])
            record_answers(display=display, answers=answers, completed=completed, now=shown)
        if facts["outcome"] == "dismissed":
            dismiss_display(display=display, now=shown + timedelta(minutes=1))


def _resolve(node: Any, surveys: dict, segments: list[int]) -> Any:
    """Replace the placeholders of a generated rule by the example's real ids."""
    if isinstance(node, list):
        return [_resolve(item, surveys, segments) for item in node]
    if not isinstance(node, dict):
        return node
    resolved = {key: _resolve(value, surveys, segments) for key, value in node.items()}
    if node["type"] in ("survey", "answer") and node["survey"] in surveys:
        resolved["survey"] = surveys[node["survey"]].pk
    if node["type"] == "segment":
        resolved["segment"] = segments[node["segment"]]
    return resolved


def build(world: dict):
    workspace = WorkspaceFactory()
    surveys = {
        name: SurveyFactory(workspace=workspace, questions=q) for name, q in QUESTIONS.items()
    }
    for index, person in enumerate(world["contacts"]):
        _identify(workspace, index, person)
    contacts = {c.user_id: c for c in Contact.objects.filter(workspace=workspace)}
    for index, person in enumerate(world["contacts"]):
        contact = contacts[f"u{index}"]
        burst = person.get("burst")
        events = person["events"] + ([burst[:2]] * burst[2] if burst else [])
        Event.objects.bulk_create(
            Event(workspace=workspace, contact=contact, name=name, occurred_at=NOW - age)
            for name, age in events
        )
        _record_displays(contact, person, surveys)
    segment_ids: list[int] = []
    for other in world["segments"]:
        if other["kind"] == "manual":
            segment = ManualSegmentFactory(workspace=workspace)
            add_members(segment, [f"u{i}" for i in other["members"]])
        else:
            rule = _resolve(other["rules"], surveys, segment_ids)
            segment = SegmentFactory(workspace=workspace, rules=rule)
            assert check_rule(rule, workspace_id=workspace.pk, segment_id=segment.pk) == {}
        segment_ids.append(segment.pk)
    return workspace, _resolve([world["rule"], world["probes"]], surveys, segment_ids)


def _outsider() -> None:
    """A contact of another workspace that matches much; it must never show up."""
    outsider = WorkspaceFactory(name="Outsider")
    user = clean_user({"id": "u0", "plan": "enterprise", "account": {"id": "acme"}})
    contact = identify_contact(workspace=outsider, user=user, now=NOW)
    Event.objects.create(workspace=outsider, contact=contact, name="login", occurred_at=NOW)


# max_examples comes from the Hypothesis profile (tests/conftest.py): 500 under `make test`.
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def test_sql_and_memory_agree_on_random_rules_and_contacts(db):
    outcomes: Counter = Counter()

    @SETTINGS
    @given(world=worlds())
    @example(world=EVERY_OPERATOR_WORLD)
    def check(world: dict) -> None:
        with rolled_back():
            _outsider()
            workspace, (rule, probes) = build(world)
            assert check_rule(rule, workspace_id=workspace.pk) == {}
            assert check_rule(probes, workspace_id=workspace.pk) == {}
            definitions = segment_definitions(workspace.pk)
            people = Contact.objects.filter(workspace=workspace).select_related("account")
            snapshots = {c.pk: snapshot_of(c) for c in people}
            # The widget's snapshots read only what the workspace's rules ask: the
            # windows' events and the totals of names counted over all time.
            rules = [rule, probes, *(d.rules for d in definitions.values() if d.rules)]
            reads = EventReads.for_rules(rules)
            widget = {c.pk: load_snapshot(c, reads, NOW) for c in people}
            for node in [*nodes(rule), *probes["conditions"]]:
                in_sql, in_memory = members_both_ways(workspace, node, snapshots, definitions)
                assert in_sql == in_memory, (node, {pk: s for pk, s in snapshots.items()})
                as_widget = {pk for pk, w in widget.items() if matches(node, w, NOW, definitions)}
                assert as_widget == in_sql, repr((node, reads, widget))[:3000]
                # The count the API and dashboard show, for the node as a rule of its own.
                # (rule_count looks through a group of one, so counting the bare node
                # too would take the same path again: a sixth of the run's time.)
                alone = {"type": "group", "match": "any", "conditions": [node]}
                assert rule_count(workspace.pk, alone, NOW) == len(in_sql), node
                if connection.vendor == "postgresql":
                    # rule_count takes the set-based SQL for wide rules only: this
                    # checks it on every node, narrow ones included.
                    sets = set_count(workspace.pk, alone, NOW, definitions)
                    assert sets == len(in_sql), node
                for pk in snapshots:
                    outcomes[_operator_of(node), pk in in_sql] += 1

    check()
    # Every operator was compared on contacts it holds for and on contacts it does not.
    never_matched = {op for op in EVERY_OPERATOR - NEVER_MATCH if not outcomes[op, True]}
    never_missed = {op for op in EVERY_OPERATOR if not outcomes[op, False]}
    assert not never_matched, f"never held for a contact: {sorted(never_matched)}"
    assert not never_missed, f"held for every contact: {sorted(never_missed)}"

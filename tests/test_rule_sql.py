"""The shape of the SQL a rule compiles to: bounded by the rule, not by its expansion."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from segments.memory import ContactSnapshot, matches
from segments.models import Contact
from segments.services import rule_contacts, rule_count, segment_definitions
from segments.sql import compile_rule
from tests.factories import ContactFactory, SegmentFactory
from tests.rules import attribute, group, reference

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
PEOPLE = [
    {"role": "Data Analyst", "plan": "pro"},
    {"role": "designer", "plan": "free"},
    {"role": "CEO"},
    {"plan": "Pro"},
    {},
]


@pytest.fixture
def people(workspace) -> dict[int, dict]:
    return {ContactFactory(workspace=workspace, traits=traits).pk: traits for traits in PEOPLE}


def sql_of(workspace, rule) -> tuple[str, list]:
    queryset = rule_contacts(workspace.pk, rule, NOW)
    return queryset.query.sql_with_params()


def agree(workspace, people, rule) -> set[int]:
    """The members by SQL (inlined and shared) and in memory, checked equal."""
    definitions = segment_definitions(workspace.pk)
    inlined = Contact.objects.filter(workspace=workspace).filter(
        compile_rule(rule, NOW, definitions)
    )
    in_sql = set(inlined.values_list("pk", flat=True))
    shared = set(rule_contacts(workspace.pk, rule, NOW).values_list("pk", flat=True))
    in_memory = {
        pk for pk, traits in people.items()
        if matches(rule, ContactSnapshot(attributes=traits), NOW, definitions)
    }  # fmt: skip
    assert in_sql == shared == in_memory, rule
    assert rule_count(workspace.pk, rule, NOW) == len(in_memory)
    return in_memory


MERGED_GROUPS = [
    group(
        *[attribute("role", "contains", f"x{i}") for i in range(50)],
        attribute("role", "contains", "a"),
        match="any",
    ),
    group(
        *[attribute("role", "not_contains", f"X{i}", ignore_case=True) for i in range(50)],
        attribute("role", "not_contains", "DESIGN", ignore_case=True),
    ),
    group(attribute("plan", "is_set"), attribute("plan", "equals", "free"), match="any"),
    group(attribute("plan", "is_not_set"), attribute("plan", "not_equals", "pro")),
    group(attribute("plan", "is_set"), attribute("plan", "equals", "pro", ignore_case=True)),
    group(attribute("plan", "not_in", ["pro"]), attribute("plan", "is_set"), match="any"),
    group(attribute("plan", "equals", "pro"), attribute("role", "contains", "a"), match="none"),
    group(attribute("plan", "not_equals", "pro"), attribute("plan", "is_set"), match="none"),
]


@pytest.mark.parametrize("rule", MERGED_GROUPS)
def test_merged_conditions_keep_their_meaning(workspace, people, rule):
    agree(workspace, people, rule)


def test_conditions_on_one_key_read_its_rows_once(workspace, people):
    any_of = group(*[attribute("role", "contains", f"x{i}") for i in range(200)], match="any")
    none_of = group(*[attribute("role", "not_contains", f"x{i}") for i in range(200)])

    for rule in (any_of, none_of):
        assert sql_of(workspace, rule)[0].count("EXISTS") == 1
        assert agree(workspace, people, rule) == (set() if rule is any_of else set(people))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's arrays")
def test_a_list_is_one_parameter_on_postgresql(workspace, people):
    rule = group(*[attribute(key, "not_in", [f"v{k}-{i}" for i in range(1000)] + [k])
                   for k, key in enumerate(["role", "plan", "country", "language"])])  # fmt: skip

    sql, params = sql_of(workspace, rule)

    assert "= ANY(" in sql and len(params) < 20
    assert agree(workspace, people, rule) == set(people)


def test_each_referenced_segment_is_queried_once_however_often_named(workspace, people):
    # Each segment names the one below twice: inlined, the last would hold 2**8 copies
    # of the first; shared, the SQL holds each segment once (the last, named once by
    # the rule, is inlined).
    chain = [SegmentFactory(workspace=workspace, rules=group(attribute("plan", "equals", "pro")))]
    for level in range(8):
        operator = "not_in" if level % 2 else "in"
        rules = group(reference(chain[-1].pk), reference(chain[-1].pk, operator), match="any")
        chain.append(SegmentFactory(workspace=workspace, rules=rules))
    rule = group(reference(chain[-1].pk), attribute("role", "is_set"))

    sql, _ = sql_of(workspace, rule)

    assert sql.count("EXISTS") == 2  # the first segment's plan and the rule's role
    assert sql.count(" AS MATERIALIZED (" if connection.vendor == "postgresql" else " AS (") == 8
    agree(workspace, people, rule)


@pytest.mark.parametrize("match", ["all", "any", "none"])
def test_counts_of_one_event_in_a_group_read_the_events_once_per_kind(workspace, match):
    from tests.factories import EventFactory

    counts = {}
    for user, events in [("none", 0), ("two", 2), ("four", 4), ("seven", 7)]:
        contact = ContactFactory(workspace=workspace, user_id=user)
        counts[contact.pk] = events
        for _ in range(events):
            EventFactory(workspace=workspace, contact=contact, name="report_exported",
                         occurred_at=NOW)  # fmt: skip
    rule = group(*[{"type": "event", "event": "report_exported", "operator": operator,
                    "value": value} for operator in ("at_least", "at_most")
                   for value in (1, 3, 5)], match=match)  # fmt: skip

    sql, _ = sql_of(workspace, rule)

    assert sql.count("EXISTS") == 2
    definitions = segment_definitions(workspace.pk)
    in_memory = {
        pk
        for pk, events in counts.items()
        if matches(
            rule, ContactSnapshot(events={"report_exported": [NOW] * events}), NOW, definitions
        )
    }
    in_sql = set(rule_contacts(workspace.pk, rule, NOW).values_list("pk", flat=True))
    assert in_sql == in_memory

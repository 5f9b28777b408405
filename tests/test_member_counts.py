"""Counting a segment: a rule of one trait counts its parsed-value rows alone.

The counts themselves are checked against the SQL evaluator's members on random
rules in tests/test_rule_agreement.py; here, which rules take the short way.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from segments.services import clean_user, identify_contact, rule_count
from segments.sql import lone_attribute
from tests.conftest import NOW

pytestmark = pytest.mark.django_db

PLAN = {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"}


def group(match: str, *conditions: dict) -> dict:
    return {"type": "group", "match": match, "conditions": list(conditions)}


@pytest.mark.parametrize(
    "rule",
    [PLAN, group("all", PLAN), group("any", group("all", PLAN))],
)
def test_a_lone_positive_trait_is_found_through_groups_of_one(rule):
    assert lone_attribute(rule) == PLAN


@pytest.mark.parametrize(
    "rule",
    [
        group("none", PLAN),
        group("all", PLAN, PLAN),
        {**PLAN, "operator": "not_equals"},
        {**PLAN, "operator": "is_not_set"},
        {**PLAN, "attribute": "account.plan"},
        {"type": "event", "event": "login", "operator": "at_least", "value": 1},
    ],
)
def test_anything_else_is_counted_over_contacts(rule):
    assert lone_attribute(rule) is None


def identify(workspace, user_id: str, **traits) -> None:
    identify_contact(workspace=workspace, user=clean_user({"id": user_id, **traits}), now=NOW)


def test_a_lone_trait_is_counted_without_reading_contacts(workspace, other_workspace):
    identify(workspace, "u1", plan="pro")
    identify(workspace, "u2", plan="free")
    identify(workspace, "u3")
    identify(other_workspace, "u1", plan="pro")
    with CaptureQueriesContext(connection) as queries:
        assert rule_count(workspace.pk, group("all", PLAN), NOW) == 1
    assert [q["sql"] for q in queries if '"segments_contact"' in q["sql"]] == []
    negated = group("all", {**PLAN, "operator": "not_equals"})
    with CaptureQueriesContext(connection) as queries:
        assert rule_count(workspace.pk, negated, NOW) == 2  # u2, and u3 who has no plan
    assert any('"segments_contact"' in q["sql"] for q in queries)

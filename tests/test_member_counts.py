"""Counting a segment: a rule of one trait counts its parsed-value rows alone.

Every node of the random rules in tests/test_rule_agreement.py is counted too; here,
random traits under groups of one (the rules that take the short way, and those that
look like them but must not), which rules take it, and the audience estimate.
"""

from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.ingest import clean_user, identify_contact
from segments.services import add_members, rule_contacts, rule_count
from segments.sql import lone_attribute
from targeting.services import audience_estimate
from tests.agreement import rolled_back
from tests.conftest import NOW
from tests.factories import ManualSegmentFactory, SegmentFactory, WorkspaceFactory
from tests.rules import group, plan
from tests.test_rule_agreement import TRAIT_KEYS, _identify, attribute_conditions, contacts

pytestmark = pytest.mark.django_db

PLAN = plan("pro")


@pytest.mark.parametrize(
    "rule",
    [PLAN, group(PLAN), group(group(PLAN), match="any")],
)
def test_a_lone_positive_trait_is_found_through_groups_of_one(rule):
    assert lone_attribute(rule) == PLAN


@pytest.mark.parametrize(
    "rule",
    [
        group(PLAN, match="none"),
        group(PLAN, PLAN),
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
        assert rule_count(workspace.pk, group(PLAN), NOW) == 1
    assert [q["sql"] for q in queries if '"segments_contact"' in q["sql"]] == []
    negated = group({**PLAN, "operator": "not_equals"})
    with CaptureQueriesContext(connection) as queries:
        assert rule_count(workspace.pk, negated, NOW) == 2  # u2, and u3 who has no plan
    assert any('"segments_contact"' in q["sql"] for q in queries)


def reads_contacts(queries) -> bool:
    return any('"segments_contact"' in q["sql"] for q in queries)


def test_an_audience_of_one_segment_is_counted_like_the_segment(workspace, other_workspace):
    identify(workspace, "u1", plan="pro")
    identify(workspace, "u2", plan="free")
    identify(workspace, "u3")
    identify(other_workspace, "u1", plan="pro")
    pro = SegmentFactory(workspace=workspace, rules=group(PLAN))
    free = SegmentFactory(workspace=workspace, rules=group({**PLAN, "value": "free"}, match="any"))
    manual = ManualSegmentFactory(workspace=workspace)
    add_members(manual, ["u2", "u3"])

    def estimate(**audience) -> int:
        base = {"audience": "segments", "segments": [], "segment_match": "any",
                "excluded_segments": [], "now": NOW}  # fmt: skip
        return audience_estimate(workspace.pk, **{**base, **audience})

    with CaptureQueriesContext(connection) as queries:
        assert estimate(segments=[pro.pk]) == 1
        assert estimate(segments=[pro.pk, pro.pk], segment_match="all") == 1
    assert not reads_contacts(queries)
    assert estimate(segments=[manual.pk]) == 2
    with CaptureQueriesContext(connection) as queries:
        assert estimate(segments=[pro.pk], excluded_segments=[free.pk]) == 1
    # An exclusion takes the general way: over contacts on SQLite; on PostgreSQL the
    # set-based count (segments.sets) subtracts the excluded set from the segment's.
    assert reads_contacts(queries) or connection.vendor == "postgresql"
    assert estimate(segments=[manual.pk], excluded_segments=[free.pk]) == 1
    assert estimate(segments=[pro.pk, free.pk]) == 2
    assert estimate(audience="everyone", segments=[pro.pk]) == 3


# Random traits under groups of one --------------------------------------------------

# Random operators and values rarely match anyone: "is set" on a drawn key often does.
present = st.builds(
    lambda key: {"type": "attribute", "attribute": key, "operator": "is_set"},
    st.sampled_from([*TRAIT_KEYS, "user_id", "email", "first_seen_at"]),
)
# One trait condition (any operator, negated ones included) inside 0 to 3 groups of one;
# a group matching none turns it into a negation, which must not take the short way.
lone_rules = st.builds(
    lambda condition, matches: _wrap(condition, matches),
    attribute_conditions | present,
    st.lists(st.sampled_from(["all", "any", "none"]), max_size=3),
)


def _wrap(condition: dict, matches: list[str]) -> dict:
    for match in matches:
        condition = group(condition, match=match)
    return condition


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_the_count_is_the_number_of_members_on_random_traits(db):
    paths: Counter = Counter()

    @SETTINGS
    @given(people=st.lists(contacts, min_size=1, max_size=6), rule=lone_rules)
    def check(people: list[dict], rule: dict) -> None:
        with rolled_back():
            workspace, outsider = WorkspaceFactory(), WorkspaceFactory(name="Outsider")
            for index, person in enumerate(people):
                # The same people in another workspace: their values must never count.
                _identify(workspace, index, person)
                _identify(outsider, index, person)
            members = rule_contacts(workspace.pk, rule, NOW).count()
            assert rule_count(workspace.pk, rule, NOW) == members, rule
            paths[lone_attribute(rule) is not None, members > 0] += 1

    check()
    # The short way counted rules that match someone and rules that match nobody;
    # the long way was taken too (negations, accounts, groups matching none).
    assert paths[True, True] > 0 and paths[True, False] > 0, paths
    assert paths[False, True] + paths[False, False] > 0, paths

"""segments.distinct: a workspace's trait keys and event names, walked one index probe each."""

import pytest

from segments.distinct import distinct_names, present_names
from segments.ingest import clean_user, identify_contact
from segments.models import ContactValue, Event
from segments.rules import BUILTIN_FIELDS
from tests.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def named(workspace, other_workspace):
    for index, traits in enumerate([{"plan": "pro", "b": 1}, {"plan": "free", "zeta": True}, {}]):
        contact = identify_contact(
            workspace=workspace, user=clean_user({"id": f"u{index}", **traits}), now=NOW
        )
        for name in ["signup", "login", "login", "a b"][index:]:
            Event.objects.create(workspace=workspace, contact=contact, name=name, occurred_at=NOW)
    outsider = identify_contact(
        workspace=other_workspace, user=clean_user({"id": "x", "aaa": 1}), now=NOW
    )
    Event.objects.create(workspace=other_workspace, contact=outsider, name="aaa", occurred_at=NOW)


def test_names_in_order_without_the_skipped_ones_and_only_the_workspaces(workspace, named):
    traits = distinct_names(ContactValue, "key", workspace.pk, 500, BUILTIN_FIELDS)
    assert traits == ["b", "plan", "zeta"]
    assert distinct_names(Event, "name", workspace.pk, 500) == ["a b", "login", "signup"]
    everything = distinct_names(ContactValue, "key", workspace.pk, 500)
    assert everything == sorted({"b", "plan", "zeta", *BUILTIN_FIELDS} - {"name", "email"})


def test_the_limit_counts_only_names_kept(workspace, named):
    assert distinct_names(ContactValue, "key", workspace.pk, 2, BUILTIN_FIELDS) == ["b", "plan"]
    assert distinct_names(Event, "name", workspace.pk, 1) == ["a b"]
    assert distinct_names(Event, "name", workspace.pk, 0) == []


def test_a_workspace_without_rows_has_no_names(other_workspace, workspace):
    assert distinct_names(Event, "name", workspace.pk, 10) == []


def test_present_names_are_those_the_workspace_has(workspace, named):
    wanted = {"plan", "aaa", "nope", "zeta"}
    assert present_names(ContactValue, "key", workspace.pk, wanted) == {"plan", "zeta"}
    assert present_names(Event, "name", workspace.pk, {"login", "aaa"}) == {"login"}

"""Member sets (segments.member_sets): what the sweep stores, that counts read them, and
that a write after the sweep moves a count at once. Set arithmetic against Python's is
tests/test_membership_counts.py."""

import threading
import zlib
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from segments import counts, member_sets, membership
from segments.counts import Selection
from segments.ingest import clean_user, identify_contact
from segments.models import MemberSet, SegmentMembership
from tests.factories import ContactFactory, SegmentFactory, WorkspaceFactory
from tests.rules import plan_is
from tests.workers import RACES, at_once

pytestmark = pytest.mark.django_db


def stored_members(segment) -> set[int]:
    """The contacts a segment's stored set holds, read back bit by bit."""
    stored = MemberSet.objects.get(segment=segment)
    bits = int.from_bytes(zlib.decompress(bytes(stored.bits)), "little") if stored.bits else 0
    return {stored.first_contact_id + i for i in range(bits.bit_length()) if bits >> i & 1}


def open_members(segment) -> set[int]:
    rows = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
    return set(rows.values_list("contact_id", flat=True))


@pytest.fixture
def plans(workspace):
    """Enterprise (2 contacts), free (3) and a plan nobody is on, after a sweep."""
    segments = {
        plan: SegmentFactory(workspace=workspace, rules=plan_is(plan))
        for plan in ("enterprise", "free", "nobody")
    }
    for n, plan in enumerate(["enterprise", "free", "enterprise", "free", "free"]):
        ContactFactory(workspace=workspace, user_id=f"user-{n}", traits={"plan": plan})
    membership.sweep(timezone.now())
    return segments


def test_the_sweep_stores_each_segments_open_members(plans):
    for segment in plans.values():
        assert stored_members(segment) == open_members(segment)
    assert [len(stored_members(s)) for s in plans.values()] == [2, 3, 0]
    assert MemberSet.objects.get(segment=plans["free"]).as_of < timezone.now() - member_sets.MARGIN


@pytest.mark.parametrize("kept", [1, member_sets.CHANGES_KEPT])
def test_after_a_saves_re_sweep_the_count_is_the_new_rules(workspace, plans, monkeypatch, kept):
    """With many changes the re-sweep reads the set again; with few it keeps the set
    and the count adds the changes."""
    monkeypatch.setattr(member_sets, "CHANGES_KEPT", kept)
    edited = plans["nobody"]
    edited.rules = plan_is("free")
    edited.save()
    membership.sweep_segment(edited.pk, timezone.now())

    assert counts.selection_count(workspace.pk, Selection((edited.pk,))) == 3
    assert (stored_members(edited) == open_members(plans["free"])) is (kept == 1)


def test_counts_read_the_stored_set_not_the_memberships(workspace, plans):
    """A set planted with one more contact than the memberships: the count says so, so
    it came from the set."""
    stored = MemberSet.objects.get(segment=plans["enterprise"])
    stranger = ContactFactory(workspace=workspace)
    planted = sorted(stored_members(plans["enterprise"]) | {stranger.pk})
    buffer = member_sets._buffer(planted, planted[0])
    stored.first_contact_id, stored.bits = planted[0], zlib.compress(bytes(buffer))
    stored.save()

    assert counts.selection_count(workspace.pk, Selection((plans["enterprise"].pk,))) == 3
    assert counts.segment_count(plans["enterprise"].pk) == 3


def test_a_write_after_the_sweep_moves_the_count_at_once(workspace, plans):
    enterprise = Selection((plans["enterprise"].pk,))
    either = Selection((plans["enterprise"].pk, plans["free"].pk))
    assert counts.selection_count(workspace.pk, enterprise) == 2

    for user in ({"id": "user-1", "plan": "enterprise"}, {"id": "new", "plan": "enterprise"}):
        identify_contact(workspace=workspace, user=clean_user(user), now=timezone.now())
    assert counts.selection_count(workspace.pk, enterprise) == 4
    assert counts.segment_count(plans["enterprise"].pk) == 4
    assert (
        counts.overlap_count(workspace.pk, either, Selection(None, excluded=enterprise.targeted))
        == 2
    )

    identify_contact(
        workspace=workspace, user=clean_user({"id": "user-0", "plan": "free"}), now=timezone.now()
    )
    assert counts.selection_count(workspace.pk, enterprise) == 3
    assert counts.selection_count(workspace.pk, Selection(None, excluded=enterprise.targeted)) == 3


def test_a_set_with_few_changes_since_is_kept_and_one_with_many_is_read_again(
    workspace, plans, monkeypatch
):
    stored = MemberSet.objects.get(segment=plans["free"])
    user = clean_user({"id": "late", "plan": "free"})
    identify_contact(workspace=workspace, user=user, now=timezone.now())
    membership.sweep(timezone.now())
    assert MemberSet.objects.get(segment=plans["free"]).as_of == stored.as_of
    assert stored_members(plans["free"]) != open_members(plans["free"])

    monkeypatch.setattr(member_sets, "CHANGES_KEPT", 1)
    membership.sweep(timezone.now())
    assert MemberSet.objects.get(segment=plans["free"]).as_of > stored.as_of
    assert stored_members(plans["free"]) == open_members(plans["free"])


def test_a_set_never_replaces_one_read_later(plans):
    segment = plans["free"]
    later = MemberSet.objects.get(segment=segment)

    assert not member_sets._store(segment.pk, later.as_of - timedelta(minutes=5), 0, b"")
    assert stored_members(segment) == open_members(segment)
    assert member_sets._store(segment.pk, later.as_of + timedelta(seconds=1), 0, b"")
    assert stored_members(segment) == set()


def test_a_deleted_segment_gets_no_set(plans):
    segment = plans["nobody"]
    segment.delete()

    assert member_sets.record_member_sets([segment.pk]) == 0
    assert not MemberSet.objects.filter(segment_id=segment.pk).exists()


@pytest.mark.parametrize("sweeps", [2, 4])
@RACES[0]
@RACES[1]
def test_sweeps_storing_one_segments_set_at_once_leave_one_set(sweeps):
    workspace = WorkspaceFactory()
    segment = SegmentFactory(workspace=workspace, rules=plan_is("pro"))
    for n in range(3):
        ContactFactory(workspace=workspace, traits={"plan": "pro" if n else "free"})
    membership.sweep_segment(segment.pk, timezone.now())
    MemberSet.objects.all().delete()

    results = at_once(sweeps, lambda i: member_sets.record_member_sets([segment.pk]))

    assert all(result in (0, 1) for result in results), results
    assert sum(results) >= 1
    assert stored_members(segment) == open_members(segment) and len(open_members(segment)) == 2


@RACES[0]
@RACES[1]
def test_a_change_committed_while_the_set_is_read_is_still_counted():
    """A contact enters (stamped, then held uncommitted) while a sweep reads the
    segment's set: the set misses it, and the count finds it among the changes since
    `as_of`, which the margin puts before the stamp."""
    workspace = WorkspaceFactory()
    segment = SegmentFactory(workspace=workspace, rules=plan_is("pro"))
    contacts = [
        ContactFactory(workspace=workspace, traits={"plan": "pro" if n else "free"})
        for n in range(3)
    ]
    membership.sweep_segment(segment.pk, timezone.now())
    MemberSet.objects.all().delete()
    entered, read = threading.Event(), threading.Event()

    def enter() -> None:
        with transaction.atomic():
            membership._enter(contacts[0], {segment.pk}, timezone.now())
            entered.set()
            assert read.wait(timeout=10)

    def store() -> None:
        assert entered.wait(timeout=10)
        member_sets.record_member_sets([segment.pk])
        read.set()

    assert at_once(2, lambda i: (enter, store)[i]()) == [None, None]

    assert len(stored_members(segment)) == 2
    assert counts.segment_count(segment.pk) == 3
    assert counts.selection_count(workspace.pk, Selection((segment.pk,))) == 3

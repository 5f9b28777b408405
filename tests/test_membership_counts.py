"""Counts from open memberships (segments.counts) against the same sets in Python.

A fixed world of 40 contacts in 5 segments, some memberships closed, and any two
selections Hypothesis draws: the counts must be what set arithmetic says, whichever
segment drives (SIZE_CAP small or large changes the order the parts are read in), in
SQL or from member sets, and from member sets that memberships opened and closed
since they were stored must correct.
"""

import random
from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import counts
from segments.counts import Selection
from segments.member_sets import record_member_sets
from segments.models import Contact, MemberSet, SegmentMembership
from tests.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db

SEGMENTS = 5


@pytest.fixture(params=["in SQL", "from member sets", "from member sets and changes since"])
def world(request, workspace):
    """(workspace id, segment ids, {segment id: its open members' ids}, every contact id)."""
    chance = random.Random(16)
    now = timezone.now() - timedelta(hours=2)
    contacts = [ContactFactory(workspace=workspace) for _ in range(40)]
    segments = [SegmentFactory(workspace=workspace) for _ in range(SEGMENTS)]
    members, rows = {}, []
    for n, segment in enumerate(segments):
        share = (0.1, 0.3, 0.5, 0.7, 0.9)[n]
        chosen = {c.pk for c in contacts if chance.random() < share}
        members[segment.pk] = chosen
        for contact in contacts:
            if contact.pk in chosen:
                rows.append(SegmentMembership(segment=segment, contact=contact, entered_at=now))
            elif chance.random() < 0.3:  # a membership that ended counts for nothing
                rows.append(
                    SegmentMembership(segment=segment, contact=contact, entered_at=now, left_at=now)
                )
    for row in rows:
        row.workspace_id = workspace.pk
    SegmentMembership.objects.bulk_create(rows)
    if request.param != "in SQL":
        record_member_sets(s.pk for s in segments)
        assert MemberSet.objects.filter(segment__workspace=workspace).count() == SEGMENTS
    if request.param.endswith("changes since"):
        later = [ContactFactory(workspace=workspace) for _ in range(5)]
        _change_since(chance, workspace.pk, segments, contacts + later, members)
    everyone = set(Contact.objects.filter(workspace=workspace).values_list("pk", flat=True))
    return workspace.pk, [s.pk for s in segments], members, everyone


def _change_since(chance, workspace_id, segments, contacts, members) -> None:
    """After the sets were stored: a quarter of the pairs move, in or out, and some of
    those leaving come back (a membership closed, then another opened)."""
    now = timezone.now()
    for segment in segments:
        for contact in contacts:
            if chance.random() >= 0.25:
                continue
            inside = contact.pk in members[segment.pk]
            if inside:
                SegmentMembership.objects.filter(
                    segment=segment, contact=contact, left_at__isnull=True
                ).update(left_at=now)
                members[segment.pk].discard(contact.pk)
            if not inside or chance.random() < 0.3:
                SegmentMembership.objects.create(
                    workspace_id=workspace_id, segment=segment, contact=contact, entered_at=now
                )
                members[segment.pk].add(contact.pk)


def expected(selection: Selection, members: dict, everyone: set) -> set:
    if selection.targeted is None:
        chosen = set(everyone)
    elif not selection.targeted:
        chosen = set()
    elif selection.match_all:
        chosen = set.intersection(*(members[pk] for pk in selection.targeted))
    else:
        chosen = set.union(*(members[pk] for pk in selection.targeted))
    for pk in selection.excluded:
        chosen -= members[pk]
    return chosen


def selections(positions: st.SearchStrategy) -> st.SearchStrategy:
    subsets = st.lists(positions, max_size=4, unique=True)
    return st.tuples(st.none() | subsets, st.booleans(), subsets)


def selection_of(drawn: tuple, ids: list[int]) -> Selection:
    targeted, match_all, excluded = drawn
    chosen = None if targeted is None else tuple(ids[i] for i in targeted)
    return Selection(chosen, match_all, tuple(ids[i] for i in excluded))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=selections(st.integers(0, SEGMENTS - 1)),
    second=selections(st.integers(0, SEGMENTS - 1)),
    cap=st.sampled_from([1, 8, 100_000]),
)
def test_counts_from_memberships_are_the_sets_arithmetic(world, monkeypatch, first, second, cap):
    workspace_id, ids, members, everyone = world
    monkeypatch.setattr(counts, "SIZE_CAP", cap)
    mine, theirs = selection_of(first, ids), selection_of(second, ids)
    known = counts.Known()

    assert counts.selection_count(workspace_id, mine, known) == len(
        expected(mine, members, everyone)
    )
    assert counts.overlap_count(workspace_id, mine, theirs, known) == len(
        expected(mine, members, everyone) & expected(theirs, members, everyone)
    )

"""Counts from open memberships (segments.counts) against the same sets in Python.

A fixed world of 40 contacts in 5 segments, some memberships closed, and any two
selections Hypothesis draws: the counts must be what set arithmetic says, whichever
segment drives (SIZE_CAP small or large changes the order the parts are read in).
"""

import random

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import counts
from segments.counts import Selection
from segments.models import SegmentMembership
from tests.factories import ContactFactory, SegmentFactory

pytestmark = pytest.mark.django_db

SEGMENTS = 5


@pytest.fixture
def world(workspace):
    """(workspace id, segment ids, {segment id: its open members' ids}, every contact id)."""
    chance = random.Random(16)
    now = timezone.now()
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
    return workspace.pk, [s.pk for s in segments], members, {c.pk for c in contacts}


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
    sizes: dict[int, int] = {}

    assert counts.selection_count(workspace_id, mine, sizes) == len(
        expected(mine, members, everyone)
    )
    assert counts.overlap_count(workspace_id, mine, theirs, sizes) == len(
        expected(mine, members, everyone) & expected(theirs, members, everyone)
    )

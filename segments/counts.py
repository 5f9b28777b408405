"""Segment and audience counts read from open memberships, with a freshness stamp.

A segment's open memberships (`SegmentMembership` with no `left_at`) are its members
as of its last sweep: the writes keep them current contact by contact, and the sweep
compares what time alone changes. They stop matching the rule when the rule changes,
or a segment it names does, until the segment is compared again (by the next sweep, or
by the re-sweep a save queues, `segments.tasks`). So a count may come from them only
when the segment is *current*: compared or confirmed (`Segment.members_as_of`) no
earlier than the last change of every segment it depends on. The dashboard then shows
"as of" that moment; otherwise it counts live.

An audience (any or all of some segments, minus excluded ones), or the overlap of two,
is then counted from its segments' member sets (`segments.member_sets`) as bit
arithmetic when each has one; otherwise from their open memberships, read through the
partial index `open_members`, each contact checked against the rest by probes of the
index on (contact, segment) of open memberships: the same SQL on SQLite and PostgreSQL.
"""

import operator
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce

from refiner.models import Workspace
from refiner.replicas import reads_of
from segments.member_sets import Members, members_now
from segments.membership import TABLE, watch_of
from segments.models import Contact, MembershipSweep, Segment, SegmentMembership


def current_segments(workspace: Workspace) -> dict[int, datetime]:
    """The workspace's segments whose open memberships are their members, with as of when.

    A segment is current when a sweep compared or confirmed it (`members_as_of`) and
    neither it nor any segment it names, directly or through others, changed since.
    """
    reach = watch_of(workspace).reach  # each segment with those naming it
    rows = list(
        Segment.objects.filter(workspace=workspace).values_list("pk", "updated_at", "members_as_of")
    )
    as_of = {pk: swept for pk, _, swept in rows if swept is not None}
    stale = set()
    for pk, changed, _ in rows:
        for naming in reach.get(pk, {pk}):
            if naming in as_of and changed > as_of[naming]:
                stale.add(naming)
    return {pk: moment for pk, moment in as_of.items() if pk not in stale}


def segment_count(segment_id: int) -> int:
    """How many contacts the segment's open memberships hold (see `current_segments`):
    the bits of its member set, or an index count without one."""
    members = members_now([segment_id], {})
    if members is not None:
        return members[segment_id].bits.bit_count()
    return SegmentMembership.objects.filter(segment_id=segment_id, left_at__isnull=True).count()


@dataclass(frozen=True)
class Selection:
    """Contacts chosen by segments: in any (or all) of `targeted`, in none of `excluded`.

    `targeted` None is every identified contact of the workspace; empty is nobody.
    """

    targeted: tuple[int, ...] | None
    match_all: bool = False
    excluded: tuple[int, ...] = ()

    @property
    def segments(self) -> set[int]:
        return set(self.targeted or ()) | set(self.excluded)

    @property
    def key(self) -> str:
        """The selection written out, the same for every order of the same segments:
        "any:3,5 not:7", "all:3,5 not:", "everyone not:7"."""
        chosen = "everyone" if self.targeted is None else ("all:" if self.match_all else "any:")
        if self.targeted is not None:
            chosen += ",".join(str(pk) for pk in sorted(set(self.targeted)))
        return f"{chosen} not:{','.join(str(pk) for pk in sorted(set(self.excluded)))}"


@dataclass
class Known:
    """What one request has read of its segments' memberships, so that the size and
    every overlap read each segment once: its member set (`segments.member_sets`) or,
    for a segment without one, its size for counting in SQL."""

    members: dict[int, Members | None] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)


# Segments of at least this many open memberships are read as equally large when
# choosing which to read first: counting further costs more than a worse order does.
SIZE_CAP = 100_000


def _marks(ids: Iterable) -> str:
    return ", ".join(["%s"] * len(list(ids)))


def _in_any(segment_ids: Iterable[int], contact: str = "m.contact_id") -> tuple[str, list]:
    """Whether the contact (row `m`'s, unless told) is in one of the segments: a probe
    of the index on (contact, segment) of open memberships."""
    ids = sorted(set(segment_ids))
    sql = (
        f"EXISTS (SELECT 1 FROM {TABLE} o WHERE o.contact_id = {contact} "
        f"AND o.left_at IS NULL AND o.segment_id IN ({_marks(ids)}))"
    )
    return sql, ids


@dataclass(frozen=True)
class Conditions:
    """What a contact must meet: to be in one segment of each of `groups`, and in none
    of `never`."""

    groups: tuple[tuple[int, ...], ...]
    never: tuple[int, ...]


def _conditions(
    selections: Iterable[Selection], known_in: int | None, seen: Iterable[int] = ()
) -> Conditions | None:
    """What a contact known to be in segment `known_in` (None: in no segment known) must
    meet to be in every one of `selections` and in none of the segments `seen`, each
    segment asked once: a group it is known to be in is dropped, and the segments it
    must not be in are taken out of every group. None when no contact can be."""
    never = set(seen)
    groups = set()
    for selection in selections:
        never.update(selection.excluded)
        if selection.targeted is None:
            continue
        if not selection.targeted:
            return None  # a selection of no segment holds nobody
        if selection.match_all:
            groups.update(frozenset([pk]) for pk in selection.targeted)
        else:
            groups.add(frozenset(selection.targeted))
    if known_in in never:
        return None  # the rows read are all of contacts it leaves out
    left = sorted(tuple(sorted(group - never)) for group in groups if known_in not in group)
    if any(not group for group in left):
        return None
    return Conditions(tuple(left), tuple(sorted(never)))


def _probes(conditions: Conditions | None, contact: str) -> tuple[list[str], list]:
    """The conditions on the contact whose id is the column `contact`, as index probes."""
    if conditions is None:
        return ["FALSE"], []
    terms, params = [], []
    for group in conditions.groups:
        sql, ids = _in_any(group, contact)
        terms.append(sql)
        params += ids
    if conditions.never:
        sql, ids = _in_any(conditions.never, contact)
        terms.append(f"NOT {sql}")
        params += ids
    return terms, params


def selection_terms(selection: Selection, contact: str) -> tuple[list[str], list]:
    """Conditions (SQL, with their parameters) that the contact whose id is the column
    `contact` is in the selection, by its open memberships: index probes, as the counts
    below make them (the Targeting tab's estimate asks them of sampled contacts)."""
    return _probes(_conditions([selection], None), contact)


def _sizes(segment_ids: Iterable[int], counted: dict[int, int]) -> dict[int, int]:
    """Each segment's open memberships, counted up to SIZE_CAP; those in `counted`
    (sizes counted earlier in the same request, which this adds to) are not again."""
    ids = sorted(set(segment_ids) - set(counted))
    if ids:
        capped = (
            f"(SELECT count(*) FROM (SELECT 1 FROM {TABLE} WHERE segment_id = %s "
            f"AND left_at IS NULL LIMIT {SIZE_CAP}) AS capped)"
        )
        with reads_of(SegmentMembership).cursor() as cursor:
            cursor.execute("SELECT " + ", ".join([capped] * len(ids)), ids)
            counted.update(zip(ids, cursor.fetchone(), strict=True))
    return counted


def _parts(selection: Selection, sizes: Mapping[int, int]) -> list[tuple[int, list[int]]]:
    """Segments whose rows, each once, hold every contact of the selection: (segment,
    the segments read before it, whose contacts it skips). For "any" the largest is read
    first, whole, and each smaller one only for contacts not seen yet; for "all" the
    smallest alone."""
    ordered = sorted(set(selection.targeted), key=lambda pk: (-sizes[pk], pk))
    if selection.match_all:
        return [(ordered[-1], [])]
    return [(pk, ordered[:i]) for i, pk in enumerate(ordered)]


def _counted(counts: list[tuple[str, list]]) -> int:
    """The sum of `counts` (SQL, parameters), in one statement."""
    if not counts:
        return 0
    sql = "SELECT " + " + ".join(count_sql for count_sql, _ in counts)
    params = [param for _, count_params in counts for param in count_params]
    with reads_of(SegmentMembership).cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _contacts_in_all(workspace_id: int, selections: list[Selection], known: Known) -> int:
    """How many contacts are in every one of `selections`, by open memberships: from
    the segments' member sets when each has one, otherwise in SQL."""
    if any(s.targeted is not None and not s.targeted for s in selections):
        return 0
    members = members_now({pk for s in selections for pk in s.segments}, known.members)
    if members is not None:
        return _counted_in_sets(workspace_id, selections, members)
    return _counted_in_sql(workspace_id, selections, known)


def _counted_in_sets(
    workspace_id: int, selections: list[Selection], members: Mapping[int, Members]
) -> int:
    """The count as bit arithmetic over the segments' members (`members_now`)."""
    base = min((m.first for m in members.values() if m.bits), default=0)
    bits = {pk: m.aligned(base) for pk, m in members.items()}
    excluded = reduce(operator.or_, (bits[pk] for s in selections for pk in s.excluded), 0)
    targeted = [s for s in selections if s.targeted is not None]
    if not targeted:
        everyone = Contact.objects.filter(workspace_id=workspace_id).count()
        return everyone - excluded.bit_count()
    chosen = -1  # every contact, until a selection narrows it
    for s in targeted:
        combine = operator.and_ if s.match_all else operator.or_
        chosen &= reduce(combine, (bits[pk] for pk in s.targeted))
    return (chosen & ~excluded).bit_count()


def _counted_in_sql(workspace_id: int, selections: list[Selection], known: Known) -> int:
    """The count in SQL. One selection with segments to choose from drives: its
    segments' rows are read (`_parts`) and each row's contact is checked against every
    selection by index probes. Selections of everyone are counted as the workspace's
    contacts minus those in any excluded segment."""
    targeted = [s for s in selections if s.targeted is not None]
    if not targeted:
        excluded = tuple({pk for s in selections for pk in s.excluded})
        everyone = Contact.objects.filter(workspace_id=workspace_id).count()
        if not excluded:
            return everyone
        return everyone - _counted_in_sql(workspace_id, [Selection(excluded)], known)
    sizes = _sizes({pk for s in targeted for pk in s.targeted}, known.sizes)
    driver = min(targeted, key=lambda s: sum(sizes[pk] for pk in s.targeted))
    counts = []
    for segment_id, seen in _parts(driver, sizes):
        conditions = _conditions(selections, segment_id, seen)
        if conditions is not None:
            counts.append(_count_of(segment_id, conditions))
    return _counted(counts)


def _count_of(segment_id: int, conditions: Conditions) -> tuple[str, list]:
    """How many of the segment's members meet the conditions, as SQL and parameters."""
    terms, params = _probes(conditions, "m.contact_id")
    where = ["m.segment_id = %s", "m.left_at IS NULL", *terms]
    return f"(SELECT count(*) FROM {TABLE} m WHERE {' AND '.join(where)})", [segment_id, *params]


def selection_count(workspace_id: int, selection: Selection, known: Known | None = None) -> int:
    """How many contacts the selection holds, by its segments' open memberships.
    `known`: what the request read already, kept between its counts."""
    return _contacts_in_all(workspace_id, [selection], known or Known())


def overlap_count(
    workspace_id: int, first: Selection, second: Selection, known: Known | None = None
) -> int:
    """How many contacts both selections hold, by open memberships (`known` as above)."""
    return _contacts_in_all(workspace_id, [first, second], known or Known())


def identified_contacts(workspace_id: int, as_of: datetime | None) -> int:
    """The workspace's identified contacts: as the last sweep found them when the counts
    beside them are `as_of` a sweep, otherwise counted now."""
    if as_of is not None:
        return last_identified_contacts(workspace_id)
    return Contact.objects.filter(workspace_id=workspace_id).count()


def last_identified_contacts(workspace_id: int) -> int:
    """The workspace's identified contacts as its last sweep found them (at most one
    sweep old), counted now when no sweep has: the cheap "of N contacts"."""
    swept = MembershipSweep.objects.filter(
        workspace_id=workspace_id, finished_at__isnull=False, contacts__isnull=False
    ).first()
    if swept is not None:
        return swept.contacts
    return Contact.objects.filter(workspace_id=workspace_id).count()


def lists_changed_since(workspace: Workspace, segment_ids: Iterable[int], since: datetime) -> bool:
    """Did a manual list that these segments are, or name, gain or lose a contact after
    `since`? A list's open memberships move only when someone edits it
    (`services.add_members`, `remove_members`): two probes of the indexes on (segment,
    entered_at) and (segment, left_at)."""
    watch = watch_of(workspace)
    chosen = set(segment_ids)
    lists = [
        pk
        for pk, definition in watch.definitions.items()
        if definition.kind == Segment.MANUAL and watch.reach.get(pk, {pk}) & chosen
    ]
    if not lists:
        return False
    changes = SegmentMembership.objects.filter(segment_id__in=lists)
    return (
        changes.filter(entered_at__gt=since).exists() or changes.filter(left_at__gt=since).exists()
    )


def as_of(current: Mapping[int, datetime], segment_ids: Iterable[int]) -> datetime | None:
    """When the counts of these segments hold (the oldest stamp), or None if any is stale."""
    stamps = [current.get(pk) for pk in segment_ids]
    if any(stamp is None for stamp in stamps):
        return None
    return min(stamps, default=None)

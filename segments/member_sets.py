"""Each segment's open memberships kept as a set of bits, so that audience counts are
bit arithmetic instead of joins over hundreds of thousands of rows.

A `MemberSet` is written by the sweep for each of the workspace's segments, and by a
save's re-sweep for those it compared (`record_member_sets`), unless the stored one has
few changes since. It is the segment's open memberships as read at some moment,
stamped `as_of` a margin earlier. The members *now* are that set, less every contact
whose membership closed after `as_of`, plus every contact with a membership opened
after `as_of` and still open: two probes of the indexes on (segment, entered_at) and
(segment, left_at), a few rows between sweeps. So a count never lags the writes.

Why the margin: a membership is stamped when its change is decided and becomes
visible when its transaction commits. One stamped before `as_of` but committed after
the set was read would be in neither the set nor the changes. Writes to one contact
commit within a request's time budget, far inside `MARGIN`; a sweep of the same
segment running beside (a save's re-sweep) confirms, and so re-reads, its segments
after it commits, and a set never replaces one stamped later.
"""

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from refiner.replicas import reads_of
from segments.models import MemberSet, Segment, SegmentMembership

MARGIN = timedelta(minutes=1)
# A stored set is read again once this many memberships opened or closed after it:
# until then a count reads those few changes, and a sweep reads nothing.
CHANGES_KEPT = 5_000
TABLE = SegmentMembership._meta.db_table

OPEN_MEMBERS_SQL = f"SELECT contact_id FROM {TABLE} WHERE segment_id = %s AND left_at IS NULL"
# A segment's memberships opened or closed after a moment (parameters: the segment, the
# moment twice): the indexes on (segment, entered_at) and (segment, left_at).
CHANGED_SINCE = "(segment_id = %s AND (entered_at > %s OR left_at > %s))"


@dataclass(frozen=True)
class Members:
    """A segment's members now: bit i of `bits` is contact `first + i`."""

    first: int
    bits: int

    def aligned(self, base: int) -> int:
        """The bits with bit i standing for contact `base + i` (base <= first)."""
        return self.bits << (self.first - base) if self.bits else 0


def _buffer(contact_ids: list[int], first: int) -> bytearray:
    """The contacts as bytes, least significant bit first, bit i for `first + i`."""
    buffer = bytearray((max(contact_ids) - first) // 8 + 1)
    for contact_id in contact_ids:
        offset = contact_id - first
        buffer[offset >> 3] |= 1 << (offset & 7)
    return buffer


def _as_int(contact_ids: list[int], first: int) -> int:
    if not contact_ids:
        return 0
    return int.from_bytes(_buffer(contact_ids, first), "little")


def record_member_sets(segment_ids: Iterable[int]) -> int:
    """Read each segment's open memberships (on the primary) and store them as its
    member set, unless its set has fewer than CHANGES_KEPT changes since. Called after
    the memberships were compared and committed. Returns how many sets were stored."""
    chosen, stored = sorted(set(segment_ids)), 0
    kept = dict(MemberSet.objects.filter(segment_id__in=chosen).values_list("pk", "as_of"))
    for segment_id in chosen:
        if segment_id in kept and not _many_changes_since(segment_id, kept[segment_id]):
            continue
        as_of = timezone.now() - MARGIN
        with connection.cursor() as cursor:
            cursor.execute(OPEN_MEMBERS_SQL, [segment_id])
            contact_ids = [row[0] for row in cursor.fetchall()]
        first = min(contact_ids, default=0)
        bits = zlib.compress(bytes(_buffer(contact_ids, first)), 1) if contact_ids else b""
        stored += _store(segment_id, as_of, first, bits)
    return stored


def _many_changes_since(segment_id: int, as_of) -> bool:
    moment = connection.ops.adapt_datetimefield_value(as_of)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {TABLE} WHERE {CHANGED_SINCE} "
            f"LIMIT {CHANGES_KEPT}) AS changes",
            [segment_id, moment, moment],
        )
        return cursor.fetchone()[0] >= CHANGES_KEPT


def _store(segment_id: int, as_of, first: int, bits: bytes) -> bool:
    """Replace the segment's set unless one read later is stored already."""
    fields = {"as_of": as_of, "first_contact_id": first, "bits": bits}
    if MemberSet.objects.filter(segment_id=segment_id, as_of__lt=as_of).update(**fields):
        return True
    if not Segment.objects.filter(pk=segment_id).exists():
        return False  # deleted since
    try:
        with transaction.atomic():
            MemberSet.objects.create(segment_id=segment_id, **fields)
    except IntegrityError:
        return False  # another sweep stored one meanwhile, or the segment is gone
    return True


def _changes_sql(count: int) -> str:
    return (
        f"SELECT segment_id, contact_id, left_at IS NULL FROM {TABLE} "
        f"WHERE {' OR '.join([CHANGED_SINCE] * count)}"
    )


def members_now(segment_ids: Iterable[int], known: dict[int, Members | None]) -> dict | None:
    """Each segment's members now, from its member set and the memberships opened or
    closed since; None when a segment has no set. `known` keeps what one request read
    (None for a segment with no set), and gains what this reads."""
    wanted = sorted(set(segment_ids) - set(known))
    if wanted:
        sets = {s.segment_id: s for s in MemberSet.objects.filter(segment_id__in=wanted)}
        known.update((pk, None) for pk in wanted if pk not in sets)
        if sets:
            known.update(_with_changes(sets))
    chosen = {pk: known[pk] for pk in set(segment_ids)}
    if any(members is None for members in chosen.values()):
        return None
    return chosen


def _with_changes(sets: dict[int, MemberSet]) -> dict[int, Members]:
    database = reads_of(SegmentMembership)
    params = []
    for pk, stored in sorted(sets.items()):
        moment = database.ops.adapt_datetimefield_value(stored.as_of)
        params += [pk, moment, moment]
    with database.cursor() as cursor:
        cursor.execute(_changes_sql(len(sets)), params)
        rows = cursor.fetchall()
    opened = {pk: [] for pk in sets}
    closed = {pk: [] for pk in sets}
    for segment_id, contact_id, is_open in rows:
        (opened if is_open else closed)[segment_id].append(contact_id)
    found = {}
    for pk, stored in sets.items():
        saved = Members(stored.first_contact_id, _stored_bits(stored))
        changed = opened[pk] + closed[pk]
        base = min([saved.first, *changed]) if saved.bits else min(changed, default=0)
        bits = saved.aligned(base) & ~_as_int(closed[pk], base) | _as_int(opened[pk], base)
        found[pk] = Members(base, bits)
    return found


def _stored_bits(stored: MemberSet) -> int:
    if not stored.bits:
        return 0
    return int.from_bytes(zlib.decompress(bytes(stored.bits)), "little")

"""Segment and audience counts read from open memberships, with a freshness stamp.

A segment's open memberships (`SegmentMembership` with no `left_at`) are its members
as of its last sweep: the writes keep them current contact by contact, and the sweep
compares what time alone changes. They stop matching the rule when the rule changes,
or a segment it names does, until the segment is compared again (by the next sweep, or
by the re-sweep a save queues, `segments.tasks`). So a count may come from them only
when the segment is *current*: compared or confirmed (`Segment.members_as_of`) no
earlier than the last change of every segment it depends on. The dashboard then shows
"as of" that moment; otherwise it counts live.

An audience (any or all of some segments, minus excluded ones) is then set operations
over open memberships, and two audiences' overlap their intersection: the same SQL on
SQLite and PostgreSQL, read through the partial index `open_members`.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from refiner.models import Workspace
from segments.membership import TABLE, watch_of
from segments.models import Contact, Segment, SegmentMembership


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
    """How many contacts the segment's open memberships hold (see `current_segments`)."""
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


def _open_members(segment_ids: Iterable[int]) -> tuple[str, list]:
    ids = sorted(set(segment_ids))
    marks = ", ".join(["%s"] * len(ids))
    return (
        f"SELECT contact_id FROM {TABLE} WHERE left_at IS NULL AND segment_id IN ({marks})",
        ids,
    )


def _members_sql(workspace_id: int, selection: Selection) -> tuple[str, list]:
    """SQL of the selection's contact ids, each once, in a column named contact_id."""
    if selection.targeted is None:
        table = Contact._meta.db_table
        sql = f"SELECT id AS contact_id FROM {table} WHERE workspace_id = %s"
        sql += " AND user_id IS NOT NULL"  # visitors are in no segment
        params = [workspace_id]
    else:
        sql, params = _open_members(selection.targeted)
        if selection.match_all:
            sql += " GROUP BY contact_id HAVING count(*) = %s"
            params.append(len(set(selection.targeted)))
        else:
            sql = sql.replace("SELECT contact_id", "SELECT DISTINCT contact_id", 1)
    if selection.excluded:
        excluded_sql, excluded_params = _open_members(selection.excluded)
        # Each side of EXCEPT as a plain SELECT: SQLite takes no parentheses there.
        sql = f"SELECT contact_id FROM ({sql}) AS chosen EXCEPT {excluded_sql}"
        params += excluded_params
    return sql, params


def _count(sql: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS counted", params)
        return cursor.fetchone()[0]


def selection_count(workspace_id: int, selection: Selection) -> int:
    """How many contacts the selection holds, by its segments' open memberships."""
    if selection.targeted is not None and not selection.targeted:
        return 0
    return _count(*_members_sql(workspace_id, selection))


def overlap_count(workspace_id: int, first: Selection, second: Selection) -> int:
    """How many contacts both selections hold, by open memberships."""
    if any(s.targeted is not None and not s.targeted for s in (first, second)):
        return 0
    first_sql, first_params = _members_sql(workspace_id, first)
    second_sql, second_params = _members_sql(workspace_id, second)
    both = (
        f"SELECT contact_id FROM ({first_sql}) AS first "
        f"INTERSECT SELECT contact_id FROM ({second_sql}) AS second"
    )
    return _count(both, first_params + second_params)


def as_of(current: Mapping[int, datetime], segment_ids: Iterable[int]) -> datetime | None:
    """When the counts of these segments hold (the oldest stamp), or None if any is stale."""
    stamps = [current.get(pk) for pk in segment_ids]
    if any(stamp is None for stamp in stamps):
        return None
    return min(stamps, default=None)

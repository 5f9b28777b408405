"""Pages of a long dashboard list, newest first, walked by key instead of by OFFSET.

A page is found from the row the reader last saw: `?after=<cursor>` lists the rows
that sort after it (older), `?before=<cursor>` the rows that sort before it (newer).
The database walks its index from that row, so a far page costs what the first
does, where an OFFSET reads and throws away every row above it. A cursor is the
row's moment, in microseconds since 1970 (UTC), and its id: `1764496800000000_42`.
It names a place in the order, never a row to show, so a cursor copied from another
workspace shows only this workspace's rows around that place.

No page counts every row: the list says how many there are up to COUNT_LIMIT, and
"more than" past it (a count of a million matches costs more than the page).

The REST API keeps its numbered pages (SPEC §5, `refiner.http.paginated`).
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.exceptions import BadRequest
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from refiner.http import parse_id
from refiner.plans import planned_for_their_values

COUNT_LIMIT = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CURSOR = re.compile(r"(-?[0-9]{1,19})_([0-9]{1,19})")


def cursor_of(moment: datetime, pk: int) -> str:
    """The cursor naming a row's place in the order."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{pk}"


def parse_cursor(raw: str) -> tuple[datetime, int]:
    """(moment, id) of a cursor; BadRequest (a 400 page) for anything that is not one."""
    match = CURSOR.fullmatch(raw)
    pk = parse_id(match.group(2)) if match else None
    if match is None or pk is None:
        raise BadRequest("The page address is not one this list gave.")
    try:
        moment = EPOCH + timedelta(microseconds=int(match.group(1)))
    except OverflowError:
        raise BadRequest("The page address is not one this list gave.") from None
    return moment, pk


@dataclass
class KeysetPage:
    """One page of rows, with the cursors of its neighbours (None where there is none)."""

    rows: list
    newer: str | None
    older: str | None
    count: int
    more: bool

    def __iter__(self) -> Iterator:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def has_other_pages(self) -> bool:
        return bool(self.newer or self.older)


def _after(moment_field: str, moment: datetime, pk: int) -> Q:
    # The plain `<=` is implied by the pair, but only it can bound the index scan.
    later = Q(**{f"{moment_field}__lt": moment}) | Q(**{moment_field: moment, "pk__lt": pk})
    return Q(**{f"{moment_field}__lte": moment}) & later


def _before(moment_field: str, moment: datetime, pk: int) -> Q:
    earlier = Q(**{f"{moment_field}__gt": moment}) | Q(**{moment_field: moment, "pk__gt": pk})
    return Q(**{f"{moment_field}__gte": moment}) & earlier


def keyset_page(
    request: HttpRequest, rows: QuerySet, moment_field: str, per_page: int
) -> KeysetPage:
    """The page of `rows` (newest `moment_field` first, then highest id) that the
    request's `after` or `before` cursor asks for; the first page without one."""
    after, before = request.GET.get("after"), request.GET.get("before")
    before_key = parse_cursor(before) if before else None
    after_key = parse_cursor(after) if after and not before else None
    with planned_for_their_values(rows.db):
        if before_key:
            newer_first = rows.filter(_before(moment_field, *before_key))
            fetched = list(newer_first.order_by(moment_field, "pk")[: per_page + 1])
            shown = list(reversed(fetched[:per_page]))
            has_newer, has_older = len(fetched) > per_page, True
        else:
            older = rows.filter(_after(moment_field, *after_key)) if after_key else rows
            fetched = list(older.order_by(f"-{moment_field}", "-pk")[: per_page + 1])
            shown = fetched[:per_page]
            has_newer, has_older = after_key is not None, len(fetched) > per_page
        if after_key is None and before_key is None and len(fetched) <= per_page:
            counted = len(fetched)  # one page holds them all: the count is known
        else:
            counted = rows.order_by()[: COUNT_LIMIT + 1].count()
    return KeysetPage(
        rows=shown,
        newer=_cursor(shown[0], moment_field) if has_newer and shown else None,
        older=_cursor(shown[-1], moment_field) if has_older and shown else None,
        count=min(counted, COUNT_LIMIT),
        more=counted > COUNT_LIMIT,
    )


def _cursor(row, moment_field: str) -> str:
    return cursor_of(getattr(row, moment_field), row.pk)

"""The event table, partitioned by month on PostgreSQL (docs/partitions.md).

`segments_event` is a PostgreSQL partitioned table: one partition per calendar month
of `occurred_at` (UTC), named `segments_event_y2026m11`, and a DEFAULT partition that
takes any event whose month has none, so that an insert never fails for want of a
partition. `ensure_months` creates the coming months' partitions ahead of time (the
`event_partitions` command, run daily) and moves any rows of those months out of the
DEFAULT partition. Old months are dropped whole by `segments.retention`.

A partitioned table's primary key must include the partition key, so the database's
key is (id, occurred_at) while Django's model keeps `id` as its primary key: ids come
from one identity sequence, and nothing but a hand-written insert could repeat one.

SQLite keeps one plain table: every function here is for PostgreSQL only.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from segments.totals import add_totals

EVENT_TABLE = "segments_event"
DEFAULT_PARTITION = f"{EVENT_TABLE}_default"
# Months created ahead of the current one. One is enough: the nightly run has the whole
# month to create the next, and every partition costs each query without a time bound
# (a contact's events, for eligibility) one more index probe (docs/partitions.md).
MONTHS_AHEAD = 1
# Locking DEFAULT makes every read of the whole event table wait behind the lock, the
# widget's among them: give up soon instead, and leave the month to the next run.
LOCK_TIMEOUT = "2s"
# What pg_get_expr prints for a month's bounds.
BOUNDS = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    """One partition of the event table; `start` and `end` are None for DEFAULT."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        return self.start is None


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the month `moment` falls in."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The first instant of the month `count` months after `month` (before, if negative)."""
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    return f"{EVENT_TABLE}_y{month.year:04d}m{month.month:02d}"


def _literal(moment: datetime) -> str:
    # A bound is a literal in DDL (no parameters there); it is our own datetime.
    return f"'{moment.astimezone(UTC).isoformat(sep=' ')}'"


def is_partitioned(connection: BaseDatabaseWrapper) -> bool:
    """Is the event table a partitioned table (PostgreSQL after the migration)?"""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [EVENT_TABLE]
        )
        return cursor.fetchone() is not None


def partitions(connection: BaseDatabaseWrapper) -> list[Partition]:
    """The event table's partitions, months in order, then DEFAULT."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass(%s)
            """,
            [EVENT_TABLE],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = BOUNDS.search(bound)
        if match is None:
            found.append(Partition(name, None, None))
        else:
            start, end = (datetime.fromisoformat(text) for text in match.groups())
            found.append(Partition(name, start.astimezone(UTC), end.astimezone(UTC)))
    return sorted(found, key=lambda p: (p.is_default, p.start or datetime.min.replace(tzinfo=UTC)))


def _columns(cursor, table: str) -> str:
    cursor.execute(
        """
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped
        """,
        [table],
    )
    return cursor.fetchone()[0]


def add_month(connection: BaseDatabaseWrapper, month: datetime) -> bool:
    """Give `month` its own partition, moving its rows out of DEFAULT; False if it has one.

    The partition is filled and then attached, rather than created as PARTITION OF:
    attaching locks the parent only against schema changes, so events keep being
    written meanwhile. The DEFAULT partition is locked first, so that no event of the
    month can land there between the move and the attach. Raises OperationalError when
    a lock is not had within LOCK_TIMEOUT.
    """
    name, end = partition_name(month), add_months(month, 1)
    quote = connection.ops.quote_name
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        if cursor.fetchone()[0]:
            return False
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        columns = _columns(cursor, EVENT_TABLE)
        cursor.execute(
            f"CREATE TABLE {quote(name)} (LIKE {EVENT_TABLE} INCLUDING DEFAULTS INCLUDING STORAGE)"
        )
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        if cursor.fetchone()[0]:
            cursor.execute(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE")
            cursor.execute(
                f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "  # noqa: S608
                f"WHERE occurred_at >= %s AND occurred_at < %s RETURNING {columns}) "
                f"INSERT INTO {quote(name)} ({columns}) SELECT {columns} FROM moved",
                [month, end],
            )
            moved = cursor.rowcount
        else:
            moved = 0
        cursor.execute(
            f"ALTER TABLE {EVENT_TABLE} ATTACH PARTITION {quote(name)} "
            f"FOR VALUES FROM ({_literal(month)}) TO ({_literal(end)})"
        )
        if moved:
            # The DELETE from DEFAULT took the moved events out of the totals, and the
            # INSERT into the table not yet attached fired no trigger: count them again.
            add_totals(cursor, quote(name))
    return True


def ensure_months(connection: BaseDatabaseWrapper, first: datetime, last: datetime) -> list[str]:
    """Partitions for every month from `first`'s to `last`'s; the names of those created."""
    month, last = month_start(first), month_start(last)
    created = []
    while month <= last:
        if add_month(connection, month):
            created.append(partition_name(month))
        month = add_months(month, 1)
    return created


# The migration ------------------------------------------------------------------


def _shape(cursor, table: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The table's indexes (CREATE statements) and foreign keys (name, definition),
    beside its primary key: what a rebuilt table must be given again."""
    cursor.execute(
        """
        SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x
        WHERE x.indrelid = to_regclass(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
        ORDER BY x.indexrelid
        """,
        [table],
    )
    # A partitioned table's index prints as ON ONLY; the rebuilt table's must cover it all.
    indexes = [row[0].replace(" ON ONLY ", " ON ") for row in cursor.fetchall()]
    cursor.execute(
        """
        SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint
        WHERE conrelid = to_regclass(%s) AND contype IN ('f', 'u', 'x') ORDER BY conname
        """,
        [table],
    )
    constraints = cursor.fetchall()
    unique = [name for name, _, kind in constraints if kind != "f"]
    if unique:
        # A partitioned table can only enforce uniqueness that includes occurred_at.
        raise RuntimeError(f"{table} has unique constraints {unique}: rebuild them by hand.")
    return indexes, [(name, definition) for name, definition, _ in constraints]


def _sequence_state(cursor, table: str) -> tuple[int, bool]:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
    return cursor.fetchone()


def _rebuild(cursor, *, partition_by: str, primary_key: str, add_partitions) -> None:
    """Copy `segments_event` into a new table of the same name and shape, built as
    `partition_by` says ("" for a plain table), keeping every row, index, foreign key
    and the id sequence's position. `add_partitions(cursor, old_table)` runs between
    the new table's creation and the copy."""
    cursor.execute(f"LOCK TABLE {EVENT_TABLE} IN ACCESS EXCLUSIVE MODE")
    indexes, foreign_keys = _shape(cursor, EVENT_TABLE)
    sequence = _sequence_state(cursor, EVENT_TABLE)
    old = f"{EVENT_TABLE}_old"
    cursor.execute(f"ALTER TABLE {EVENT_TABLE} RENAME TO {old}")
    cursor.execute(
        f"CREATE TABLE {EVENT_TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING IDENTITY "
        f"INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) {partition_by}"
    )
    add_partitions(cursor, old)
    columns = _columns(cursor, EVENT_TABLE)
    cursor.execute(
        f"INSERT INTO {EVENT_TABLE} ({columns}) SELECT {columns} FROM {old}"  # noqa: S608
    )
    cursor.execute(f"DROP TABLE {old}")
    # Indexes after the copy: building them once is faster than updating them per row.
    cursor.execute(
        f"ALTER TABLE {EVENT_TABLE} ADD CONSTRAINT {EVENT_TABLE}_pkey PRIMARY KEY ({primary_key})"
    )
    for statement in indexes:
        cursor.execute(statement)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {EVENT_TABLE} ADD CONSTRAINT "{name}" {definition}')
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [EVENT_TABLE])
    sequence_name = cursor.fetchone()[0]
    cursor.execute("SELECT setval(%s, %s, %s)", [sequence_name, *sequence])
    # LIKE named it after the renamed table: give back the usual name.
    cursor.execute(f"ALTER SEQUENCE {sequence_name} RENAME TO {EVENT_TABLE}_id_seq")


def _months_to_create(cursor, old: str, now: datetime) -> list[datetime]:
    """Every month that holds events, up to MONTHS_AHEAD months from now (events further
    ahead stay in DEFAULT: one stray date must not make hundreds of partitions), and the
    coming months."""
    last = add_months(month_start(now), MONTHS_AHEAD)
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') FROM {old}"  # noqa: S608
    )
    months = {row[0].replace(tzinfo=UTC) for row in cursor.fetchall()}
    month = month_start(now)
    while month <= last:
        months.add(month)
        month = add_months(month, 1)
    return sorted(m for m in months if m <= last)


def partition_events(connection: BaseDatabaseWrapper, now: datetime) -> None:
    """Turn the plain event table into one partitioned by month, keeping every row.

    Writers of events wait on the table's lock until the migration commits.
    """
    if is_partitioned(connection):
        return

    def add_partitions(cursor, old: str) -> None:
        for month in _months_to_create(cursor, old, now):
            cursor.execute(
                f"CREATE TABLE {partition_name(month)} PARTITION OF {EVENT_TABLE} "
                f"FOR VALUES FROM ({_literal(month)}) TO ({_literal(add_months(month, 1))})"
            )
        cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {EVENT_TABLE} DEFAULT")

    with connection.cursor() as cursor:
        _rebuild(
            cursor,
            partition_by="PARTITION BY RANGE (occurred_at)",
            primary_key="id, occurred_at",
            add_partitions=add_partitions,
        )


def unpartition_events(connection: BaseDatabaseWrapper) -> None:
    """The migration's reverse: one plain table again, keyed by id, keeping every row."""
    if not is_partitioned(connection):
        return
    with connection.cursor() as cursor:
        _rebuild(cursor, partition_by="", primary_key="id", add_partitions=lambda *_: None)

"""How long events are kept (EVENT_RETENTION_MONTHS), and what that means for rules.

Retention counts whole calendar months (UTC): with 12 months, on any day of
November 2026 the events from 1 November 2025 on are kept, so at least 12 months
and at most 13 are there. On PostgreSQL older months go as whole partitions
(segments.partitions), a cheap DROP TABLE instead of a DELETE of millions of rows;
on SQLite, or a PostgreSQL table not yet partitioned, the rows are deleted.
"""

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction

from segments.models import Event
from segments.partitions import (
    DEFAULT_PARTITION,
    LOCK_TIMEOUT,
    add_months,
    is_partitioned,
    month_start,
    partitions,
)

# Dropping a partition locks the whole event table for an instant; a widget call must
# not queue behind it for long, so the drop gives up quickly (LOCK_TIMEOUT) and tries
# again.
DROP_ATTEMPTS = 5
# Events deleted per transaction before a partition is dropped (about half a second of
# work with the totals' trigger at a million contacts).
DELETE_BATCH = 10_000
LOCK_NOT_AVAILABLE = "55P03"
# A writer into the old month holds the parent while waiting for the partition, which
# the drop holds while waiting for the parent: PostgreSQL breaks the deadlock, and the
# drop tries again.
WAITED_TOO_LONG = (LOCK_NOT_AVAILABLE, "40P01")
# Days of each month of a common year: the shortest run of N months bounds what is kept.
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def retention_months() -> int:
    """Months of events kept; 0 keeps them forever."""
    return settings.EVENT_RETENTION_MONTHS


def retention_start(now: datetime, months: int) -> datetime:
    """The earliest moment whose events are kept: the start of the month `months` before."""
    return add_months(month_start(now), -months)


def days_always_kept(months: int) -> int:
    """The fewest days of events ever kept with `months` of retention: N whole months, as
    on the first instant of a month, and N as short as months come (12 → 365, 1 → 28)."""
    years, rest = divmod(months, 12)
    shortest = min(sum(MONTH_DAYS[(first + i) % 12] for i in range(rest)) for first in range(12))
    return years * 365 + shortest


@dataclass
class OldEvents:
    """What a run dropped, or would drop: whole partitions and loose rows."""

    start: datetime
    partitions: list[str] = field(default_factory=list)
    partition_rows: int = 0
    rows: int = 0


def drop_old_events(*, now: datetime, months: int, dry_run: bool = False) -> OldEvents:
    """Remove the events from before `retention_start(now, months)`.

    PostgreSQL: the month partitions that end by then are dropped, and the DEFAULT
    partition's older rows deleted. Elsewhere the older rows are deleted.
    With `dry_run`, only counts what would go.
    """
    if months < 1:
        raise ValueError("Retention is a number of months, 1 or more.")
    found = OldEvents(retention_start(now, months))
    if not is_partitioned(connection):
        older = Event.objects.filter(occurred_at__lt=found.start)
        found.rows = older.count() if dry_run else older.delete()[0]
        return found
    for partition in partitions(connection):
        if partition.is_default or partition.end > found.start:
            continue
        found.partitions.append(partition.name)
        found.partition_rows += _drop_partition(partition.name, dry_run)
    found.rows = _delete_from_default(found.start, dry_run)
    return found


def _drop_partition(name: str, dry_run: bool) -> int:
    """Drop one month's partition; how many events it held.

    No row trigger sees a DROP, so the events are first deleted in batches, each
    its own short transaction, letting the row trigger lower the event totals
    (segments.totals): one transaction for the whole month held the totals of every
    contact active then locked for minutes, and the widget's tracks of those
    contacts waited behind it. A run stopped halfway leaves totals true and the
    rest of the month for the next run.
    """
    table = connection.ops.quote_name(name)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        rows = cursor.fetchone()[0]
    if dry_run:
        return rows
    _delete_in_batches(table)
    for attempt in range(DROP_ATTEMPTS):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
                # Held against writes, the partition's last rows (written meanwhile into
                # a month this old, if ever) leave the totals before it goes.
                cursor.execute(f"LOCK TABLE {table} IN SHARE MODE")
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
                cursor.execute(f"DROP TABLE {table}")
                return rows
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) not in WAITED_TOO_LONG:
                raise
            if attempt == DROP_ATTEMPTS - 1:
                raise
            time.sleep(1 + attempt)
    return 0


def _delete_in_batches(table: str) -> None:
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} LIMIT %s)",  # noqa: S608
                [DELETE_BATCH],
            )
            if cursor.rowcount < DELETE_BATCH:
                return


def _delete_from_default(start: datetime, dry_run: bool) -> int:
    """Old events that landed in DEFAULT (a month without its partition) go row by row."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT_PARTITION])
        if not cursor.fetchone()[0]:
            return 0
        verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
        cursor.execute(f"{verb} {DEFAULT_PARTITION} WHERE occurred_at < %s", [start])  # noqa: S608
        return cursor.fetchone()[0] if dry_run else cursor.rowcount


# Rules --------------------------------------------------------------------------


def _event_conditions(rule: Any):
    """(path, condition) of every event condition, paths as validation names them."""
    stack = [("", rule)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("type") == "event":
            yield path, node
        children = node.get("conditions")
        if isinstance(children, list):
            prefix = f"{path}." if path else ""
            # Reversed onto the stack, so that conditions come out in the rule's order.
            stack.extend(
                (f"{prefix}conditions[{index}]", child)
                for index, child in reversed(list(enumerate(children)))
            )


def rule_warnings(rule: Any, months: int | None = None) -> list[dict[str, str]]:
    """Where a (valid) rule asks about events older than retention keeps: a window longer
    than the days always kept, or a count over all time. Each warning names the field
    (`conditions[0].within_days`) and says what happens; the rule stays valid."""
    months = retention_months() if months is None else months
    if months < 1:
        return []
    kept = days_always_kept(months)
    warnings = []
    for path, condition in _event_conditions(rule):
        days = condition.get("within_days")
        name = str(condition.get("event"))[:100]
        if days is None:
            warnings.append(
                {
                    "field": path,
                    "message": f"Counts `{name}` events of all time, but events older than "
                    f"{months} months are deleted: only the last {months} months count.",
                }
            )
        elif isinstance(days, int) and days > kept:
            warnings.append(
                {
                    "field": f"{path}.within_days",
                    "message": f"Looks back {days} days, but events older than {months} months "
                    f"are deleted: at times only the last {kept} days of `{name}` count.",
                }
            )
    return warnings

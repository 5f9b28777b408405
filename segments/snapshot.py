"""One contact's snapshot in one query: what the in-memory evaluator reads.

The eligibility check loads a snapshot on every widget call, so this is the hot
path. The events, displays, latest answers and manual memberships of the contact
come back from a single hand-written `UNION ALL` (one round trip, no ORM query to
build), each row tagged with its kind; the contact and its account are already
loaded by the caller.

Which events it reads is an `EventReads`: every event of some names (the contact
page, the membership sweep), or, for the rules of a workspace, only what they can
ask: the events young enough for their windows, and the totals (`EventTotal`) of
the names they count over all time. Events are partitioned by month, so the
window's lower bound keeps the older partitions out of the widget's statements.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from refiner.raw_sql import fast_cursor
from segments.memory import ContactSnapshot, DisplayFacts
from segments.models import Contact
from segments.registry import survey_facts
from segments.rules import rule_nodes
from segments.values import days_before

EVENT, DISPLAY, ANSWER, MEMBERSHIP, TOTAL = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class EventReads:
    """Which of a contact's events a snapshot reads: those of `names` (None: of every
    name) no older than `days` days (None: of any age), and the totals of `counted`."""

    names: frozenset[str] | None
    days: int | None = None
    counted: frozenset[str] = frozenset()

    @classmethod
    def of_names(cls, names: Iterable[str] | None) -> "EventReads":
        return cls(None if names is None else frozenset(names))

    @classmethod
    def for_rules(cls, rules: Iterable[Any]) -> "EventReads":
        """What these rules can ask of a contact's events: each windowed condition its
        window's events, each condition over all time its name's total."""
        windowed: dict[str, int] = {}
        counted = set()
        for rule in rules:
            for node in rule_nodes(rule):
                name, days = node.get("event"), node.get("within_days")
                if node.get("type") != "event" or not isinstance(name, str):
                    continue
                if days is None:
                    counted.add(name)
                elif isinstance(days, int) and not isinstance(days, bool) and days >= 0:
                    windowed[name] = max(windowed.get(name, 0), days)
                else:
                    # A stored rule no longer valid (its segment is unusable): read it all.
                    return cls(None)
        return cls(frozenset(windowed), max(windowed.values(), default=None), frozenset(counted))

    def since(self, now: datetime) -> datetime | None:
        """The oldest moment of an event read at `now`."""
        return None if self.days is None else days_before(now, self.days)


# Each branch names the contact as `{contact}`, first in its WHERE: a parameter, or a
# column of a statement around it. Columns of every branch: kind, text, number, three
# moments, JSON. The displays and answers branches are the surveys app's
# (`segments.registry.SurveyFacts`).
_MEMBERSHIPS = """
    SELECT 4, NULL, segment_id, NULL, NULL, NULL, NULL
    FROM segments_segmentmember WHERE contact_id = {contact}"""
_EVENTS = """
    SELECT 1, name, NULL, occurred_at, NULL, NULL, NULL
    FROM segments_event WHERE contact_id = {contact}"""
_TOTALS = """
    SELECT 5, name, count, NULL, NULL, NULL, NULL
    FROM segments_eventtotal WHERE contact_id = {contact}"""


def _among(names: frozenset[str]) -> tuple[str, list]:
    ordered = sorted(names)
    return f" AND name IN ({', '.join(['%s'] * len(ordered))})", ordered


def _branches(reads: EventReads, now: datetime | None) -> list[tuple[str, list]]:
    """Each branch's SQL with the parameters that follow its contact."""
    branches = []
    if reads.names is None or reads.names:
        sql, params = _EVENTS, []
        if reads.names is not None:
            among, params = _among(reads.names)
            sql += among
        since = reads.since(now) if now is not None else None
        if since is not None:
            # As the ORM would send it: SQLite compares the stored text.
            since = connection.ops.adapt_datetimefield_value(since)
            sql, params = sql + " AND occurred_at >= %s", [*params, since]
        branches.append((sql, params))
    facts = survey_facts()
    for sql in (facts.snapshot_displays, facts.snapshot_answers, _MEMBERSHIPS):
        branches.append((sql, []))
    if reads.counted:
        # After the displays, whose moments give the union its column types.
        among, params = _among(reads.counted)
        branches.append((_TOTALS + among, params))
    return branches


def snapshot_sql(reads: EventReads, now: datetime | None, contact: str) -> tuple[str, list]:
    """The snapshot's SQL with the contact named by `contact`, a column of the statement
    around it, and its parameters."""
    branches = _branches(reads, now)
    sql = " UNION ALL ".join(branch.format(contact=contact) for branch, _ in branches)
    return sql, [param for _, params in branches for param in params]


def snapshot_query(
    contact_id: int, reads: EventReads, now: datetime | None = None
) -> tuple[str, list]:
    """The SQL and parameters of the contact's snapshot (`now` dates a window's start)."""
    branches = _branches(reads, now)
    sql = " UNION ALL ".join(branch.format(contact="%s") for branch, _ in branches)
    return sql, [param for _, params in branches for param in [contact_id, *params]]


def fingerprint_sql(reads: EventReads, now: datetime, contact: str) -> tuple[str, list]:
    """An expression, for PostgreSQL, of the fingerprint of the snapshot of the contact
    that `contact` names in the statement around it; with its parameters."""
    sql, params = snapshot_sql(reads, now, contact)
    return f"(SELECT {_PG_DIGEST} FROM ({sql}) AS s)", params


def _moment(value: Any) -> datetime | None:
    """A UTC datetime from what the driver gives: aware on PostgreSQL, text on SQLite."""
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = parse_datetime(value)
    return value.replace(tzinfo=UTC)


# Fingerprints ------------------------------------------------------------------
#
# A digest of the snapshot's rows, in an order of their own: equal digests, equal rows.
# On PostgreSQL the database works it out, so that a statement can carry it as one
# short value (`fingerprint_sql`); SQLite, with no md5, sends the rows and Python
# digests them.

_PG_DIGEST = "md5(coalesce(string_agg(s::text, '|' ORDER BY s::text), ''))"


def _digest(rows: list[tuple]) -> str:
    return hashlib.md5(repr(sorted(map(repr, rows))).encode(), usedforsecurity=False).hexdigest()


def load_fingerprinted(
    contact: Contact, reads: EventReads, now: datetime
) -> tuple[ContactSnapshot, str]:
    """The snapshot and the fingerprint of the very rows it was built from."""
    sql, params = snapshot_query(contact.pk, reads, now)
    with fast_cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement: the digest row (kind 0) is of the rows sent with it.
            cursor.execute(
                f"WITH s AS ({sql}) SELECT * FROM s UNION ALL "
                f"SELECT 0, (SELECT {_PG_DIGEST} FROM s), NULL, NULL, NULL, NULL, NULL",
                params,
            )
            rows = cursor.fetchall()
            found = next(row[1] for row in rows if row[0] == 0)
            rows = [row for row in rows if row[0] != 0]
        else:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            found = _digest(rows)
    return _snapshot(contact, reads, rows), found


def load_snapshot(
    contact: Contact, reads: EventReads | None = None, now: datetime | None = None
) -> ContactSnapshot:
    """Everything rules can ask about one contact, in one query.

    `reads` limits the events loaded to what rules ask (None loads them all); `now`
    dates the start of its window. Load `contact` with `select_related("account")`
    to save a query.
    """
    reads = reads or EventReads(None)
    sql, params = snapshot_query(contact.pk, reads, now)
    with fast_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _snapshot(contact, reads, rows)


def _snapshot(contact: Contact, reads: EventReads, rows: list[tuple]) -> ContactSnapshot:
    snapshot = ContactSnapshot(
        attributes=contact.attributes(),
        account=contact.account.attributes() if contact.account_id else None,
    )
    if reads.counted:
        snapshot.event_totals = dict.fromkeys(reads.counted, 0)
    responses: dict[str, dict] = {}
    for kind, text, number, first, second, third, document in rows:
        if kind == EVENT:
            snapshot.events.setdefault(text, []).append(_moment(first))
        elif kind == TOTAL:
            snapshot.event_totals[text] = number
        elif kind == DISPLAY:
            snapshot.displays.append(
                DisplayFacts(number, _moment(first), _moment(second), _moment(third), text)
            )
        elif kind == ANSWER:
            answers = responses.get(document)
            if answers is None:
                answers = responses[document] = json.loads(document)
            snapshot.answers[(number, text)] = answers.get(text)
        else:
            snapshot.manual_segments.add(number)
    return snapshot

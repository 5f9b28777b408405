"""One contact's snapshot in one query: what the in-memory evaluator reads.

The eligibility check loads a snapshot on every widget call, so this is the hot
path. The events, displays, latest answers and manual memberships of the contact
come back from a single hand-written `UNION ALL` (one round trip, no ORM query to
build), each row tagged with its kind; the contact and its account are already
loaded by the caller.
"""

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

from refiner.raw_sql import fast_cursor
from segments.memory import ContactSnapshot, DisplayFacts
from segments.models import Contact
from segments.registry import survey_facts

EVENT, DISPLAY, ANSWER, MEMBERSHIP = 1, 2, 3, 4

# Columns of every branch: kind, text, number, three moments, JSON. The displays and
# answers branches are the surveys app's (`segments.registry.SurveyFacts`). Each names
# the contact as `{contact}`: a parameter, or a column of a statement around it.
_MEMBERSHIPS = """
    SELECT 4, NULL, segment_id, NULL, NULL, NULL, NULL
    FROM segments_segmentmember WHERE contact_id = {contact}"""


def _events(names: list[str] | None) -> str:
    query = """
    SELECT 1, name, NULL, occurred_at, NULL, NULL, NULL
    FROM segments_event WHERE contact_id = {contact}"""
    if names is None:
        return query
    return query + f" AND name IN ({', '.join(['%s'] * len(names))})"


def snapshot_sql(names: list[str] | None, contact: str) -> tuple[str, int]:
    """The snapshot's SQL with the contact as `contact`, and how many times it names
    the contact before the event names (0 or 1: the events come first, if at all)."""
    facts = survey_facts()
    branches = [facts.snapshot_displays, facts.snapshot_answers, _MEMBERSHIPS]
    if names is None or names:
        branches.insert(0, _events(names))
    return " UNION ALL ".join(branches).format(contact=contact), len(branches) - 3


def snapshot_query(contact_id: int, event_names: Iterable[str] | None) -> tuple[str, list]:
    """The SQL and parameters of the snapshot; events only of `event_names` (None: all)."""
    names = sorted(event_names) if event_names is not None else None
    sql, leading = snapshot_sql(names, "%s")
    return sql, [contact_id] * leading + (names or []) + [contact_id] * 3


def fingerprint_sql(event_names: Iterable[str] | None, contact: str) -> tuple[str, list]:
    """An expression, for PostgreSQL, of the fingerprint of the snapshot of the contact
    that `contact` names in the statement around it; with its parameters."""
    names = sorted(event_names) if event_names is not None else None
    sql, _ = snapshot_sql(names, contact)
    return f"(SELECT {_PG_DIGEST} FROM ({sql}) AS s)", names or []


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
    contact: Contact, event_names: Iterable[str] | None = None
) -> tuple[ContactSnapshot, str]:
    """The snapshot and the fingerprint of the very rows it was built from."""
    sql, params = snapshot_query(contact.pk, event_names)
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
    return _snapshot(contact, rows), found


def load_snapshot(contact: Contact, event_names: Iterable[str] | None = None) -> ContactSnapshot:
    """Everything rules can ask about one contact, in one query.

    `event_names` limits the events loaded to those rules mention (None loads all).
    Load `contact` with `select_related("account")` to save a query.
    """
    sql, params = snapshot_query(contact.pk, event_names)
    with fast_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return _snapshot(contact, rows)


def _snapshot(contact: Contact, rows: list[tuple]) -> ContactSnapshot:
    snapshot = ContactSnapshot(
        attributes=contact.attributes(),
        account=contact.account.attributes() if contact.account_id else None,
    )
    responses: dict[str, dict] = {}
    for kind, text, number, first, second, third, document in rows:
        if kind == EVENT:
            snapshot.events.setdefault(text, []).append(_moment(first))
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

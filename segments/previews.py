"""The segment editor's preview: how many contacts a rule matches, and a few of them.

An unsaved rule has no recorded memberships, so it is counted live, within a budget of
its own (`PREVIEW_TIME_BUDGET_MS`, taken out of the request's): past it the preview
says the rule took too long to count, and the page still answers. The saved rule of a
segment whose memberships are current is read from them instead (segments.counts).

A large workspace (`PREVIEW_ESTIMATE_ABOVE` identified contacts or more, on
PostgreSQL) is previewed in two steps: an estimate from a uniform sample of its
contacts at once (`estimate`, segments.estimates), then the exact count, which the
estimate's fragment loads itself (`live`, asked with `exact`).

The sample is the most recently seen matching contacts. Walking contacts by
`last_seen_at` and asking the rule of each finds them at once when many match; when
few do (fewer than one in `RARE`), it walks most of the workspace, so on PostgreSQL
the set of matching ids is computed first, as the count does (segments.sets). When the
count itself computed that set and it holds at most `MEMBER_IDS` contacts, the count
returns their ids too, and the sample is read among them: the set is not computed twice.
"""

import time
from collections.abc import Callable
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from refiner.budget import Budget, is_timeout
from refiner.models import Workspace
from segments import counts, estimates, services
from segments.models import Contact, Segment, SegmentMembership
from segments.rules import SegmentDefinitions
from segments.sets import SetCompiler

SAMPLE = 8
# A count of at most this many members returns their ids too, and the sample is chosen
# among them: reading that many contacts by id costs less than computing the set again.
MEMBER_IDS = 50_000
# A rule matching fewer than one contact in this many is sampled from its set of ids.
RARE = 50


def within_budget(work: Callable[[], Any], milliseconds: int) -> tuple[bool, Any]:
    """`(True, work())` if it ends within `milliseconds` (and the request's own budget),
    `(False, None)` if it runs out."""
    outer = getattr(connection, "refiner_budget", None)
    if outer is not None:
        milliseconds = min(milliseconds, outer.remaining_ms())
    # Inside a transaction, a savepoint keeps a stopped statement from failing the rest;
    # outside one there is nothing to keep (and on SQLite a transaction of reads would
    # hold locks that the request's other connections then meet).
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with Budget(milliseconds).applied(), guard:
            return True, work()
    except OperationalError as error:
        if not is_timeout(error):
            raise
        return False, None


# The order of "most recently seen", in every sample (RECENT_AMONG writes it in SQL).
RECENT_ORDER = ("-last_seen_at", "user_id", "id")


def _recent(contacts: QuerySet) -> list[Contact]:
    return list(contacts.order_by(*RECENT_ORDER)[:SAMPLE])


# The contacts of `ids`, read by id, then sorted. OFFSET 0 keeps the planner from walking
# the index on last_seen_at instead: when few match, that walk reads most of the workspace
# to find them.
RECENT_AMONG = (
    'SELECT * FROM (SELECT * FROM "segments_contact" WHERE "workspace_id" = %s '
    'AND "id" = ANY(%s) OFFSET 0) AS chosen ORDER BY "last_seen_at" DESC, "user_id", "id" '
    "LIMIT %s"
)
# The members among the workspace's RECENT_WALK most recently seen contacts are looked
# for first: when SAMPLE of them are there, they are the sample, found without reading
# every member's row (29,000 of them for a rule one contact in 35 meets: 0.15 s at a
# million). The walk reads ids only and is matched here: the same filter in SQL, on the
# ids as an array parameter, took 108 ms at a million (docs/benchmarks.md).
RECENT_WALK = 2_000


def _recent_among(workspace_id: int, ids: list[int]) -> list[Contact]:
    """The SAMPLE most recently seen contacts of `ids`: among the most recently seen
    contacts when enough of them are members, else by reading every one of `ids`."""
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    walked = contacts.order_by(*RECENT_ORDER).values_list("id", flat=True)[:RECENT_WALK]
    members = set(ids)
    first = [pk for pk in walked if pk in members][:SAMPLE]
    if len(first) == min(SAMPLE, len(members)):
        found = contacts.in_bulk(first)
        return [found[pk] for pk in first]
    return list(Contact.objects.raw(RECENT_AMONG, [workspace_id, ids, SAMPLE]))


def _sample_from_ids(
    workspace_id: int, rule, now: datetime, definitions: SegmentDefinitions
) -> list[Contact]:
    compiler = SetCompiler(workspace_id, now, definitions)
    members = compiler.compile(rule)
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if members.sql is None:
        return _recent(contacts) if members.outside else []
    sql, params = compiler.with_lists(members.sql, members.params)
    ids = RawSQL(sql, params)  # noqa: S611 (the set compiler's own SQL and parameters)
    chosen = contacts.exclude(pk__in=ids) if members.outside else contacts.filter(pk__in=ids)
    return _recent(chosen)


def sample(
    workspace_id: int, rule, now: datetime, count: int, total: int, ids: list[int] | None = None
) -> list[Contact]:
    """The most recently seen of the rule's `count` members (see the module's note), or
    of `ids` when the count found them all."""
    if count == 0:
        return []
    if ids is not None:
        return _recent_among(workspace_id, ids)
    definitions = services.segment_definitions(workspace_id)
    if connection.vendor == "postgresql" and count * RARE < total:
        return _sample_from_ids(workspace_id, rule, now, definitions)
    return _recent(services.rule_contacts(workspace_id, rule, now, definitions))


def live(workspace: Workspace, rule, now: datetime, total: int) -> dict:
    """Count and sample of an unsaved rule within the preview's budget: `count` None
    when counting ran out of it, `sample` None when only the sample did."""
    budget = settings.PREVIEW_TIME_BUDGET_MS
    started = time.monotonic()
    counted, found = within_budget(
        lambda: services.rule_count_with_members(workspace.pk, rule, now, MEMBER_IDS), budget
    )
    if not counted:
        return {"count": None, "sample": None, "budget_s": budget / 1000}
    count, ids = found
    left = budget - round((time.monotonic() - started) * 1000)
    sampled, found = within_budget(lambda: sample(workspace.pk, rule, now, count, total, ids), left)
    return {"count": count, "sample": found if sampled else None, "budget_s": budget / 1000}


def estimates_first(total: int) -> bool:
    """Whether a workspace of `total` identified contacts is previewed by an estimate
    first: counting a broad rule over it exactly takes seconds (docs/benchmarks.md)."""
    return connection.vendor == "postgresql" and total >= settings.PREVIEW_ESTIMATE_ABOVE


def estimate(workspace: Workspace, rule, now: datetime, total: int) -> dict:
    """An estimate of how many contacts an unsaved rule matches, from a sample of
    `PREVIEW_SAMPLE_SIZE` (within the preview's budget; `count` None past it)."""
    budget = settings.PREVIEW_TIME_BUDGET_MS
    size = settings.PREVIEW_SAMPLE_SIZE
    done, found = within_budget(
        lambda: estimates.rule_estimate(workspace.pk, rule, now, total, size), budget
    )
    if not done:
        return {"count": None, "sample": None, "budget_s": budget / 1000}
    return {"estimate": found, "sample": None, "budget_s": budget / 1000}


def cached(workspace: Workspace, rule, segment_id: int | None, total: int) -> dict | None:
    """Count and sample from the memberships, when `rule` is the saved rule of a current
    segment (the editor opening a saved segment); None otherwise."""
    if segment_id is None:
        return None
    saved = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
    if saved is None or saved.is_manual or saved.rules != rule:
        return None
    as_of = counts.current_segments(workspace).get(segment_id)
    if as_of is None:
        return None
    count = counts.segment_count(segment_id)
    members = SegmentMembership.objects.filter(segment_id=segment_id, left_at__isnull=True)
    if count * RARE < total:
        # Few members: read them, then their contacts (PostgreSQL's plan for the ids).
        chosen = Contact.objects.filter(pk__in=members.values("contact_id"))
    else:
        # Many: walk the workspace's contacts by last_seen_at, each a probe of the index
        # on (contact, segment) of open memberships, as for a live rule.
        chosen = Contact.objects.filter(workspace=workspace, pk__in=members.values("contact_id"))
    return {"count": count, "sample": _recent(chosen), "as_of": as_of}

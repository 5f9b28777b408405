"""Segment membership over time: when each contact entered and left each segment.

Two paths keep `SegmentMembership` current, and both record only differences:

- A change to one contact's data (identify, track, a display, dismissal or answer)
  evaluates in memory the segments that kind of change can affect, inside the
  change's transaction (`contact_changed`). A manual add or removal compares, in SQL,
  the manual segment and the segments that name it, for the contacts concerned.
- The sweep (`sweep`, run by `manage.py sweep_segments`) compares in SQL the segments
  whose rules change with time alone (`more_than_days_ago`, `less_than_days_ago`,
  `within_days`), those edited since the last sweep, and the segments naming them.

Entries are inserted with ON CONFLICT DO NOTHING against the one open membership a
contact may have in a segment, and exits close only what is still open, so two
racing evaluations record a change once. Each change recorded is announced after
commit through `segments.signals`.
"""

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from refiner.models import Workspace
from segments.member_sets import record_member_sets
from segments.memory import ContactSnapshot, Evaluator, SegmentDefinition
from segments.models import (
    Contact,
    MembershipSweep,
    Segment,
    SegmentMembership,
)
from segments.rules import DAYS_OPERATORS, SegmentDefinitions, referenced_segments
from segments.signals import contact_entered_segment, contact_left_segment, workspace_swept
from segments.snapshot import EventReads, load_snapshot
from segments.sql import rule_members

TABLE = SegmentMembership._meta.db_table


# Which segments a change can affect ---------------------------------------------


def _conditions(rule) -> Iterator[Mapping]:
    """Every condition of a rule, groups included, depth first."""
    if isinstance(rule, Mapping):
        yield rule
        for condition in rule.get("conditions") or []:
            yield from _conditions(condition)


def _moves_with_time(condition: Mapping) -> bool:
    if condition.get("operator") in DAYS_OPERATORS:
        return True
    return condition.get("type") in ("event", "survey") and condition.get("within_days") is not None


def changes_with_time(rule) -> bool:
    """Can the rule's truth change while the contact's data stays the same?"""
    return any(_moves_with_time(condition) for condition in _conditions(rule))


@dataclass(frozen=True)
class Watch:
    """A workspace's segments, and which of them each kind of change can affect.

    Built once per definitions version: a track of an event no segment names then
    costs a dictionary lookup, and no query.
    """

    definitions: SegmentDefinitions
    event_names: frozenset[str]
    by_event: Mapping[str, frozenset[int]]
    # The segments reading each attribute key ("plan", "account.tier", …).
    by_attribute: Mapping[str, frozenset[int]]
    by_survey: frozenset[int]
    with_time: frozenset[int]
    # Each segment with the segments naming it, directly or through others.
    reach: Mapping[int, frozenset[int]]

    @property
    def by_last_seen(self) -> frozenset[int]:
        """The segments reading the contact's `last_seen_at`, which a track moves."""
        return self.by_attribute.get("last_seen_at", frozenset())

    @property
    def everything(self) -> frozenset[int]:
        return frozenset(self.definitions)

    def reached_from(self, segment_ids: Iterable[int]) -> frozenset[int]:
        return frozenset(pk for start in segment_ids for pk in self.reach.get(start, {start}))


def _reach(definitions: SegmentDefinitions) -> dict[int, frozenset[int]]:
    named_by: dict[int, set[int]] = {}
    for pk, definition in definitions.items():
        if definition.kind == Segment.RULES:
            for named in referenced_segments(definition.rules):
                named_by.setdefault(named, set()).add(pk)
    reach = {}
    for start in definitions:
        seen, stack = {start}, [start]
        while stack:
            for naming in named_by.get(stack.pop(), ()):
                if naming not in seen:
                    seen.add(naming)
                    stack.append(naming)
        reach[start] = frozenset(seen)
    return reach


def build_watch(definitions: SegmentDefinitions) -> Watch:
    rules = {pk: d.rules for pk, d in definitions.items() if d.kind == Segment.RULES}
    reach = _reach(definitions)
    by_event: dict[str, set[int]] = {}
    by_attribute: dict[str, set[int]] = {}
    by_survey, with_time = set(), set()
    for pk, rule in rules.items():
        for condition in _conditions(rule):
            kind = condition.get("type")
            if kind == "event" and isinstance(condition.get("event"), str):
                by_event.setdefault(condition["event"], set()).add(pk)
            elif kind in ("survey", "answer"):
                by_survey.add(pk)
            elif kind == "attribute" and isinstance(condition.get("attribute"), str):
                by_attribute.setdefault(condition["attribute"], set()).add(pk)
        if changes_with_time(rule):
            with_time.add(pk)

    def closed(ids: Iterable[int]) -> frozenset[int]:
        return frozenset(pk for start in ids for pk in reach.get(start, {start}))

    return Watch(
        definitions=definitions,
        event_names=frozenset(by_event),
        by_event={name: closed(ids) for name, ids in by_event.items()},
        by_attribute={key: closed(ids) for key, ids in by_attribute.items()},
        by_survey=closed(by_survey),
        with_time=closed(with_time),
        reach=reach,
    )


def load_watch(workspace_id: int) -> Watch:
    rows = Segment.objects.filter(workspace_id=workspace_id).values_list("id", "kind", "rules")
    return build_watch(
        SegmentDefinitions({pk: SegmentDefinition(pk, kind, rules) for pk, kind, rules in rows})
    )


# This process's watches, by workspace: (definitions version, watch). The version
# changes with every change to a segment, and comes with the workspace's row.
_watches: dict[int, tuple[str, Watch]] = {}


def watch_of(workspace: Workspace) -> Watch:
    held = _watches.get(workspace.pk)
    if held is not None and held[0] == workspace.definitions_version:
        return held[1]
    watch = load_watch(workspace.pk)
    _watches[workspace.pk] = (workspace.definitions_version, watch)
    return watch


def watches(contact: Contact, event: str) -> bool:
    """Does a segment of the contact's workspace name this event? (Its workspace should
    be loaded with it: the widget's caller query does.)"""
    return event in watch_of(contact.workspace).by_event


def watches_last_seen(contact: Contact) -> bool:
    """Does a segment of the contact's workspace read `last_seen_at`?"""
    return bool(watch_of(contact.workspace).by_last_seen)


# Recording ----------------------------------------------------------------------


def _announce(signal, contact: Contact, segment_ids: Iterable[int], at: datetime) -> None:
    ids = list(segment_ids)
    if not ids or not signal.has_listeners(Segment):
        return

    def send() -> None:
        batch: dict = {}
        for segment in Segment.objects.filter(pk__in=ids):
            signal.send(Segment, contact=contact, segment=segment, at=at, batch=batch)

    transaction.on_commit(send)


def _enter(contact: Contact, segment_ids: set[int], now: datetime) -> list[int]:
    if not segment_ids:
        return []
    moment = connection.ops.adapt_datetimefield_value(now)
    rows = ", ".join(["(%s, %s, %s, %s)"] * len(segment_ids))
    params = [
        v for pk in sorted(segment_ids) for v in (contact.workspace_id, contact.pk, pk, moment)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (workspace_id, contact_id, segment_id, entered_at) "
            f"VALUES {rows} ON CONFLICT DO NOTHING RETURNING segment_id",
            params,
        )
        return [row[0] for row in cursor.fetchall()]


def _leave(contact: Contact, segment_ids: set[int], now: datetime) -> list[int]:
    if not segment_ids:
        return []
    moment = connection.ops.adapt_datetimefield_value(now)
    marks = ", ".join(["%s"] * len(segment_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET left_at = %s WHERE contact_id = %s AND left_at IS NULL "
            f"AND segment_id IN ({marks}) RETURNING segment_id",
            [moment, contact.pk, *sorted(segment_ids)],
        )
        return [row[0] for row in cursor.fetchall()]


OPEN_SQL = f"SELECT segment_id FROM {TABLE} WHERE contact_id = %s AND left_at IS NULL"


def open_segments(contact_id: int) -> set[int]:
    """The segments the contact is in, as recorded (written out: a hot path)."""
    with connection.cursor() as cursor:
        cursor.execute(OPEN_SQL, [contact_id])
        return {row[0] for row in cursor.fetchall()}


def record_contact(
    contact: Contact,
    now: datetime,
    segment_ids: frozenset[int],
    watch: Watch,
    *,
    new: bool = False,
    held: set[int] | None = None,
) -> None:
    """Evaluate `segment_ids` for the contact in memory; record entries and exits.

    A `new` contact has no events, displays, answers or memberships yet: nothing is
    read. `held`: its open memberships, when the caller has read them already.
    """
    if new:
        account = contact.account.attributes() if contact.account_id else None
        snapshot, held = ContactSnapshot(contact.attributes(), account), set()
    else:
        snapshot = load_snapshot(contact, EventReads.of_names(watch.event_names))
    evaluator = Evaluator(snapshot, now, watch.definitions)
    inside = {pk for pk in segment_ids if evaluator.in_segment(pk)}
    held = (open_segments(contact.pk) if held is None else held) & segment_ids
    _announce(contact_entered_segment, contact, _enter(contact, inside - held, now), now)
    _announce(contact_left_segment, contact, _leave(contact, held - inside, now), now)


def contact_changed(
    contact: Contact,
    now: datetime,
    *,
    events: Iterable[str] = (),
    surveys: bool = False,
    last_seen: bool = False,
    attributes: Iterable[str] = (),
    everything: bool = False,
    new: bool = False,
    workspace: Workspace | None = None,
    held: set[int] | None = None,
) -> None:
    """Record the contact's entries and exits after a change of its data.

    `everything` when any attribute may have changed (every segment may move), `new`
    for a contact just created (its account already linked); `attributes` the keys
    of the contact's attributes that changed ("plan", "account.tier"); `events` the
    names of events just recorded; `surveys` after a display, dismissal or answer;
    `last_seen` when only `last_seen_at` moved (a track's, once a minute). Call it
    inside the change's transaction; pass the `workspace` unless the contact holds it,
    and load its account with it, to save queries.
    """
    if contact.user_id is None:
        return  # an anonymous visitor is in no segment (docs/decisions.md)
    watch = watch_of(workspace or contact.workspace)
    if everything or new:
        segment_ids = watch.everything
    else:
        segment_ids = frozenset().union(*(watch.by_event.get(name, ()) for name in events))
        if surveys:
            segment_ids |= watch.by_survey
        if last_seen:
            segment_ids |= watch.by_last_seen
        for key in attributes:
            segment_ids |= watch.by_attribute.get(key, frozenset())
    if segment_ids:
        record_contact(contact, now, segment_ids, watch, new=new, held=held)


# The contact's row, locked, with its open memberships: one round trip. The first
# column is NULL when last_seen_at is no longer what the caller read. Open memberships
# read with the lock may miss a racing transaction's change: the writes then find it
# (ON CONFLICT DO NOTHING, "still open") and record nothing twice.
LOCKED_SQL = f"""
    SELECT CASE WHEN c.last_seen_at = %s THEN c.id END, m.segment_id
    FROM segments_contact c
    LEFT JOIN {TABLE} m ON m.contact_id = c.id AND m.left_at IS NULL
    WHERE c.id = %s"""


def event_recorded(contact: Contact, event: str, now: datetime) -> None:
    """After a track of a known contact, inside its transaction.

    The contact's row is locked first (FOR NO KEY UPDATE, which the event's foreign
    key does not conflict with), so two tracks of one contact take turns: the second
    evaluates with the first one's event committed, and no threshold is crossed unseen.
    """
    with connection.cursor() as cursor:
        lock = " FOR NO KEY UPDATE OF c" if connection.features.has_select_for_update else ""
        seen = connection.ops.adapt_datetimefield_value(contact.last_seen_at)
        cursor.execute(LOCKED_SQL + lock, [seen, contact.pk])
        rows = cursor.fetchall()
    if not rows:
        return
    held = {segment_id for _, segment_id in rows if segment_id is not None}
    moved = rows[0][0] is None
    if moved:
        # The track moved last_seen_at (or another did): the rules reading it count too.
        contact.last_seen_at = Contact.objects.values_list("last_seen_at", flat=True).get(
            pk=contact.pk
        )
    contact_changed(contact, now, events=[event], last_seen=moved, held=held)


def contact_id_changed(contact_id: int, now: datetime, **changes) -> None:
    """`contact_changed` for a contact known by its id (displays and answers)."""
    contacts = Contact.objects.select_related("workspace", "account")
    contact = contacts.filter(pk=contact_id).first()  # None for an anonymous visitor
    if contact is not None:
        contact_changed(contact, now, **changes)


# Set-based comparison: the sweep and manual lists ----------------------------------


def _members(segment_id: int, workspace_id: int, watch: Watch, now: datetime) -> QuerySet | None:
    """The segment's members now, as a Contact query; None when nobody can be in it."""
    definition = watch.definitions.get(segment_id)
    if definition is None or segment_id in watch.definitions.unusable:
        return None
    if definition.kind == Segment.MANUAL:
        return Contact.objects.filter(
            workspace_id=workspace_id, segment_memberships__segment_id=segment_id
        )
    return rule_members(workspace_id, definition.rules, now, watch.definitions)


def _sql_of(contacts: QuerySet) -> tuple[str, list] | None:
    try:
        # Named explicitly: the outer query reads the column as m.member_id.
        member_ids = contacts.order_by().annotate(member_id=F("pk")).values("member_id")
        sql, params = member_ids.query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, list(params)


def reconcile(
    segment_id: int,
    workspace_id: int,
    watch: Watch,
    now: datetime,
    *,
    among: QuerySet | None = None,
    announce: bool = True,
) -> tuple[int, int]:
    """Open and close memberships of one segment to match its members now, in SQL.

    `among` (a Contact query) limits the comparison to those contacts. Returns how
    many entered and how many left.
    """
    members = _members(segment_id, workspace_id, watch, now)
    if members is not None and among is not None:
        members = members.filter(pk__in=among.values("pk"))
    found = _sql_of(members) if members is not None else None
    moment = connection.ops.adapt_datetimefield_value(now)
    scope, scope_params = "", []
    if among is not None:
        among_sql = _sql_of(among)
        if among_sql is None:
            return 0, 0
        scope, scope_params = f" AND contact_id IN ({among_sql[0]})", among_sql[1]
    entered: list[int] = []
    with connection.cursor() as cursor:
        if found is not None:
            cursor.execute(*_entering(found, workspace_id, segment_id, moment))
            entered = [row[0] for row in cursor.fetchall()]
        staying, staying_params = "", []
        if found is not None:
            staying = (
                f" AND NOT EXISTS (SELECT 1 FROM ({found[0]}) m"
                f" WHERE m.member_id = {TABLE}.contact_id)"
            )
            staying_params = found[1]
        cursor.execute(
            f"UPDATE {TABLE} SET left_at = %s WHERE segment_id = %s AND left_at IS NULL"
            f"{scope}{staying} RETURNING contact_id",
            [moment, segment_id, *scope_params, *staying_params],
        )
        left = [row[0] for row in cursor.fetchall()]
    if announce:
        _announce_many(contact_entered_segment, segment_id, entered, now)
        _announce_many(contact_left_segment, segment_id, left, now)
    return len(entered), len(left)


# Members with no open membership of the segment, found before any is written. On
# PostgreSQL the aggregate is the barrier: it reads every member before the INSERT
# gets its first row. Without it the INSERT ran as the members were found, and when
# the memberships table was empty or small at planning time (a new install's first
# sweep, a new segment's), the planner probed it with a scan per member, and each
# scan met the rows the statement had written so far: 500,000 entries of one segment
# at 1M contacts did not finish in 20 minutes (docs/benchmarks.md).
_NOT_OPEN = (
    f"NOT EXISTS (SELECT 1 FROM {TABLE} o WHERE o.segment_id = %s "
    "AND o.contact_id = m.member_id AND o.left_at IS NULL)"
)
ENTERING_SQL = (
    "WITH entering AS (SELECT coalesce(array_agg(m.member_id), '{{}}') AS ids "
    "FROM ({members}) m WHERE " + _NOT_OPEN + ") "
    f"INSERT INTO {TABLE} (workspace_id, contact_id, segment_id, entered_at) "
    "SELECT %s, id, %s, %s FROM entering, unnest(entering.ids) AS id "
    "ON CONFLICT DO NOTHING RETURNING contact_id"
)
# SQLite (small workspaces): the same in one INSERT; the WHERE keeps it from reading ON
# CONFLICT as a join's ON.
ENTERING_SQL_AT_ONCE = (
    f"INSERT INTO {TABLE} (workspace_id, contact_id, segment_id, entered_at) "
    "SELECT %s, m.member_id, %s, %s FROM ({members}) m WHERE " + _NOT_OPEN + " "
    "ON CONFLICT DO NOTHING RETURNING contact_id"
)


def _entering(
    found: tuple[str, list], workspace_id: int, segment_id: int, moment
) -> tuple[str, list]:
    """The statement opening a membership for each member with none open, and its
    parameters (`found`: the members' SQL and parameters)."""
    members, params = found
    if connection.vendor == "postgresql":
        sql = ENTERING_SQL.format(members=members)
        return sql, [*params, segment_id, workspace_id, segment_id, moment]
    sql = ENTERING_SQL_AT_ONCE.format(members=members)
    return sql, [workspace_id, segment_id, moment, *params, segment_id]


ANNOUNCE_BATCH = 5_000


def _announce_many(signal, segment_id: int, contact_ids: list[int], at: datetime) -> None:
    if not contact_ids or not signal.has_listeners(Segment):
        return

    def send() -> None:
        segment = Segment.objects.filter(pk=segment_id).first()
        if segment is None:
            return
        # A sweep may move hundreds of thousands of contacts: their ids are read a batch
        # at a time, within any database's limit on a statement's parameters.
        batch: dict = {}
        for start in range(0, len(contact_ids), ANNOUNCE_BATCH):
            ids = contact_ids[start : start + ANNOUNCE_BATCH]
            for contact in Contact.objects.filter(pk__in=ids).iterator():
                signal.send(Segment, contact=contact, segment=segment, at=at, batch=batch)

    transaction.on_commit(send)


def manual_list_changed(segment: Segment, user_ids: Iterable[str], now: datetime | None) -> None:
    """After contacts were added to or removed from a manual segment: record the changes
    of that segment and of those naming it, for those contacts."""
    now = now or timezone.now()
    watch = load_watch(segment.workspace_id)
    among = Contact.objects.filter(workspace_id=segment.workspace_id, user_id__in=list(user_ids))
    for segment_id in sorted(watch.reached_from([segment.pk])):
        reconcile(segment_id, segment.workspace_id, watch, now, among=among)


# The sweep ------------------------------------------------------------------------


def segments_due(watch: Watch, since: datetime | None, changed: Iterable[int]) -> frozenset[int]:
    """What a sweep must compare: segments that change with time, those edited since the
    last sweep and those that cannot be evaluated (their members must leave), with the
    segments naming any of them. Everything on the first sweep."""
    if since is None:
        return watch.everything
    starts = set(watch.with_time) | set(changed) | set(watch.definitions.unusable)
    return watch.reached_from(starts) & watch.everything


def _wait_for_saves(workspace_id: int) -> None:
    """Wait for a save of the workspace's segments in progress (each holds the
    workspace's row until it commits: `services.lock_segments`). Its edit is then read
    with the definitions, and any later one is dated after the sweep's `now`; without
    the wait an edit dated before `now` but committed after the definitions were read
    would be missed by this sweep and, dated before its start, by the next."""
    list(Workspace.objects.select_for_update(no_key=True).filter(pk=workspace_id).values_list("pk"))


def sweep_workspace(workspace_id: int, now: datetime, *, everything=False) -> MembershipSweep:
    """Compare the workspace's due segments with their members at `now`.

    The workspace's first sweep opens the memberships of everyone already in a
    segment, at `now`, without announcing them: they did not just enter.
    """
    runs = MembershipSweep.objects.filter(workspace_id=workspace_id, finished_at__isnull=False)
    last = runs.first()
    since = None if last is None or everything else last.started_at
    identified = Contact.objects.filter(workspace_id=workspace_id).count()
    run = MembershipSweep.objects.create(
        workspace_id=workspace_id, started_at=now, contacts=identified
    )
    with transaction.atomic():
        _wait_for_saves(workspace_id)
        watch = load_watch(workspace_id)
        changed = []
        if since is not None:
            edited = Segment.objects.filter(workspace_id=workspace_id, updated_at__gte=since)
            changed = list(edited.values_list("pk", flat=True))
    for segment_id in sorted(segments_due(watch, since, changed)):
        # One transaction per segment: a long sweep holds no lock for long.
        with transaction.atomic():
            entries, exits = reconcile(
                segment_id, workspace_id, watch, now, announce=last is not None
            )
        run.segments += 1
        run.entries += entries
        run.exits += exits
    segments = Segment.objects.filter(workspace_id=workspace_id)
    _confirm(segments, now)
    # After every comparison committed: the counts below read the sets.
    record_member_sets(segments.values_list("pk", flat=True))
    # Before `finished_at`: what listeners count (the Targeting tab's audience figures,
    # targeting.audiences) is part of the sweep's time.
    workspace_swept.send(MembershipSweep, workspace_id=workspace_id, at=now)
    run.finished_at = timezone.now()
    run.save()
    return run


def _confirm(segments: QuerySet, now: datetime) -> None:
    """Stamp the segments whose open memberships are their members as of `now`.

    After a sweep, every segment unchanged since `now` is: the due ones were just
    compared, and the others were compared after their last change by an earlier sweep
    and kept current since by the writes. A segment changed after `now` keeps its older
    stamp (`segments.counts.current_segments` then finds it stale).
    """
    unchanged = segments.filter(updated_at__lte=now)
    unchanged.filter(Q(members_as_of__isnull=True) | Q(members_as_of__lt=now)).update(
        members_as_of=now
    )


def sweep_segment(segment_id: int, now: datetime) -> int:
    """Compare a segment just saved, and the segments naming it, with their members at
    `now`, and stamp them (the re-sweep a save queues). Returns how many were compared.

    Entries and exits are announced as the sweep announces them: not before the
    workspace's first sweep, which opens everyone's memberships unannounced.
    """
    workspace_id = (
        Segment.objects.filter(pk=segment_id).values_list("workspace_id", flat=True).first()
    )
    if workspace_id is None:
        return 0  # deleted since
    with transaction.atomic():
        _wait_for_saves(workspace_id)
        watch = load_watch(workspace_id)
    swept = MembershipSweep.objects.filter(workspace_id=workspace_id, finished_at__isnull=False)
    announce = swept.exists()
    compared = sorted(watch.reached_from([segment_id]) & watch.everything)
    for pk in compared:
        with transaction.atomic():
            reconcile(pk, workspace_id, watch, now, announce=announce)
    _confirm(Segment.objects.filter(pk__in=compared), now)
    record_member_sets(compared)
    return len(compared)


def sweep(now: datetime, *, everything: bool = False) -> list[MembershipSweep]:
    """Sweep every workspace that has segments (see `sweep_workspace`)."""
    workspaces = Segment.objects.order_by().values_list("workspace_id", flat=True).distinct()
    return [
        sweep_workspace(workspace_id, now, everything=everything)
        for workspace_id in sorted(set(workspaces))
    ]


# Reading --------------------------------------------------------------------------


def mark_since(contact: Contact, segments: Iterable[Segment]) -> None:
    """Give each segment the contact is in a `member_since`: when its open stretch began."""
    since = dict(
        SegmentMembership.objects.filter(contact=contact, left_at__isnull=True).values_list(
            "segment_id", "entered_at"
        )
    )
    for segment in segments:
        segment.member_since = since.get(segment.pk)

"""The event table partitioned by month on PostgreSQL (segments/partitions.py).

SQLite keeps one plain table: these tests skip there; the retention and cascade
behaviour both databases share is in tests/test_event_retention.py.
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from segments import retention
from segments.ingest import track_event
from segments.models import Event
from segments.partitions import (
    DEFAULT_PARTITION,
    EVENT_TABLE,
    MONTHS_AHEAD,
    add_month,
    add_months,
    ensure_months,
    is_partitioned,
    month_start,
    partition_name,
    partitions,
)
from segments.retention import drop_old_events
from segments.services import rule_contacts
from segments.snapshot import EventReads, load_snapshot, snapshot_query
from tests.factories import ContactFactory, EventFactory
from tests.rules import event, group

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="PostgreSQL only: on SQLite the event table is one plain table, not partitioned",
    ),
]
BEFORE_PARTITIONS = "0005_anonymous_visitors"


def rows_by_partition() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text, count(*) FROM {EVENT_TABLE} GROUP BY 1")
        return dict(cursor.fetchall())


def second_connection_url() -> str:
    """A second, independent connection to the test database."""
    settings = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
        dbname=settings["NAME"], password=settings["PASSWORD"] or None,
    )  # fmt: skip


def partition_names() -> list[str]:
    return [p.name for p in partitions(connection)]


def event_rows() -> set[tuple]:
    return set(Event.objects.values_list("id", "workspace_id", "contact_id", "name", "occurred_at"))


def middle_of(month: datetime) -> datetime:
    return month + timedelta(days=14, hours=7)


@pytest.mark.django_db
def test_the_event_table_is_partitioned_by_month_with_a_default():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.partstrat, a.attname FROM pg_partitioned_table p
            JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
            WHERE p.partrelid = %s::regclass
            """,
            [EVENT_TABLE],
        )
        assert cursor.fetchall() == [("r", "occurred_at")]
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass",
            [EVENT_TABLE],
        )
        children = {row[0] for row in cursor.fetchall()}
    this_month = month_start(timezone.now())
    coming = {partition_name(add_months(this_month, n)) for n in range(MONTHS_AHEAD + 1)}
    assert coming | {DEFAULT_PARTITION} <= children
    assert is_partitioned(connection)


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_row_both_ways():
    call_command("migrate", "segments", BEFORE_PARTITIONS, verbosity=0)
    try:
        assert not is_partitioned(connection)
        contact = ContactFactory()
        moments = [datetime(2023, 2, 3, tzinfo=UTC), datetime(2025, 12, 31, 23, 59, tzinfo=UTC)]
        moments += [timezone.now(), datetime(2100, 1, 1, tzinfo=UTC)]
        for moment in moments:
            EventFactory(contact=contact, occurred_at=moment, name=f"at {moment:%Y}")
        before = event_rows()
        last_id = max(row[0] for row in before)

        call_command("migrate", "segments", verbosity=0)

        assert is_partitioned(connection)
        assert event_rows() == before
        placed = rows_by_partition()
        assert placed[partition_name(month_start(moments[0]))] == 1
        assert placed[partition_name(month_start(moments[1]))] == 1
        # Further ahead than the partitions made ahead: DEFAULT, not a partition for 2100.
        assert placed[DEFAULT_PARTITION] == 1
        assert partition_name(month_start(moments[3])) not in partition_names()
        # The id sequence carried on where it was: no id is handed out twice.
        assert EventFactory(contact=contact).pk == last_id + 1
        after = event_rows()

        call_command("migrate", "segments", BEFORE_PARTITIONS, verbosity=0)

        assert not is_partitioned(connection)
        assert event_rows() == after
        assert EventFactory(contact=contact).pk == last_id + 2
    finally:
        call_command("migrate", verbosity=0)
    assert is_partitioned(connection)


@pytest.mark.django_db(transaction=True)
def test_foreign_keys_hold_on_the_partitioned_table():
    contact = ContactFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(workspace=contact.workspace, contact_id=contact.pk + 999, name="x")
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_an_event_of_a_month_without_a_partition_is_kept_in_default(workspace):
    far = datetime(2031, 5, 6, 7, 8, tzinfo=UTC)
    assert partition_name(month_start(far)) not in partition_names()

    track_event(workspace=workspace, user_id="ada", event="signed_up", now=timezone.now(),
                occurred_at=far)  # fmt: skip

    assert rows_by_partition() == {DEFAULT_PARTITION: 1}
    assert Event.objects.get().occurred_at == far


@pytest.mark.django_db
def test_a_new_month_takes_its_events_out_of_default(workspace):
    contact = ContactFactory(workspace=workspace)
    may, june = datetime(2031, 5, 1, tzinfo=UTC), datetime(2031, 6, 1, tzinfo=UTC)
    EventFactory(contact=contact, occurred_at=may)
    EventFactory(contact=contact, occurred_at=june - timedelta(microseconds=1))
    EventFactory(contact=contact, occurred_at=june)
    before = event_rows()

    assert add_month(connection, may) is True
    assert add_month(connection, may) is False

    assert event_rows() == before
    assert rows_by_partition() == {partition_name(may): 2, DEFAULT_PARTITION: 1}
    # Attached, the new partition has the table's indexes.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s",
                       [partition_name(may)])  # fmt: skip
        assert cursor.fetchone()[0] == 3
    EventFactory(contact=contact, occurred_at=may + timedelta(days=3))
    assert rows_by_partition()[partition_name(may)] == 3


@pytest.mark.django_db
def test_the_command_creates_the_coming_months_and_those_asked_for():
    this_month = month_start(timezone.now())
    earlier = add_months(this_month, -4)
    out = StringIO()

    call_command("event_partitions", "--since", f"{earlier:%Y-%m}", "--list", stdout=out)

    names = partition_names()
    for n in range(-4, MONTHS_AHEAD + 1):
        assert partition_name(add_months(this_month, n)) in names
    assert f"Created partition {partition_name(earlier)}." in out.getvalue()
    again = StringIO()
    call_command("event_partitions", stdout=again)
    assert "0 partitions created." in again.getvalue()


@pytest.fixture
def six_months(workspace):
    """Partitions and one event in each of the last six months and this one, and two old
    events in DEFAULT (a month that never had a partition)."""
    now = timezone.now()
    this_month = month_start(now)
    ensure_months(connection, add_months(this_month, -6), this_month)
    contact = ContactFactory(workspace=workspace)
    for n in range(-6, 0):
        EventFactory(contact=contact, occurred_at=middle_of(add_months(this_month, n)))
    EventFactory(contact=contact, occurred_at=max(this_month, now - timedelta(minutes=5)))
    EventFactory(contact=contact, occurred_at=datetime(2001, 1, 1, tzinfo=UTC))
    EventFactory(contact=contact, occurred_at=datetime(2001, 2, 1, tzinfo=UTC))
    # The test's transaction holds the deferred foreign-key checks of these inserts, and a
    # table with pending checks cannot be dropped; the command runs in its own transaction.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return now, this_month


@pytest.mark.django_db
def test_dropping_old_events_drops_only_the_old_months(six_months):
    now, this_month = six_months
    start = add_months(this_month, -2)
    before = event_rows()

    dry = drop_old_events(now=now, months=2, dry_run=True)

    assert event_rows() == before
    old = [partition_name(add_months(this_month, n)) for n in range(-6, -2)]
    assert dry.partitions == old and dry.partition_rows == 4 and dry.rows == 2

    done = drop_old_events(now=now, months=2)

    assert done.partitions == old and done.partition_rows == 4 and done.rows == 2
    names = partition_names()
    assert not set(old) & set(names)
    for n in range(-2, 1):
        assert partition_name(add_months(this_month, n)) in names
    assert event_rows() == {row for row in before if row[4] >= start}
    assert len(event_rows()) == 3
    assert DEFAULT_PARTITION in names


@pytest.mark.django_db
def test_the_drop_command_prints_what_it_drops(six_months, settings):
    settings.EVENT_RETENTION_MONTHS = 3
    out = StringIO()
    call_command("drop_old_events", "--dry-run", stdout=out)
    assert "Would drop 5 events" in out.getvalue()
    assert Event.objects.count() == 9
    call_command("drop_old_events", stdout=out)
    assert "Dropped 5 events" in out.getvalue()
    assert Event.objects.count() == 4


def plan_partitions(queryset) -> set[str]:
    plan = queryset.explain()
    return {name for name in partition_names() if name in plan.split()}


@pytest.mark.django_db
def test_a_recent_window_reads_only_the_recent_partitions(six_months, workspace):
    now, this_month = six_months
    recent = group(event("report_exported", "at_least", 1, within_days=20))
    long_ago = group(event("report_exported", "at_least", 1, within_days=10**5))
    all_time = group(event("report_exported", "at_least", 1))

    read = plan_partitions(rule_contacts(workspace.pk, recent, now))

    # 20 days back reaches at most into last month.
    assert partition_name(this_month) in read
    assert read <= {partition_name(this_month), partition_name(add_months(this_month, -1))}
    # A window past every month reads every partition: the check above can tell them apart.
    everything = plan_partitions(rule_contacts(workspace.pk, long_ago, now))
    assert partition_name(add_months(this_month, -6)) in everything
    assert DEFAULT_PARTITION in everything
    # A count over all time reads the contact's event totals instead (segments.totals).
    assert plan_partitions(rule_contacts(workspace.pk, all_time, now)) == set()
    assert rule_contacts(workspace.pk, all_time, now).count() == 1
    assert rule_contacts(workspace.pk, recent, now).count() == 1


def snapshot_partitions(contact, reads: EventReads, now) -> set[str]:
    """The partitions PostgreSQL reads for the contact's snapshot, the statement run
    with its parameters as the widget runs it (partitions left out at run time are
    listed as "Subplans Removed", not by name)."""
    sql, params = snapshot_query(contact.pk, reads, now)
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
        plan = " ".join(row[0] for row in cursor.fetchall())
    return {name for name in partition_names() if name in plan.split()}


@pytest.mark.django_db
def test_the_widgets_snapshot_reads_only_the_partitions_its_windows_reach(six_months, workspace):
    now, this_month = six_months
    contact = Event.objects.filter(workspace=workspace).first().contact
    recent = EventReads.for_rules([group(event("report_exported", "at_least", 1, within_days=20))])
    all_time = EventReads.for_rules([group(event("report_exported", "at_least", 1))])
    every_event = EventReads.of_names(["report_exported"])

    read = snapshot_partitions(contact, recent, now)

    # 20 days back reaches at most into last month; events ahead of now (the coming
    # months, DEFAULT) may still enter the window, so those are read too.
    assert partition_name(this_month) in read
    assert not read & {partition_name(add_months(this_month, n)) for n in range(-6, -1)}
    # A count over all time reads the contact's total (segments.totals), no partition.
    assert snapshot_partitions(contact, all_time, now) == set()
    assert load_snapshot(contact, all_time, now).event_totals == {"report_exported": 9}
    # The contact page's snapshot, of every event, reads them all: the check can tell.
    assert partition_name(add_months(this_month, -6)) in snapshot_partitions(
        contact, every_event, now
    )


@pytest.mark.django_db(transaction=True)
def test_events_tracked_while_their_month_is_added_are_all_kept(workspace):
    month = datetime(2032, 3, 1, tzinfo=UTC)
    now = timezone.now()
    stop = threading.Event()
    tracked = []

    def track_all_the_time() -> None:
        try:
            while not stop.is_set() or len(tracked) < 50:
                moment = month + timedelta(hours=len(tracked))
                track_event(workspace=workspace, user_id="ada", event="e", now=now,
                            occurred_at=moment)  # fmt: skip
                tracked.append(moment)
        finally:
            connection.close()

    writer = threading.Thread(target=track_all_the_time)
    writer.start()
    while len(tracked) < 10:
        time.sleep(0.01)
    added = add_month(connection, month)
    stop.set()
    writer.join(timeout=60)

    assert added and not writer.is_alive()
    assert sorted(Event.objects.values_list("occurred_at", flat=True)) == sorted(tracked)
    assert rows_by_partition() == {partition_name(month): len(tracked)}


@pytest.mark.django_db(transaction=True)
def test_adding_a_month_gives_up_when_a_long_read_holds_the_table(workspace):
    month = datetime(2032, 4, 1, tzinfo=UTC)
    reader = psycopg.connect(second_connection_url())
    try:
        reader.execute(f"SELECT count(*) FROM {EVENT_TABLE}")  # holds its locks until rollback
        started = time.monotonic()
        with pytest.raises(OperationalError):
            add_month(connection, month)
        assert time.monotonic() - started < 10
    finally:
        reader.rollback()
        reader.close()
    assert partition_name(month) not in partition_names()
    assert add_month(connection, month)


@pytest.mark.django_db(transaction=True)
def test_dropping_a_month_waits_only_briefly_for_a_long_read(six_months, monkeypatch):
    now, this_month = six_months
    monkeypatch.setattr(retention, "DROP_ATTEMPTS", 2)
    monkeypatch.setattr(retention.time, "sleep", lambda seconds: None)
    reader = psycopg.connect(second_connection_url())
    try:
        reader.execute(f"SELECT count(*) FROM {EVENT_TABLE}")  # holds its locks until rollback
        started = time.monotonic()
        with pytest.raises(OperationalError):
            drop_old_events(now=now, months=2)
        assert time.monotonic() - started < 10
    finally:
        reader.rollback()
        reader.close()
    assert partition_name(add_months(this_month, -6)) in partition_names()
    # Transactional tests keep the partitions earlier ones made: expect those too.
    start = add_months(this_month, -2)
    old = [p.name for p in partitions(connection) if not p.is_default and p.end <= start]
    assert {partition_name(add_months(this_month, n)) for n in range(-6, -2)} <= set(old)
    assert drop_old_events(now=now, months=2).partitions == old

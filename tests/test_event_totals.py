"""Event totals (segments.totals): every way events are written keeps them true.

Each test writes events one way and compares the totals table with the events
counted again, and on PostgreSQL each total's moments with the latest events read
again. The triggers exist on both databases; the moments, dropping partitions and
moving rows out of DEFAULT are PostgreSQL's.
"""

import importlib
import io
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refiner.models import Workspace
from segments import retention, totals
from segments.ingest import track_event
from segments.models import Contact, Event, EventTotal
from segments.partitions import DEFAULT_PARTITION, add_month, add_months, ensure_months, month_start
from segments.retention import drop_old_events
from segments.totals import MOMENTS, TOTALS_TABLE, add_totals
from targeting.anonymous import merge_visitor
from tests.agreement import rolled_back
from tests.factories import ContactFactory, EventFactory, WorkspaceFactory
from workspace_backups.backups import backup, restore

postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the event table is partitioned on PostgreSQL only"
)


def kept() -> dict[tuple[int, str], int]:
    return {(t.contact_id, t.name): t.count for t in EventTotal.objects.all()}


def recounted() -> dict[tuple[int, str], int]:
    return dict(Counter(Event.objects.values_list("contact_id", "name")))


def kept_moments() -> dict[tuple[int, str], list[datetime]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT contact_id, name, moments FROM {TOTALS_TABLE}")  # noqa: S608
        return {(contact, name): moments for contact, name, moments in cursor.fetchall()}


def latest_moments() -> dict[tuple[int, str], list[datetime]]:
    """The latest MOMENTS moments of every contact's events of every name, oldest first."""
    moments: dict[tuple[int, str], list[datetime]] = {}
    for contact, name, moment in Event.objects.values_list("contact_id", "name", "occurred_at"):
        moments.setdefault((contact, name), []).append(moment)
    return {pair: sorted(found)[-MOMENTS:] for pair, found in moments.items()}


def assert_true_totals() -> None:
    assert kept() == recounted()
    # A total of 0 is no row at all.
    assert not EventTotal.objects.filter(count__lte=0).exists()
    if connection.vendor == "postgresql":
        assert kept_moments() == latest_moments()


@pytest.mark.django_db
def test_totals_count_events_of_the_orm_and_the_ingest(workspace):
    ada, bob = (
        ContactFactory(workspace=workspace, user_id="ada"),
        ContactFactory(workspace=workspace),
    )
    for name in ["login", "login", "export"]:
        EventFactory(contact=ada, name=name)
    Event.objects.bulk_create([Event(workspace=workspace, contact=bob, name="login")] * 2)
    now = timezone.now()
    track_event(workspace=workspace, user_id="ada", event="login", now=now)
    track_event(workspace=workspace, user_id="cy", event="invite", now=now)

    assert_true_totals()
    assert kept()[(ada.pk, "login")] == 3
    assert EventTotal.objects.get(contact__user_id="cy").workspace_id == workspace.pk


@pytest.mark.django_db
def test_deleted_events_leave_the_totals_and_a_zero_total_goes(workspace):
    ada = ContactFactory(workspace=workspace)
    events = [EventFactory(contact=ada, name=name) for name in ["login", "login", "export"]]
    events[0].delete()
    assert kept() == {(ada.pk, "login"): 1, (ada.pk, "export"): 1}
    assert_true_totals()

    Event.objects.filter(name__in=["login", "export"]).delete()

    assert kept() == {}


@pytest.mark.django_db
def test_an_event_renamed_or_moved_to_another_contact_moves_its_count(workspace):
    ada, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    login = EventFactory(contact=ada, name="login")
    EventFactory(contact=ada, name="login")
    Event.objects.filter(pk=login.pk).update(name="export")
    assert kept() == {(ada.pk, "login"): 1, (ada.pk, "export"): 1}

    Event.objects.filter(contact=ada).update(contact=bob)
    # An update that changes nothing counted moves nothing.
    Event.objects.filter(contact=bob).update(occurred_at=timezone.now())

    assert kept() == {(bob.pk, "login"): 1, (bob.pk, "export"): 1}
    assert_true_totals()


@pytest.mark.django_db
def test_a_visitor_merge_gives_its_totals_to_the_contact(workspace):
    ada = ContactFactory(workspace=workspace, user_id="ada")
    visitor = Contact.all_contacts.create(workspace=workspace, anonymous_id="v" * 32)
    EventFactory(contact=ada, name="login")
    for name in ["login", "login", "invite"]:
        EventFactory(contact=visitor, name=name)

    merge_visitor(contact=ada, anonymous_id="v" * 32)

    assert kept() == {(ada.pk, "login"): 3, (ada.pk, "invite"): 1}
    assert_true_totals()


@pytest.mark.django_db
def test_deleting_a_contact_or_a_workspace_deletes_its_totals(workspace, other_workspace):
    ada, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    theirs = ContactFactory(workspace=other_workspace)
    for contact in (ada, bob, theirs):
        EventFactory(contact=contact, name="login")
    ada.delete()
    assert set(kept()) == {(bob.pk, "login"), (theirs.pk, "login")}

    assert_true_totals()
    Workspace.objects.filter(pk=workspace.pk).delete()

    assert kept() == {(theirs.pk, "login"): 1}
    assert_true_totals()


@pytest.mark.django_db
def test_a_restored_backup_has_its_totals(workspace):
    ada = ContactFactory(workspace=workspace)
    for moment in (
        timezone.now(),
        datetime(2019, 5, 1, tzinfo=UTC),
        datetime(2090, 1, 1, tzinfo=UTC),
    ):
        EventFactory(contact=ada, name="login", occurred_at=moment)
    EventFactory(contact=ada, name="export")
    before = kept()
    stream = io.StringIO()
    backup(workspace.pk, stream)
    rows = json.loads(stream.getvalue())
    assert not any(row["model"] == "segments.eventtotal" for row in rows)
    workspace.delete()
    assert kept() == {}

    restore(io.StringIO(json.dumps(rows)))

    assert kept() == before == {(ada.pk, "login"): 3, (ada.pk, "export"): 1}
    assert_true_totals()


@pytest.mark.django_db(transaction=True)
def test_dropping_old_events_takes_them_out_of_the_totals(workspace, monkeypatch):
    monkeypatch.setattr(retention, "DELETE_BATCH", 2)  # a month emptied in several batches
    now = timezone.now()
    this_month = month_start(now)
    if connection.vendor == "postgresql":
        # Old months with their own partition, dropped whole, and one only in DEFAULT.
        ensure_months(connection, add_months(this_month, -4), this_month)
    ada, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    for months_ago in (4, 3, 3, 0):
        EventFactory(contact=ada, name="login", occurred_at=add_months(this_month, -months_ago))
    for months_ago in (4, 3, 6):
        EventFactory(contact=bob, name="login", occurred_at=add_months(this_month, -months_ago))
    EventFactory(contact=bob, name="export", occurred_at=add_months(this_month, -3))

    dropped = drop_old_events(now=now, months=2)

    if connection.vendor == "postgresql":
        assert len(dropped.partitions) == 2 and dropped.rows == 1
    assert kept() == {(ada.pk, "login"): 1}
    assert_true_totals()


@postgresql
@pytest.mark.django_db
def test_a_new_month_taking_its_events_out_of_default_keeps_their_totals(workspace):
    month = datetime(2033, 5, 1, tzinfo=UTC)
    ada = ContactFactory(workspace=workspace)
    for day in (1, 2, 3):
        EventFactory(contact=ada, name="login", occurred_at=month + timedelta(days=day))
    EventFactory(contact=ada, name="login", occurred_at=month + timedelta(days=40))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DEFAULT_PARTITION}")  # noqa: S608
        assert cursor.fetchone()[0] == 4

    assert add_month(connection, month)

    assert kept() == {(ada.pk, "login"): 4}
    assert_true_totals()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_events_of_one_contact_tracked_at_once_are_all_counted(workspace):
    now = timezone.now()
    ContactFactory(workspace=workspace, user_id="ada", last_seen_at=now)
    start = threading.Barrier(4)

    def track() -> None:
        try:
            start.wait()
            for _ in range(25):
                track_event(workspace=workspace, user_id="ada", event="login", now=now)
        finally:
            connection.close()

    threads = [threading.Thread(target=track) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert list(kept().values()) == [100]
    assert_true_totals()


@pytest.mark.django_db(transaction=True)
def test_the_migration_counts_the_events_already_there_and_goes_back():
    call_command("migrate", "segments", "0011_members_as_of", verbosity=0)
    try:
        ada = ContactFactory()
        for name in ["login", "login", "export"]:
            EventFactory(contact=ada, name=name)

        call_command("migrate", "segments", verbosity=0)

        assert kept() == {(ada.pk, "login"): 2, (ada.pk, "export"): 1}
        assert_true_totals()
        EventFactory(contact=ada, name="export")
        assert kept()[(ada.pk, "export")] == 2
        assert_true_totals()
    finally:
        call_command("migrate", verbosity=0)


def totals_index() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'eventtotal_count'")
        return [row[0] for row in cursor.fetchall()]


@postgresql
@pytest.mark.django_db(transaction=True)
def test_the_totals_index_carries_contacts_and_moments_and_goes_back():
    call_command("migrate", "segments", "0019_member_sets", verbosity=0)
    try:
        [plain] = totals_index()
        assert plain.endswith("(workspace_id, name, count)"), plain
    finally:
        call_command("migrate", verbosity=0)
    [covered] = totals_index()
    assert covered.endswith("(workspace_id, name, count) INCLUDE (contact_id, moments)"), covered


# The moments (PostgreSQL) -----------------------------------------------------------

T0 = datetime(2026, 6, 15, 12, tzinfo=UTC)
# A few moments, so that ties are common; some in the future of any `now` a test uses.
MOMENT_POOL = [T0 + timedelta(hours=hours) for hours in (-48, -1, 0, 0, 1, 24 * 400)]


@postgresql
@pytest.mark.django_db
def test_moments_are_the_latest_events_however_they_arrive(workspace):
    ada = ContactFactory(workspace=workspace)
    for hours in range(20):  # in order, then one older than all, then ties and a future one
        EventFactory(contact=ada, name="login", occurred_at=T0 + timedelta(hours=hours))
    EventFactory(contact=ada, name="login", occurred_at=T0 - timedelta(days=1))
    for _ in range(3):
        EventFactory(contact=ada, name="login", occurred_at=T0 + timedelta(hours=10))
    EventFactory(contact=ada, name="login", occurred_at=T0 + timedelta(days=400))
    assert len(kept_moments()[(ada.pk, "login")]) == MOMENTS
    assert_true_totals()

    # Deleting a moment of a full array reads the latest again; an older event, nothing.
    Event.objects.filter(occurred_at=T0 + timedelta(hours=10)).delete()
    assert_true_totals()
    Event.objects.filter(occurred_at=T0 - timedelta(days=1)).delete()
    assert_true_totals()
    Event.objects.filter(occurred_at__gte=T0 + timedelta(hours=5)).delete()
    assert kept_moments()[(ada.pk, "login")] == [T0 + timedelta(hours=h) for h in range(5)]
    Event.objects.filter(occurred_at__gte=T0 + timedelta(hours=3)).update(
        occurred_at=T0 - timedelta(hours=1)
    )
    assert_true_totals()


writes = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.integers(0, 2),
            st.sampled_from(["login", "export"]),
            st.sampled_from(MOMENT_POOL),
            st.sampled_from([1, 1, 2, 9, 17]),
        ),
        st.tuples(st.just("delete one"), st.integers(0, 10**6)),
        st.tuples(st.just("delete before"), st.sampled_from(MOMENT_POOL)),
        st.tuples(st.just("move"), st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.just("rename"), st.sampled_from(MOMENT_POOL)),
        st.tuples(st.just("shift"), st.integers(0, 2), st.sampled_from(MOMENT_POOL)),
        st.tuples(st.just("delete contact"), st.integers(0, 2)),
    ),
    max_size=12,
)


def _write(contacts: list[Contact], write: tuple) -> None:
    kind, *args = write
    events = Event.objects.filter(contact__in=contacts)
    if kind == "add":
        index, name, moment, times = args
        Event.objects.bulk_create(
            Event(workspace=contacts[index].workspace, contact=contacts[index], name=name,
                  occurred_at=moment)
            for _ in range(times)
        )  # fmt: skip
    elif kind == "delete one":
        pks = list(events.order_by("pk").values_list("pk", flat=True))
        if pks:
            Event.objects.filter(pk=pks[args[0] % len(pks)]).delete()
    elif kind == "delete before":
        events.filter(occurred_at__lt=args[0]).delete()
    elif kind == "move":  # a visitor's merge: an UPDATE of contact_id
        events.filter(contact=contacts[args[0]]).update(contact=contacts[args[1]])
    elif kind == "rename":
        events.filter(occurred_at=args[0]).update(name="export")
    elif kind == "shift":
        events.filter(contact=contacts[args[0]]).update(occurred_at=args[1])
    else:
        Contact.all_contacts.filter(pk=contacts[args[0]].pk).delete()
        contacts[args[0]] = ContactFactory(workspace=contacts[0].workspace)


@postgresql
def test_the_trigger_keeps_moments_true_through_random_writes(db):
    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=60)
    @given(steps=writes)
    def check(steps: list[tuple]) -> None:
        with rolled_back():
            workspace = WorkspaceFactory()
            contacts = [ContactFactory(workspace=workspace) for _ in range(3)]
            for step in steps:
                _write(contacts, step)
                assert_true_totals()

    check()


@postgresql
@pytest.mark.django_db(transaction=True)
def test_the_moments_migration_fills_them_and_goes_back():
    call_command("migrate", "segments", "0015_contact_sample", verbosity=0)
    try:
        ada = ContactFactory()
        for hours in range(20):
            EventFactory(contact=ada, name="login", occurred_at=T0 - timedelta(hours=hours))
        EventFactory(contact=ada, name="export", occurred_at=T0)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TOTALS_TABLE}")  # noqa: S608
            assert cursor.fetchone()[0] == 2  # the counts-only trigger counted them

        call_command("migrate", "segments", verbosity=0)

        assert_true_totals()
        EventFactory(contact=ada, name="login", occurred_at=T0 + timedelta(hours=1))
        assert_true_totals()
    finally:
        call_command("migrate", verbosity=0)


@postgresql
@pytest.mark.django_db
def test_totals_added_in_one_pass_have_their_moments(workspace):
    # What the bench seed does after loading events with triggers off.
    ada, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    for hours in range(20):
        EventFactory(contact=ada, name="login", occurred_at=T0 + timedelta(hours=hours % 7))
    EventFactory(contact=bob, name="login", occurred_at=T0)
    EventTotal.objects.all().delete()

    with connection.cursor() as cursor:
        assert add_totals(cursor, workspace_id=workspace.pk) == 2

    assert_true_totals()


# The migrations' own copies ---------------------------------------------------------


def test_the_live_triggers_are_what_the_latest_migrations_created():
    """segments.totals is what the migrations created last; each migration keeps its own
    copy of the SQL it runs, so a change to the triggers needs a migration of its own."""
    moments = importlib.import_module("segments.migrations.0016_event_total_moments")
    counts_only = importlib.import_module("segments.migrations.0012_event_totals")
    assert totals.POSTGRESQL_TRIGGERS == moments.POSTGRESQL_TRIGGERS
    assert totals.POSTGRESQL_DROP == moments.POSTGRESQL_DROP
    assert totals.SQLITE_TRIGGERS == counts_only.SQLITE_TRIGGERS
    assert totals.SQLITE_DROP == counts_only.SQLITE_DROP


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plpgsql: PostgreSQL only")
def test_the_migrated_database_runs_the_live_trigger_function(db):
    body = totals.POSTGRESQL_TRIGGERS[1].split("$$")[1]
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'segments_event_total'")
        assert cursor.fetchone()[0] == body

"""Event totals (segments.totals): every way events are written keeps them true.

Each test writes events one way and compares the totals table with the events
counted again. The triggers exist on both databases; dropping partitions and moving
rows out of DEFAULT are PostgreSQL's.
"""

import io
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from refiner.models import Workspace
from segments import retention
from segments.ingest import track_event
from segments.models import Contact, Event, EventTotal
from segments.partitions import DEFAULT_PARTITION, add_month, add_months, ensure_months, month_start
from segments.retention import drop_old_events
from targeting.anonymous import merge_visitor
from tests.factories import ContactFactory, EventFactory
from workspace_backups.backups import backup, restore

postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the event table is partitioned on PostgreSQL only"
)


def kept() -> dict[tuple[int, str], int]:
    return {(t.contact_id, t.name): t.count for t in EventTotal.objects.all()}


def recounted() -> dict[tuple[int, str], int]:
    return dict(Counter(Event.objects.values_list("contact_id", "name")))


def assert_true_totals() -> None:
    assert kept() == recounted()
    # A total of 0 is no row at all.
    assert not EventTotal.objects.filter(count__lte=0).exists()


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


@pytest.mark.django_db
def test_deleting_a_contact_or_a_workspace_deletes_its_totals(workspace, other_workspace):
    ada, bob = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    theirs = ContactFactory(workspace=other_workspace)
    for contact in (ada, bob, theirs):
        EventFactory(contact=contact, name="login")
    ada.delete()
    assert set(kept()) == {(bob.pk, "login"), (theirs.pk, "login")}

    Workspace.objects.filter(pk=workspace.pk).delete()

    assert kept() == {(theirs.pk, "login"): 1}


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
        EventFactory(contact=ada, name="export")
        assert kept()[(ada.pk, "export")] == 2
    finally:
        call_command("migrate", verbosity=0)

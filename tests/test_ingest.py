"""Identify and track keep a contact's parsed values equal to its attributes, cheaply.

A known contact's track is one INSERT unless `last_seen_at` is LAST_SEEN_STEP
behind; a new contact's values are written without first reading any.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from segments.ingest import (
    LAST_SEEN_STEP,
    clean_user,
    identify_contact,
    identify_known,
    record_event,
    sync_contact_values,
    track_event,
)
from segments.models import Contact, ContactValue, Event
from segments.values import parse_value
from tests.conftest import NOW
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def values_of(contact: Contact) -> dict:
    rows = ContactValue.objects.filter(contact=contact)
    return {row.key: (row.pk, row.text, row.num, row.date, row.boolean) for row in rows}


def assert_values_match_attributes(contact: Contact) -> None:
    contact.refresh_from_db()
    expected = {key: parse_value(raw) for key, raw in contact.attributes().items()}
    stored = ContactValue.objects.filter(contact=contact)
    assert {row.key: (row.text, row.num, row.date, row.boolean) for row in stored} == {
        key: (p.text, p.num, p.date, p.boolean) for key, p in expected.items()
    }


def statements(queries: CaptureQueriesContext) -> list[str]:
    """The statements captured, without the transactions' and savepoints' own."""
    control = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK")
    return [query["sql"] for query in queries if not query["sql"].startswith(control)]


def test_a_known_contact_tracked_often_moves_last_seen_once_a_step(workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=NOW)
    soon = NOW + LAST_SEEN_STEP - timedelta(seconds=1)
    # Which events segments name is read once per definitions version in a process.
    track_event(workspace=workspace, user_id="u-1", event="warm-up", now=NOW)
    with CaptureQueriesContext(connection) as queries:
        track_event(workspace=workspace, user_id="u-1", event="opened", now=soon)
    assert len(queries) == 2  # the lookup and the INSERT
    contact.refresh_from_db()
    assert contact.last_seen_at == NOW
    later = NOW + LAST_SEEN_STEP
    with CaptureQueriesContext(connection) as queries:
        track_event(workspace=workspace, user_id="u-1", event="opened", now=later)
    if connection.vendor == "postgresql":
        # The lookup, last_seen_at with its value in one statement, the INSERT.
        assert len(statements(queries)) == 3
    contact.refresh_from_db()
    assert contact.last_seen_at == later
    assert_values_match_attributes(contact)
    assert Event.objects.filter(contact=contact, name="opened").count() == 2


def test_last_seen_never_moves_back(workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=NOW)
    track_event(workspace=workspace, user_id="u-1", event="late", now=NOW - timedelta(days=1))
    contact.refresh_from_db()
    assert contact.last_seen_at == NOW
    assert Event.objects.get(contact=contact).occurred_at == NOW - timedelta(days=1)


def test_a_track_read_before_a_later_one_moved_last_seen_keeps_the_later(workspace):
    """Two tracks racing: the one that read the contact first writes last."""
    stale = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=NOW)
    moved_meanwhile = NOW + 2 * LAST_SEEN_STEP
    Contact.objects.filter(pk=stale.pk).update(last_seen_at=moved_meanwhile)
    sync_contact_values(Contact.objects.get(pk=stale.pk))
    record_event(contact=stale, event="opened", now=NOW + LAST_SEEN_STEP)
    stale.refresh_from_db()
    assert stale.last_seen_at == moved_meanwhile
    assert_values_match_attributes(stale)


def test_a_missing_last_seen_value_is_written_when_it_moves(workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=NOW)
    ContactValue.objects.filter(contact=contact, key="last_seen_at").delete()
    track_event(workspace=workspace, user_id="u-1", event="opened", now=NOW + timedelta(hours=1))
    assert_values_match_attributes(contact)


def test_an_unknown_user_tracked_becomes_a_contact_with_its_values(workspace):
    track_event(workspace=workspace, user_id="new", event="opened", now=NOW)
    contact = Contact.objects.get(workspace=workspace, user_id="new")
    assert contact.first_seen_at == contact.last_seen_at == NOW
    assert_values_match_attributes(contact)


def test_a_new_contact_gets_the_values_a_sync_would_give(workspace):
    user = {"id": "u-1", "email": "a@example.com", "plan": "pro", "seats": 3, "gone": None,
            "account": {"id": "acme", "tier": "gold"}}  # fmt: skip
    contact = identify_contact(workspace=workspace, user=clean_user(user), now=NOW)
    assert contact.account.external_id == "acme"
    assert contact.traits == {"plan": "pro", "seats": 3}
    written = values_of(contact)
    assert {"plan", "seats", "email", "user_id", "first_seen_at", "last_seen_at"} <= set(written)
    sync_contact_values(contact)
    assert values_of(contact) == written  # the sync found nothing to change
    assert_values_match_attributes(contact)


def test_identify_again_updates_traits_and_values(workspace):
    identify_contact(workspace=workspace, user=clean_user({"id": "u-1", "plan": "pro"}), now=NOW)
    later = NOW + timedelta(days=1)
    user = clean_user({"id": "u-1", "plan": None, "seats": 4, "name": "Ada"})
    contact = identify_contact(workspace=workspace, user=user, now=later)
    assert contact.traits == {"seats": 4}
    assert contact.name == "Ada" and contact.last_seen_at == later
    assert_values_match_attributes(contact)


def test_a_widget_track_of_a_known_contact_is_one_statement_or_two(workspace, client):
    ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=timezone.now())
    body = {"workspace": workspace.widget_key, "user_id": "u-1", "event": "opened"}
    # Which events segments name is read once per definitions version in a process.
    client.post(
        "/api/v1/widget/track", body | {"event": "warm-up"}, content_type="application/json"
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/widget/track", body, content_type="application/json")
    assert response.status_code == 202
    # PostgreSQL: one INSERT from the workspace and contact (test_widget_track_at_once);
    # SQLite: the workspace with the contact, then the INSERT.
    assert len(queries) == (1 if connection.vendor == "postgresql" else 2)
    assert Event.objects.filter(contact__user_id="u-1", name="opened").count() == 1


def test_a_known_users_identify_that_changes_a_trait_writes_in_few_statements(workspace):
    """The lock, the contact's UPDATE and its values are each one written-out statement
    on PostgreSQL (the ORM's were three for the values alone); SQLite keeps the ORM's."""
    identify_contact(workspace=workspace, user=clean_user({"id": "u-1", "plan": "pro"}), now=NOW)
    user = clean_user({"id": "u-1", "plan": "team", "seats": 4})
    with CaptureQueriesContext(connection) as queries:
        contact = identify_contact(workspace=workspace, user=user, now=NOW + timedelta(hours=1))
    if connection.vendor == "postgresql":
        # The lookup, the lock, the UPDATE, the values; no segment: nothing to record.
        assert len(statements(queries)) == 4
    assert contact.traits == {"plan": "team", "seats": 4}
    assert_values_match_attributes(contact)


@pytest.mark.django_db(transaction=True)  # the foreign key is checked at commit
def test_an_event_of_a_contact_deleted_meanwhile_makes_it_again(workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=NOW)
    Contact.objects.filter(pk=contact.pk).delete()
    record_event(contact=contact, event="opened", now=NOW + timedelta(seconds=1))
    again = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert again.pk != contact.pk
    assert list(Event.objects.filter(contact=again).values_list("name", flat=True)) == ["opened"]
    assert_values_match_attributes(again)


def identify_again(workspace, user: dict, now) -> tuple[Contact, int]:
    """Identify a known user as the widget does (contact already read); count the queries."""
    current = Contact.objects.select_related("account").get(workspace=workspace, user_id="u-1")
    with CaptureQueriesContext(connection) as queries:
        contact = identify_known(
            workspace=workspace, user=clean_user(user), now=now, current=current
        )
    return contact, len(queries)


def test_an_identify_that_changes_nothing_writes_nothing(workspace):
    user = {"id": "u-1", "email": "a@example.com", "plan": "pro", "account": {"id": "acme"}}
    identify_contact(workspace=workspace, user=clean_user(user), now=NOW)
    contact, queries = identify_again(workspace, user, NOW + timedelta(seconds=30))
    assert queries == 0
    assert contact.last_seen_at == NOW


@pytest.mark.parametrize(
    "change",
    [
        {"plan": "free"},
        {"plan": None},
        {"seats": 1},  # was True: equal in Python, a different trait to rules
        {"email": "b@example.com"},
        {"account": {"id": "other"}},
        {"account": {"id": "acme", "tier": "gold"}},
    ],
)
def test_an_identify_that_changes_something_is_written(workspace, change):
    user = {"id": "u-1", "email": "a@example.com", "plan": "pro", "seats": True,
            "account": {"id": "acme"}}  # fmt: skip
    identify_contact(workspace=workspace, user=clean_user(user), now=NOW)
    contact, queries = identify_again(workspace, user | change, NOW + timedelta(seconds=30))
    assert queries > 0
    contact.refresh_from_db()
    expected = clean_user(user | change)
    assert contact.account.external_id == expected["account"]["id"]
    assert contact.account.traits == expected["account"]["traits"]
    assert contact.email == expected["email"]
    assert contact.traits == {k: v for k, v in expected["traits"].items() if v is not None}
    assert_values_match_attributes(contact)


def test_an_identify_a_minute_later_moves_last_seen(workspace):
    user = {"id": "u-1", "plan": "pro"}
    identify_contact(workspace=workspace, user=clean_user(user), now=NOW)
    contact, _ = identify_again(workspace, user, NOW + LAST_SEEN_STEP)
    contact.refresh_from_db()
    assert contact.last_seen_at == NOW + LAST_SEEN_STEP
    assert_values_match_attributes(contact)

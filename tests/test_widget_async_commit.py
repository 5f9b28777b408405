"""The widget's tracked events and new users' contacts commit asynchronously
(WIDGET_ASYNC_COMMIT, docs/decisions.md); everything else commits as before.

What each transaction commits with is read at its commit: a deferred constraint
trigger on the contacts and events tables notes `synchronous_commit` as it fires.
"""

import re
from collections.abc import Iterator

import pytest
from django.db import connection

from segments.models import Contact, Event
from tests.clients import Widget
from tests.factories import ContactFactory, SegmentFactory
from tests.rules import attribute, group
from tests.test_ingest import assert_values_match_attributes
from tests.test_pgbouncer import pooled_budget  # noqa: F401  (a fixture)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="synchronous_commit is PostgreSQL's; SQLite commits as before",
    ),
]

NOTE_COMMITS = """
    CREATE TABLE test_commits (id serial, written text, synchronous_commit text);
    CREATE FUNCTION test_note_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO test_commits (written, synchronous_commit)
        VALUES (TG_ARGV[0], current_setting('synchronous_commit'));
        RETURN NULL;
    END $$;
    CREATE CONSTRAINT TRIGGER test_note_commit AFTER INSERT OR UPDATE ON segments_contact
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_note_commit('contact');
    CREATE CONSTRAINT TRIGGER test_note_commit AFTER INSERT ON segments_event
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_note_commit('event');
"""
FORGET_COMMITS = """
    DROP TRIGGER test_note_commit ON segments_event;
    DROP TRIGGER test_note_commit ON segments_contact;
    DROP FUNCTION test_note_commit();
    DROP TABLE test_commits;
"""


@pytest.fixture
def commits() -> Iterator:
    """Reads (written, synchronous_commit) of each contact or event row written so far,
    as its transaction committed."""

    def read() -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT written, synchronous_commit FROM test_commits ORDER BY id")
            return [tuple(row) for row in cursor.fetchall()]

    with connection.cursor() as cursor:
        cursor.execute(NOTE_COMMITS)
    try:
        yield read
    finally:
        with connection.cursor() as cursor:
            cursor.execute(FORGET_COMMITS)


def test_a_tracked_event_commits_asynchronously(workspace, widget, commits):
    ContactFactory(workspace=workspace, user_id="ada")
    commits_before = len(commits())
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 202
    # The second, once the key is admitted, is one statement (test_widget_track_at_once).
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 202
    assert commits()[commits_before:] == [("event", "off"), ("event", "off")]
    assert Event.objects.filter(contact__user_id="ada", name="opened").count() == 2


def test_the_setting_ends_with_the_transaction(workspace, widget, commits):
    ContactFactory(workspace=workspace, user_id="ada")
    widget.post("track", {"user_id": "ada", "event": "opened"})
    # The same connection (the test client runs in this thread), kept for the next request.
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_an_event_that_moves_last_seen_commits_asynchronously_with_it(workspace, widget, commits):
    contact = ContactFactory(workspace=workspace, user_id="ada")
    Contact.objects.filter(pk=contact.pk).update(
        last_seen_at=contact.last_seen_at.replace(year=2020)
    )
    commits_before = len(commits())
    widget.post("track", {"user_id": "ada", "event": "opened"})
    assert commits()[commits_before:] == [("contact", "off"), ("event", "off")]


def test_an_unknown_users_first_event_commits_asynchronously_with_its_contact(
    workspace, widget, commits
):
    response = widget.post("track", {"user_id": "new", "event": "opened"})
    assert response.status_code == 202
    assert set(commits()) == {("contact", "off"), ("event", "off")}
    assert_values_match_attributes(Contact.objects.get(workspace=workspace, user_id="new"))
    assert Event.objects.filter(contact__user_id="new").count() == 1


def test_a_new_users_identify_commits_asynchronously(workspace, widget, commits):
    user = {"id": "new", "email": "new@example.com", "plan": "pro", "seats": 3}
    response = widget.post("identify", {"user": user})
    assert response.status_code == 200
    assert commits() == [("contact", "off")]
    assert_values_match_attributes(Contact.objects.get(workspace=workspace, user_id="new"))


def test_a_known_users_identify_commits_synchronously(workspace, widget, commits):
    ContactFactory(workspace=workspace, user_id="ada", traits={"plan": "free"})
    commits_before = len(commits())
    widget.post("identify", {"user": {"id": "ada", "plan": "pro"}})
    assert commits()[commits_before:] == [("contact", "on")]


def test_with_the_setting_off_the_widgets_writes_commit_synchronously(
    workspace, widget, commits, settings
):
    settings.WIDGET_ASYNC_COMMIT = False
    assert widget.post("identify", {"user": {"id": "new", "plan": "pro"}}).status_code == 200
    assert widget.post("track", {"user_id": "new", "event": "opened"}).status_code == 202
    assert widget.post("track", {"user_id": "other", "event": "opened"}).status_code == 202
    assert commits() and set(commits()) == {("contact", "on"), ("event", "on")}
    assert Event.objects.filter(workspace=workspace).count() == 2
    assert_values_match_attributes(Contact.objects.get(workspace=workspace, user_id="new"))


def test_the_rest_apis_writes_commit_synchronously(workspace, api, commits):
    assert api.post("/api/v1/identify-user", {"id": "new", "plan": "pro"}).status_code == 200
    assert api.post("/api/v1/track-event", {"user_id": "new", "event": "x"}).status_code == 202
    assert api.post("/api/v1/track-event", {"user_id": "b", "event": "x"}).status_code == 202
    assert commits() and set(commits()) == {("contact", "on"), ("event", "on")}


def test_behind_a_transaction_pooler_the_writes_still_commit_asynchronously(
    pooled_budget,  # noqa: F811
    workspace,
    commits,
):
    widget = Widget(workspace)
    assert widget.post("identify", {"user": {"id": "new", "plan": "pro"}}).status_code == 200
    assert widget.post("track", {"user_id": "new", "event": "opened"}).status_code == 202
    assert commits() == [("contact", "off"), ("event", "off")]
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def writes_of(widget, body: dict) -> list[tuple[str, bool]]:
    """(the tables each statement inserts into, whether it ran inside a transaction of
    Django's) for each writing statement of an identify."""
    seen = []

    def note(execute, sql, params, many, context):
        tables = " ".join(re.findall(r'INSERT INTO "?(\w+)', sql))
        if tables:
            seen.append((tables, connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        assert widget.post("identify", body).status_code == 200
    return seen


def test_a_new_user_alone_is_one_statement_its_own_transaction(workspace, widget, commits):
    widget.post("identify", {"user": {"id": "warm-up"}})  # the segments are read once

    writes = writes_of(widget, {"user": {"id": "new", "plan": "pro", "seats": 3}})

    # The contact and its values in one statement, with no BEGIN or COMMIT around it.
    assert writes == [("segments_contact segments_contactvalue", False)]
    assert commits()[-1:] == [("contact", "off")]
    assert_values_match_attributes(Contact.objects.get(workspace=workspace, user_id="new"))


def test_a_new_user_with_an_account_or_a_segment_is_written_in_one_transaction(workspace, widget):
    widget.post("identify", {"user": {"id": "warm-up"}})
    with_account = {"user": {"id": "a", "plan": "pro", "account": {"id": "acme"}}}

    assert writes_of(widget, with_account)[-1] == ("segments_contact segments_contactvalue", True)
    SegmentFactory(workspace=workspace, rules=group(attribute("plan", "equals", "pro")))
    writes = writes_of(widget, {"user": {"id": "b", "plan": "pro"}})

    assert writes[0] == ("segments_contact segments_contactvalue", True)
    # ... and its membership of the segment is recorded in that same transaction.
    assert any(table.startswith("segments_segmentmembership") for table, _ in writes[1:]), writes
    assert all(inside for _, inside in writes)

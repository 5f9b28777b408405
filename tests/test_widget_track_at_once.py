"""A known user's track in one statement, once the process has admitted the key
(PostgreSQL, issue 16).

The checks run on the workspace as this process last admitted it; the statement
writes only while the database still holds what they read. Each test below changes
one of those settings behind the process's back, so that only the statement's own
guard can send the track down the full path, which answers as it always did.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from refiner.models import Workspace
from segments.models import Contact, Event, SegmentMembership
from targeting.widget_api import signature_of
from tests.clients import Widget, error_code
from tests.factories import ContactFactory, SegmentFactory
from tests.rules import event, group

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="one statement needs an INSERT in a WITH (PostgreSQL); SQLite takes two",
    ),
]


@pytest.fixture
def ada(workspace):
    return ContactFactory(workspace=workspace, user_id="ada", last_seen_at=timezone.now())


def events_of(contact: Contact) -> list[str]:
    return sorted(Event.objects.filter(contact=contact).values_list("name", flat=True))


def admitted(workspace, widget: Widget, contact: Contact) -> None:
    """A first track, which admits the key in this process."""
    assert widget.post("track", {"user_id": contact.user_id, "event": "warm-up"}).status_code == 202


def test_a_known_users_track_is_one_statement(workspace, widget, ada):
    admitted(workspace, widget, ada)
    with CaptureQueriesContext(connection) as queries:
        response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 202
    assert len(queries) == 1
    assert events_of(ada) == ["opened", "warm-up"]


def test_identity_verification_turned_on_since_is_still_required(workspace, widget, ada):
    admitted(workspace, widget, ada)
    Workspace.objects.filter(pk=workspace.pk).update(identity_verification=True)
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 403 and error_code(response) == "bad_signature"
    assert events_of(ada) == ["warm-up"]


def test_a_secret_key_rotated_since_no_longer_signs(workspace, widget, ada):
    Workspace.objects.filter(pk=workspace.pk).update(identity_verification=True)
    workspace.refresh_from_db()
    signature = signature_of(workspace, "ada")
    body = {"user_id": "ada", "signature": signature}
    assert widget.post("track", body | {"event": "warm-up"}).status_code == 202
    workspace.rotate_keys(secret=True)
    response = widget.post("track", body | {"event": "opened"})
    assert response.status_code == 403 and error_code(response) == "bad_signature"
    assert events_of(ada) == ["warm-up"]


def test_an_origin_no_longer_allowed_is_refused(workspace, ada):
    widget = Widget(workspace, origin="https://app.example.com")
    admitted(workspace, widget, ada)
    Workspace.objects.filter(pk=workspace.pk).update(allowed_origins=["https://other.example.com"])
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 403 and error_code(response) == "origin_not_allowed"
    assert events_of(ada) == ["warm-up"]


def test_a_rotated_widget_key_is_refused(workspace, widget, ada):
    admitted(workspace, widget, ada)
    workspace.rotate_keys(widget=True)
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 401
    assert events_of(ada) == ["warm-up"]


def test_a_segment_naming_the_event_since_records_the_membership(workspace, widget, ada):
    admitted(workspace, widget, ada)
    # Saved through the ORM: the definitions version moves, this process's watch does not.
    segment = SegmentFactory(workspace=workspace, rules=group(event("opened", "at_least", 1)))
    response = widget.post("track", {"user_id": "ada", "event": "opened"})
    assert response.status_code == 202
    assert SegmentMembership.objects.filter(segment=segment, contact=ada, left_at=None).exists()


def test_a_user_not_seen_for_a_minute_moves_last_seen(workspace, widget, ada):
    admitted(workspace, widget, ada)
    an_hour_ago = timezone.now() - timezone.timedelta(hours=1)
    Contact.objects.filter(pk=ada.pk).update(last_seen_at=an_hour_ago)
    assert widget.post("track", {"user_id": "ada", "event": "opened"}).status_code == 202
    ada.refresh_from_db()
    assert ada.last_seen_at > an_hour_ago
    assert events_of(ada) == ["opened", "warm-up"]


def test_a_deleted_user_is_made_again_by_the_full_path(workspace, widget, ada):
    admitted(workspace, widget, ada)
    Contact.objects.filter(pk=ada.pk).delete()
    assert widget.post("track", {"user_id": "ada", "event": "opened"}).status_code == 202
    again = Contact.objects.get(workspace=workspace, user_id="ada")
    assert events_of(again) == ["opened"]


@pytest.mark.parametrize(
    "body, field",
    [({"user_id": "", "event": "opened"}, "user_id"), ({"user_id": "ada", "event": ""}, "event")],
)
def test_a_bad_body_gets_the_full_paths_error(workspace, widget, ada, body, field):
    admitted(workspace, widget, ada)
    response = widget.post("track", body)
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert events_of(ada) == ["warm-up"]


def test_a_key_of_the_wrong_type_is_refused(workspace, widget, ada):
    admitted(workspace, widget, ada)
    response = widget.post("track", {"user_id": "ada", "event": "opened"}, key=["a", "list"])
    assert response.status_code == 401

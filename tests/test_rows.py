"""The widget's hand-written reads give what the ORM gives, timestamps included."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from refiner.raw_sql import fast_cursor
from segments.models import Event
from segments.snapshot import load_snapshot
from tests.factories import ContactFactory, DisplayFactory, SurveyFactory

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_fast_cursor_reads_the_same_aware_datetimes(workspace):
    contact = ContactFactory(workspace=workspace)
    Event.objects.create(workspace=workspace, contact=contact, name="opened", occurred_at=MOMENT)
    query = "SELECT occurred_at FROM segments_event WHERE contact_id = %s"
    with connection.cursor() as cursor:
        cursor.execute(query, [contact.pk])
        by_django = cursor.fetchone()[0]
    with fast_cursor() as cursor:
        cursor.execute(query, [contact.pk])
        fast = cursor.fetchone()[0]
    assert fast == by_django  # on SQLite both are the stored text
    if connection.vendor == "postgresql":
        assert fast == MOMENT and fast.utcoffset().total_seconds() == 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="psycopg's loaders")
def test_fast_cursor_uses_psycopg_own_timestamp_loader_only_for_itself():
    with fast_cursor() as cursor:
        fast = cursor.cursor.adapters.get_loader(1184, 0)  # timestamptz, text format
    with connection.cursor() as cursor:
        by_django = cursor.cursor.adapters.get_loader(1184, 0)
    assert not fast.__module__.startswith("django")
    assert by_django.__module__.startswith("django")


def test_the_snapshot_keeps_every_moment(workspace):
    contact = ContactFactory(workspace=workspace)
    Event.objects.create(workspace=workspace, contact=contact, name="opened", occurred_at=MOMENT)
    survey = SurveyFactory(workspace=workspace)
    DisplayFactory(
        survey=survey, contact=contact, shown_at=MOMENT, completed_at=MOMENT.replace(microsecond=0)
    )
    snapshot = load_snapshot(contact)
    assert snapshot.events == {"opened": [MOMENT]}
    (display,) = snapshot.displays
    assert (display.shown_at, display.completed_at) == (MOMENT, MOMENT.replace(microsecond=0))
    assert display.dismissed_at is None
    moments = [*snapshot.events["opened"], display.shown_at, display.completed_at]
    assert all(moment.utcoffset().total_seconds() == 0 for moment in moments)

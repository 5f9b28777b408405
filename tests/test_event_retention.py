"""Event retention on both databases: what drop_old_events keeps, deletes that cascade
to events, backups of events, and the warnings rules get about windows past retention.
PostgreSQL's partitions themselves: tests/test_event_partitions.py."""

import io
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from refiner.models import Workspace
from segments.models import Event
from segments.partitions import add_months, ensure_months, month_start
from segments.retention import days_always_kept, retention_start, rule_warnings
from tests.factories import ContactFactory, EventFactory, SegmentFactory
from tests.rules import attribute, event, group
from workspace_backups.backups import backup, restore

pytestmark = pytest.mark.django_db

NOV_30 = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def exported(**window) -> dict:
    return event("report_exported", "at_least", 1, **window)


def event_rule(**window) -> dict:
    return group(exported(**window))


def test_retention_keeps_whole_months():
    assert retention_start(NOV_30, 12) == datetime(2025, 11, 1, tzinfo=UTC)
    assert retention_start(datetime(2026, 1, 1, tzinfo=UTC), 1) == datetime(2025, 12, 1, tzinfo=UTC)
    assert retention_start(datetime(2026, 3, 31, 23, 59, tzinfo=UTC), 14) == datetime(
        2025, 1, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("months", "days"), [(1, 28), (2, 59), (6, 181), (11, 334), (12, 365), (13, 393), (24, 730)]
)
def test_the_days_always_kept_are_the_shortest_run_of_months(months, days):
    assert days_always_kept(months) == days


def test_old_events_are_deleted_and_recent_ones_kept(workspace):
    now = timezone.now()
    this_month = month_start(now)
    if connection.vendor == "postgresql":
        # Some months with their own partition, others only in DEFAULT.
        ensure_months(connection, add_months(this_month, -3), this_month)
    contact = ContactFactory(workspace=workspace)
    kept_from = add_months(this_month, -2)
    moments = [add_months(this_month, -n) + timedelta(days=3) for n in range(1, 8)]
    moments += [kept_from, kept_from - timedelta(microseconds=1), datetime(1999, 1, 1, tzinfo=UTC)]
    for moment in moments:
        EventFactory(contact=contact, occurred_at=moment)
    out = StringIO()

    call_command("drop_old_events", "--months", "2", "--dry-run", stdout=out)

    assert Event.objects.count() == len(moments)
    gone = sum(1 for m in moments if m < kept_from)
    assert f"Would drop {gone} events from before {kept_from:%Y-%m-%d}" in out.getvalue()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # see test_event_partitions

    call_command("drop_old_events", "--months", "2", stdout=out)

    remaining = sorted(Event.objects.values_list("occurred_at", flat=True))
    assert remaining == sorted(m for m in moments if m >= kept_from)
    assert f"Dropped {gone} events" in out.getvalue()


def test_without_retention_the_command_keeps_everything(workspace, settings):
    settings.EVENT_RETENTION_MONTHS = 0
    EventFactory(
        contact=ContactFactory(workspace=workspace), occurred_at=datetime(1999, 1, 1, tzinfo=UTC)
    )
    out = StringIO()
    call_command("drop_old_events", stdout=out)
    assert "kept forever" in out.getvalue()
    assert Event.objects.count() == 1


def test_deleting_a_contact_or_a_workspace_deletes_its_events(workspace, other_workspace):
    ours, theirs = ContactFactory(workspace=workspace), ContactFactory(workspace=other_workspace)
    for moment in (
        timezone.now(),
        datetime(2019, 5, 1, tzinfo=UTC),
        datetime(2090, 1, 1, tzinfo=UTC),
    ):
        EventFactory(contact=ours, occurred_at=moment)
        EventFactory(contact=ContactFactory(workspace=workspace), occurred_at=moment)
        EventFactory(contact=theirs, occurred_at=moment)

    ours.delete()
    assert Event.objects.filter(workspace=workspace).count() == 3
    Workspace.objects.filter(pk=workspace.pk).delete()

    assert set(Event.objects.values_list("contact_id", flat=True)) == {theirs.pk}
    assert Event.objects.count() == 3


def test_a_backup_brings_events_of_every_month_back_under_their_ids(workspace):
    contact = ContactFactory(workspace=workspace)
    for moment in (
        timezone.now(),
        datetime(2019, 5, 1, tzinfo=UTC),
        datetime(2090, 1, 1, tzinfo=UTC),
    ):
        EventFactory(contact=contact, occurred_at=moment)
    stream = io.StringIO()
    backup(workspace.pk, stream)
    rows = json.loads(stream.getvalue())
    # Ids far past the sequence, as from another database: the sequence must catch up.
    for row in rows:
        if row["model"] == "segments.event":
            row["pk"] += 10**6
    before = {(r["pk"], r["fields"]["occurred_at"]) for r in rows if r["model"] == "segments.event"}
    workspace.delete()
    assert not Event.objects.exists()

    restore(io.StringIO(json.dumps(rows)))

    assert {(e.pk, e.occurred_at.isoformat()) for e in Event.objects.all()} == before
    # The id sequence moved past the restored ids.
    restored = Event.objects.select_related("contact").first().contact
    assert EventFactory(contact=restored).pk > max(row[0] for row in before)


# Warnings about rules ----------------------------------------------------------


def test_a_window_longer_than_retention_keeps_gets_a_warning():
    warnings = rule_warnings(event_rule(within_days=400), months=12)
    assert [w["field"] for w in warnings] == ["conditions[0].within_days"]
    assert "400 days" in warnings[0]["message"] and "365 days" in warnings[0]["message"]
    assert rule_warnings(event_rule(within_days=365), months=12) == []
    assert rule_warnings(event_rule(within_days=366), months=12) != []


def test_an_all_time_count_gets_a_warning_only_with_retention():
    warnings = rule_warnings(event_rule(), months=6)
    assert [w["field"] for w in warnings] == ["conditions[0]"]
    assert "all time" in warnings[0]["message"]
    assert rule_warnings(event_rule(), months=0) == []
    assert rule_warnings(event_rule(within_days=10_000), months=0) == []


def test_warnings_name_nested_conditions_in_order():
    inner = group(attribute("plan", "is_set"), exported(within_days=900))
    rule = group(exported(within_days=5), inner, exported(), match="any")
    fields = [w["field"] for w in rule_warnings(rule, months=12)]
    assert fields == ["conditions[1].conditions[1].within_days", "conditions[2]"]


def test_the_api_saves_the_segment_and_warns(api, workspace, settings):
    settings.EVENT_RETENTION_MONTHS = 12
    created = api.post(
        "/api/v1/segments", {"name": "Old fans", "rules": event_rule(within_days=400)}
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert [w["field"] for w in body["warnings"]] == ["rules.conditions[0].within_days"]
    assert body["rules"] == event_rule(within_days=400)

    changed = api.put(f"/api/v1/segments/{body['id']}", {"name": "Fans", "rules": event_rule()})
    assert changed.status_code == 200
    assert [w["field"] for w in changed.json()["warnings"]] == ["rules.conditions[0]"]

    fine = api.put(
        f"/api/v1/segments/{body['id']}", {"name": "Fans", "rules": event_rule(within_days=30)}
    )
    assert fine.json()["warnings"] == []
    preview = api.post("/api/v1/segments/preview", {"rules": event_rule(within_days=400)})
    assert len(preview.json()["warnings"]) == 1


def test_no_warning_for_another_workspaces_segment(outsider_api, workspace, settings):
    settings.EVENT_RETENTION_MONTHS = 12
    ours = SegmentFactory(workspace=workspace, rules=event_rule(within_days=30))
    response = outsider_api.put(f"/api/v1/segments/{ours.pk}", {"name": "x", "rules": event_rule()})
    assert response.status_code == 404
    assert "warnings" not in response.json()
    ours.refresh_from_db()
    assert ours.rules == event_rule(within_days=30)


def test_the_editor_shows_the_warning(owner, workspace, settings):
    segment = SegmentFactory(workspace=workspace, rules=event_rule(within_days=400))
    settings.EVENT_RETENTION_MONTHS = 0
    assert (
        'data-testid="retention-warning"'
        not in owner.get(f"/segments/{segment.pk}/").content.decode()
    )

    settings.EVENT_RETENTION_MONTHS = 12
    page = owner.get(f"/segments/{segment.pk}/").content.decode()

    assert page.count('data-testid="retention-warning"') == 1
    assert "Looks back 400 days" in page
    preview = owner.post(
        "/segments/preview/", {"rules": json.dumps(event_rule())}, headers={"HX-Request": "true"}
    )
    assert "of all time" in preview.content.decode()

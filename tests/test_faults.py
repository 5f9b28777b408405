"""Faults: with the database out of reach, quick clear 503s; when it is back, service resumes.

The database is made unreachable for a worker thread only: the thread's new
connection reads the shared connection settings, pointed for a moment at a
closed port (PostgreSQL), a port that accepts and never answers (PostgreSQL), or
a file that cannot be opened (SQLite). The same thread then calls again once the
settings are restored, as a server worker would when the database comes back.
"""

import json

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from segments.models import Contact
from targeting import eligibility
from tests.clients import timed
from tests.factories import ContactFactory, MembershipFactory, SurveyFactory, WorkspaceFactory
from tests.workers import in_worker, unreachable_database

pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES = connection.vendor == "postgresql"


def widget_identify(workspace, user_id: str):
    return Client(raise_request_exception=False).post(
        "/api/v1/widget/identify",
        json.dumps({"workspace": workspace.widget_key, "user": {"id": user_id}}),
        content_type="application/json",
    )


def rest_contacts(workspace):
    return Client(raise_request_exception=False).get(
        "/api/v1/contacts", headers={"Authorization": f"Bearer {workspace.secret_key}"}
    )


@pytest.mark.parametrize("call", ["widget", "rest"])
def test_api_answers_503_quickly_while_the_database_is_down_then_recovers(call):
    workspace = WorkspaceFactory()
    send = {
        "widget": lambda: widget_identify(workspace, "during-outage"),
        "rest": lambda: rest_contacts(workspace),
    }[call]

    def outage_then_recovery():
        with unreachable_database():
            during, seconds = timed(send)
        after = send()
        return during, seconds, after

    during, seconds, after = in_worker(outage_then_recovery)

    assert during.status_code == 503
    assert during.json()["error"]["code"] == "unavailable"
    assert seconds < 1
    assert after.status_code == 200


@pytest.mark.skipif(not POSTGRES, reason="a silent server only makes sense over TCP")
def test_a_database_that_never_answers_still_gets_a_503_within_the_connect_timeout():
    workspace = WorkspaceFactory()

    def outage():
        with unreachable_database("silent"):
            return timed(lambda: widget_identify(workspace, "silent"))

    during, seconds = in_worker(outage)

    assert during.status_code == 503
    # libpq's connect_timeout is whole seconds and at least 2 (DB_CONNECT_TIMEOUT=1 means 2).
    assert seconds < 3


def test_a_write_refused_during_the_outage_leaves_nothing_behind_and_the_retry_lands():
    workspace = WorkspaceFactory()

    def outage_then_retry():
        with unreachable_database():
            during = widget_identify(workspace, "retried")
        return during, widget_identify(workspace, "retried")

    during, retry = in_worker(outage_then_retry)

    assert during.status_code == 503
    assert retry.status_code == 200
    assert list(Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True)) == [
        "retried"
    ]


def test_the_dashboard_shows_an_error_page_while_the_database_is_down_then_recovers():
    membership = MembershipFactory()
    client = Client(raise_request_exception=False)
    client.force_login(membership.user)
    page = reverse("settings")

    def outage_then_recovery():
        with unreachable_database():
            during, seconds = timed(lambda: client.get(page))
        return during, seconds, client.get(page)

    during, seconds, after = in_worker(outage_then_recovery)

    assert during.status_code == 503
    assert "Temporarily unavailable" in during.content.decode()
    assert seconds < 1
    assert after.status_code == 200


def test_the_public_ping_needs_no_database():
    def outage():
        with unreachable_database():
            return Client(raise_request_exception=False).get("/api/v1/ping")

    assert in_worker(outage).status_code == 200


DEAD_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
}


def test_widget_eligibility_reads_the_database_when_the_cache_is_down(settings):
    """A cold process with a dead Redis: the definitions come from the database, no 500."""
    workspace = WorkspaceFactory()
    ContactFactory(workspace=workspace, user_id="u-1")
    survey = SurveyFactory(workspace=workspace)
    settings.CACHES = DEAD_REDIS
    eligibility._in_process.clear()  # as in a process that has just started

    response = Client(raise_request_exception=False).post(
        "/api/v1/widget/eligibility",
        json.dumps({"workspace": workspace.widget_key, "user_id": "u-1"}),
        content_type="application/json",
    )

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["surveys"]] == [survey.pk]

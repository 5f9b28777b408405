"""What an operator watches (refiner/ops.py): health probes, /metrics and the request log."""

import json
import logging

import pytest
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from refiner.logs import JsonFormatter
from tests.factories import ContactFactory, SurveyFactory, WorkspaceFactory
from tests.workers import in_worker, unreachable_database

TOKEN = "metrics-token-for-tests-0123456789"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape() -> dict[tuple, float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, *sorted(labels.items())), 0.0)


def eligibility(workspace, user_id: str):
    return Client().post(
        "/api/v1/widget/eligibility",
        json.dumps({"workspace": workspace.widget_key, "user_id": user_id}),
        content_type="application/json",
    )


# Probes -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["testserver", "10.0.0.7", "refiner-1.internal:8000"])
def test_healthz_answers_for_any_host_over_plain_http(settings, host):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["refiner.example.com"]

    response = Client().get("/healthz", HTTP_HOST=host)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_healthz_needs_no_database():
    def outage():
        with unreachable_database():
            return Client(raise_request_exception=False).get("/healthz")

    response = in_worker(outage)
    assert response.status_code == 200


@pytest.mark.django_db
def test_readyz_is_ok_with_database_cache_and_migrations(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["refiner.example.com"]

    response = Client().get("/readyz", HTTP_HOST="10.0.0.7")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "cache": "ok", "migrations": "ok"},
    }


@pytest.mark.django_db(transaction=True)
def test_readyz_names_the_database_when_it_is_down(metrics_token):
    before = scrape()

    def outage():
        with unreachable_database():
            return Client(raise_request_exception=False).get("/readyz")

    response = in_worker(outage)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "failed": ["database"],
        "checks": {"database": "failed", "cache": "ok", "migrations": "unknown"},
    }
    assert in_worker(lambda: Client().get("/readyz")).status_code == 200, "and recovers"
    after = scrape()
    errors = "refiner_database_errors_total"
    assert sum(v for k, v in after.items() if k[0] == errors) > sum(
        v for k, v in before.items() if k[0] == errors
    )


@pytest.mark.django_db
def test_readyz_names_the_cache_when_it_is_down(settings):
    # A Redis nobody listens on: port 1 on loopback refuses at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]


@pytest.mark.django_db
def test_readyz_names_unapplied_migrations(monkeypatch):
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    from refiner import ops

    monkeypatch.setattr(ops, "_schema_current", False)
    # A deploy's new migration is the newest of its app, as if its files arrived first.
    (newest,) = MigrationLoader(connection).graph.leaf_nodes("surveys")
    MigrationRecorder(connection).record_unapplied(*newest)

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["failed"] == ["migrations"]


# Metrics ----------------------------------------------------------------------


def test_metrics_are_not_found_without_a_token(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_refuse_outsiders(metrics_token, header):
    headers = {"Authorization": header} if header else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert b"refiner_" not in response.content


@pytest.mark.django_db
def test_metrics_count_requests_and_eligibility_decisions(metrics_token):
    workspace = WorkspaceFactory()
    ContactFactory(workspace=workspace, user_id="u-1")
    SurveyFactory(workspace=workspace)
    before = scrape()

    assert len(eligibility(workspace, "u-1").json()["surveys"]) == 1
    assert eligibility(workspace, "u-unknown").json()["surveys"] == []

    after = scrape()
    route = "widget-eligibility"
    for name, labels, moved in [
        ("refiner_http_requests_total", {"route": route, "method": "POST", "status": "200"}, 2),
        ("refiner_http_request_duration_seconds_count", {"route": route}, 2),
        ("refiner_eligibility_checks_total", {"route": route, "status": "200"}, 2),
        ("refiner_eligibility_decisions_total", {"route": route, "reason": "offered"}, 1),
        ("refiner_eligibility_decisions_total", {"route": route, "reason": "none_eligible"}, 1),
    ]:
        assert sample(after, name, **labels) - sample(before, name, **labels) == moved, name


@pytest.mark.django_db
def test_metrics_count_the_snapshots_eligibility_reads(metrics_token):
    """A contact's first check reads its snapshot; asked again, the kept answer needs
    none on PostgreSQL. The share the operator sizes the fleet by (docs/scaling.md)."""
    workspace = WorkspaceFactory()
    ContactFactory(workspace=workspace, user_id="u-1")
    ContactFactory(workspace=workspace, user_id="u-2")
    SurveyFactory(workspace=workspace)
    name = "refiner_eligibility_snapshot_reads_total"
    # The process's first check of a workspace: its answer is filed before the
    # one-statement path knows what the rules read, so u-1 is asked twice.
    eligibility(workspace, "u-1")
    eligibility(workspace, "u-1")
    before = scrape()

    assert len(eligibility(workspace, "u-2").json()["surveys"]) == 1
    first = scrape()
    assert len(eligibility(workspace, "u-2").json()["surveys"]) == 1
    again = scrape()

    assert sample(first, name) - sample(before, name) == 1
    kept = connection.vendor == "postgresql"
    assert sample(again, name) - sample(first, name) == (0 if kept else 1)


@pytest.mark.django_db
def test_metrics_count_the_rest_checks_reason_codes(metrics_token):
    workspace = WorkspaceFactory()
    survey = SurveyFactory(workspace=workspace)
    before = scrape()

    response = Client().get(
        f"/api/v1/surveys/{survey.pk}/eligibility/u-nobody",
        headers={"Authorization": f"Bearer {workspace.secret_key}"},
    )

    codes = [reason["code"] for reason in response.json()["reasons"]]
    assert codes
    after = scrape()
    for code in codes:
        labels = {"route": "api-survey-eligibility", "reason": code}
        assert sample(after, "refiner_eligibility_decisions_total", **labels) == (
            sample(before, "refiner_eligibility_decisions_total", **labels) + 1
        )


# Logs -------------------------------------------------------------------------


@pytest.mark.django_db
def test_one_json_line_per_request_without_secrets_or_user_ids(caplog, workspace):
    caplog.set_level(logging.INFO, logger="refiner.requests")
    user_id = "u-private-7781"

    response = Client().get(
        f"/api/v1/contacts/{user_id}",
        headers={"Authorization": f"Bearer {workspace.secret_key}"},
    )

    assert response.status_code == 404
    records = [r for r in caplog.records if r.name == "refiner.requests"]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert "\n" not in line
    logged = json.loads(line)
    assert logged["level"] == "INFO"
    assert logged["method"] == "GET"
    assert logged["route"] == "api/v1/contacts/<path:user_id>"
    assert logged["status"] == 404
    assert logged["workspace_id"] == workspace.pk
    assert isinstance(logged["duration_ms"], float)
    assert workspace.secret_key not in line
    assert user_id not in line


@pytest.mark.django_db
def test_the_widget_log_line_names_the_workspace_but_not_the_user(caplog):
    caplog.set_level(logging.INFO, logger="refiner.requests")
    workspace = WorkspaceFactory()

    eligibility(workspace, "u-widget-user-55")

    (record,) = [r for r in caplog.records if r.name == "refiner.requests"]
    line = JsonFormatter().format(record)
    assert json.loads(line)["workspace_id"] == workspace.pk
    assert json.loads(line)["route"] == "api/v1/widget/eligibility"
    assert "u-widget-user-55" not in line
    assert workspace.widget_key not in line


def test_static_files_are_counted_apart_from_unknown_paths(metrics_token):
    before = scrape()

    # Not collected in the suite: a 404 either way, but under its own route label.
    Client().get("/static/refiner/widget.js")
    Client().get("/no-such-page")

    after = scrape()
    for route in ("static", "unmatched"):
        labels = {"route": route, "method": "GET", "status": "404"}
        moved = sample(after, "refiner_http_requests_total", **labels) - sample(
            before, "refiner_http_requests_total", **labels
        )
        assert moved == 1, route

"""What an operator watches: health probes, Prometheus metrics and one JSON log line per request.

The probes and /metrics are answered by `ops_middleware`, first in MIDDLEWARE: a load
balancer or Prometheus reaches the app by its address, over plain HTTP, so neither
ALLOWED_HOSTS nor the HTTPS redirect may stand in their way, and they are not counted
as traffic themselves.
"""

import json
import logging
import sys
import time
from collections.abc import Callable

import prometheus_client
from django.conf import settings
from django.core import signals
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from prometheus_client import multiprocess

from refiner.http import bearer_key

log = logging.getLogger("refiner.requests")
problems = logging.getLogger(__name__)

REQUESTS = prometheus_client.Counter(
    "refiner_http_requests_total",
    "Requests answered, by URL route name, method and status code.",
    ["route", "method", "status"],
)
LATENCY = prometheus_client.Histogram(
    "refiner_http_request_duration_seconds",
    "Time from the first middleware to the response, by URL route name.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ELIGIBILITY_CHECKS = prometheus_client.Counter(
    "refiner_eligibility_checks_total",
    "Eligibility checks answered (widget and REST), by route name and status code.",
    ["route", "status"],
)
ELIGIBILITY_DECISIONS = prometheus_client.Counter(
    "refiner_eligibility_decisions_total",
    "Decisions: the widget's surveys offered (reason 'offered') or none ('none_eligible'); "
    "the REST check's 'eligible' or each reason code against.",
    ["route", "reason"],
)
SNAPSHOT_READS = prometheus_client.Counter(
    "refiner_eligibility_snapshot_reads_total",
    "Contacts' snapshots read by the widget's eligibility checks, each for an answer this "
    "process had not kept (PostgreSQL; on SQLite every check of a known contact reads one). "
    "Over refiner_eligibility_checks_total: the share of checks that cost a first check.",
)
DATABASE_ERRORS = prometheus_client.Counter(
    "refiner_database_errors_total",
    "Database errors that ended a request or a readiness probe, by exception class.",
    ["error"],
)

WIDGET_ELIGIBILITY = "widget-eligibility"
REST_ELIGIBILITY = "api-survey-eligibility"
UNMATCHED = "unmatched"
STATIC = "static"  # WhiteNoise answers before any URL is resolved


# Probes -----------------------------------------------------------------------


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers: nothing else is asked, so a database outage restarts nothing."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Can this process serve: database, cache and schema. 503 names what failed."""
    results = {"database": "ok" if _database_ready() else "failed"}
    results["cache"] = "ok" if _cache_ready() else "failed"
    if results["database"] == "ok":
        results["migrations"] = "ok" if _migrations_applied() else "failed"
    else:
        results["migrations"] = "unknown"  # they live in the database
    failed = [name for name, result in results.items() if result == "failed"]
    if failed:
        return JsonResponse(
            {"status": "unavailable", "failed": failed, "checks": results}, status=503
        )
    return JsonResponse({"status": "ok", "checks": results})


def _database_ready() -> bool:
    # A new connection waits DB_CONNECT_TIMEOUT seconds at most (PostgreSQL).
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError as exc:
        DATABASE_ERRORS.labels(type(exc).__name__).inc()
        problems.warning("readiness: database unavailable: %s", type(exc).__name__)
        return False


def _cache_ready() -> bool:
    try:
        cache.set("refiner:readyz", "1", 10)
        return cache.get("refiner:readyz") == "1"
    except Exception as exc:  # Redis' own errors are not Django's: any failure is "not ready"
        problems.warning("readiness: cache unavailable: %s", type(exc).__name__)
        return False


_schema_current = False


def _migrations_applied() -> bool:
    """No migration left to apply. Once true it stays true for this process (a deploy with
    new migrations restarts it), so the migration files are read once, not on every probe."""
    global _schema_current
    if _schema_current:
        return True
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        DATABASE_ERRORS.labels(type(exc).__name__).inc()
        return False
    _schema_current = not plan
    return _schema_current


# Metrics ----------------------------------------------------------------------


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a scraper holding METRICS_TOKEN; unset, there is nothing."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse(status=404)
    if not constant_time_compare(bearer_key(request), token):
        response = HttpResponse(status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(
        prometheus_client.generate_latest(_registry()),
        content_type=prometheus_client.CONTENT_TYPE_LATEST,
    )


def _registry() -> prometheus_client.CollectorRegistry:
    """With PROMETHEUS_MULTIPROC_DIR set, every gunicorn worker writes its counts there and
    any worker answers with the sum; without it, each worker answers with its own."""
    if not settings.PROMETHEUS_MULTIPROC_DIR:
        return prometheus_client.REGISTRY
    registry = prometheus_client.CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _route_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match:
        return match.view_name or match.route
    return STATIC if request.path_info.startswith(settings.STATIC_URL) else UNMATCHED


def _count_decisions(route: str, response: HttpResponse) -> None:
    ELIGIBILITY_CHECKS.labels(route, str(response.status_code)).inc()
    if response.status_code != 200:
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if route == WIDGET_ELIGIBILITY:
        offered = len(body["surveys"])
        if offered:
            ELIGIBILITY_DECISIONS.labels(route, "offered").inc(offered)
        else:
            ELIGIBILITY_DECISIONS.labels(route, "none_eligible").inc()
    elif body["eligible"]:
        ELIGIBILITY_DECISIONS.labels(route, "eligible").inc()
    else:
        for reason in body["reasons"]:
            ELIGIBILITY_DECISIONS.labels(route, reason["code"]).inc()


def count_database_error(sender, request=None, **kwargs) -> None:
    """got_request_exception: Django and HardeningMiddleware send it while handling the error."""
    error = sys.exc_info()[1]
    if isinstance(error, DatabaseError):
        DATABASE_ERRORS.labels(type(error).__name__).inc()


signals.got_request_exception.connect(count_database_error, dispatch_uid="refiner.ops")


# The middleware -----------------------------------------------------------------

PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


def ops_middleware(get_response: Callable) -> Callable:
    def middleware(request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        started = time.perf_counter()
        response = get_response(request)
        seconds = time.perf_counter() - started
        route = _route_name(request)
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        LATENCY.labels(route).observe(seconds)
        if route in (WIDGET_ELIGIBILITY, REST_ELIGIBILITY):
            _count_decisions(route, response)
        _log_request(request, response, seconds)
        return response

    return middleware


# Logs -------------------------------------------------------------------------


def _workspace_id(request: HttpRequest) -> int | None:
    # Set by the REST API's key check and by the widget's key check.
    workspace = getattr(request, "workspace", None) or getattr(request, "widget_workspace", None)
    return workspace.pk if workspace is not None else None


def _log_request(request: HttpRequest, response: HttpResponse, seconds: float) -> None:
    """One line per request: no path (it can hold a user id), no query, body, keys or users."""
    match = getattr(request, "resolver_match", None)
    fields = {
        "method": request.method,
        "route": match.route if match else _route_name(request),
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 1),
        "workspace_id": _workspace_id(request),
    }
    log.info("%s %s %s", fields["method"], fields["route"], fields["status"], extra=fields)

"""Dashboard reads from a read replica (refiner/replicas.py), against a real one.

The routing rules are checked on both databases without a replica. On PostgreSQL the
rest runs against a real streaming replica, the second cluster that `.ci/replica`
makes with pg_basebackup on port 5433: the test database created on the primary
streams to it like everything else. The suite's `replica` alias mirrors the test
database (tests/settings.py); the fixture points it at that cluster. Replay is paused
to make the replica lag on purpose, which shows which database a page read.
Without a replica these tests skip, unless REFINER_REQUIRE_REPLICA=1 (CI).
"""

import copy
import csv
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager

import psycopg
import pytest
from django.contrib.sessions.models import Session
from django.db import connection, connections
from django.http import HttpResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from refiner import replicas
from refiner.databases import PoolingConflict, postgresql
from refiner.models import Workspace
from refiner.replicas import ReplicaReadsMiddleware, ReplicaRouter, reading_replica
from segments.models import Segment
from surveys.models import Survey
from surveys.services import record_answers, record_display
from targeting import eligibility
from tests.clients import signed_in
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory
from tests.servers import ROOT

REPLICA_PORT = int(os.environ.get("REFINER_REPLICA_PORT", "5433"))
MIDDLEWARE_AFTER = "refiner.middleware.TimeBudgetMiddleware"


# The rules, without a replica ----------------------------------------------------


def test_only_dashboard_models_read_the_replica_and_only_when_allowed():
    router = ReplicaRouter()
    assert router.db_for_read(Segment) == "default"
    with reading_replica(True):
        assert router.db_for_read(Segment) == "replica"
        assert router.db_for_read(Survey) == "replica"
        # Who may do what is read where it was last written.
        assert router.db_for_read(Workspace) == "default"
        assert router.db_for_read(Session) == "default"
        with replicas.on_primary():
            assert router.db_for_read(Segment) == "default"
        assert router.db_for_write(Segment) == "default"
    assert router.allow_migrate("replica", "segments") is False
    assert router.allow_migrate("default", "segments") is True


def a_request(method: str, path: str, wrote_until: float | None = None):
    request = getattr(RequestFactory(), method.lower())(path)
    if wrote_until is not None:
        request.COOKIES[replicas.COOKIE] = str(wrote_until)
    return request


@pytest.mark.parametrize(
    "method, path, wrote_until, expected",  # wrote_until: a write's cookie
    [
        ("GET", "/segments/", None, True),
        ("HEAD", "/responses/export.csv", None, True),
        ("POST", "/segments/new/", None, False),
        ("GET", "/api/v1/segments", None, False),
        ("GET", "/admin/", None, False),
        ("GET", "/segments/", 60, False),
        ("GET", "/segments/", -1, True),
        ("GET", "/segments/", "not-a-time", True),
    ],
)
def test_which_requests_may_read_the_replica(method, path, wrote_until, expected):
    # Seconds from now: the parameters are made when the tests are collected.
    if isinstance(wrote_until, int):
        wrote_until = time.time() + wrote_until
    assert replicas.may_read_replica(a_request(method, path, wrote_until)) is expected


def seen_by_the_view(method: str, path: str, settings, *, streaming: bool = False):
    seen = []

    def view(request):
        seen.append(ReplicaRouter().db_for_read(Segment))
        if streaming:
            # A generator: the router is asked only when the chunk is pulled.
            chunks = (ReplicaRouter().db_for_read(Segment).encode() for _ in range(1))
            return StreamingHttpResponse(chunks, content_type="text/csv")
        return HttpResponse("ok")

    response = ReplicaReadsMiddleware(view)(a_request(method, path))
    return seen, response


def test_a_write_marks_the_browser_to_read_the_primary_for_a_while(settings):
    settings.REPLICA_READ_YOUR_WRITES_SECONDS = 7
    seen, response = seen_by_the_view("POST", "/segments/new/", settings)
    assert seen == ["default"]
    cookie = response.cookies[replicas.COOKIE]
    assert cookie["max-age"] == 7 and cookie["httponly"]
    assert 6 < float(cookie.value) - time.time() <= 7.01
    # The cookie makes the next page read the primary.
    assert replicas.may_read_replica(a_request("GET", "/segments/", float(cookie.value))) is False

    seen, response = seen_by_the_view("GET", "/segments/", settings)
    assert seen == ["replica"] and replicas.COOKIE not in response.cookies
    seen, response = seen_by_the_view("POST", "/api/v1/widget/track", settings)
    assert seen == ["default"] and replicas.COOKIE not in response.cookies


def test_a_streamed_export_is_read_in_the_replicas_context_as_it_streams(settings):
    seen, response = seen_by_the_view("GET", "/responses/export.csv", settings, streaming=True)
    # Outside the middleware, after the view returned, as the WSGI server pulls chunks.
    assert ReplicaRouter().db_for_read(Segment) == "default"
    assert list(response.streaming_content) == [b"replica"]


POSTGRESQL = {
    "conn_max_age": 60,
    "connect_timeout": 1,
    "widget_budget_ms": 1000,
    "prepared_statements": True,
    "transaction_pooling": False,
}


def test_a_replica_connects_like_the_primary_and_pooling_drops_startup_options():
    direct = postgresql({"NAME": "refiner"}, **POSTGRESQL)
    assert direct["OPTIONS"]["options"] == "-c statement_timeout=1000"
    assert direct["OPTIONS"]["server_side_binding"] is True

    behind_pgbouncer = {"prepared_statements": False, "transaction_pooling": True}
    pooled = postgresql({"NAME": "refiner"}, **POSTGRESQL | behind_pgbouncer)
    assert "options" not in pooled["OPTIONS"] and "server_side_binding" not in pooled["OPTIONS"]
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    with pytest.raises(PoolingConflict):
        postgresql({"NAME": "refiner"}, **POSTGRESQL | {"transaction_pooling": True})


def settings_under(**environment) -> dict:
    script = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'aliases': sorted(s.DATABASES), 'routers': s.DATABASE_ROUTERS, "
        "'middleware': s.MIDDLEWARE, 'replica': s.DATABASES.get('replica', {}).get('OPTIONS')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {script}"],
        cwd=ROOT,
        env=os.environ
        | {"DJANGO_SETTINGS_MODULE": "refiner.settings", "DEBUG": "true"}
        | {"DATABASE_URL": "postgres://refiner@127.0.0.1:5432/refiner"}
        | environment,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def test_without_a_replica_url_nothing_routes_and_with_one_the_dashboard_may():
    plain = settings_under(DATABASE_REPLICA_URL="")
    assert plain["aliases"] == ["default"] and plain["routers"] == []
    assert "refiner.replicas.ReplicaReadsMiddleware" not in plain["middleware"]

    replica = settings_under(DATABASE_REPLICA_URL="postgres://refiner@10.0.0.2:5432/refiner")
    assert replica["aliases"] == ["default", "replica"]
    assert replica["routers"] == ["refiner.replicas.ReplicaRouter"]
    position = replica["middleware"].index("refiner.replicas.ReplicaReadsMiddleware")
    assert replica["middleware"][position - 1] == MIDDLEWARE_AFTER
    # The replica's statements keep the widget's budget from the first query.
    assert "statement_timeout=1000" in replica["replica"]["options"]


# A real streaming replica (PostgreSQL) -------------------------------------------


class Replica:
    """The replica cluster, seen from a connection of its own."""

    def __init__(self, control: psycopg.Connection):
        self.control = control

    def caught_up(self, timeout: float = 15) -> None:
        """Wait until the replica has replayed everything the primary has written."""
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()")
            written = cursor.fetchone()[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replayed = self.control.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [written]
            ).fetchone()[0]
            if replayed:
                return
            time.sleep(0.05)
        raise AssertionError(f"the replica did not replay up to {written} in {timeout} s")

    @contextmanager
    def lagging(self):
        """The replica stops replaying: what the primary writes now, it does not see."""
        self.caught_up()
        self.control.execute("SELECT pg_wal_replay_pause()")
        while self.control.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] != (
            "paused"
        ):
            time.sleep(0.02)
        try:
            yield
        finally:
            self.control.execute("SELECT pg_wal_replay_resume()")


def replica_unavailable(reason: str) -> None:
    if os.environ.get("REFINER_REQUIRE_REPLICA") == "1":
        pytest.fail(f"replica tests are required (REFINER_REQUIRE_REPLICA=1): {reason}")
    pytest.skip(reason)


@pytest.fixture
def real_replica(transactional_db, settings):
    """The `replica` alias on the real streaming replica, with the router and middleware on."""
    if connection.vendor != "postgresql":
        pytest.skip("A streaming replica is a PostgreSQL feature; SQLite has none.")
    primary = connections["default"].settings_dict
    user = primary["USER"] or "postgres"
    try:
        control = psycopg.connect(
            host="127.0.0.1", port=REPLICA_PORT, user=user, dbname=primary["NAME"],
            connect_timeout=3, autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as e:
        replica_unavailable(
            f"no streaming replica on 127.0.0.1:{REPLICA_PORT} ({e}); run .ci/replica"
        )
    if not control.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
        control.close()
        replica_unavailable(f"127.0.0.1:{REPLICA_PORT} is not a replica")
    # A run stopped while the replica was paused must not leave it behind.
    control.execute("SELECT pg_wal_replay_resume()")

    alias = connections["replica"]
    mirror = alias.settings_dict
    alias.close()
    alias.settings_dict = copy.deepcopy(primary) | {"HOST": "127.0.0.1", "PORT": REPLICA_PORT}
    settings.DATABASE_ROUTERS = ["refiner.replicas.ReplicaRouter"]
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index(MIDDLEWARE_AFTER) + 1, "refiner.replicas.ReplicaReadsMiddleware"
    )
    settings.MIDDLEWARE = middleware
    try:
        yield Replica(control)
    finally:
        alias.close()
        alias.settings_dict = mirror
        control.close()


def server_of(alias: str) -> tuple[bool, int]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery(), inet_server_port()")
        return cursor.fetchone()


def touched(queries, table: str) -> bool:
    return any(f'"{table}"' in query["sql"] for query in queries)


# tests/settings.py declares the alias on PostgreSQL only; on SQLite the fixture skips.
replica_test = pytest.mark.django_db(
    transaction=True, databases=[alias for alias in ("default", "replica") if alias in connections]
)


@replica_test
def test_a_segment_count_reads_the_replica_and_the_widget_the_primary(real_replica, workspace):
    owner = signed_in(workspace, "owner")
    for number in range(3):
        ContactFactory(workspace=workspace, user_id=f"u-{number}")
    segment = SegmentFactory(workspace=workspace, name="Everyone")
    real_replica.caught_up()

    on_replica = CaptureQueriesContext(connections["replica"])
    on_primary = CaptureQueriesContext(connections["default"])
    with on_replica, on_primary:
        response = owner.get(f"/segments/{segment.pk}/size/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert touched(on_replica.captured_queries, "segments_contact")
    assert not touched(on_primary.captured_queries, "segments_contact")
    # The connection the count ran on is the standby on its own port, not the primary.
    assert server_of("replica") == (True, REPLICA_PORT)
    assert server_of("default")[0] is False

    on_replica = CaptureQueriesContext(connections["replica"])
    with on_replica:
        identify = owner.post(
            "/api/v1/widget/identify",
            {"workspace": workspace.widget_key, "user": {"id": "u-9"}},
            content_type="application/json",
        )
        asked = owner.post(
            "/api/v1/widget/eligibility",
            {"workspace": workspace.widget_key, "user_id": "u-9"},
            content_type="application/json",
        )
    assert identify.status_code == 200 and asked.status_code == 200
    assert on_replica.captured_queries == []


@replica_test
def test_a_writes_own_next_page_reads_the_primary_while_the_replica_lags(real_replica, workspace):
    owner = signed_in(workspace, "owner")
    bystander = signed_in(workspace, "owner")  # another browser, which wrote nothing
    with real_replica.lagging():
        created = owner.post("/segments/new/", {"kind": "manual", "name": "Fresh from the primary"})
        assert created.status_code == 302
        assert replicas.COOKIE in created.cookies

        on_replica = CaptureQueriesContext(connections["replica"])
        with on_replica:
            page = owner.get(created.url)
        assert page.status_code == 200 and "Fresh from the primary" in page.content.decode()
        assert on_replica.captured_queries == []

        # The lagging replica, which every other page reads, has no such segment yet.
        assert bystander.get(created.url).status_code == 404
        assert "Fresh from the primary" not in bystander.get("/segments/").content.decode()
    real_replica.caught_up()
    assert bystander.get(created.url).status_code == 200


@replica_test
def test_the_widgets_definitions_never_come_from_a_lagging_replica(real_replica, workspace):
    SurveyFactory(workspace=workspace, name="Old news")
    eligibility.definitions(workspace.pk)
    with real_replica.lagging():
        SurveyFactory(workspace=workspace, name="Just launched")
        eligibility.invalidate(workspace.pk)
        # A dashboard page (the contact page) is the first to need the new version.
        with reading_replica(True):
            assert Survey.objects.filter(workspace=workspace).count() == 1  # the replica lags
            names = {survey.name for survey in eligibility.definitions(workspace.pk).surveys}
    assert names == {"Old news", "Just launched"}


@replica_test
def test_the_csv_export_streams_from_the_replica(real_replica, workspace):
    owner = signed_in(workspace, "owner")
    survey = SurveyFactory(workspace=workspace)
    display = record_display(
        survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now()
    )
    record_answers(display=display, answers={"nps": 9}, completed=True, now=timezone.now())
    real_replica.caught_up()

    on_replica = CaptureQueriesContext(connections["replica"])
    on_primary = CaptureQueriesContext(connections["default"])
    with on_replica, on_primary:
        response = owner.get("/responses/export.csv")
        rows = list(csv_lines(response))
    header, answered = rows
    assert answered[header.index("nps")] == "9"
    assert touched(on_replica.captured_queries, "surveys_response")
    assert not touched(on_primary.captured_queries, "surveys_response")


def csv_lines(response):
    text = b"".join(response.streaming_content).decode()
    return csv.reader(text.splitlines())

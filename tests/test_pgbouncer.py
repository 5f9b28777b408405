"""The app behind PgBouncer in transaction mode (DB_TRANSACTION_POOLING; docs/scaling.md).

Debian's PgBouncer, started here with its own configuration on a free port in front
of the test database, and a production gunicorn (tests/servers.py) connected through
it: the widget's calls, the REST API and a dashboard page answer, and each request
keeps its own time budget although PgBouncer refuses the startup option that carries
it without a pooler, and although a session's SET would leak to other clients.
PostgreSQL only; without PgBouncer the tests skip, unless REFINER_REQUIRE_PGBOUNCER=1 (CI).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django.test import override_settings

from refiner.budget import Budget, is_timeout
from refiner.models import Workspace
from segments.models import Contact
from tests import servers
from tests.clients import timed
from tests.factories import ContactFactory, MembershipFactory, SegmentFactory, SurveyFactory
from tests.served_dashboard import dashboard, signed_in_session
from tests.servers import call, free_port, gunicorn, served_database, stop, wait_for_port

PGBOUNCER = "/usr/sbin/pgbouncer"
THROUGH_HTTPS = {"X-Forwarded-Proto": "https"}
# Tight budgets for the budget's test, wide enough for a cold worker's first request.
TIGHT = {"WIDGET_TIME_BUDGET_MS": "500", "REQUEST_TIME_BUDGET_MS": "2500"}
static_root = servers.static_root


def pgbouncer_unavailable(reason: str) -> None:
    if os.environ.get("REFINER_REQUIRE_PGBOUNCER") == "1":
        pytest.fail(f"PgBouncer tests are required (REFINER_REQUIRE_PGBOUNCER=1): {reason}")
    pytest.skip(reason)


def pgbouncer_config(directory: Path, port: int, host: str, server_port: int) -> str:
    return f"""
[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/users.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 50
logfile = {directory}/pgbouncer.log
pidfile = {directory}/pgbouncer.pid
"""


@contextmanager
def pgbouncer(user: str, host: str, server_port: int) -> Iterator[int]:
    """PgBouncer in transaction mode in front of `host:server_port`; yields its port."""
    if not os.access(PGBOUNCER, os.X_OK):
        pgbouncer_unavailable(
            f"PgBouncer is not installed at {PGBOUNCER} (apt-get install pgbouncer)"
        )
    # PgBouncer will not run as root: as root, it runs as postgres in a directory of its own.
    as_root = os.geteuid() == 0
    directory = Path(tempfile.mkdtemp(prefix="refiner-pgbouncer-"))
    port = free_port()
    (directory / "users.txt").write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(pgbouncer_config(directory, port, host, server_port))
    if as_root:
        shutil.chown(directory, "postgres")
        for path in directory.iterdir():
            shutil.chown(path, "postgres")
    process = subprocess.Popen(
        [PGBOUNCER, str(config)],
        user="postgres" if as_root else None,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, "pgbouncer", directory / "pgbouncer.log")
        yield port
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def behind_pgbouncer(transactional_db, tmp_path, request, static_root):
    """Starts gunicorn on the test database through PgBouncer: `with serve(settings) as
    (app port, PgBouncer's URL, keys)`."""
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; SQLite has none to pool.")
    direct_url, keys = served_database(tmp_path, request)
    db = connection.settings_dict
    user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432

    @contextmanager
    def serve(settings: dict | None = None):
        with pgbouncer(user, host, int(port)) as pooler:
            pooled_url = direct_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{pooler}/")
            environment = {
                "DB_TRANSACTION_POOLING": "true",
                # Connections outlive requests, so successive statements of one client
                # connection meet different server connections.
                "CONN_MAX_AGE": "60",
            } | (settings or {})
            with gunicorn(
                tmp_path, pooled_url, static_root, workers=2, settings=environment
            ) as app:
                yield app, pooled_url, keys

    return serve


def api(port: int, path: str, body: dict | None = None, key: str | None = None):
    headers = THROUGH_HTTPS | ({"Authorization": f"Bearer {key}"} if key else {})
    method = "POST" if body is not None else "GET"
    status, _, raw = call(f"http://localhost:{port}{path}", method, body=body, headers=headers)
    return status, json.loads(raw) if raw else None


@pytest.mark.django_db
def test_pgbouncer_refuses_the_startup_option_a_direct_connection_opens_with():
    if connection.vendor != "postgresql":
        pytest.skip("PgBouncer pools PostgreSQL connections; SQLite has none to pool.")
    db = connection.settings_dict
    user, host, port = db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    with pgbouncer(user, host, int(port)) as pooler:
        address = {"host": "127.0.0.1", "port": pooler, "user": user, "dbname": db["NAME"]}
        with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
            psycopg.connect(**address, options="-c statement_timeout=1000").close()
        with psycopg.connect(**address) as plain:
            assert plain.execute("SELECT 1").fetchone() == (1,)


def test_the_widget_the_api_and_the_dashboard_work_through_pgbouncer(behind_pgbouncer, settings):
    # A loaded CI machine must not turn a slow call into a 503: budgets are tested below.
    roomy = {"WIDGET_TIME_BUDGET_MS": "10000", "DB_CONNECT_TIMEOUT": "10"}
    with behind_pgbouncer(roomy) as (app, _, keys):
        widget_api_and_dashboard(app, keys, settings)


def widget_api_and_dashboard(app: int, keys: dict, settings) -> None:
    workspace = Workspace.objects.get(widget_key=keys["widget_key"])
    SurveyFactory(workspace=workspace, name="Launch NPS")
    SegmentFactory(workspace=workspace, name="Everyone")
    widget_key = keys["widget_key"]

    # Enough calls for psycopg to prepare statements, were it allowed to.
    for number in range(8):
        user = {"id": f"u-{number}", "plan": "pro"}
        assert (
            api(app, "/api/v1/widget/identify", {"workspace": widget_key, "user": user})[0] == 200
        )
        track = {"workspace": widget_key, "user_id": f"u-{number}", "event": "opened"}
        assert api(app, "/api/v1/widget/track", track)[0] == 202
        asked = {"workspace": widget_key, "user_id": f"u-{number}"}
        status, body = api(app, "/api/v1/widget/eligibility", asked)
        assert status == 200 and [s["name"] for s in body["surveys"]] == ["Launch NPS"]

    status, body = api(app, "/api/v1/contacts", key=keys["secret_key"])
    assert status == 200 and len(body["results"]) == 8
    session = signed_in_session(settings, MembershipFactory(workspace=workspace).user)
    status, _, page = dashboard(app, "GET", "/segments/", session)
    assert status == 200 and "Everyone" in page.decode()


@contextmanager
def contacts_locked(db_settings: dict) -> Iterator[None]:
    """Every query of the contacts table waits, on a direct connection of its own."""
    holder = psycopg.connect(
        host=db_settings["HOST"] or "127.0.0.1", port=db_settings["PORT"] or 5432,
        user=db_settings["USER"] or "postgres", dbname=db_settings["NAME"],
    )  # fmt: skip
    try:
        holder.execute(f"LOCK TABLE {Contact._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        holder.rollback()
        holder.close()


def test_each_request_keeps_its_own_budget_through_pgbouncer(behind_pgbouncer, settings):
    with behind_pgbouncer(TIGHT) as (app, pooled_url, keys):
        budgets_kept(app, pooled_url, keys, settings)


def budgets_kept(app: int, pooled_url: str, keys: dict, settings) -> None:
    widget_budget = int(TIGHT["WIDGET_TIME_BUDGET_MS"]) / 1000
    request_budget = int(TIGHT["REQUEST_TIME_BUDGET_MS"]) / 1000
    workspace = Workspace.objects.get(widget_key=keys["widget_key"])
    ContactFactory(workspace=workspace, user_id="ada")
    segment = SegmentFactory(workspace=workspace, name="Everyone")
    session = signed_in_session(settings, MembershipFactory(workspace=workspace).user)
    identify = {"workspace": keys["widget_key"], "user": {"id": "ada"}}
    # Each worker's first request imports and connects: warm both up.
    for _ in range(4):
        api(app, "/api/v1/widget/identify", identify)
        dashboard(app, "GET", f"/segments/{segment.pk}/size/", session)
    assert api(app, "/api/v1/widget/identify", identify)[0] == 200

    with contacts_locked(connection.settings_dict):
        (status, body), widget_took = timed(lambda: api(app, "/api/v1/widget/identify", identify))
        assert (status, body["error"]["code"]) == (503, "timeout")
        size = f"/segments/{segment.pk}/size/"
        (status, _, _), page_took = timed(lambda: dashboard(app, "GET", size, session))
        assert status == 503
    # The widget stopped at its own budget, the dashboard at its larger one.
    assert widget_budget <= widget_took < request_budget
    assert request_budget <= page_took < request_budget + 3

    # No limit stayed behind on PgBouncer's server connections for the next client.
    with psycopg.connect(pooled_url, autocommit=True) as client:
        for _ in range(8):
            assert client.execute("SHOW statement_timeout").fetchone()[0] == "0"
    assert api(app, "/api/v1/widget/identify", identify)[0] == 200


# The budget's pooled path, in-process (PostgreSQL, no PgBouncer needed) --------------


@pytest.fixture
def pooled_budget(transactional_db):
    """The test connection as DB_TRANSACTION_POOLING=true makes it: client-side binding."""
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's; SQLite's budget is a progress handler.")
    options = connection.settings_dict["OPTIONS"]
    saved = dict(options)
    connection.close()
    options.pop("server_side_binding", None)
    options.pop("prepare_threshold", None)
    # Restored here, before the test's flush opens a connection outside any request.
    pooling = override_settings(DB_TRANSACTION_POOLING=True)
    pooling.enable()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            before = cursor.fetchone()[0]
        yield
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            # Every limit was LOCAL to its statement's transaction.
            assert cursor.fetchone()[0] == before
    finally:
        pooling.disable()
        connection.close()
        options.clear()
        options.update(saved)


def test_pooled_statements_answer_as_without_the_limit_in_front(pooled_budget, workspace):
    ContactFactory(workspace=workspace, user_id="ada")
    ContactFactory(workspace=workspace, user_id="bob")
    with Budget(5000).applied():
        assert sorted(Contact.objects.values_list("user_id", flat=True)) == ["ada", "bob"]
        # The row count is the statement's, not the SET's in front of it.
        assert Contact.objects.filter(workspace=workspace).update(name="x") == 2
        with connection.cursor() as cursor:
            # The statement itself ran under the limit of what the request has left.
            cursor.execute("SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'")
            assert 3000 < cursor.fetchone()[0] <= 5000


@pytest.mark.parametrize("many", [False, True])
def test_a_pooled_statement_stops_at_the_requests_budget(pooled_budget, many):
    started = time.monotonic()
    with pytest.raises(OperationalError) as stopped, Budget(300).applied():
        with connection.cursor() as cursor:
            if many:
                cursor.executemany("SELECT pg_sleep(%s)", [(0.01,), (2,)])
            else:
                cursor.execute("SELECT pg_sleep(2)")
    assert is_timeout(stopped.value)
    assert time.monotonic() - started < 1.5


def test_a_rollback_to_a_savepoint_runs_after_a_failed_pooled_statement(pooled_budget, workspace):
    ContactFactory(workspace=workspace, user_id="ada")
    with Budget(5000).applied(), transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            ContactFactory(workspace=workspace, user_id="ada")
        assert Contact.objects.filter(workspace=workspace).count() == 1

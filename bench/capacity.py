"""The figures behind docs/scaling.md's capacity model, measured on this machine.

    .venv/bin/python bench/capacity.py            # about a minute; writes bench/results-capacity.md

For each widget call (eligibility, track, identify of a new user and of a known one):
the queries it sends (Django's CaptureQueriesContext), the app's CPU per call (this
process's CPU time, the call made through Django's test client, so with no HTTP
server around it) and PostgreSQL's CPU per call (the CPU time its backend process
spent, read from /proc, so this must run on the database's machine). Then the bytes
per event and per contact of a seeded workspace (pg_total_relation_size). The
database is BENCH_DATABASE_URL's server, database `refiner_capacity`, made when missing.

    DB_TRANSACTION_POOLING=true .venv/bin/python bench/capacity.py

measures the same calls with the settings used behind PgBouncer (no prepared
statements, the budget sent with each statement), still straight to PostgreSQL, and
writes bench/results-capacity-pooled.md.
"""

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, ensure_database, load_bench_module, setup_django, table  # noqa: E402

CALLS = int(os.environ.get("CAPACITY_CALLS", "400"))
ELIGIBILITY = "/api/v1/widget/eligibility"
CONTACTS = int(os.environ.get("CAPACITY_CONTACTS", "10000"))
TICKS = os.sysconf("SC_CLK_TCK")


def prepare_environment() -> None:
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/refiner_bench")
    os.environ["BENCH_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/refiner_capacity"
    # Production's settings, except what a process calling itself cannot have.
    os.environ |= {
        "DEBUG": "false",
        "SECURE_SSL_REDIRECT": "false",
        "RATE_LIMIT_WIDGET_PER_MINUTE": "0",
        "LOG_REQUESTS": "false",
        "LOG_LEVEL": "ERROR",
        # A busy shared machine can stall a call past the widget's second: the budget
        # is not what is measured here.
        "WIDGET_TIME_BUDGET_MS": "30000",
    }


def backend_cpu_seconds(pid: int) -> float:
    """User + system CPU of one PostgreSQL backend process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(name: str, bodies, path: str, *, again: bool = False) -> dict:
    """The figures of CALLS calls, each with a body of its own; `again`: each body was
    sent once before (for eligibility, the answer this process kept)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()

    def call(body) -> None:
        response = client.post(path, body, content_type="application/json")
        assert response.status_code < 300, (name, response.status_code, response.content[:200])

    for body in bodies(20, warm=True):  # prepared statements, caches, imports
        call(body)
    work = list(bodies(CALLS, warm=False))
    for body in work if again else []:
        call(body)
    with CaptureQueriesContext(connection) as captured:
        call(work[0])
    queries = len(captured.captured_queries)
    pid = connection.connection.info.backend_pid
    database_before, app_before, wall_before = (
        backend_cpu_seconds(pid),
        time.process_time(),
        time.perf_counter(),
    )
    for body in work:
        call(body)
    wall = time.perf_counter() - wall_before
    app = time.process_time() - app_before
    assert connection.connection.info.backend_pid == pid, "the connection changed mid-run"
    database = backend_cpu_seconds(pid) - database_before
    return {
        "call": name,
        "queries": queries,
        "app CPU ms": app / CALLS * 1000,
        "PostgreSQL CPU ms": database / CALLS * 1000,
        "PostgreSQL CPU ms per query": database / CALLS / queries * 1000,
        "wall ms": wall / CALLS * 1000,
    }


def storage(workspace_id: int) -> dict:
    from django.db import connection

    tables = ["segments_event", "segments_contact", "segments_contactvalue"]
    with connection.cursor() as cursor:
        # The last request left its budget on the connection; this is no request.
        cursor.execute("SET statement_timeout = 0")
        # Earlier runs' workspaces were deleted: their dead rows would count as size.
        for name in tables:
            cursor.execute(f"VACUUM FULL {name}")
        # The event table is partitioned by month: its size is its partitions'.
        cursor.execute(
            "SELECT relname, CASE WHEN relkind = 'p' THEN (SELECT sum(pg_total_relation_size("
            "relid)) FROM pg_partition_tree(oid)) ELSE pg_total_relation_size(oid) END"
            " FROM pg_class WHERE relname = ANY(%s) AND relkind IN ('r', 'p')",
            [tables],
        )
        sizes = dict(cursor.fetchall())
        cursor.execute("SELECT count(*) FROM segments_event")
        events = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM segments_contact")
        contacts = cursor.fetchone()[0]
    contact_bytes = sizes["segments_contact"] + sizes["segments_contactvalue"]
    return {
        "events": events,
        "bytes per event": sizes["segments_event"] / events,
        "contacts": contacts,
        "bytes per contact (row + traits)": contact_bytes / contacts,
    }


def main() -> None:
    prepare_environment()
    setup_django()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    eligibility = load_bench_module("eligibility")
    widget_key, users = eligibility.prepare(CONTACTS, 10, log=lambda *_: None)
    from refiner.models import Workspace

    workspace_id = Workspace.objects.get(widget_key=widget_key).pk
    run = time.time_ns()
    page = "https://app.example.com/app/reports"
    if len(users) < CALLS + 20:
        raise SystemExit(f"CAPACITY_CALLS must leave 20 of the {len(users)} users to warm up")

    def eligibility_bodies(count, warm):
        # The warm-up asks for the last users, so each timed call is its user's first
        # check in this process (but the first, whose queries were counted before it)
        # unless all were sent `again`.
        chosen = users[-count:] if warm else users[:count]
        return ({"workspace": widget_key, "user_id": user_id, "url": page}
                for user_id in chosen)  # fmt: skip

    def track_bodies(count, warm):
        return ({"workspace": widget_key, "user_id": users[i % len(users)], "event": "opened"}
                for i in range(count))  # fmt: skip

    def new_user_bodies(count, warm):
        tag = "warm" if warm else "new"
        return ({"workspace": widget_key,
                 "user": {"id": f"{tag}-{run}-{i}", "plan": "pro", "seats": i}}
                for i in range(count))  # fmt: skip

    def known_user_bodies(count, warm):
        return ({"workspace": widget_key, "user": {"id": users[i % len(users)], "plan": "pro"}}
                for i in range(count))  # fmt: skip

    rows = [
        measure("eligibility, a contact's first", eligibility_bodies, ELIGIBILITY),
        measure("eligibility, answer kept", eligibility_bodies, ELIGIBILITY, again=True),
        measure("track", track_bodies, "/api/v1/widget/track"),
        measure("identify (new user)", new_user_bodies, "/api/v1/widget/identify"),
        measure("identify (known user)", known_user_bodies, "/api/v1/widget/identify"),
    ]
    headers = list(rows[0])
    calls = table(headers, [[f"{r[h]:.2f}" if isinstance(r[h], float) else r[h] for h in headers]
                            for r in rows])  # fmt: skip
    stored = storage(workspace_id)
    sizes = table(list(stored), [[f"{v:,.0f}" for v in stored.values()]])
    from django.conf import settings

    pooled = settings.DB_TRANSACTION_POOLING
    mode = "transaction-pooling settings" if pooled else "default settings"
    output = (
        f"# Capacity figures ({mode}, {CONTACTS:,} contacts seeded, {CALLS} calls each, "
        f"{os.cpu_count()} CPUs)\n\n{calls}\n\n{sizes}\n"
    )
    print(output)
    name = "results-capacity-pooled.md" if pooled else "results-capacity.md"
    (ROOT / "bench" / name).write_text(output)


if __name__ == "__main__":
    main()

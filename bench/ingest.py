"""Ingestion over HTTP: identify and track throughput next to ping, storage per event, races.

    .venv/bin/python bench/ingest.py [--requests 2000] [--segments]
        [--servers gunicorn granian gunicorn granian]

Same gunicorn (-w 2; or granian with 2 WSGI workers, `--servers`), same run, 100
concurrent connections. `identify` makes a new contact each call; `identify again`
repeats 500 known users unchanged, as the widget does on every page load; `track`
records events of 500 known users. Storage: growth of the app's tables
(pg_total_relation_size of each table and its partitions, indexes and TOAST
included) per tracked event.
Race: 50 identifies of one new user at the same instant must leave exactly one contact.
`--segments` gives the workspace segments whose rules read what identify and track write
(traits, the tracked event, a reference), so the run prices keeping their membership.
"""

import argparse
import json
import sys
import threading

from common import (
    SERVERS,
    Server,
    database_url,
    load,
    load_bench_module,
    request,
    setup_django,
    table,
)

TABLES = ["segments_contact", "segments_contactvalue", "segments_event", "segments_eventtotal"]
RACERS = 50


# Rules over what the bench writes: traits of identify, the event of track, a reference.
BENCH_RULES = [
    {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"},
    {"type": "event", "event": "page_viewed", "operator": "at_least", "value": 3,
     "within_days": 7},
    {"type": "group", "match": "all", "conditions": [
        {"type": "attribute", "attribute": "seats", "operator": "greater_than", "value": 10},
        {"type": "attribute", "attribute": "is_admin", "operator": "is_true"},
    ]},
]  # fmt: skip


def add_segments(workspace) -> None:
    from segments.models import Segment

    made = [
        Segment.objects.create(workspace=workspace, name=f"bench {n}", rules=rule)
        for n, rule in enumerate(BENCH_RULES)
    ]
    reference = {"type": "segment", "segment": made[0].pk, "operator": "in"}
    Segment.objects.create(workspace=workspace, name="bench reference", rules={
        "type": "group", "match": "all", "conditions": [reference, BENCH_RULES[1]]})  # fmt: skip


def fresh_workspace():
    from psycopg import connect

    from refiner.models import Workspace

    seed = load_bench_module("seed")
    old = list(Workspace.objects.filter(name="bench-ingest").values_list("pk", flat=True))
    with connect(database_url()) as connection, connection.cursor() as cursor:
        for workspace_id in old:
            seed.delete_workspace(cursor, workspace_id)
    Workspace.objects.filter(pk__in=old).delete()
    return Workspace.objects.create(name="bench-ingest")


def relation_bytes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        # A partitioned table (events, by month) holds no rows itself: sum its partitions.
        cursor.execute(
            "SELECT c.relname, sum(pg_total_relation_size(tree.relid))::bigint"
            " FROM pg_class c, pg_partition_tree(c.oid) tree"
            " WHERE c.relname = ANY(%s) GROUP BY c.relname",
            [TABLES],
        )
        return dict(cursor.fetchall())


def race(port: int, widget_key: str) -> dict:
    """50 threads identify the same new user at once; count the contacts it leaves."""
    from segments.models import Contact

    user_id = "race-user"
    barrier = threading.Barrier(RACERS)
    statuses: list = []

    def racer(number: int) -> None:
        body = json.dumps(
            {"workspace": widget_key, "user": {"id": user_id, "plan": "pro", "n": number}}
        ).encode()
        barrier.wait()
        try:
            statuses.append(request("POST", port, "/api/v1/widget/identify", body)[0])
        except OSError as problem:
            statuses.append(repr(problem))

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    contacts = Contact.objects.filter(workspace__widget_key=widget_key, user_id=user_id).count()
    return {"ok": statuses.count(200), "others": [s for s in statuses if s != 200],
            "contacts": contacts}  # fmt: skip


def run(
    requests: int,
    seconds: float,
    log=print,
    segments: bool = False,
    servers: tuple[str, ...] = ("gunicorn",),
) -> list[dict]:
    """Each server of `servers` in turn (a name may come back, to alternate them), each
    on a fresh workspace; the results of each, in that order."""
    runs = []
    for kind in servers:
        log(f"\n{kind}, 2 workers:\n")
        runs.append(measure(requests, seconds, log, segments, kind))
    if len(servers) > 1:
        log("\n" + compare(runs))
    return runs


def measure(requests: int, seconds: float, log, segments: bool, kind: str) -> dict:
    workspace = fresh_workspace()
    if segments:
        add_segments(workspace)
    key = workspace.widget_key

    def identify(number: int) -> bytes:
        user = {
            "id": f"ingest-{number}",
            "email": f"ingest{number}@example.com",
            "plan": ["free", "pro"][number % 2],
            "seats": number % 50,
            "signed_up_at": "2025-05-01T10:00:00Z",
            "is_admin": number % 7 == 0,
        }
        return json.dumps({"workspace": key, "user": user}).encode()

    def track(number: int) -> bytes:
        body = {"workspace": key, "user_id": f"ingest-{number % 500}", "event": "page_viewed"}
        return json.dumps(body).encode()

    results = {"server": kind}
    with Server(kind=kind) as server:
        load(server.port, "GET", "/api/v1/ping", requests=200)
        results["ping"] = load(server.port, "GET", "/api/v1/ping", requests=requests,
                               seconds=seconds, cpu=server.cpu_seconds)  # fmt: skip
        results["identify"] = load(server.port, "POST", "/api/v1/widget/identify", identify,
                                   requests=requests, seconds=seconds,
                                   cpu=server.cpu_seconds)  # fmt: skip
        # What the widget sends on every page load: a known user, nothing changed.
        results["identify again"] = load(server.port, "POST", "/api/v1/widget/identify",
                                         lambda number: identify(number % 500),
                                         requests=requests, seconds=seconds,
                                         cpu=server.cpu_seconds)  # fmt: skip
        before = relation_bytes()
        results["track"] = load(server.port, "POST", "/api/v1/widget/track", track,
                                requests=requests, seconds=seconds, expect=202,
                                cpu=server.cpu_seconds)  # fmt: skip
        after = relation_bytes()
        results["race"] = race(server.port, key)
    tracked = results["track"]["requests"] - results["track"]["errors"]
    results["bytes"] = {t: after.get(t, 0) - before.get(t, 0) for t in TABLES}
    results["tracked"] = tracked
    log(report(results))
    return results


def report(results: dict) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}"

    ping = results["ping"]["rps"]
    rows = [
        [
            name,
            r["requests"],
            r["errors"],
            f"{r['rps']:.0f}",
            f"{r['rps'] / ping:.0%}",
            f"{r['cpu_ms']:.2f}",
            ms(r["p50"]),
            ms(r["p95"]),
            ms(r["p99"]),
        ]  # fmt: skip
        for name, r in ((n, results[n]) for n in ("ping", "identify", "identify again", "track"))
    ]
    lines = [
        table(
            [
                "endpoint",
                "requests",
                "errors",
                "req/s @100",
                "of ping",
                "server CPU ms/req",
                "p50 ms",
                "p95 ms",
                "p99 ms",
            ],  # fmt: skip
            rows,
        ),
        "",
    ]
    tracked = max(results["tracked"], 1)
    per_table = ", ".join(f"{t} {b / tracked:.0f} B" for t, b in results["bytes"].items())
    total = sum(results["bytes"].values()) / tracked
    lines.append(
        f"storage per tracked event: {total:.0f} bytes in all ({per_table}); a track moves "
        f"the contact's last_seen_at (a row rewrite, reclaimed by VACUUM) at most once a minute"
    )
    race = results["race"]
    lines.append(
        f"{RACERS} concurrent identifies of one new user: {race['ok']} answered 200, "
        f"{race['contacts']} contact(s) exist"
        + (f"; other answers {race['others'][:3]}" if race["others"] else "")  # fmt: skip
    )
    return "\n".join(lines)


ENDPOINTS = ("ping", "identify", "identify again", "track")


def compare(runs: list[dict]) -> str:
    """One line per server and endpoint: what the servers differ in, side by side."""
    rows = [
        [
            r["server"],
            name,
            f"{r[name]['rps']:.0f}",
            f"{r[name]['rps'] / r['ping']['rps']:.0%}",
            f"{r[name]['cpu_ms']:.2f}",
            f"{r[name]['p50'] * 1000:.1f}",
            f"{r[name]['p99'] * 1000:.1f}",
        ]  # fmt: skip
        for r in runs
        for name in ENDPOINTS
    ]
    headers = ["server", "endpoint", "req/s @100", "of ping", "CPU ms/req", "p50 ms", "p99 ms"]
    return table(headers, rows)


def passed(runs: list[dict]) -> bool:
    return all(
        all(results[n]["errors"] == 0 for n in ENDPOINTS)
        and results["race"]["contacts"] == 1
        and results["race"]["ok"] == RACERS
        for results in runs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--segments", action="store_true", help="give the workspace segments")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=["gunicorn"],
        help="servers to load in turn, e.g. gunicorn granian gunicorn granian",
    )
    arguments = parser.parse_args()
    setup_django()
    runs = run(
        arguments.requests,
        arguments.seconds,
        segments=arguments.segments,
        servers=tuple(arguments.servers),
    )
    sys.exit(0 if passed(runs) else 1)


if __name__ == "__main__":
    main()

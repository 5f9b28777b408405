"""CPU per request of the widget's hot paths inside one process, with queries counted.

    .venv/bin/python bench/widget_cpu.py [--requests 2000] [--profile eligibility]

The production settings the load tests use (DEBUG off, rate limits off), Django's WSGI
handler called directly: no server, no sockets, so what is left is the app's own
cost. Prints the CPU time (this process only, not PostgreSQL's) per request of the
trivial view, an eligibility check, a track of a known user and an identify of a new
user, their share of the trivial view's cost, and how many queries each makes.
`--profile NAME` prints cProfile's top functions for that endpoint.
"""

import argparse
import io
import itertools
import json
import os
import random
import sys
import time

from common import SERVER_SETTINGS, load_bench_module, setup_django, table

# Every body numbered afresh: each identify is of a user never seen before.
NUMBERS = itertools.count()


def production_settings() -> None:
    """What bench/common.py's Server gives gunicorn, so this measures the same code."""
    os.environ.update(SERVER_SETTINGS)


def environ(method: str, path: str, body: bytes | None) -> dict:
    body = body or b""
    return {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def call(application, method: str, path: str, body: bytes | None, expect: int) -> None:
    statuses = []
    chunks = application(environ(method, path, body), lambda s, h, e=None: statuses.append(s))
    b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    if not statuses[0].startswith(str(expect)):
        raise RuntimeError(f"{method} {path}: {statuses[0]}")


def endpoints(widget_key: str, users: list[str], ingest_key: str) -> dict:
    picker = random.Random(7)

    def eligibility(number: int) -> bytes:
        body = {"workspace": widget_key, "user_id": picker.choice(users),
                "url": "https://app.example.com/app/reports"}  # fmt: skip
        return json.dumps(body).encode()

    def track(number: int) -> bytes:
        user_id = f"cpu-{KNOWN['round']}-{number % 500}"
        body = {"workspace": ingest_key, "user_id": user_id, "event": "page_viewed"}
        return json.dumps(body).encode()

    run = time.time_ns()

    def identify(number: int) -> bytes:
        user = {"id": f"cpu-new-{run}-{number}", "email": f"cpu{number}@example.com",
                "plan": ["free", "pro"][number % 2], "seats": number % 50,
                "signed_up_at": "2025-05-01T10:00:00Z", "is_admin": number % 7 == 0}  # fmt: skip
        return json.dumps({"workspace": ingest_key, "user": user}).encode()

    return {
        "ping": ("GET", "/api/v1/ping", None, 200),
        "eligibility": ("POST", "/api/v1/widget/eligibility", eligibility, 200),
        "track": ("POST", "/api/v1/widget/track", track, 202),
        "identify (new user)": ("POST", "/api/v1/widget/identify", identify, 200),
    }


KNOWN = {"round": 0}


def known_users(application, key: str) -> None:
    """500 new users for track to name: seen just now, as a user who tracks is, so no
    track moves their last_seen_at (once a minute) while it is measured."""
    KNOWN["round"] += 1
    for number in range(500):
        user_id = f"cpu-{KNOWN['round']}-{number}"
        body = json.dumps({"workspace": key, "user": {"id": user_id}}).encode()
        call(application, "POST", "/api/v1/widget/identify", body, 200)


def measure(application, spec, requests: int, show: bool = False) -> tuple[float, int]:
    """CPU ms per request of this process, and queries per request (of one more call)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    method, path, body, expect = spec
    for _ in range(20):
        call(application, method, path, body(next(NUMBERS)) if body else None, expect)
    start = time.process_time()
    for _ in range(requests):
        call(application, method, path, body(next(NUMBERS)) if body else None, expect)
    cpu = (time.process_time() - start) * 1000 / requests
    with CaptureQueriesContext(connection) as queries:
        call(application, method, path, body(next(NUMBERS)) if body else None, expect)
    if show:
        print(f"{method} {path}:", *(q["sql"][:160] for q in queries), sep="\n  ")
    return cpu, len(queries)


def profile(application, spec, requests: int) -> str:
    import cProfile
    import pstats

    method, path, body, expect = spec
    for _ in range(20):
        call(application, method, path, body(next(NUMBERS)) if body else None, expect)
    # CPU time, not wall time: waiting on PostgreSQL is not what this looks for.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(requests):
        call(application, method, path, body(next(NUMBERS)) if body else None, expect)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats(
        os.environ.get("PROFILE_SORT", "cumulative")
    ).print_stats(70)
    return out.getvalue()


def seeded(eligibility, arguments) -> tuple[str, list[str]]:
    """The eligibility bench's workspace: seeded afresh, or the last one with --reuse."""
    from refiner.models import Workspace
    from segments.models import Contact

    workspace = Workspace.objects.filter(name="bench-eligibility").order_by("pk").last()
    if not arguments.reuse or workspace is None:
        return eligibility.prepare(arguments.contacts, 100, log=lambda *a: None)
    users = Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True)
    return workspace.widget_key, list(users[:500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", action="store_true", help="print each endpoint's SQL")
    parser.add_argument("--reuse", action="store_true", help="the last seeded workspace")
    parser.add_argument("--profile", help="print cProfile's top functions for this endpoint")
    arguments = parser.parse_args()
    production_settings()
    setup_django()
    from django.core.wsgi import get_wsgi_application

    ingest = load_bench_module("ingest")
    eligibility = load_bench_module("eligibility")
    widget_key, users = seeded(eligibility, arguments)
    ingest_key = ingest.fresh_workspace().widget_key
    application = get_wsgi_application()
    specs = endpoints(widget_key, users, ingest_key)
    if arguments.profile:
        known_users(application, ingest_key)
        print(profile(application, specs[arguments.profile], arguments.requests))
        return
    figures: dict[str, list[float]] = {name: [] for name in specs}
    queries = {}
    for _ in range(arguments.rounds):  # alternated, so each sees the same machine load
        for name, spec in specs.items():
            if name == "track":
                known_users(application, ingest_key)
            cpu, queries[name] = measure(application, spec, arguments.requests, arguments.queries)
            figures[name].append(cpu)
    ping = min(figures["ping"])
    rows = [
        [name, " / ".join(f"{c:.3f}" for c in cpu), f"{ping / min(cpu):.0%}", queries[name]]
        for name, cpu in figures.items()
    ]
    print(table(["endpoint", "CPU ms/request (rounds)", "ping's cost / this", "queries"], rows))


if __name__ == "__main__":
    main()

"""Every benchmark in one go, on its own PostgreSQL database (`make bench`).

    .venv/bin/python bench/run_all.py                   # small: a few minutes
    BENCH_SCALE=full .venv/bin/python bench/run_all.py  # 1M contacts, 10M events
    BENCH_SERVERS="gunicorn granian" .venv/bin/python bench/run_all.py  # both servers

Creates and migrates `refiner_bench_small` or, at full scale, `refiner_bench`
(BENCH_DATABASE_URL overrides either), seeds,
times segments and every dashboard page, load-tests eligibility and ingestion
against a gunicorn it starts and stops, sends hostile input at a 100k-contact
workspace (the full scale reuses the million-contact one), and writes the output
to bench/results-<scale>.md. Exits non-zero when something errs (a disagreement
between ORM and hand-written SQL, an HTTP error, a page that does not answer 200,
a duplicated contact); a missed target is reported, not an error.
"""

import os
import sys
import time
from pathlib import Path

from common import ensure_database, load_bench_module, setup_django

SCALES = {
    "small": {
        "contacts": 10_000,
        "repeat": 5,
        "eligibility_contacts": 300,
        "eligibility_requests": 2000,
        "ingest_requests": 1000,
        "seconds": 30,
        "hostile_contacts": 100_000,
        "hostile_seconds": 30,
    },
    "full": {
        "contacts": 1_000_000,
        "repeat": 3,
        "eligibility_contacts": 2000,
        "eligibility_requests": 6000,
        "ingest_requests": 4000,
        "seconds": 60,
        "hostile_seconds": 60,
    },
}


BENCH_SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASES = {"small": "refiner_bench_small", "full": "refiner_bench"}


def main() -> int:
    scale = os.environ.get("BENCH_SCALE", "small")
    if scale not in SCALES:
        print(f"BENCH_SCALE must be one of {', '.join(SCALES)}", file=sys.stderr)
        return 2
    size = SCALES[scale]
    # The production servers the load tests run in turn, e.g. "gunicorn granian".
    servers = tuple(os.environ.get("BENCH_SERVERS", "gunicorn").split())
    lines: list[str] = []

    def log(text: str = "") -> None:
        print(text, flush=True)
        lines.append(str(text))

    started = time.perf_counter()
    # Each size seeds a database of its own: after a full run, the small run's VACUUM
    # would otherwise go through the million-contact tables' indexes (minutes).
    os.environ.setdefault("BENCH_DATABASE_URL", f"{BENCH_SERVER}/{DATABASES[scale]}")
    ensure_database()
    # The dashboard's pages run in this process: one JSON log line each would bury the output.
    os.environ.setdefault("LOG_REQUESTS", "false")
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from segments.models import Contact

    seed = load_bench_module("seed")
    segments = load_bench_module("segments")
    eligibility = load_bench_module("eligibility")
    ingest = load_bench_module("ingest")
    hostile = load_bench_module("hostile")
    dashboard = load_bench_module("dashboard")
    failures = []

    log(f"# Refiner benchmarks, scale {scale}, {os.cpu_count()} CPUs\n")
    log("## Seed\n")
    name = f"bench-{size['contacts']}"
    existing = segments.workspace_by_name(name) if scale == "full" else None
    reuse = (
        existing
        and os.environ.get("BENCH_RESEED") != "1"
        and Contact.objects.filter(workspace_id=existing).count() == size["contacts"]
    )
    if reuse:
        workspace_id = existing
        log(f"reusing workspace {workspace_id} ({name}); BENCH_RESEED=1 seeds it again")
    else:
        workspace_id = seed.seed(contacts=size["contacts"], name=name, log=log)

    log("\n## Segments\n")
    results = segments.run(workspace_id, size["repeat"], log=log)
    if not all(r["agree"] for r in results):
        failures.append("segments: ORM and hand-written SQL disagree")

    log("\n## Dashboard\n")
    results = dashboard.run(workspace_id, size["repeat"], log=log)
    if not dashboard.passed(results):
        failures.append("dashboard: a page answered other than 200")

    log("\n## Eligibility\n")
    result = eligibility.run(
        size["eligibility_contacts"],
        100,
        size["eligibility_requests"],
        size["seconds"],
        log=log,
        servers=servers,
    )
    if not eligibility.passed(result):
        failures.append("eligibility: HTTP errors")

    log("\n## Ingestion\n")
    result = ingest.run(size["ingest_requests"], size["seconds"], log=log, servers=servers)
    if not ingest.passed(result):
        failures.append("ingest: HTTP errors or a duplicated contact")

    log("\n## Hostile input\n")
    result = hostile.run(
        size.get("hostile_contacts", size["contacts"]),
        size["hostile_seconds"],
        log=log,
        name=name if scale == "full" else None,
    )
    log(hostile.report(result))
    if not hostile.passed(result):
        failures.append("hostile: a request over its budget, or a 5xx other than timeout")

    log(f"\ntotal {time.perf_counter() - started:.0f} s")
    for failure in failures:
        log(f"FAILED: {failure}")
    Path(__file__).with_name(f"results-{scale}.md").write_text("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

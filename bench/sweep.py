"""A segment's first sweep at two sizes: does its time grow with the members, or faster?

    .venv/bin/python bench/sweep.py [--contacts 40000]

Seeds `contacts` and then twice as many into workspaces of their own (bench/seed.py:
half of them on the free plan, no events), in the database `refiner_sweep` on
BENCH_DATABASE_URL's server. For each: the memberships table emptied and analysed, as
on a new install before anything was recorded, then a new segment "plan equals free"
swept (`segments.membership.sweep_segment`, the re-sweep a save queues), timed.
Work that grows with the members takes about twice as long at twice the size; the
sweep's INSERT before 2026-11-30 scanned the memberships it had just written once
per member, and took about four times as long (docs/benchmarks.md).
"""

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ensure_database, load_bench_module, setup_django, table  # noqa: E402


def prepare_environment() -> None:
    base = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/refiner_bench")
    os.environ["BENCH_DATABASE_URL"] = base.rsplit("/", 1)[0] + "/refiner_sweep"
    os.environ |= {"DEBUG": "false", "LOG_LEVEL": "ERROR"}


def first_sweep(contacts: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from segments import membership
    from segments.models import Segment, SegmentMembership

    seed = load_bench_module("seed")
    workspace_id = seed.seed(contacts=contacts, events=0, name=f"bench-sweep-{contacts}",
                             log=lambda *_: None)  # fmt: skip
    rule = {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "free"}
    segment = Segment.objects.create(
        workspace_id=workspace_id, name="free plan", rules={"type": "group", "match": "all",
                                                            "conditions": [rule]}
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE segments_segmentmembership")
        cursor.execute("VACUUM ANALYZE segments_segmentmembership")
    started = time.perf_counter()
    membership.sweep_segment(segment.pk, timezone.now())
    seconds = time.perf_counter() - started
    members = SegmentMembership.objects.filter(segment=segment, left_at=None).count()
    return {"contacts": contacts, "members": members, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=40_000)
    arguments = parser.parse_args()
    prepare_environment()
    setup_django()
    ensure_database()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    runs = [first_sweep(arguments.contacts), first_sweep(2 * arguments.contacts)]
    rows = [[r["contacts"], r["members"], f"{r['seconds']:.2f}"] for r in runs]
    print(table(["contacts", "members", "first sweep s"], rows))
    print(f"\ntwice the members took {runs[1]['seconds'] / runs[0]['seconds']:.1f}× as long")


if __name__ == "__main__":
    main()

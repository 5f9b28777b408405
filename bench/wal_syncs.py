"""WAL fsyncs per tracked event, committed synchronously and asynchronously (WIDGET_ASYNC_COMMIT).

    .venv/bin/python bench/wal_syncs.py [--events 500]

Inserts events one by one in autocommit, as the widget's track does, alternately with
and without the asynchronous commit, and reads pg_stat_wal's counters around each run.
A synchronous commit waits for its own fsync: one per event. An asynchronous one leaves
the flush to the WAL writer, a few times a second. pg_stat_wal is the whole server's:
run it on a quiet machine. The events are deleted afterwards.
"""

import argparse
import io
import time

from common import ensure_database, setup_django, table

NAME = "bench_wal_syncs"


def counters(connection) -> tuple[int, int]:
    with connection.cursor() as cursor:
        # A backend hands its counters to the shared statistics at most once a second.
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")
        time.sleep(1.2)
        cursor.execute("SELECT wal_write, wal_sync FROM pg_stat_wal")
        return cursor.fetchone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500)
    arguments = parser.parse_args()
    ensure_database()
    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from refiner.models import Workspace
    from segments.ingest import _insert_event
    from segments.models import Contact, Event

    call_command("migrate", verbosity=0)
    call_command("event_partitions", stdout=io.StringIO())
    workspace, _ = Workspace.objects.get_or_create(name=NAME)
    contact, _ = Contact.objects.get_or_create(workspace=workspace, user_id=NAME)
    rows = []
    for asynchronous in (False, True, False, True):
        before = counters(connection)
        start = time.perf_counter()
        for _ in range(arguments.events):
            _insert_event(contact, NAME, timezone.now(), asynchronous)
        wall = (time.perf_counter() - start) * 1000 / arguments.events
        after = counters(connection)
        rows.append(["asynchronous" if asynchronous else "synchronous", arguments.events,
                     after[0] - before[0], after[1] - before[1], f"{wall:.3f}"])  # fmt: skip
    Event.objects.filter(name=NAME).delete()
    print(table(["commit", "events", "WAL writes", "WAL fsyncs", "wall ms/event"], rows))


if __name__ == "__main__":
    main()

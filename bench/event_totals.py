"""Event totals (segments.totals): what the trigger costs an event, what the totals save a count.

    .venv/bin/python bench/event_totals.py --trigger [--events 3000]
    .venv/bin/python bench/event_totals.py --trigger --moments [--events 3000]

`--trigger` writes events with the ingest's own INSERT for 500 contacts of the largest
bench workspace, each round once with the totals' triggers dropped and once with them
created again, in autocommit (a commit per event, as the widget's track) and in one
transaction (the statement's own work); it deletes its events after. Run it on a
database of your own: while the triggers are off, events written by others are not
counted.

With `--moments` each round writes instead with the counts-only trigger (migration
0012's) and with today's, which also keeps each total's latest moments: what the
moments cost an event.
"""

import argparse
import time

from common import load_bench_module, setup_django

NAME = "bench_totals_trigger"


def set_triggers(on: bool, counts_only: bool = False) -> None:
    import importlib

    from django.db import connection

    from segments.totals import create_triggers, drop_triggers

    with connection.schema_editor() as editor:
        drop_triggers(editor)
        if on and counts_only:
            importlib.import_module("segments.migrations.0012_event_totals").create_triggers(editor)
        elif on:
            create_triggers(editor)


def trigger_cost(workspace_id: int, events: int, rounds: int, moments: bool = False) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from segments.ingest import _insert_event
    from segments.models import Contact, Event, EventTotal

    contacts = list(Contact.objects.filter(workspace_id=workspace_id)[:500])
    now = timezone.now()

    def write() -> None:
        for number in range(events):
            _insert_event(contacts[number % len(contacts)], NAME, now)

    try:
        for round_number in range(1, rounds + 1):
            for on in (False, True):
                # --moments: "off" is the counts-only trigger, "on" today's.
                set_triggers(on or moments, counts_only=moments and not on)
                for mode in ("autocommit", "one transaction"):
                    start = time.perf_counter()
                    if mode == "autocommit":
                        write()
                    else:
                        with transaction.atomic():
                            write()
                    ms = (time.perf_counter() - start) / events * 1000
                    state = (
                        ("moments" if on else "counts only") if moments else ("on" if on else "off")
                    )
                    print(f"round {round_number} | triggers {state} | {mode} | {ms:.3f} ms/event")
    finally:
        set_triggers(True)
        # Deleted with today's trigger on, which reads moments the counts-only one left.
        Event.objects.filter(workspace_id=workspace_id, name=NAME).delete()
        EventTotal.objects.filter(workspace_id=workspace_id, name=NAME).delete()
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=int, help="workspace id (default: largest bench-*)")
    parser.add_argument("--trigger", action="store_true")
    parser.add_argument("--moments", action="store_true", help="counts-only against today's")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    setup_django()
    workspace_id = arguments.workspace or load_bench_module("segments").largest_workspace()
    if arguments.trigger:
        trigger_cost(workspace_id, arguments.events, arguments.rounds, arguments.moments)


if __name__ == "__main__":
    main()

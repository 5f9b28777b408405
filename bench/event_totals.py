"""Event totals (segments.totals): what the trigger costs an event, what the totals save a count.

    .venv/bin/python bench/event_totals.py --trigger [--events 3000]
    .venv/bin/python bench/event_totals.py --narrowing --workspace ID

`--trigger` writes events with the ingest's own INSERT for 500 contacts of the largest
bench workspace, each round once with the totals' triggers dropped and once with them
created again, in autocommit (a commit per event, as the widget's track) and in one
transaction (the statement's own work); it deletes its events after. Run it on a
database of your own: while the triggers are off, events written by others are not
counted.

`--narrowing` counts the windowed worst rules of bench/segments.py at one `now`, each
round with and without the narrowing to contacts whose totals can meet the counts,
and checks both give the same count.
"""

import argparse
import sys
import time

from common import load_bench_module, setup_django

NAME = "bench_totals_trigger"


def set_triggers(on: bool) -> None:
    from django.db import connection

    from segments.totals import create_triggers, drop_triggers

    with connection.schema_editor() as editor:
        drop_triggers(editor)
        if on:
            create_triggers(editor)


def trigger_cost(workspace_id: int, events: int, rounds: int) -> None:
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
                set_triggers(on)
                for mode in ("autocommit", "one transaction"):
                    start = time.perf_counter()
                    if mode == "autocommit":
                        write()
                    else:
                        with transaction.atomic():
                            write()
                    ms = (time.perf_counter() - start) / events * 1000
                    state = "on" if on else "off"
                    print(f"round {round_number} | triggers {state} | {mode} | {ms:.3f} ms/event")
    finally:
        set_triggers(True)
        Event.objects.filter(workspace_id=workspace_id, name=NAME).delete()
        EventTotal.objects.filter(workspace_id=workspace_id, name=NAME).delete()
        connection.close()


def narrowing(workspace_id: int, rounds: int) -> bool:
    from django.utils import timezone

    from segments import sets
    from segments.services import segment_definitions

    worst = load_bench_module("segments").worst_rules(workspace_id)
    rules = [(name, rule) for name, rule in worst if "within" in name]
    now, definitions = timezone.now(), segment_definitions(workspace_id)
    narrowed = sets.SetCompiler._needed_totals

    def everyone(self, conditions, combine):
        return 'SELECT id FROM "segments_contact" WHERE workspace_id = %s', [self.workspace_id]

    agree = True
    for name, rule in rules:
        for round_number in range(1, rounds + 1):
            counts = set()
            for label, needed in (("narrowed", narrowed), ("not narrowed", everyone)):
                sets.SetCompiler._needed_totals = needed
                start = time.perf_counter()
                counts.add(sets.set_count(workspace_id, rule, now, definitions))
                seconds = time.perf_counter() - start
                print(f"{name} | round {round_number} | {label} | {seconds:.2f} s | {counts}")
            agree = agree and len(counts) == 1
    sets.SetCompiler._needed_totals = narrowed
    return agree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=int, help="workspace id (default: largest bench-*)")
    parser.add_argument("--trigger", action="store_true")
    parser.add_argument("--narrowing", action="store_true")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    setup_django()
    workspace_id = arguments.workspace or load_bench_module("segments").largest_workspace()
    if arguments.trigger:
        trigger_cost(workspace_id, arguments.events, arguments.rounds)
    if arguments.narrowing and not narrowing(workspace_id, arguments.rounds):
        print("DISAGREE: narrowing changed a count")
        sys.exit(1)


if __name__ == "__main__":
    main()

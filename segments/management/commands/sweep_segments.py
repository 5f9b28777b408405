"""Record the segment entries and exits that time alone causes (docs/segments.md).

Run by deploy/refiner-sweep.timer every 15 minutes; once by hand after an upgrade
that brings membership history, to open the memberships of current members.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from segments.membership import sweep


class Command(BaseCommand):
    help = (
        "Compare segments whose rules change with time (and those edited since the last "
        "sweep) with their members now; record entries and exits."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all",
            action="store_true",
            help="Compare every segment, not only those due (a repair after a restore).",
        )

    def handle(self, *args, **options) -> None:
        run = sweep(timezone.now(), everything=options["all"])
        seconds = (run.finished_at - run.started_at).total_seconds()
        self.stdout.write(
            f"Swept {run.segments} segment(s) in {seconds:.1f} s: "
            f"{run.entries} entered, {run.exits} left."
        )

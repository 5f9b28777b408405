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
        started = timezone.now()
        runs = sweep(started, everything=options["all"])
        seconds = (timezone.now() - started).total_seconds()
        self.stdout.write(
            f"Swept {sum(r.segments for r in runs)} segment(s) of {len(runs)} workspace(s) "
            f"in {seconds:.1f} s: {sum(r.entries for r in runs)} entered, "
            f"{sum(r.exits for r in runs)} left."
        )

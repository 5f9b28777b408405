"""manage.py drop_old_events [--dry-run] [--months N]: events older than retention go."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from segments.retention import drop_old_events, retention_months


class Command(BaseCommand):
    help = (
        "Drop the events older than EVENT_RETENTION_MONTHS whole months: on PostgreSQL "
        "whole monthly partitions, elsewhere row by row. Run it daily (docs/partitions.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; drop nothing."
        )
        parser.add_argument(
            "--months", type=int, help="Months to keep, instead of EVENT_RETENTION_MONTHS."
        )

    def handle(self, *args, dry_run: bool, months: int | None, **options):
        months = retention_months() if months is None else months
        if months == 0:
            self.stdout.write("EVENT_RETENTION_MONTHS is 0: events are kept forever.")
            return
        if months < 0:
            raise CommandError("Retention is a number of months, 1 or more (0: forever).")
        found = drop_old_events(now=timezone.now(), months=months, dry_run=dry_run)
        verb = "Would drop" if dry_run else "Dropped"
        before = f"{found.start:%Y-%m-%d}"
        for name in found.partitions:
            self.stdout.write(f"{verb} partition {name}.")
        self.stdout.write(
            f"{verb} {found.partition_rows + found.rows} events from before {before}: "
            f"{len(found.partitions)} month partitions, and {found.rows} events row by row; "
            f"keeping {months} months."
        )

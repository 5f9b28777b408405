"""manage.py event_partitions [--since YYYY-MM]: the coming months' event partitions."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from segments.partitions import (
    MONTHS_AHEAD,
    add_months,
    ensure_months,
    is_partitioned,
    month_start,
    partitions,
)


def parse_month(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise CommandError(f"--since takes a month as YYYY-MM, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        f"PostgreSQL: create the event table's partitions for this month and "
        f"{MONTHS_AHEAD} ahead, moving their events out of the DEFAULT partition. Run it "
        f"daily (docs/partitions.md); nothing to do on SQLite."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="Also create the months from this one (YYYY-MM), before a backfill."
        )
        parser.add_argument(
            "--list", dest="show", action="store_true", help="List the partitions after."
        )

    def handle(self, *args, since: str | None, show: bool, **options):
        if not is_partitioned(connection):
            self.stdout.write("The event table is not partitioned (SQLite): nothing to do.")
            return
        now = timezone.now()
        this_month = month_start(now)
        first = min(parse_month(since), this_month) if since else this_month
        created = ensure_months(connection, first, add_months(this_month, MONTHS_AHEAD))
        for name in created:
            self.stdout.write(f"Created partition {name}.")
        self.stdout.write(f"{len(created)} partitions created.")
        if show:
            for partition in partitions(connection):
                self.stdout.write(partition.name)

from django.core.management.base import BaseCommand
from django.utils import timezone

from webhooks.tasks import schedule_sweep, sweep


class Command(BaseCommand):
    help = (
        "Queue again the webhook deliveries whose task was lost, and schedule the worker's "
        "periodic sweep. Run before each start of `manage.py db_worker`."
    )

    def handle(self, *args, **options) -> None:
        queued = sweep(timezone.now())
        schedule_sweep()
        self.stdout.write(f"{queued} deliveries queued again.")

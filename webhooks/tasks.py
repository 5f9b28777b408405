"""The worker's tasks (django-tasks; run by `manage.py db_worker`, see docs/deploy.md).

A task only carries a delivery's id: the Delivery row says whether anything is left to
do, so a task run twice, late or after a lost one is harmless.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.models import DBTaskResult

from webhooks import sending

# Most deliveries a sweep queues again at once; the next sweep takes the rest.
SWEEP_BATCH = 500


def enqueue(delivery_ids: list[int], run_after: datetime | None = None) -> None:
    queued = deliver.using(run_after=run_after) if run_after else deliver
    for delivery_id in delivery_ids:
        queued.enqueue(delivery_id)


@task()
def deliver(delivery_id: int) -> str:
    outcome, retry_at = sending.attempt(delivery_id)
    if retry_at is not None:
        enqueue([delivery_id], retry_at)
    return outcome


@task()
def sweep_deliveries() -> int:
    """Queue again the deliveries whose task was lost, then come back in a while."""
    queued = sweep(timezone.now())
    schedule_sweep()
    return queued


def schedule_sweep() -> None:
    """Make sure one sweep is queued, WEBHOOKS_SWEEP_SECONDS from now."""
    waiting = DBTaskResult.objects.filter(
        task_path=sweep_deliveries.module_path, status=TaskResultStatus.READY
    )
    if not waiting.exists():
        later = timezone.now() + timedelta(seconds=settings.WEBHOOKS_SWEEP_SECONDS)
        sweep_deliveries.using(run_after=later).enqueue()


def sweep(now: datetime) -> int:
    """Queue again the deliveries whose task was lost; a duplicate task only finds it taken."""
    stranded = sending.stranded(now).order_by("next_attempt_at").values_list("pk", flat=True)
    ids = list(stranded[:SWEEP_BATCH])
    enqueue(ids)
    return len(ids)

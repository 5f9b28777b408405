"""The segments app's background work (django-tasks, run by `manage.py db_worker`).

A saved rule reaches the recorded memberships only when the segment is compared
again; until then its counts are live (segments.counts). The save queues that
comparison so the cached count returns within seconds, not at the next sweep.
"""

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from segments import membership
from segments.models import Segment


@task()
def sweep_saved_segment(segment_id: int) -> int:
    """Compare the segment and the segments naming it with their members now."""
    return membership.sweep_segment(segment_id, timezone.now())


def queue_sweep(segment: Segment) -> None:
    """After the save commits, queue its comparison (a lost task only waits for the sweep)."""
    transaction.on_commit(lambda: sweep_saved_segment.enqueue(segment.pk))

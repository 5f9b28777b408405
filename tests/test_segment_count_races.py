"""A sweep or a re-sweep racing a segment save never stamps members of the old rule as
current: real threads, PostgreSQL (skipped on SQLite for the reason given in
tests/workers.py). The sweep also waits through its run's foreign key; the re-sweep
only through `membership._wait_for_saves`."""

import threading
import time

from django.db import transaction
from django.utils import timezone

from segments import counts, membership
from segments.models import Segment
from segments.services import lock_segments, segment_count
from tests.factories import ContactFactory, SegmentFactory, WorkspaceFactory
from tests.rules import plan_is
from tests.workers import RACES, at_once

pytestmark = RACES


def test_a_sweep_during_a_save_compares_the_saved_rule():
    workspace = WorkspaceFactory()
    segment = SegmentFactory(workspace=workspace, rules=plan_is("enterprise"))
    for plan in ("enterprise", "enterprise", "free"):
        ContactFactory(workspace=workspace, traits={"plan": plan})
    membership.sweep(timezone.now())
    saved = threading.Event()

    def save() -> None:
        with transaction.atomic():
            lock_segments(workspace.pk)
            edited = Segment.objects.get(pk=segment.pk)
            edited.rules = plan_is("free")
            edited.save()
            saved.set()
            time.sleep(1)  # the sweep starts meanwhile, dated after the save

    def sweep() -> None:
        assert saved.wait(timeout=10)
        membership.sweep_workspace(workspace.pk, timezone.now())

    results = at_once(2, lambda i: (save, sweep)[i]())

    assert results == [None, None]
    segment.refresh_from_db()
    assert segment.pk in counts.current_segments(workspace)
    assert counts.segment_count(segment.pk) == segment_count(segment, timezone.now()) == 1


def test_a_re_sweep_during_a_save_of_a_named_segment_reads_the_saved_rule():
    workspace = WorkspaceFactory()
    named = SegmentFactory(workspace=workspace, rules=plan_is("enterprise"))
    reference = {"type": "segment", "segment": named.pk, "operator": "in"}
    naming = SegmentFactory(
        workspace=workspace, rules={"type": "group", "match": "all", "conditions": [reference]}
    )
    for plan in ("enterprise", "enterprise", "free"):
        ContactFactory(workspace=workspace, traits={"plan": plan})
    membership.sweep(timezone.now())
    saved = threading.Event()

    def save() -> None:
        with transaction.atomic():
            lock_segments(workspace.pk)
            edited = Segment.objects.get(pk=named.pk)
            edited.rules = plan_is("free")
            edited.save()
            saved.set()
            time.sleep(1)  # the re-sweep of the naming segment starts meanwhile

    def sweep() -> None:
        assert saved.wait(timeout=10)
        membership.sweep_segment(naming.pk, timezone.now())

    results = at_once(2, lambda i: (save, sweep)[i]())

    assert results == [None, None]
    naming.refresh_from_db()
    assert naming.pk in counts.current_segments(workspace)
    assert counts.segment_count(naming.pk) == segment_count(naming, timezone.now()) == 1

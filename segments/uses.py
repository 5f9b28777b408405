"""What uses a segment: other segments whose rules name it, and what the apps above lend.

A segment in use is not deleted (SPEC §5.2 `segment_in_use`): the API, the dashboard
and the admin all ask here.
"""

from django.urls import reverse

from refiner.in_use import delete_unless_used
from refiner.models import Workspace
from segments.models import Segment
from segments.registry import segment_users as lent_users
from segments.rules import referenced_segments


def segment_users(segment: Segment) -> list[str]:
    """What stops a segment's deletion: segments that reference it, surveys that target it."""
    users = [
        f"segment {other.pk} ({other.name})"
        for other in Segment.objects.filter(workspace_id=segment.workspace_id, kind=Segment.RULES)
        if other.pk != segment.pk and segment.pk in referenced_segments(other.rules)
    ]
    for lent in lent_users():
        users += lent.names(segment)
    return users


def segment_uses(workspace: Workspace, segments: list[Segment]) -> dict[int, list[dict]]:
    """What uses each segment: surveys that target or exclude it, segments that reference it."""
    uses: dict[int, list[dict]] = {s.pk: [] for s in segments}
    for other in Segment.objects.filter(workspace=workspace, kind=Segment.RULES):
        for referenced in referenced_segments(other.rules):
            if referenced in uses and referenced != other.pk:
                url = reverse("segment-edit", args=[other.pk])
                uses[referenced].append({"kind": "segment", "name": other.name, "url": url})
    for lent in lent_users():
        for segment_id, found in lent.uses(workspace, segments).items():
            uses[segment_id] += found
    return uses


def delete_segment(segment: Segment) -> None:
    """Delete the segment, unless something uses it."""
    name = f"Segment {segment.pk}"
    delete_unless_used(segment, segment_users, name=name, code="segment_in_use")

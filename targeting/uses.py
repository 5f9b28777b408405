"""The surveys that target or exclude a segment, lent to `segments` (`segments.registry`)."""

from refiner.models import Workspace
from segments.models import Segment
from segments.registry import SegmentUsers
from surveys.models import Survey


def surveys_using(segment: Segment) -> list[str]:
    surveys = Survey.objects.filter(workspace_id=segment.workspace_id).filter(
        targeting__segments=segment
    ) | Survey.objects.filter(
        workspace_id=segment.workspace_id, targeting__excluded_segments=segment
    )
    return [f"survey {s.pk} ({s.name})" for s in surveys.distinct()]


def survey_uses(workspace: Workspace, segments: list[Segment]) -> dict[int, list[dict]]:
    wanted = {s.pk for s in segments}
    uses: dict[int, list[dict]] = {}
    surveys = Survey.objects.filter(workspace=workspace)
    for field, role in (
        ("targeting__segments", "targets"),
        ("targeting__excluded_segments", "excludes"),
    ):
        rows = surveys.filter(**{f"{field}__isnull": False}).values_list(
            field, "pk", "name", "status"
        )
        for segment_id, survey_id, name, status in rows:
            if segment_id in wanted:
                use = {
                    "kind": "survey",
                    "name": name,
                    "id": survey_id,
                    "role": role,
                    "live": status == Survey.LIVE,
                    "status": status,
                }
                uses.setdefault(segment_id, []).append(use)
    return uses


USERS = SegmentUsers(names=surveys_using, uses=survey_uses)

"""Keep the eligibility engine's cached definitions fresh: any change invalidates them.
After each sweep, store the live audiences' figures the Targeting tab reads."""

from datetime import datetime

from django.db.models.signals import m2m_changed, post_delete, post_save

from segments.models import MembershipSweep, Segment
from segments.signals import workspace_swept
from surveys.models import Question, Survey
from targeting.audiences import record_audience_counts
from targeting.eligibility import invalidate
from targeting.models import Targeting


def _invalidate(workspace_id: int | None) -> None:
    if workspace_id is not None:
        # In the change's own transaction: readers see the new version with the new rows.
        invalidate(workspace_id)


def _survey_workspace(survey_id: int | None) -> int | None:
    return Survey.objects.filter(pk=survey_id).values_list("workspace_id", flat=True).first()


def _of_survey_part(instance) -> int | None:
    """The workspace of a Question or Targeting, without a query when the survey is loaded."""
    survey = instance._meta.get_field("survey").get_cached_value(instance, None)
    if survey is not None:
        return survey.workspace_id
    return _survey_workspace(instance.survey_id)


def survey_changed(sender, instance: Survey, **kwargs) -> None:
    _invalidate(instance.workspace_id)


def survey_part_changed(sender, instance, **kwargs) -> None:
    _invalidate(_of_survey_part(instance))


def segment_changed(sender, instance: Segment, **kwargs) -> None:
    _invalidate(instance.workspace_id)


def targeting_segments_changed(sender, instance, action: str, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if isinstance(instance, Targeting):
        _invalidate(_of_survey_part(instance))
    else:
        _invalidate(instance.workspace_id)


def workspace_swept_now(sender, workspace_id: int, at: datetime, **kwargs) -> None:
    record_audience_counts(workspace_id, at)


def connect() -> None:
    for model, receiver in (
        (Survey, survey_changed),
        (Question, survey_part_changed),
        (Targeting, survey_part_changed),
        (Segment, segment_changed),
    ):
        post_save.connect(receiver, sender=model, dispatch_uid=f"targeting-{model.__name__}-save")
        post_delete.connect(
            receiver, sender=model, dispatch_uid=f"targeting-{model.__name__}-delete"
        )
    for through in (Targeting.segments.through, Targeting.excluded_segments.through):
        m2m_changed.connect(
            targeting_segments_changed, sender=through, dispatch_uid=f"targeting-{through}"
        )
    workspace_swept.connect(
        workspace_swept_now, sender=MembershipSweep, dispatch_uid="targeting-audience-counts"
    )

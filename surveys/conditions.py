"""The survey and answer conditions of the rule language, as the surveys app answers them.

The engine (`segments`) defines these conditions but may not read this app's tables;
`SurveysConfig.ready` lends it these functions through `segments.registry`.
"""

from collections.abc import Mapping
from datetime import datetime

from django.db.models import Exists, OuterRef, Q, QuerySet

from refiner.models import Workspace
from segments.registry import SurveyFacts
from segments.rules import SURVEY_MOMENTS
from segments.values import days_before
from surveys.models import Answer, Display, Question, Survey

# Branches of the snapshot's UNION ALL (`segments.snapshot`), in its columns: kind,
# text (a display's browser session), number, three moments, JSON.
SNAPSHOT_DISPLAYS = """
    SELECT 2, session, survey_id, shown_at, dismissed_at, completed_at, NULL
    FROM surveys_display WHERE contact_id = {contact}"""
SNAPSHOT_ANSWERS = """
    SELECT 3, a.key, a.survey_id, NULL, NULL, NULL, CAST(r.answers AS TEXT)
    FROM surveys_answer a JOIN surveys_response r ON r.id = a.response_id
    WHERE a.contact_id = {contact} AND a.is_latest"""


def survey_condition(condition: Mapping, now: datetime) -> Q:
    operator = condition["operator"]
    moment = SURVEY_MOMENTS[operator]
    displays = Display.objects.filter(contact=OuterRef("pk"), **{f"{moment}__isnull": False})
    if condition["survey"] != "any":
        displays = displays.filter(survey_id=condition["survey"])
    if condition.get("within_days") is not None:
        start = days_before(now, condition["within_days"])
        displays = displays.filter(**{f"{moment}__gte": start, f"{moment}__lte": now})
    exists = Q(Exists(displays))
    return ~exists if operator.startswith("not_") else exists


def answer_rows(condition: Mapping) -> QuerySet:
    return Answer.objects.filter(
        contact=OuterRef("pk"),
        survey_id=condition["survey"],
        key=condition["question"],
        is_latest=True,
    )


def survey_ids(workspace_id: int) -> list[int]:
    return list(Survey.objects.filter(workspace_id=workspace_id).values_list("id", flat=True))


def editor_choices(workspace: Workspace, *, limit: int) -> dict:
    keys = Question.objects.filter(survey__workspace=workspace).values_list("key", flat=True)
    return {
        "question_keys": list(keys.distinct().order_by("key")[:limit]),
        "surveys": list(Survey.objects.filter(workspace=workspace).values_list("pk", "name")),
    }


FACTS = SurveyFacts(
    survey_condition=survey_condition,
    answer_rows=answer_rows,
    snapshot_displays=SNAPSHOT_DISPLAYS,
    snapshot_answers=SNAPSHOT_ANSWERS,
    survey_ids=survey_ids,
    editor_choices=editor_choices,
)

"""Creating, changing and deleting surveys: the rules the REST API and the dashboard share."""

from typing import Any

from django.db import transaction

from refiner.errors import Invalid
from refiner.in_use import delete_unless_used
from refiner.models import Workspace
from segments.models import Segment
from segments.rules import rule_nodes
from surveys.models import Survey
from surveys.parts import survey_parts
from surveys.services import clean_questions, save_questions

STATUSES = [value for value, _ in Survey.STATUSES]


def _prefixed(error: Invalid, prefix: str) -> dict:
    return {
        key if key == prefix else f"{prefix}.{key}": message
        for key, message in (error.fields or {}).items()
    }


def clean_survey(data: dict, workspace: Workspace, survey: Survey | None = None) -> dict:
    """Validate a survey body for POST (survey None) or PUT; raise `Invalid` with every problem.

    On PUT, omitted fields keep their value and a `targeting` object changes only the
    keys it names.
    """
    errors: dict[str, str] = {}
    parts = survey_parts()
    fields = ("name", "status", "questions", *(part.key for part in parts))
    for key in data:
        if key not in fields:
            errors[key[:100]] = "Is not a survey field."
    cleaned: dict[str, Any] = {}
    if "name" in data or survey is None:
        name = data.get("name")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            errors["name"] = "Must be a name of 1 to 200 characters."
        else:
            cleaned["name"] = name.strip()
    status = data.get("status", survey.status if survey else Survey.DRAFT)
    if status not in STATUSES:
        errors["status"] = "Must be one of " + ", ".join(STATUSES) + "."
    cleaned["status"] = status
    if "questions" in data:
        try:
            cleaned["questions"] = clean_questions(data["questions"])
        except Invalid as e:
            errors |= e.fields or {}
    questions = cleaned.get("questions", survey.questions.all() if survey else [])
    questions_failed = "questions" in data and "questions" not in cleaned
    if status == Survey.LIVE and not questions and not questions_failed:
        errors["questions"] = "A live survey needs at least one question."
    for part in parts:
        if part.key in data or survey is None:
            try:
                cleaned[part.key] = part.clean(data, workspace=workspace, survey=survey)
            except Invalid as e:
                errors |= _prefixed(e, part.key)
    if errors:
        raise Invalid(errors)
    return cleaned


def save_survey(workspace: Workspace, cleaned: dict, survey: Survey | None = None) -> Survey:
    with transaction.atomic():
        if survey is None:
            survey = Survey(workspace=workspace)
        for key in ("name", "status"):
            if key in cleaned:
                setattr(survey, key, cleaned[key])
        survey.save()
        if "questions" in cleaned:
            save_questions(survey, cleaned["questions"])
        for part in survey_parts():
            part.save(survey, cleaned.get(part.key))
    return Survey.objects.complete().get(workspace=workspace, pk=survey.pk)


def survey_users(survey: Survey) -> list[str]:
    """Segments whose rules name the survey: they would silently change meaning."""
    segments = Segment.objects.filter(workspace_id=survey.workspace_id, kind=Segment.RULES)
    return [f"segment {s.pk} ({s.name})" for s in segments if _names_survey(s.rules, survey.pk)]


def _names_survey(rule: Any, survey_id: int) -> bool:
    return any(
        node.get("type") in ("survey", "answer") and node.get("survey") == survey_id
        for node in rule_nodes(rule)
    )


def delete_survey(survey: Survey) -> None:
    """Delete the survey, unless segment rules name it."""
    name = f"Survey {survey.pk}"
    delete_unless_used(survey, survey_users, name=name, code="survey_in_use")

"""Workflows over surveys: question validation, displays, answers (SPEC §2, §5.1)."""

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from refiner.errors import Conflict, Invalid
from refiner.retries import again_after_deadlock
from segments import membership
from segments.models import Contact
from segments.values import is_json_integer
from surveys.models import Answer, Display, Question, Response, Survey
from surveys.signals import (
    send_after_commit,
    survey_completed,
    survey_dismissed,
    survey_displayed,
)

MAX_QUESTIONS = 50
MAX_KEY = 100
MAX_TEXT = 1000
MAX_CHOICES = 100
MAX_CHOICE = 200
MAX_TEXT_ANSWER = 5000
# Tuples, not sets: a JSON list or object is unhashable and must fail validation, not crash.
QUESTION_TYPES = tuple(value for value, _ in Question.TYPES)
CHOICE_TYPES = (Question.SINGLE, Question.MULTIPLE)


def _clean_choices(choices: Any, path: str, errors: dict) -> list[str]:
    if (
        not isinstance(choices, list)
        or not 1 <= len(choices) <= MAX_CHOICES
        or not all(isinstance(c, str) and 1 <= len(c.strip()) <= MAX_CHOICE for c in choices)
    ):
        errors[path] = (
            f"Must be a list of 1 to {MAX_CHOICES} choices of 1 to {MAX_CHOICE} characters."
        )
        return []
    cleaned = [c.strip() for c in choices]
    if len(set(cleaned)) != len(cleaned):
        errors[path] = "Choices must be different from each other."
    return cleaned


def _clean_question(question: Any, path: str, errors: dict) -> dict | None:
    if not isinstance(question, dict):
        errors[path] = "Must be an object with a key, a type and a text."
        return None
    for name in question:
        if name not in ("key", "type", "text", "choices"):
            errors[f"{path}.{str(name)[:100]}"] = "Is not a question field."
    key, kind, text = question.get("key"), question.get("type"), question.get("text")
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or key != key.strip():
        errors[f"{path}.key"] = (
            f"Must be 1 to {MAX_KEY} characters without leading or trailing spaces."
        )
    if kind not in QUESTION_TYPES:
        errors[f"{path}.type"] = f"Must be one of {', '.join(QUESTION_TYPES)}."
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_TEXT:
        errors[f"{path}.text"] = f"Must be a text of 1 to {MAX_TEXT} characters."
    choices: list[str] = []
    if kind in CHOICE_TYPES:
        choices = _clean_choices(question.get("choices"), f"{path}.choices", errors)
    elif question.get("choices"):
        errors[f"{path}.choices"] = "Only choice questions have choices."
    if not isinstance(text, str) or not isinstance(key, str):
        return None
    return {"key": key, "type": kind, "text": text.strip(), "choices": choices}


def clean_questions(data: Any) -> list[dict]:
    """Validate a survey's list of questions; raise a 400 naming every bad field.

    Paths are relative to the list, such as `questions[1].choices`.
    """
    if not isinstance(data, list) or len(data) > MAX_QUESTIONS:
        raise Invalid({"questions": f"Must be a list of at most {MAX_QUESTIONS} questions."})
    errors: dict[str, str] = {}
    cleaned, seen = [], set()
    for index, question in enumerate(data):
        path = f"questions[{index}]"
        result = _clean_question(question, path, errors)
        if result is None:
            continue
        if result["key"] in seen and f"{path}.key" not in errors:
            errors[f"{path}.key"] = "Another question already has this key."
        seen.add(result["key"])
        cleaned.append(result)
    if errors:
        raise Invalid(errors)
    return cleaned


def save_questions(survey: Survey, questions: list[dict]) -> None:
    """Make the survey's questions exactly `questions` (cleaned), keeping rows by key.

    Rows are kept by key so that answers already given stay attached to their question.
    """
    existing = {q.key: q for q in survey.questions.all()}
    wanted = {q["key"] for q in questions}
    stale = [q.pk for key, q in existing.items() if key not in wanted]
    if stale:
        Question.objects.filter(pk__in=stale).delete()
    for position, fields in enumerate(questions):
        question = existing.get(fields["key"]) or Question(survey=survey, key=fields["key"])
        question.type, question.text = fields["type"], fields["text"]
        question.choices, question.position = fields["choices"], position
        question.save()


def _answer_error(question: Question, value: Any) -> str | None:
    if question.type == Question.NPS:
        if not is_json_integer(value) or not 0 <= value <= 10:
            return "Must be a whole number from 0 to 10."
    elif question.type == Question.RATING:
        if not is_json_integer(value) or not 1 <= value <= 5:
            return "Must be a whole number from 1 to 5."
    elif question.type == Question.SINGLE:
        if not isinstance(value, str) or value not in question.choices:
            return "Must be one of the question's choices."
    elif question.type == Question.MULTIPLE:
        if not isinstance(value, list) or not all(
            isinstance(v, str) and v in question.choices for v in value
        ):
            return "Must be a list of the question's choices."
        if len(set(value)) != len(value):
            return "Must not name a choice twice."
    elif not isinstance(value, str) or len(value) > MAX_TEXT_ANSWER:
        return f"Must be a text of at most {MAX_TEXT_ANSWER} characters."
    return None


def clean_answers(survey: Survey, answers: Any) -> dict:
    """Validate `{question key: value}` against the survey's questions; 400 on any problem."""
    if not isinstance(answers, dict):
        raise Invalid({"answers": "Must be an object of question keys to answers."})
    questions = {q.key: q for q in survey.questions.all()}
    errors = {}
    for key, value in answers.items():
        question = questions.get(key)
        if question is None:
            errors[f"answers.{key[:100]}"] = "The survey has no question with this key."
            continue
        problem = _answer_error(question, value)
        if problem:
            errors[f"answers.{key}"] = problem
    if errors:
        raise Invalid(errors)
    return dict(answers)


def record_display(
    *, survey: Survey, contact: Contact, now: datetime, session: str | None = None
) -> Display:
    display = Display.objects.create(
        workspace_id=survey.workspace_id,
        survey=survey,
        contact=contact,
        shown_at=now,
        session=session,
    )
    membership.contact_changed(contact, now, surveys=True)
    send_after_commit(survey_displayed, display=display)
    return display


def _locked_response(display: Display, now: datetime) -> Response:
    """The display's response, locked for update; created once even under concurrent calls."""
    responses = Response.objects.select_for_update()
    response = responses.filter(display=display).first()
    if response is not None:
        return response
    try:
        with transaction.atomic():
            return Response.objects.create(
                display=display,
                workspace_id=display.workspace_id,
                survey_id=display.survey_id,
                contact_id=display.contact_id,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        return responses.get(display=display)


def _answer_rows(response: Response, key: str, value: Any, now: datetime) -> list[Answer]:
    elements = value if isinstance(value, list) else [value]
    rows = []
    for element in elements or [None]:
        row = Answer(
            workspace_id=response.workspace_id,
            contact_id=response.contact_id,
            survey_id=response.survey_id,
            response=response,
            key=key,
            answered_at=now,
        )
        if element is not None:
            row.set_parsed(element)
        rows.append(row)
    return rows


def _write_answer_rows(response: Response, answers: dict, now: datetime) -> None:
    if not answers:
        return
    keys = list(answers)
    # This response's own earlier rows for a key are replaced; other responses' rows
    # stay as history but stop being the contact's latest answer.
    Answer.objects.filter(response=response, key__in=keys).delete()
    Answer.objects.filter(
        contact_id=response.contact_id, survey_id=response.survey_id, key__in=keys, is_latest=True
    ).update(is_latest=False)
    rows = [row for key in keys for row in _answer_rows(response, key, answers[key], now)]
    Answer.objects.bulk_create(rows)


def _closed_elsewhere(display: Display) -> bool:
    """Did the contact already complete or dismiss another display of this survey?"""
    others = Display.objects.filter(survey_id=display.survey_id, contact_id=display.contact_id)
    closed = Q(completed_at__isnull=False) | Q(dismissed_at__isnull=False)
    return others.exclude(pk=display.pk).filter(closed).exists()


@again_after_deadlock
def record_answers(
    *,
    display: Display,
    answers: dict,
    completed: bool,
    now: datetime,
    once: bool = False,
    extra: dict | None = None,
) -> Response:
    """Merge cleaned answers into the display's response; mark it completed when asked.

    `extra` (see `surveys.extra`), when not None, replaces the response's extra fields.

    Concurrent calls for one display are serialized by row locks, so none is lost.
    Answers to other displays of the same survey and contact flip the same earlier
    answers' `is_latest` and may deadlock; the one PostgreSQL cancels runs again.
    A dismissed display takes no answers; a completed one only a harmless repeat.
    `once`: the survey takes one completed response per contact, so once the contact
    completed or dismissed one display of it, its other displays take no answers.
    """
    with transaction.atomic():
        if once:
            # Completions of one contact's displays queue on the contact's row (as
            # recording a display does), so two displays of a `once` survey, answered
            # at the same moment, cannot both see the other one still open.
            # OF self: the model's ordering joins the workspace, whose row must stay free.
            Contact.all_contacts.select_for_update(of=("self",), no_key=True).filter(
                pk=display.contact_id
            ).first()
        display = Display.objects.select_for_update().get(pk=display.pk)
        if display.dismissed_at is not None:
            raise Conflict("This display was dismissed.", code="display_closed")
        if once and display.completed_at is None and _closed_elsewhere(display):
            raise Conflict(
                "The contact already completed or dismissed this survey.", code="display_closed"
            )
        response = _locked_response(display, now)
        if response.completed:
            changes = {k: v for k, v in answers.items() if response.answers.get(k) != v}
            if changes:
                raise Conflict("This response is already completed.", code="display_closed")
            return response
        changed = {k: v for k, v in answers.items() if response.answers.get(k, object()) != v}
        response.answers = {**response.answers, **answers}
        if extra is not None:
            response.extra = extra
        response.updated_at = now
        if completed:
            response.completed, response.completed_at = True, now
            display.completed_at = now
            display.save(update_fields=["completed_at"])
            send_after_commit(survey_completed, display=display, response=response)
        response.save()
        _write_answer_rows(response, changed, now)
        membership.contact_id_changed(display.contact_id, now, surveys=True)
    return response


def dismiss_display(*, display: Display, now: datetime) -> Display:
    """Mark the display dismissed; a closed display (completed or dismissed) stays as is."""
    with transaction.atomic():
        display = Display.objects.select_for_update().get(pk=display.pk)
        if not display.closed:
            display.dismissed_at = now
            display.save(update_fields=["dismissed_at"])
            send_after_commit(survey_dismissed, display=display)
            membership.contact_id_changed(display.contact_id, now, surveys=True)
    return display

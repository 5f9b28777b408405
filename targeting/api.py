"""REST API for surveys, their eligibility and responses (SPEC §5.2), behind the secret key."""

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from refiner.http import ApiError, api, authorize, invalid, json_body, paginated, parse_id
from refiner.models import Workspace
from segments.models import Contact, Segment
from segments.services import segment_contacts
from surveys.models import Response, Survey
from surveys.services import clean_questions, save_questions
from targeting.eligibility import explain
from targeting.models import Targeting
from targeting.services import apply_targeting, clean_targeting

SURVEY_FIELDS = ("name", "status", "questions", "targeting")
STATUSES = [value for value, _ in Survey.STATUSES]


def _surveys(workspace: Workspace):
    return (
        Survey.objects.filter(workspace=workspace)
        .select_related("targeting")
        .prefetch_related("questions", "targeting__segments", "targeting__excluded_segments")
    )


def _survey(request: HttpRequest, survey_id: int) -> Survey:
    survey = _surveys(request.workspace).filter(pk=survey_id).first()
    if survey is None:
        raise ApiError("not_found", f"There is no survey {survey_id}.", 404)
    return survey


def _current_targeting(survey: Survey | None) -> dict:
    targeting = getattr(survey, "targeting", None) if survey is not None else None
    return targeting.to_dict() if targeting is not None else {}


def _prefixed(error: ApiError, prefix: str) -> dict:
    return {
        key if key == prefix else f"{prefix}.{key}": message
        for key, message in (error.fields or {}).items()
    }


def clean_survey(data: dict, workspace: Workspace, survey: Survey | None = None) -> dict:
    """Validate a survey body for POST (survey None) or PUT; raise 400 with every problem.

    On PUT, omitted fields keep their value and a `targeting` object changes only the
    keys it names.
    """
    errors: dict[str, str] = {}
    for key in data:
        if key not in SURVEY_FIELDS:
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
        except ApiError as e:
            errors |= e.fields or {}
    questions = cleaned.get("questions", survey.questions.all() if survey else [])
    questions_failed = "questions" in data and "questions" not in cleaned
    if status == Survey.LIVE and not questions and not questions_failed:
        errors["questions"] = "A live survey needs at least one question."
    if "targeting" in data or survey is None:
        given = data.get("targeting", {})
        merged = {**_current_targeting(survey), **given} if isinstance(given, dict) else given
        try:
            cleaned["targeting"] = clean_targeting(merged, workspace=workspace)
        except ApiError as e:
            errors |= _prefixed(e, "targeting")
    if errors:
        raise invalid(errors)
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
        if "targeting" in cleaned:
            apply_targeting(survey, cleaned["targeting"])
        elif not Targeting.objects.filter(survey=survey).exists():
            Targeting.objects.create(survey=survey)
    return _surveys(workspace).get(pk=survey.pk)


@api(["GET", "POST"])
@authorize
def surveys(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        cleaned = clean_survey(json_body(request), request.workspace)
        survey = save_survey(request.workspace, cleaned)
        return JsonResponse(survey.to_dict(), status=201)
    return paginated(request, _surveys(request.workspace).order_by("id"), Survey.to_dict)


def _rule_surveys(rule: Any) -> set:
    found = set()
    if isinstance(rule, dict):
        if rule.get("type") in ("survey", "answer"):
            found.add(rule.get("survey"))
        for condition in rule.get("conditions") or []:
            found |= _rule_surveys(condition)
    return found


def survey_users(survey: Survey) -> list[str]:
    """Segments whose rules name the survey: they would silently change meaning."""
    segments = Segment.objects.filter(workspace_id=survey.workspace_id, kind=Segment.RULES)
    return [f"segment {s.pk} ({s.name})" for s in segments if survey.pk in _rule_surveys(s.rules)]


@api(["GET", "PUT", "DELETE"])
@authorize
def survey(request: HttpRequest, survey_id: int) -> HttpResponse:
    found = _survey(request, survey_id)
    if request.method == "DELETE":
        with transaction.atomic():
            users = survey_users(found)
            if users:
                raise ApiError(
                    "survey_in_use",
                    f"Survey {found.pk} is used by {', '.join(users)}; remove those uses first.",
                    409,
                )
            found.delete()
        return HttpResponse(status=204)
    if request.method == "PUT":
        cleaned = clean_survey(json_body(request), request.workspace, found)
        found = save_survey(request.workspace, cleaned, found)
    return JsonResponse(found.to_dict())


def _check_parameter(request: HttpRequest, key: str, size: int) -> str | None:
    value = request.GET.get(key)
    if value is not None and not 1 <= len(value) <= size:
        raise invalid({key: f"Must be 1 to {size} characters."})
    return value


@api(["GET"])
@authorize
def survey_eligibility(request: HttpRequest, survey_id: int, user_id: str) -> JsonResponse:
    found = _survey(request, survey_id)
    contact = (
        Contact.objects.select_related("account")
        .filter(workspace=request.workspace, user_id=user_id)
        .first()
    )
    decision = explain(
        workspace=request.workspace,
        survey_id=found.pk,
        contact=contact,
        now=timezone.now(),
        event=_check_parameter(request, "event", 200),
        url=_check_parameter(request, "url", 2000),
    )
    return JsonResponse(
        {"eligible": decision.eligible, "reasons": [r.to_dict() for r in decision.reasons]}
    )


def _id_filter(request: HttpRequest, key: str, model) -> Any:
    raw = request.GET.get(key)
    if raw is None:
        return None
    found = None
    if (pk := parse_id(raw)) is not None:
        found = model.objects.filter(workspace=request.workspace, pk=pk).first()
    if found is None:
        raise invalid({key: f"There is no {key} {raw[:50]} in this workspace."})
    return found


@api(["GET"])
@authorize
def responses(request: HttpRequest) -> JsonResponse:
    queryset = Response.objects.filter(workspace=request.workspace)
    survey_filter = _id_filter(request, "survey", Survey)
    if survey_filter is not None:
        queryset = queryset.filter(survey=survey_filter)
    segment = _id_filter(request, "segment", Segment)
    if segment is not None:
        queryset = queryset.filter(
            contact__in=segment_contacts(segment, timezone.now()).values("pk")
        )
    queryset = queryset.select_related("contact").order_by("-created_at", "-id")
    return paginated(request, queryset, Response.to_dict)

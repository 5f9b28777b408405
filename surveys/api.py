"""REST API for surveys and their responses (SPEC §5.2), behind the secret key."""

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from refiner.http import ApiError, api, authorize, invalid, json_body, paginated, parse_id
from segments.models import Segment
from segments.services import segment_contacts
from surveys.editing import clean_survey, delete_survey, save_survey
from surveys.models import Response, Survey


def survey_of(request: HttpRequest, survey_id: int) -> Survey:
    """The survey of the caller's workspace, with all it shows; 404 for anybody else's."""
    survey = Survey.objects.complete().filter(workspace=request.workspace, pk=survey_id).first()
    if survey is None:
        raise ApiError("not_found", f"There is no survey {survey_id}.", 404)
    return survey


@api(["GET", "POST"])
@authorize
def surveys(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        cleaned = clean_survey(json_body(request), request.workspace)
        survey = save_survey(request.workspace, cleaned)
        return JsonResponse(survey.to_dict(), status=201)
    queryset = Survey.objects.complete().filter(workspace=request.workspace).order_by("id")
    return paginated(request, queryset, Survey.to_dict)


@api(["GET", "PUT", "DELETE"])
@authorize
def survey(request: HttpRequest, survey_id: int) -> HttpResponse:
    found = survey_of(request, survey_id)
    if request.method == "DELETE":
        delete_survey(found)
        return HttpResponse(status=204)
    if request.method == "PUT":
        cleaned = clean_survey(json_body(request), request.workspace, found)
        found = save_survey(request.workspace, cleaned, found)
    return JsonResponse(found.to_dict())


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

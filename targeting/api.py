"""REST API for a survey's eligibility (SPEC §5.2), behind the secret key."""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from refiner.http import api, authorize, invalid
from segments.models import Contact
from surveys.api import survey_of
from targeting.eligibility import explain


def _check_parameter(request: HttpRequest, key: str, size: int) -> str | None:
    value = request.GET.get(key)
    if value is not None and not 1 <= len(value) <= size:
        raise invalid({key: f"Must be 1 to {size} characters."})
    return value


@api(["GET"])
@authorize
def survey_eligibility(request: HttpRequest, survey_id: int, user_id: str) -> JsonResponse:
    found = survey_of(request, survey_id)
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

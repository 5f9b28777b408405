"""REST API for webhook endpoints and their delivery log (docs/api.md), behind the secret key."""

from django.http import HttpRequest, HttpResponse, JsonResponse

from refiner.http import ApiError, api, authorize, invalid, json_body, paginated
from webhooks import services
from webhooks.cleaning import clean_endpoint
from webhooks.models import Delivery, Endpoint, new_endpoint_secret


def _endpoint(request: HttpRequest, endpoint_id: int) -> Endpoint:
    endpoint = Endpoint.objects.filter(workspace=request.workspace, pk=endpoint_id).first()
    if endpoint is None:
        raise ApiError("not_found", f"There is no webhook endpoint {endpoint_id}.", 404)
    return endpoint


def delivery_to_dict(delivery: Delivery) -> dict:
    return {
        "id": delivery.pk,
        "event_id": str(delivery.event_id),
        "event": delivery.event,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "error": delivery.error,
        "created_at": delivery.created_at.isoformat(),
        "next_attempt_at": (
            delivery.next_attempt_at.isoformat() if delivery.status == Delivery.PENDING else None
        ),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
        "payload": delivery.payload,
    }


@api(["GET", "POST"])
@authorize
def endpoints(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        cleaned, errors = clean_endpoint(json_body(request))
        if errors:
            raise invalid(errors)
        endpoint = Endpoint.objects.create(workspace=request.workspace, **cleaned)
        return JsonResponse(endpoint.to_dict(), status=201)
    queryset = Endpoint.objects.filter(workspace=request.workspace).order_by("id")
    return paginated(request, queryset, Endpoint.to_dict)


@api(["GET", "PATCH", "DELETE"])
@authorize
def endpoint(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    found = _endpoint(request, endpoint_id)
    if request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    if request.method == "PATCH":
        cleaned, errors = clean_endpoint(json_body(request), found)
        if errors:
            raise invalid(errors)
        for key, value in cleaned.items():
            setattr(found, key, value)
        found.save()
    return JsonResponse(found.to_dict())


@api(["POST"])
@authorize
def endpoint_secret(request: HttpRequest, endpoint_id: int) -> JsonResponse:
    found = _endpoint(request, endpoint_id)
    found.secret = new_endpoint_secret()
    found.save(update_fields=["secret"])
    return JsonResponse(found.to_dict())


@api(["GET"])
@authorize
def deliveries(request: HttpRequest, endpoint_id: int) -> JsonResponse:
    found = _endpoint(request, endpoint_id)
    return paginated(request, found.deliveries.order_by("-created_at", "-id"), delivery_to_dict)


@api(["POST"])
@authorize
def redeliver(request: HttpRequest, endpoint_id: int, delivery_id: int) -> JsonResponse:
    found = _endpoint(request, endpoint_id)
    delivery = found.deliveries.filter(pk=delivery_id).first()
    if delivery is None:
        raise ApiError("not_found", f"There is no delivery {delivery_id} of this endpoint.", 404)
    if not found.is_active:
        raise ApiError("endpoint_inactive", "The endpoint is not active; activate it first.", 409)
    again = services.redeliver(delivery)
    return JsonResponse(delivery_to_dict(again), status=201)

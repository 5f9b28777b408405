"""REST API for contacts, events and segments (SPEC §5.2), behind the secret key."""

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from refiner.errors import Invalid
from refiner.http import ApiError, api, authorize, invalid, json_body, paginated, parse_id
from segments import ingest, services, tasks
from segments.models import Contact, Segment
from segments.retention import rule_warnings
from segments.rules import TOO_COMPLEX
from segments.uses import delete_segment
from segments.values import parse_date

SAMPLE_SIZE = 10


def _contact(request: HttpRequest, user_id: str) -> Contact:
    contact = Contact.objects.filter(workspace=request.workspace, user_id=user_id).first()
    if contact is None:
        raise ApiError("not_found", f"There is no contact {user_id!r}.", 404)
    return contact


def _segment(request: HttpRequest, segment_id: int) -> Segment:
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise ApiError("not_found", f"There is no segment {segment_id}.", 404)
    return segment


def _segment_filter(request: HttpRequest) -> Segment | None:
    raw = request.GET.get("segment")
    if raw is None:
        return None
    segment_id = parse_id(raw)
    if segment_id is None:
        raise invalid({"segment": "Must be a segment id."})
    segment = Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
    if segment is None:
        raise invalid({"segment": f"There is no segment {raw} in this workspace."})
    return segment


def segment_to_dict(segment: Segment, now) -> dict:
    return {
        "id": segment.pk,
        "name": segment.name,
        "description": segment.description,
        "kind": segment.kind,
        "rules": segment.rules,
        "contact_count": services.segment_count(segment, now),
    }


@api(["POST"])
@authorize
def identify_user(request: HttpRequest) -> JsonResponse:
    user = ingest.clean_user(json_body(request))
    contact = ingest.identify_contact(workspace=request.workspace, user=user, now=timezone.now())
    return JsonResponse({"contact": contact.to_dict()})


@api(["POST"])
@authorize
def track_event(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    errors = {}
    user_id = ingest.check_id(data.get("user_id"), "user_id", errors)
    event = ingest.check_event_name(data.get("event"), "event", errors)
    occurred_at = None
    if data.get("occurred_at") is not None:
        occurred_at = parse_date(data["occurred_at"])
        if occurred_at is None:
            errors["occurred_at"] = "Must be an ISO-8601 date or datetime."
    if errors:
        raise invalid(errors)
    ingest.track_event(
        workspace=request.workspace,
        user_id=user_id,
        event=event,
        now=timezone.now(),
        occurred_at=occurred_at,
    )
    return JsonResponse({"status": "accepted"}, status=202)


@api(["GET"])
@authorize
def contacts(request: HttpRequest) -> JsonResponse:
    segment = _segment_filter(request)
    if segment is None:
        queryset = Contact.objects.filter(workspace=request.workspace)
    else:
        queryset = services.segment_contacts(segment, timezone.now())
    queryset = queryset.select_related("account").order_by("user_id")
    return paginated(request, queryset, Contact.to_dict)


@api(["GET", "DELETE"])
@authorize
def contact(request: HttpRequest, user_id: str) -> HttpResponse:
    found = _contact(request, user_id)
    if request.method == "DELETE":
        found.delete()
        return HttpResponse(status=204)
    data = found.to_dict()
    data["segments"] = [
        {"id": s.pk, "name": s.name} for s in services.contact_segments(found, timezone.now())
    ]
    return JsonResponse(data)


def warning_fields(rule) -> list[dict[str, str]]:
    """A valid rule's warnings (what it asks of events retention no longer keeps), with
    fields named as in the request body, like errors."""
    return [{**w, "field": f"rules.{w['field']}"} for w in rule_warnings(rule)]


def saved_segment_to_dict(segment: Segment, now) -> dict:
    return {**segment_to_dict(segment, now), "warnings": warning_fields(segment.rules)}


def rule_fields(problems: dict[str, str]) -> dict[str, str]:
    """A rule's problems as request fields: `rules` itself, or a path under it."""
    return {path if path == "rules" else f"rules.{path}": msg for path, msg in problems.items()}


def rule_error(fields: dict[str, str], code: str) -> Invalid:
    """The refusal of a body with these problems; `code` is the rule's (see `Problems`)."""
    if code == TOO_COMPLEX:
        message = "The rule is beyond the work a rule may cost, with segment references expanded."
        return Invalid(fields, message, code=TOO_COMPLEX)
    return invalid(fields)


def clean_segment(data: dict, workspace_id: int, segment: Segment | None = None) -> dict:
    """Validate a segment body for POST (segment None) or PUT; raise 400 with every problem."""
    errors: dict[str, str] = {}
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
        errors["name"] = "Must be a name of 1 to 200 characters."
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 5000:
        errors["description"] = "Must be a string of at most 5000 characters."
    kind = data.get("kind", segment.kind if segment else Segment.RULES)
    if kind not in (Segment.RULES, Segment.MANUAL):
        errors["kind"] = 'Must be "rules" or "manual".'
    elif segment is not None and kind != segment.kind:
        errors["kind"] = "A segment's kind cannot change."
    for key in data:
        if key not in ("name", "description", "kind", "rules"):
            errors[key[:100]] = "Is not a segment field."
    rules = data.get("rules")
    code = "invalid"
    if kind == Segment.RULES:
        if "rules" not in data:
            errors["rules"] = "A data-driven segment needs rules."
        else:
            problems = services.check_rule(
                rules, workspace_id=workspace_id, segment_id=segment.pk if segment else None
            )
            errors |= rule_fields(problems)
            code = problems.code
    elif kind == Segment.MANUAL and rules is not None:
        errors["rules"] = "A manual segment has no rules."
    if errors:
        raise rule_error(errors, code)
    return {
        "name": name.strip(),
        "description": description,
        "kind": kind,
        "rules": rules if kind == Segment.RULES else None,
    }


@api(["GET", "POST"])
@authorize
def segments(request: HttpRequest) -> JsonResponse:
    now = timezone.now()
    if request.method == "POST":
        data = json_body(request)
        with transaction.atomic():
            services.lock_segments(request.workspace.pk)
            fields = clean_segment(data, request.workspace.pk)
            segment = Segment.objects.create(workspace=request.workspace, **fields)
            tasks.queue_sweep(segment)
        return JsonResponse(saved_segment_to_dict(segment, now), status=201)
    queryset = Segment.objects.filter(workspace=request.workspace).order_by("id")
    return paginated(request, queryset, lambda s: segment_to_dict(s, now))


@api(["GET", "PUT", "DELETE"])
@authorize
def segment(request: HttpRequest, segment_id: int) -> HttpResponse:
    found = _segment(request, segment_id)
    if request.method == "DELETE":
        delete_segment(found)
        return HttpResponse(status=204)
    if request.method == "PUT":
        data = json_body(request)
        with transaction.atomic():
            services.lock_segments(request.workspace.pk)
            fields = clean_segment(data, request.workspace.pk, found)
            for key, value in fields.items():
                setattr(found, key, value)
            found.save()
            tasks.queue_sweep(found)
        return JsonResponse(saved_segment_to_dict(found, timezone.now()))
    return JsonResponse(segment_to_dict(found, timezone.now()))


@api(["GET"])
@authorize
def segment_members(request: HttpRequest, segment_id: int) -> JsonResponse:
    found = _segment(request, segment_id)
    queryset = services.segment_contacts(found, timezone.now())
    return paginated(
        request, queryset.select_related("account").order_by("user_id"), Contact.to_dict
    )


@api(["POST"])
@authorize
def segment_preview(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    rules = data.get("rules")
    problems = services.check_rule(rules, workspace_id=request.workspace.pk)
    if problems:
        raise rule_error(rule_fields(problems), problems.code)
    now = timezone.now()
    queryset = services.rule_contacts(request.workspace.pk, rules, now)
    sample = list(queryset.order_by("user_id").values_list("user_id", flat=True)[:SAMPLE_SIZE])
    count = services.rule_count(request.workspace.pk, rules, now)
    return JsonResponse({"count": count, "sample": sample, "warnings": warning_fields(rules)})


def _user_ids(data: dict) -> list[str]:
    user_ids = data.get("user_ids")
    if (
        not isinstance(user_ids, list)
        or not 1 <= len(user_ids) <= 1000
        or not all(isinstance(u, str) and 1 <= len(u) <= 200 for u in user_ids)
    ):
        raise invalid({"user_ids": "Must be a list of 1 to 1000 user ids."})
    return user_ids


@api(["POST", "DELETE"])
@authorize
def manual_members(request: HttpRequest, segment_id: int) -> JsonResponse:
    found = _segment(request, segment_id)
    if not found.is_manual:
        raise ApiError("not_manual", "Only manual segments have members to add or remove.", 400)
    user_ids = _user_ids(json_body(request))
    if request.method == "POST":
        known = set(
            Contact.objects.filter(workspace=request.workspace, user_id__in=user_ids).values_list(
                "user_id", flat=True
            )
        )
        unknown = [u for u in user_ids if u not in known]
        if unknown:
            raise invalid({"user_ids": f"Unknown user ids: {', '.join(unknown[:20])}."})
        services.add_members(found, user_ids)
    else:
        services.remove_members(found, user_ids)
    return JsonResponse(segment_to_dict(found, timezone.now()))

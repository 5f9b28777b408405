"""Targeting settings: validation, saving and the audience estimate (SPEC §4)."""

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from refiner.errors import Invalid
from refiner.http import parse_id
from refiner.models import Workspace
from segments.models import Contact, Segment
from segments.services import segment_contacts, segment_count
from segments.values import is_json_integer, parse_date
from surveys.models import Survey
from targeting.models import Targeting

PAGE_MATCHES = tuple(value for value, _ in Targeting.PAGE_MATCHES)
MAX_PAGES = 100
MAX_PAGE_VALUE = 1000
MAX_SEGMENTS = 100
MAX_DELAY_SECONDS = 86_400
MAX_DAYS = 3650
MAX_PRIORITY = 1000
FIELDS = (
    "audience",
    "segments",
    "segment_match",
    "excluded_segments",
    "trigger",
    "trigger_event",
    "allowed_pages",
    "excluded_pages",
    "delay_seconds",
    "sample_percent",
    "frequency",
    "recurring_days",
    "max_displays_per_contact",
    "max_responses",
    "starts_at",
    "ends_at",
    "priority",
    "ignore_recontact",
)
DEFAULTS = {
    "audience": Targeting.EVERYONE,
    "segments": [],
    "segment_match": Targeting.ANY,
    "excluded_segments": [],
    "trigger": Targeting.PAGE_LOAD,
    "trigger_event": "",
    "allowed_pages": [],
    "excluded_pages": [],
    "delay_seconds": 0,
    "sample_percent": 100,
    "frequency": Targeting.ONCE,
    "recurring_days": 30,
    "max_displays_per_contact": None,
    "max_responses": None,
    "starts_at": None,
    "ends_at": None,
    "priority": 0,
    "ignore_recontact": False,
}


def _choice(data: dict, key: str, choices, errors: dict) -> Any:
    value = data[key]
    if value not in [c for c, _ in choices]:
        errors[key] = "Must be one of " + ", ".join(f'"{c}"' for c, _ in choices) + "."
    return value


def _whole(data: dict, key: str, low: int, high: int, errors: dict, *, nullable=False) -> Any:
    value = data[key]
    if value is None and nullable:
        return None
    if not is_json_integer(value) or not low <= value <= high:
        errors[key] = f"Must be a whole number from {low} to {high}" + (
            ", or null." if nullable else "."
        )
    return value


def _segment_ids(data: dict, key: str, workspace: Workspace, errors: dict) -> list[int]:
    raw = data[key]
    if not isinstance(raw, list) or len(raw) > MAX_SEGMENTS:
        errors[key] = f"Must be a list of at most {MAX_SEGMENTS} segment ids."
        return []
    ids = []
    for item in raw:
        if isinstance(item, str) and parse_id(item) is not None:
            item = parse_id(item)
        if not is_json_integer(item):
            errors[key] = "Must be a list of segment ids."
            return []
        ids.append(item)
    ids = sorted(set(ids))
    known = set(
        Segment.objects.filter(workspace=workspace, pk__in=ids).values_list("pk", flat=True)
    )
    missing = [str(pk) for pk in ids if pk not in known]
    if missing:
        errors[key] = f"There is no segment {', '.join(missing)} in this workspace."
    return ids


def _pages(data: dict, key: str, errors: dict) -> list[dict]:
    raw = data[key]
    if not isinstance(raw, list) or len(raw) > MAX_PAGES:
        errors[key] = f"Must be a list of at most {MAX_PAGES} page rules."
        return []
    cleaned = []
    for index, rule in enumerate(raw):
        path = f"{key}[{index}]"
        if not isinstance(rule, dict) or set(rule) != {"match", "value"}:
            errors[path] = 'Must be an object {"match", "value"}.'
            continue
        if rule["match"] not in PAGE_MATCHES:
            errors[f"{path}.match"] = "Must be one of " + ", ".join(PAGE_MATCHES) + "."
        value = rule["value"]
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_PAGE_VALUE:
            errors[f"{path}.value"] = f"Must be a text of 1 to {MAX_PAGE_VALUE} characters."
        cleaned.append({"match": rule["match"], "value": value})
    return cleaned


def _moment(data: dict, key: str, errors: dict) -> datetime | None:
    value = data[key]
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            errors[key] = "Must carry a time zone."
        return value
    moment = parse_date(value)
    if moment is None:
        errors[key] = "Must be an ISO-8601 date or datetime, or null."
    return moment


def clean_targeting(data: Any, *, workspace: Workspace) -> dict:
    """Validate a complete targeting object (missing fields take their defaults).

    Returns every field of §4 with segments as sorted id lists; raises a 400 whose
    fields name each problem (`allowed_pages[0].match`, `segments`, ...).
    """
    if not isinstance(data, dict):
        raise Invalid({"targeting": "Must be an object."})
    errors: dict[str, str] = {}
    for key in data:
        if key not in FIELDS:
            errors[str(key)[:100]] = "Is not a targeting field."
    data = {**DEFAULTS, **{k: v for k, v in data.items() if k in FIELDS}}
    cleaned: dict[str, Any] = {
        "audience": _choice(data, "audience", Targeting.AUDIENCES, errors),
        "segments": _segment_ids(data, "segments", workspace, errors),
        "segment_match": _choice(data, "segment_match", Targeting.MATCHES, errors),
        "excluded_segments": _segment_ids(data, "excluded_segments", workspace, errors),
        "trigger": _choice(data, "trigger", Targeting.TRIGGERS, errors),
        "trigger_event": data["trigger_event"],
        "allowed_pages": _pages(data, "allowed_pages", errors),
        "excluded_pages": _pages(data, "excluded_pages", errors),
        "delay_seconds": _whole(data, "delay_seconds", 0, MAX_DELAY_SECONDS, errors),
        "sample_percent": data["sample_percent"],
        "frequency": _choice(data, "frequency", Targeting.FREQUENCIES, errors),
        "recurring_days": _whole(data, "recurring_days", 1, MAX_DAYS, errors),
        "max_displays_per_contact": _whole(
            data, "max_displays_per_contact", 1, 1_000_000, errors, nullable=True
        ),
        "max_responses": _whole(data, "max_responses", 1, 100_000_000, errors, nullable=True),
        "starts_at": _moment(data, "starts_at", errors),
        "ends_at": _moment(data, "ends_at", errors),
        "priority": _whole(data, "priority", -MAX_PRIORITY, MAX_PRIORITY, errors),
        "ignore_recontact": data["ignore_recontact"],
    }
    event = cleaned["trigger_event"]
    if event is None:
        cleaned["trigger_event"] = event = ""
    if not isinstance(event, str) or len(event) > 200:
        errors["trigger_event"] = "Must be an event name of at most 200 characters."
    elif cleaned["trigger"] == Targeting.EVENT and not event.strip():
        errors["trigger_event"] = "An event trigger needs the event's name."
    sample = cleaned["sample_percent"]
    if not isinstance(sample, int | float) or isinstance(sample, bool) or not 0 <= sample <= 100:
        errors["sample_percent"] = "Must be a number from 0 to 100."
    if not isinstance(cleaned["ignore_recontact"], bool):
        errors["ignore_recontact"] = "Must be true or false."
    if (
        cleaned["audience"] == Targeting.SEGMENTS
        and not cleaned["segments"]
        and not errors.get("segments")
    ):
        errors["segments"] = "Choose at least one segment, or target everyone."
    both = set(cleaned["segments"]) & set(cleaned["excluded_segments"])
    if both and "excluded_segments" not in errors:
        errors["excluded_segments"] = "A segment cannot be both targeted and excluded."
    starts, ends = cleaned["starts_at"], cleaned["ends_at"]
    if starts and ends and not errors.get("ends_at") and not starts < ends:
        errors["ends_at"] = "Must be after starts_at."
    if errors:
        raise Invalid(errors)
    if cleaned["audience"] != Targeting.SEGMENTS:
        cleaned["segments"] = []
    return cleaned


def apply_targeting(survey: Survey, cleaned: dict) -> Targeting:
    """Save cleaned targeting (see `clean_targeting`) on the survey."""
    with transaction.atomic():
        targeting = Targeting.objects.filter(survey=survey).first() or Targeting(survey=survey)
        for key, value in cleaned.items():
            if key not in ("segments", "excluded_segments"):
                setattr(targeting, key, value)
        targeting.save()
        targeting.segments.set(cleaned["segments"])
        targeting.excluded_segments.set(cleaned["excluded_segments"])
    return targeting


def audience_condition(
    by_id: dict[int, Segment],
    *,
    audience: str,
    segments: list[int],
    segment_match: str,
    excluded_segments: list[int],
    now: datetime,
) -> Q | None:
    """The audience as a condition on Contact (None when it can hold nobody).

    `by_id` holds the workspace's segments; ids not in it are ignored. A Q, so that
    two audiences can be intersected in one query (the Targeting tab's competitors).
    """

    def members(ids: list[int]) -> list[Q]:
        chosen = [by_id[pk] for pk in ids if pk in by_id]
        return [Q(pk__in=segment_contacts(segment, now).values("pk")) for segment in chosen]

    condition = Q()
    if audience == Targeting.SEGMENTS:
        targeted = members(segments)
        if not targeted:
            return None
        combined = targeted[0]
        for part in targeted[1:]:
            combined = combined & part if segment_match == Targeting.ALL else combined | part
        condition &= combined
    for part in members(excluded_segments):
        condition &= ~part
    return condition


def audience_estimate(workspace_id: int, *, now: datetime, **audience) -> int:
    """How many contacts are in the audience now: one SQL count.

    `audience` holds `audience`, `segments`, `segment_match` and `excluded_segments`.
    Only the audience and exclusions count; trigger, pages, sample and pacing are
    decided at check time.
    """
    by_id = {s.pk: s for s in Segment.objects.filter(workspace_id=workspace_id)}
    segment = _lone_segment(by_id, **audience)
    if segment is not None:
        return segment_count(segment, now)
    condition = audience_condition(by_id, now=now, **audience)
    if condition is None:
        return 0
    return Contact.objects.filter(Q(workspace_id=workspace_id) & condition).count()


def _lone_segment(
    by_id: dict[int, Segment],
    *,
    audience: str,
    segments: list[int],
    excluded_segments: list[int],
    **_,
) -> Segment | None:
    """The one segment an audience amounts to, with no exclusion, or None.

    Such an audience is counted as the segment list counts it (`segment_count`): a
    segment of one trait then costs an index count of its values, not a join with contacts.
    """
    if audience != Targeting.SEGMENTS or any(pk in by_id for pk in excluded_segments):
        return None
    chosen = {pk for pk in segments if pk in by_id}
    return by_id[chosen.pop()] if len(chosen) == 1 else None

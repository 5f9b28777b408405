"""Validation of an endpoint, shared by the REST API and the dashboard."""

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from webhooks.models import EVENT_NAMES, Endpoint
from webhooks.outbound import is_public

MAX_URL = 2000
FIELDS = ("url", "events", "format", "is_active")


def url_problem(url: Any) -> str | None:
    """Why `url` cannot be an endpoint's URL (None: it can).

    A literal private address is refused here; a name is only resolved when sending,
    and refused then if it leads inside (webhooks/outbound.py).
    """
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL:
        return f"Must be an http or https URL of at most {MAX_URL} characters."
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError:
        return "Must be an http or https URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http or https URL."
    if not settings.WEBHOOKS_ALLOW_PRIVATE:
        try:
            ipaddress.ip_address(parts.hostname)
        except ValueError:
            return None
        if not is_public(parts.hostname):
            return "Must not be a loopback, link-local or private address."
    return None


def events_problem(events: Any) -> str | None:
    if (
        not isinstance(events, list)
        or not events
        or not all(isinstance(e, str) and e in EVENT_NAMES for e in events)
        or len(set(events)) != len(events)
    ):
        return f"Must be a list of distinct events among {', '.join(EVENT_NAMES)}."
    return None


def clean_endpoint(data: dict, endpoint: Endpoint | None = None) -> tuple[dict, dict]:
    """(cleaned fields, problems by field) for a new endpoint or a change to `endpoint`.

    A new endpoint needs a url and events; a change names only what changes.
    """
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for key in data:
        if key not in FIELDS:
            errors[str(key)[:100]] = "Is not an endpoint field."
    for key in ("url", "events"):
        if endpoint is None and key not in data:
            errors[key] = "Is required."
    if "url" in data:
        if problem := url_problem(data["url"]):
            errors["url"] = problem
        else:
            cleaned["url"] = data["url"].strip()
    if "events" in data:
        if problem := events_problem(data["events"]):
            errors["events"] = problem
        else:
            cleaned["events"] = [e for e in EVENT_NAMES if e in data["events"]]
    if "format" in data:
        if data["format"] not in (Endpoint.JSON, Endpoint.SLACK):
            errors["format"] = 'Must be "json" or "slack".'
        else:
            cleaned["format"] = data["format"]
    if "is_active" in data:
        if not isinstance(data["is_active"], bool):
            errors["is_active"] = "Must be true or false."
        else:
            cleaned["is_active"] = data["is_active"]
    return cleaned, errors

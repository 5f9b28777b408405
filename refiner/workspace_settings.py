"""A workspace's settings and their rules: one validator for the REST API and the dashboard."""

from typing import Any
from urllib.parse import urlsplit

from refiner.errors import Invalid

SETTINGS = ("name", "identity_verification", "allowed_origins", "recontact_days")
MAX_ORIGINS = 100
MAX_ORIGIN = 300
MAX_RECONTACT_DAYS = 3650


def _origin_problem(origin: Any) -> str | None:
    """Why `origin` is no origin (scheme and host, nothing after): a path, query or
    fragment could never equal a browser's `Origin` header, so it would never match."""
    if not isinstance(origin, str):
        return "Must be a list of origins such as https://app.example.com."
    parts = urlsplit(origin)
    if (
        len(origin) > MAX_ORIGIN
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path
        or parts.query
        or parts.fragment
    ):
        return f"“{origin[:MAX_ORIGIN]}” is not an origin like https://app.example.com."
    return None


def _clean_origins(origins: Any, errors: dict) -> list[str] | None:
    if not isinstance(origins, list):
        errors["allowed_origins"] = "Must be a list of origins such as https://app.example.com."
        return None
    cleaned = [o.rstrip("/") if isinstance(o, str) else o for o in origins]
    for origin in cleaned:
        if problem := _origin_problem(origin):
            errors["allowed_origins"] = problem
            return None
    cleaned = list(dict.fromkeys(cleaned))
    if len(cleaned) > MAX_ORIGINS:
        errors["allowed_origins"] = f"At most {MAX_ORIGINS} origins."
        return None
    return cleaned


def clean_settings(data: dict) -> dict:
    """Validate a change of workspace settings; only the given keys change.

    Raise `Invalid` with every problem by setting.
    """
    errors, cleaned = {}, {}
    for key in data:
        if key not in SETTINGS:
            errors[key[:100]] = "Is not a workspace setting."
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            errors["name"] = "Must be a name of 1 to 200 characters."
        else:
            cleaned["name"] = name.strip()
    if "identity_verification" in data:
        if not isinstance(data["identity_verification"], bool):
            errors["identity_verification"] = "Must be true or false."
        else:
            cleaned["identity_verification"] = data["identity_verification"]
    if "allowed_origins" in data:
        origins = _clean_origins(data["allowed_origins"], errors)
        if origins is not None:
            cleaned["allowed_origins"] = origins
    if "recontact_days" in data:
        days = data["recontact_days"]
        if (
            not isinstance(days, int)
            or isinstance(days, bool)
            or not 0 <= days <= MAX_RECONTACT_DAYS
        ):
            errors["recontact_days"] = (
                f"Must be a whole number of days from 0 to {MAX_RECONTACT_DAYS}."
            )
        else:
            cleaned["recontact_days"] = days
    if errors:
        raise Invalid(errors)
    return cleaned

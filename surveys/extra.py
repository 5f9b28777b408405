"""The page's own fields stored with a response (the widget's `addToResponse`)."""

import re
from typing import Any

from refiner.errors import Invalid

MAX_FIELDS = 20
MAX_VALUE = 500
# Keys become CSV and dashboard labels: plain names, as trait keys are.
FIELD_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_. -]{0,99}")


def _field_error(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return None if abs(value) < 1e15 else "Numbers must be smaller than 10^15."
    if isinstance(value, str):
        return None if len(value) <= MAX_VALUE else f"At most {MAX_VALUE} characters."
    return "Must be a text, a number, true, false or null: no lists or objects."


def clean_extra(value: Any) -> dict | None:
    """Validate the extra fields of an answers call: None (keep what is stored) or a flat
    object of at most MAX_FIELDS plain keys to short scalar values; 400 otherwise.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_FIELDS:
        raise Invalid({"extra": f"Must be an object of at most {MAX_FIELDS} fields, or null."})
    errors = {}
    for key, item in value.items():
        if not FIELD_KEY.fullmatch(key):
            errors[f"extra.{key[:100]}"] = (
                "Field names are 1–100 letters, digits, _, -, . or space, "
                "not starting with -, . or space."
            )
            continue
        problem = _field_error(item)
        if problem:
            errors[f"extra.{key}"] = problem
    if errors:
        raise Invalid(errors)
    return {key: item for key, item in value.items() if item is not None}

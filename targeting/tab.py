"""The Targeting tab's values: browser fields in, the REST API's targeting object out.

Validation itself is `targeting.services.clean_targeting`, shared with the API; this
module only reads strings, keeps them for redisplay, and places the errors.
"""

import math
from datetime import UTC, datetime
from typing import Any

from django.http import QueryDict

from refiner.errors import Invalid
from refiner.http import parse_id
from refiner.models import Workspace
from surveys.forms import plain_words
from targeting.models import Targeting
from targeting.services import DEFAULTS, clean_targeting

PAGE_LISTS = ("allowed_pages", "excluded_pages")
WHOLE_NUMBERS = ("delay_seconds", "recurring_days", "priority")
OPTIONAL_WHOLE_NUMBERS = ("max_displays_per_contact", "max_responses")
CHOICES = ("audience", "segment_match", "trigger", "frequency")
MOMENTS = ("starts_at", "ends_at")
MAX_ROWS = 100


def _moment_input(value: datetime | None) -> str:
    """A `datetime-local` value, in UTC like every time the product stores."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""


def _number_input(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ids(raw: list[str]) -> list[Any]:
    return [item if parse_id(item) is None else parse_id(item) for item in raw]


class TargetingTab:
    """The tab's values as the browser shows them (strings), plus errors by field."""

    def __init__(self, values: dict[str, Any]):
        self.values = values
        self.errors: dict[str, str] = {}

    @classmethod
    def from_targeting(cls, targeting: Targeting) -> "TargetingTab":
        values: dict[str, Any] = {key: getattr(targeting, key) for key in CHOICES}
        values |= {
            "segments": [s.pk for s in targeting.segments.all()],
            "excluded_segments": [s.pk for s in targeting.excluded_segments.all()],
            "trigger_event": targeting.trigger_event,
            "allowed_pages": [dict(rule) for rule in targeting.allowed_pages],
            "excluded_pages": [dict(rule) for rule in targeting.excluded_pages],
            "sample_percent": _number_input(targeting.sample_percent),
            "ignore_recontact": targeting.ignore_recontact,
        }
        for key in WHOLE_NUMBERS + OPTIONAL_WHOLE_NUMBERS:
            values[key] = _number_input(getattr(targeting, key))
        for key in MOMENTS:
            values[key] = _moment_input(getattr(targeting, key))
        return cls(values)

    @classmethod
    def from_data(cls, data: QueryDict) -> "TargetingTab":
        """From a POST (or the live estimate's GET): page rows come as parallel lists."""
        values: dict[str, Any] = {
            key: data.get(key, str(DEFAULTS[key] if DEFAULTS[key] is not None else ""))
            for key in CHOICES + WHOLE_NUMBERS + OPTIONAL_WHOLE_NUMBERS + MOMENTS
        }
        values |= {
            "segments": _ids(data.getlist("segments")),
            "excluded_segments": _ids(data.getlist("excluded_segments")),
            "trigger_event": data.get("trigger_event", "").strip(),
            "sample_percent": data.get("sample_percent", "100"),
            "ignore_recontact": data.get("ignore_recontact") in ("on", "true", "1"),
        }
        for key in PAGE_LISTS:
            pairs = zip(data.getlist(f"{key}-match"), data.getlist(f"{key}-value"), strict=False)
            values[key] = [{"match": m, "value": v.strip()} for m, v in pairs][:MAX_ROWS]
        return cls(values)

    def change_rows(self, action: str) -> bool:
        """Apply an "add:<list>" or "remove:<list>:<index>" button; False if it is neither."""
        verb, _, rest = action.partition(":")
        key, _, index = rest.partition(":")
        if key not in PAGE_LISTS:
            return False
        rows, position = self.values[key], parse_id(index)
        if verb == "add" and len(rows) < MAX_ROWS:
            rows.append({"match": "starts_with", "value": ""})
        elif verb == "remove" and position is not None and position < len(rows):
            del rows[position]
        else:
            return verb in ("add", "remove")
        return True

    def _read_numbers(self, data: dict) -> None:
        for key in WHOLE_NUMBERS + OPTIONAL_WHOLE_NUMBERS:
            raw = str(self.values[key]).strip()
            if raw == "" and key in OPTIONAL_WHOLE_NUMBERS:
                data[key] = None
                continue
            try:
                data[key] = int(raw)
            except ValueError:
                self.errors[key] = "Enter a whole number."
        raw = str(self.values["sample_percent"]).strip()
        try:
            sample = float(raw)
        except ValueError:
            sample = math.nan
        if math.isfinite(sample):
            data["sample_percent"] = int(sample) if sample.is_integer() else sample
        else:
            self.errors["sample_percent"] = "Enter a number from 0 to 100."

    def _pages(self, key: str) -> tuple[list[dict], list[int]]:
        """The list's filled rows, and for each the row it came from (blank rows are skipped)."""
        kept = [(i, row) for i, row in enumerate(self.values[key]) if row["value"]]
        return [row for _, row in kept], [i for i, _ in kept]

    def targeting_data(self) -> tuple[dict, dict[str, list[int]]]:
        """The REST API's targeting object built from the fields."""
        data = {key: self.values[key] for key in CHOICES + MOMENTS}
        data |= {
            "segments": self.values["segments"],
            "excluded_segments": self.values["excluded_segments"],
            "trigger_event": self.values["trigger_event"],
            "ignore_recontact": self.values["ignore_recontact"],
        }
        self._read_numbers(data)
        origins = {}
        for key in PAGE_LISTS:
            data[key], origins[key] = self._pages(key)
        return data, origins

    def clean(self, workspace: Workspace) -> dict | None:
        """Cleaned targeting ready for `apply_targeting`, or None with `errors` filled."""
        data, origins = self.targeting_data()
        try:
            cleaned = clean_targeting(data, workspace=workspace)
        except Invalid as problem:
            for field, message in (problem.fields or {}).items():
                self.errors.setdefault(self._row_field(field, origins), plain_words(message))
            return None
        return None if self.errors else cleaned

    @staticmethod
    def _row_field(field: str, origins: dict[str, list[int]]) -> str:
        """`allowed_pages[0].value` names the first *filled* row; point at the row shown."""
        for key in PAGE_LISTS:
            prefix = f"{key}["
            if field.startswith(prefix) and "]" in field:
                index = field[len(prefix) : field.index("]")]
                position = parse_id(index)
                if position is not None and position < len(origins[key]):
                    return f"{key}-{origins[key][position]}"
        return field

    def rows(self, key: str) -> list[dict]:
        return [
            {**row, "index": i, "error": self.errors.get(f"{key}-{i}")}
            for i, row in enumerate(self.values[key])
        ]

    @property
    def allowed_rows(self) -> list[dict]:
        return self.rows("allowed_pages")

    @property
    def excluded_rows(self) -> list[dict]:
        return self.rows("excluded_pages")

    def audience(self) -> dict:
        """The audience part, read leniently: the live estimate runs on half-filled forms."""
        return {
            "audience": self.values["audience"],
            "segments": [pk for pk in self.values["segments"] if isinstance(pk, int)],
            "segment_match": self.values["segment_match"],
            "excluded_segments": [
                pk for pk in self.values["excluded_segments"] if isinstance(pk, int)
            ],
        }

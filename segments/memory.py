"""The in-memory evaluator: does one contact, as a snapshot, match a rule?

It must agree with `segments.sql` on every rule and every contact (SPEC §3.6);
both compare only what `segments.values` parses.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segments.rules import NEGATIONS
from segments.values import ParsedValue, days_before, fold, parse_date, parse_number, parse_value


@dataclass(frozen=True)
class DisplayFacts:
    survey_id: int
    shown_at: datetime
    dismissed_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass
class ContactSnapshot:
    """All a rule can ask about one contact. Missing attributes are absent keys."""

    attributes: dict[str, Any] = field(default_factory=dict)
    account: dict[str, Any] | None = None
    events: dict[str, list[datetime]] = field(default_factory=dict)
    displays: list[DisplayFacts] = field(default_factory=list)
    answers: dict[tuple[int, str], Any] = field(default_factory=dict)
    manual_segments: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class SegmentDefinition:
    id: int
    kind: str
    rules: Any


_MISSING = object()


def _elements(value: Any, *, spread_lists: bool) -> list[ParsedValue]:
    if spread_lists and isinstance(value, list):
        return [parse_value(item) for item in value]
    return [parse_value(value)]


def _equals(parsed: ParsedValue, expected: Any, ignore_case: bool) -> bool:
    if isinstance(expected, bool):
        return parsed.boolean is expected
    if isinstance(expected, str):
        if ignore_case:
            return parsed.text_folded is not None and parsed.text_folded == fold(expected)
        return parsed.text is not None and parsed.text == expected
    return parsed.num is not None and parsed.num == parse_number(expected)


def _text(parsed: ParsedValue, expected: str, ignore_case: bool) -> tuple[str | None, str]:
    if ignore_case:
        return parsed.text_folded, fold(expected)
    return parsed.text, expected


def _positive(operator: str, parsed: ParsedValue, value: Any, ignore_case: bool, now) -> bool:
    """A positive operator on one parsed element (never called for negatives)."""
    if operator == "equals":
        return _equals(parsed, value, ignore_case)
    if operator == "in":
        return any(_equals(parsed, item, ignore_case) for item in value)
    if operator in ("contains", "starts_with", "ends_with"):
        text, expected = _text(parsed, value, ignore_case)
        if text is None:
            return False
        if operator == "contains":
            return expected in text
        return text.startswith(expected) if operator == "starts_with" else text.endswith(expected)
    if operator in ("greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"):
        if parsed.num is None:
            return False
        number = parse_number(value)
        return {
            "greater_than": parsed.num > number,
            "greater_than_or_equal": parsed.num >= number,
            "less_than": parsed.num < number,
            "less_than_or_equal": parsed.num <= number,
        }[operator]
    if parsed.date is None and operator in (
        "before", "after", "more_than_days_ago", "less_than_days_ago",
    ):  # fmt: skip
        return False
    if operator == "before":
        return parsed.date < parse_date(value)
    if operator == "after":
        return parsed.date > parse_date(value)
    if operator == "more_than_days_ago":
        return parsed.date < days_before(now, value)
    if operator == "less_than_days_ago":
        return days_before(now, value) <= parsed.date <= now
    if operator == "is_true":
        return parsed.boolean is True
    if operator == "is_false":
        return parsed.boolean is False
    raise ValueError(f"unknown operator {operator}")


def value_matches(
    condition: Mapping,
    raw: Any,
    now: datetime,
    *,
    spread_lists: bool,
    elements: list[ParsedValue] | None = None,
) -> bool:
    """An attribute operator applied to a stored value (`_MISSING` when missing).

    `elements` are the value's parsed elements when the caller has them already.
    """
    operator = condition["operator"]
    negated = operator in NEGATIONS
    if negated:
        operator = NEGATIONS[operator]
    if raw is _MISSING or raw is None:
        held = False
    elif operator == "is_set":
        held = True
    else:
        value, ignore_case = condition.get("value"), condition.get("ignore_case", False)
        held = any(
            _positive(operator, parsed, value, ignore_case, now)
            for parsed in elements or _elements(raw, spread_lists=spread_lists)
        )
    return held != negated


def _count_events(times: list[datetime], within_days: int | None, now: datetime) -> int:
    if within_days is None:
        return len(times)
    start = days_before(now, within_days)
    return sum(1 for moment in times if start <= moment <= now)


def _event_matches(condition: Mapping, snapshot: ContactSnapshot, now: datetime) -> bool:
    count = _count_events(
        snapshot.events.get(condition["event"], []), condition.get("within_days"), now
    )
    wanted = condition["value"]
    return {
        "at_least": count >= wanted,
        "at_most": count <= wanted,
        "exactly": count == wanted,
    }[condition["operator"]]


def _in_window(moment: datetime | None, within_days: int | None, now: datetime) -> bool:
    if moment is None:
        return False
    return within_days is None or days_before(now, within_days) <= moment <= now


SURVEY_MOMENTS = {
    "seen": "shown_at",
    "not_seen": "shown_at",
    "dismissed": "dismissed_at",
    "completed": "completed_at",
    "not_completed": "completed_at",
}


def _survey_matches(condition: Mapping, snapshot: ContactSnapshot, now: datetime) -> bool:
    operator, survey = condition["operator"], condition["survey"]
    moment = SURVEY_MOMENTS[operator]
    held = any(
        _in_window(getattr(display, moment), condition.get("within_days"), now)
        for display in snapshot.displays
        if survey == "any" or display.survey_id == survey
    )
    return not held if operator.startswith("not_") else held


class Evaluator:
    """Evaluates rules for one contact snapshot at one moment."""

    def __init__(
        self,
        snapshot: ContactSnapshot,
        now: datetime,
        segments: Mapping[int, SegmentDefinition] | None = None,
    ):
        self.snapshot, self.now, self.segments = snapshot, now, segments or {}
        self._memo: dict[int, bool] = {}
        # Each stored value is parsed once per evaluation, however many rules read it.
        self._parsed: dict[Any, list[ParsedValue]] = {}

    def in_segment(self, segment_id: int) -> bool:
        if segment_id not in self._memo:
            segment = self.segments.get(segment_id)
            if segment is None:
                self._memo[segment_id] = False
            elif segment.kind == "manual":
                self._memo[segment_id] = segment_id in self.snapshot.manual_segments
            else:
                self._memo[segment_id] = self.matches(segment.rules)
        return self._memo[segment_id]

    def matches(self, node: Mapping) -> bool:
        kind = node["type"]
        if kind == "group":
            results = (self.matches(condition) for condition in node["conditions"])
            if node["match"] == "all":
                return all(results)
            if node["match"] == "any":
                return any(results)
            return not any(results)
        if kind == "attribute":
            key = node["attribute"]
            return self._value_matches(node, key, self._attribute(key), spread_lists=False)
        if kind == "event":
            return _event_matches(node, self.snapshot, self.now)
        if kind == "survey":
            return _survey_matches(node, self.snapshot, self.now)
        if kind == "answer":
            key = (node["survey"], node["question"])
            raw = self.snapshot.answers.get(key, _MISSING)
            return self._value_matches(node, key, raw, spread_lists=True)
        if kind == "segment":
            held = self.in_segment(node["segment"])
            return held if node["operator"] == "in" else not held
        raise ValueError(f"unknown condition type {kind}")

    def _value_matches(self, node: Mapping, key: Any, raw: Any, *, spread_lists: bool) -> bool:
        elements = None
        if raw is not _MISSING and raw is not None:
            elements = self._parsed.get(key)
            if elements is None:
                elements = self._parsed[key] = _elements(raw, spread_lists=spread_lists)
        return value_matches(node, raw, self.now, spread_lists=spread_lists, elements=elements)

    def _attribute(self, key: str) -> Any:
        if key.startswith("account."):
            if self.snapshot.account is None:
                return _MISSING
            return self.snapshot.account.get(key.removeprefix("account."), _MISSING)
        return self.snapshot.attributes.get(key, _MISSING)


def matches(
    rule: Mapping,
    snapshot: ContactSnapshot,
    now: datetime,
    segments: Mapping[int, SegmentDefinition] | None = None,
) -> bool:
    """Does the contact in `snapshot` match `rule` at `now`?"""
    return Evaluator(snapshot, now, segments).matches(rule)

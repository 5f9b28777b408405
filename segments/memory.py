"""The in-memory evaluator: does one contact, as a snapshot, match a rule?

It must agree with `segments.sql` on every rule and every contact (SPEC §3.6);
both compare only what `segments.values` parses.

A rule is compiled once into nested Python functions (a `Predicate`), which are
then called on each contact's snapshot: the eligibility check runs the same
segments for every widget call, so a segment keeps its compiled rule.
"""

import operator as compare
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from segments.rules import NEGATIONS, SURVEY_MOMENTS, SegmentDefinitions, usable_segment
from segments.values import (
    ParsedValue,
    days_after,
    days_before,
    fold,
    parse_date,
    parse_number,
    parse_value,
)


@dataclass(frozen=True)
class DisplayFacts:
    survey_id: int
    shown_at: datetime
    dismissed_at: datetime | None = None
    completed_at: datetime | None = None
    # The widget's browser session it was shown in (targeting's once-per-session).
    session: str | None = None


@dataclass
class ContactSnapshot:
    """All a rule can ask about one contact. Missing attributes are absent keys."""

    attributes: dict[str, Any] = field(default_factory=dict)
    account: dict[str, Any] | None = None
    events: dict[str, list[datetime]] = field(default_factory=dict)
    displays: list[DisplayFacts] = field(default_factory=list)
    answers: dict[tuple[int, str], Any] = field(default_factory=dict)
    manual_segments: set[int] = field(default_factory=set)
    # Counts over all time by event name, when the snapshot read the totals of those
    # names instead of their events (segments.snapshot.EventReads); None: it did not.
    event_totals: dict[str, int] | None = None


@dataclass(frozen=True)
class SegmentDefinition:
    id: int
    kind: str
    rules: Any

    @cached_property
    def predicate(self) -> "Predicate":
        return compile_rule(self.rules)

    def __getstate__(self) -> dict:
        # The compiled rule is rebuilt on use: functions do not pickle into the cache.
        return {"id": self.id, "kind": self.kind, "rules": self.rules}


_MISSING = object()

Predicate = Callable[["Evaluator"], bool]
ElementTest = Callable[[ParsedValue, datetime], bool]


def _elements(value: Any, *, spread_lists: bool) -> list[ParsedValue]:
    if spread_lists and isinstance(value, list):
        return [parse_value(item) for item in value]
    return [parse_value(value)]


def _equality(expected: Any, ignore_case: bool) -> ElementTest:
    if isinstance(expected, bool):
        return lambda parsed, now: parsed.boolean is expected
    if isinstance(expected, str):
        if ignore_case:
            folded = fold(expected)
            return lambda parsed, now: parsed.text_folded == folded  # never None == a str
        return lambda parsed, now: parsed.text == expected
    number = parse_number(expected)
    return lambda parsed, now: parsed.num is not None and parsed.num == number


def _text_test(operator: str, value: str, ignore_case: bool) -> ElementTest:
    column = "text_folded" if ignore_case else "text"
    expected = fold(value) if ignore_case else value
    relation = {
        "contains": lambda text: expected in text,
        "starts_with": lambda text: text.startswith(expected),
        "ends_with": lambda text: text.endswith(expected),
    }[operator]

    def test(parsed: ParsedValue, now: datetime) -> bool:
        text = getattr(parsed, column)
        return text is not None and relation(text)

    return test


NUMBER_COMPARISONS = {
    "greater_than": compare.gt,
    "greater_than_or_equal": compare.ge,
    "less_than": compare.lt,
    "less_than_or_equal": compare.le,
}


def _date_test(operator: str, value: Any) -> ElementTest:
    if operator == "before":
        moment = parse_date(value)
        return lambda parsed, now: parsed.date is not None and parsed.date < moment
    if operator == "after":
        moment = parse_date(value)
        return lambda parsed, now: parsed.date is not None and parsed.date > moment
    if operator == "more_than_days_ago":
        return lambda parsed, now: parsed.date is not None and parsed.date < days_before(now, value)
    return lambda parsed, now: (
        parsed.date is not None and days_before(now, value) <= parsed.date <= now
    )


DAYS_AGO = ("more_than_days_ago", "less_than_days_ago")


def turning_points(operator: str, value: Any) -> Callable[[ParsedValue], tuple] | None:
    """For a test that reads the clock: the moments around which its answer for one
    element may turn (the date itself, and the date N days on). None for the others,
    whose answer no passing time changes."""
    if operator not in DAYS_AGO:
        return None
    return lambda parsed: (
        () if parsed.date is None else (parsed.date, days_after(parsed.date, value))
    )


def element_test(operator: str, value: Any, ignore_case: bool) -> ElementTest | None:
    """A positive operator as a test of one parsed element; None for `is_set`."""
    if operator == "is_set":
        return None
    if operator == "equals":
        return _equality(value, ignore_case)
    if operator == "in":
        tests = [_equality(item, ignore_case) for item in value]
        return lambda parsed, now: any(test(parsed, now) for test in tests)
    if operator in ("contains", "starts_with", "ends_with"):
        return _text_test(operator, value, ignore_case)
    if operator in NUMBER_COMPARISONS:
        relation, number = NUMBER_COMPARISONS[operator], parse_number(value)
        return lambda parsed, now: parsed.num is not None and relation(parsed.num, number)
    if operator in ("before", "after", "more_than_days_ago", "less_than_days_ago"):
        return _date_test(operator, value)
    if operator in ("is_true", "is_false"):
        expected = operator == "is_true"
        return lambda parsed, now: parsed.boolean is expected
    raise ValueError(f"unknown operator {operator}")


def _value_condition(condition: Mapping, key: Any, *, spread_lists: bool) -> Predicate:
    """An attribute or answer condition on the stored value under `key`."""
    operator = condition["operator"]
    negated = operator in NEGATIONS
    positive = NEGATIONS.get(operator, operator)
    test = element_test(positive, condition.get("value"), condition.get("ignore_case", False))
    turns = turning_points(positive, condition.get("value"))

    def predicate(evaluator: "Evaluator") -> bool:
        elements = evaluator.elements(key, spread_lists=spread_lists)
        if elements is None:
            held = False
        elif test is None:
            held = True
        else:
            held = any(test(parsed, evaluator.now) for parsed in elements)
            if turns is not None:
                for parsed in elements:
                    evaluator.turns.add(*turns(parsed))
        return held != negated

    return predicate


def _count_events(times: list[datetime], within_days: int | None, now: datetime) -> int:
    if within_days is None:
        return len(times)
    start = days_before(now, within_days)
    return sum(1 for moment in times if start <= moment <= now)


EVENT_COMPARISONS = {"at_least": compare.ge, "at_most": compare.le, "exactly": compare.eq}


def _event_condition(condition: Mapping) -> Predicate:
    name, within_days = condition["event"], condition.get("within_days")
    relation, wanted = EVENT_COMPARISONS[condition["operator"]], condition["value"]

    def predicate(evaluator: "Evaluator") -> bool:
        snapshot = evaluator.snapshot
        times = snapshot.events.get(name, [])
        if within_days is not None:
            evaluator.turns.add_window(times, within_days)
        elif snapshot.event_totals is not None and name in snapshot.event_totals:
            return relation(snapshot.event_totals[name], wanted)
        return relation(_count_events(times, within_days, evaluator.now), wanted)

    return predicate


def _in_window(moment: datetime | None, within_days: int | None, now: datetime) -> bool:
    if moment is None:
        return False
    return within_days is None or days_before(now, within_days) <= moment <= now


def _survey_condition(condition: Mapping) -> Predicate:
    operator, survey = condition["operator"], condition["survey"]
    moment, within_days = SURVEY_MOMENTS[operator], condition.get("within_days")
    negated = operator.startswith("not_")

    def predicate(evaluator: "Evaluator") -> bool:
        displays = [
            d for d in evaluator.snapshot.displays if survey == "any" or d.survey_id == survey
        ]
        if within_days is not None:
            moments = [getattr(d, moment) for d in displays]
            evaluator.turns.add_window([m for m in moments if m is not None], within_days)
        held = any(
            _in_window(getattr(display, moment), within_days, evaluator.now) for display in displays
        )
        return held != negated

    return predicate


def _segment_condition(condition: Mapping) -> Predicate:
    segment_id, wanted = condition["segment"], condition["operator"] == "in"
    return lambda evaluator: evaluator.in_segment(segment_id) is wanted


def _group(condition: Mapping) -> Predicate:
    parts = [compile_rule(part) for part in condition["conditions"]]
    if condition["match"] == "all":
        return lambda evaluator: all(part(evaluator) for part in parts)
    if condition["match"] == "any":
        return lambda evaluator: any(part(evaluator) for part in parts)
    return lambda evaluator: not any(part(evaluator) for part in parts)


def compile_rule(node: Mapping) -> Predicate:
    """The rule as a function of an `Evaluator` (one contact at one moment)."""
    kind = node["type"]
    if kind == "group":
        return _group(node)
    if kind == "attribute":
        return _value_condition(node, node["attribute"], spread_lists=False)
    if kind == "event":
        return _event_condition(node)
    if kind == "survey":
        return _survey_condition(node)
    if kind == "answer":
        return _value_condition(node, (node["survey"], node["question"]), spread_lists=True)
    if kind == "segment":
        return _segment_condition(node)
    raise ValueError(f"unknown condition type {kind}")


@dataclass
class Turns:
    """The earliest moment, not before `now`, around which an answer given at `now` may
    turn with the clock alone (a date N days ago, a window's edge, a schedule); None
    while no answer read the clock. Until then, on the same data, every answer stays
    the same: the eligibility memo keeps an answer that long.
    """

    now: datetime
    at: datetime | None = None

    def add(self, *moments: datetime | None) -> None:
        """An answer may turn around these moments (those before `now` are past)."""
        for moment in moments:
            if moment is not None and moment >= self.now and (self.at is None or moment < self.at):
                self.at = moment

    def add_window(self, moments: list[datetime], within_days: int) -> None:
        """A count over the last `within_days` days turns when a moment enters the
        window (a future one, reached) or leaves it (N days on): the earliest of those
        are the window's oldest moment, N days on, and its first moment not past."""
        start = days_before(self.now, within_days)
        inside = [m for m in moments if m >= start]
        if inside:
            coming = [m for m in inside if m >= self.now]
            self.add(days_after(min(inside), within_days), min(coming) if coming else None)


class Evaluator:
    """Evaluates rules for one contact snapshot at one moment.

    `turns` gathers the moments around which an answer it gave may turn with the
    clock alone (see `Turns`).
    """

    def __init__(
        self,
        snapshot: ContactSnapshot,
        now: datetime,
        segments: Mapping[int, SegmentDefinition] | None = None,
        turns: Turns | None = None,
    ):
        self.snapshot, self.now, self.segments = snapshot, now, segments or {}
        self.turns = Turns(now) if turns is None else turns
        self._memo: dict[int, bool] = {}
        if not isinstance(self.segments, SegmentDefinitions):
            # Which segments are unusable is then worked out once per evaluator.
            self.segments = SegmentDefinitions(self.segments)
        # Each stored value is parsed once per evaluation, however many rules read it.
        self._parsed: dict[Any, list[ParsedValue] | None] = {}

    def in_segment(self, segment_id: int) -> bool:
        if segment_id not in self._memo:
            segment = self.segments.get(segment_id)
            if not usable_segment(self.segments, segment_id):
                self._memo[segment_id] = False
            elif segment.kind == "manual":
                self._memo[segment_id] = segment_id in self.snapshot.manual_segments
            else:
                self._memo[segment_id] = segment.predicate(self)
        return self._memo[segment_id]

    def matches(self, node: Mapping) -> bool:
        return compile_rule(node)(self)

    def elements(self, key: Any, *, spread_lists: bool) -> list[ParsedValue] | None:
        """The parsed elements of an attribute (str key) or answer (tuple key); None if missing."""
        if key not in self._parsed:
            raw = self._raw(key)
            missing = raw is _MISSING or raw is None
            self._parsed[key] = None if missing else _elements(raw, spread_lists=spread_lists)
        return self._parsed[key]

    def _raw(self, key: Any) -> Any:
        if isinstance(key, tuple):
            return self.snapshot.answers.get(key, _MISSING)
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

"""The rule language of SPEC §3: its vocabulary and its validation.

`validate_rule` checks a rule document and returns the problems found, keyed by
the path to the bad node (`conditions[2].value`). The two evaluators live in
`segments.sql` (a Django Q over contacts) and `segments.memory` (one contact).
"""

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from segments.values import is_json_integer, is_json_number, parse_date, parse_number

# Fields every contact (or account) has, that rules read beside its traits.
BUILTIN_FIELDS = ("user_id", "email", "name", "first_seen_at", "last_seen_at")
ACCOUNT_BUILTIN_FIELDS = ("id", "name")

MAX_DEPTH = 5
MAX_CONDITIONS = 200
MAX_STRING = 1000
MAX_LIST = 1000
# The work bound (SPEC §3.1): what a rule costs with every segment reference expanded.
MAX_EXPANDED_CONDITIONS = 1000
MAX_EXPANDED_VALUES = 5000
MAX_REFERENCE_DEPTH = 10
TOO_COMPLEX = "rule_too_complex"

log = logging.getLogger(__name__)

GROUP_MATCHES = ("all", "any", "none")

# Attribute operators, by the kind of value they take.
NO_VALUE_OPERATORS = {"is_set", "is_not_set", "is_true", "is_false"}
SCALAR_OPERATORS = {"equals", "not_equals"}
LIST_OPERATORS = {"in", "not_in"}
STRING_OPERATORS = {"contains", "not_contains", "starts_with", "ends_with"}
NUMBER_OPERATORS = {"greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"}
DATE_OPERATORS = {"before", "after"}
DAYS_OPERATORS = {"more_than_days_ago", "less_than_days_ago"}
ATTRIBUTE_OPERATORS = (
    NO_VALUE_OPERATORS
    | SCALAR_OPERATORS
    | LIST_OPERATORS
    | STRING_OPERATORS
    | NUMBER_OPERATORS
    | DATE_OPERATORS
    | DAYS_OPERATORS
)
CASE_OPERATORS = SCALAR_OPERATORS | LIST_OPERATORS | STRING_OPERATORS
# Each negative operator is "not" its positive twin, so a missing value satisfies it.
NEGATIONS = {
    "is_not_set": "is_set",
    "not_equals": "equals",
    "not_in": "in",
    "not_contains": "contains",
}

EVENT_OPERATORS = ("at_least", "at_most", "exactly")
SURVEY_OPERATORS = ("seen", "not_seen", "dismissed", "completed", "not_completed")
# The moment of a display each survey operator looks at; `not_` ones negate their twin.
SURVEY_MOMENTS = {
    "seen": "shown_at",
    "not_seen": "shown_at",
    "dismissed": "dismissed_at",
    "completed": "completed_at",
    "not_completed": "completed_at",
}
SEGMENT_OPERATORS = ("in", "not_in")
CONDITION_TYPES = ("group", "attribute", "event", "survey", "answer", "segment")

TRAIT_KEY = re.compile(r"\w[\w\- ]{0,99}")


def is_trait_key(key: Any) -> bool:
    """1–100 letters, digits, `_`, `-` or space, not starting with `-`/space, not built-in."""
    return isinstance(key, str) and bool(TRAIT_KEY.fullmatch(key)) and key not in BUILTIN_FIELDS


def is_storable(text: str) -> bool:
    """Can both databases hold the text? PostgreSQL refuses NUL, and neither takes lone surrogates.

    The JSON API refuses such strings before a rule is read; the dashboard's editor
    posts form fields, so the rule itself must refuse them.
    """
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_attribute_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    if key in BUILTIN_FIELDS:
        return True
    if key.startswith("account."):
        account_key = key.removeprefix("account.")
        return account_key in ACCOUNT_BUILTIN_FIELDS or is_trait_key(account_key)
    return is_trait_key(key)


def is_whole_number(value: Any) -> bool:
    return is_json_integer(value) and value >= 0


class _Validator:
    def __init__(self, segments: Mapping[int, Any] | None, surveys: Iterable[int] | None):
        self.segments = segments
        self.surveys = set(surveys) if surveys is not None else None
        self.errors = Problems()
        self.count = 0
        self.referenced_segments: set[int] = set()

    def fail(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def check_string(self, path: str, value: Any) -> bool:
        if not isinstance(value, str):
            self.fail(path, "Must be a string.")
            return False
        if len(value) > MAX_STRING:
            self.fail(path, f"Must be at most {MAX_STRING} characters.")
            return False
        if not is_storable(value):
            self.fail(path, "Must not contain NUL characters or broken Unicode.")
            return False
        return True

    def group(self, node: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.fail(path, f"Groups may be nested at most {MAX_DEPTH} deep.")
            return
        if not isinstance(node, dict):
            self.fail(path or "rules", "Must be a group object.")
            return
        prefix = f"{path}." if path else ""
        self.unknown_keys(node, {"type", "match", "conditions"}, prefix)
        if node.get("type") != "group":
            self.fail(f"{prefix}type", 'Must be "group".')
        if node.get("match") not in GROUP_MATCHES:
            self.fail(f"{prefix}match", 'Must be "all", "any" or "none".')
        conditions = node.get("conditions")
        if not isinstance(conditions, list):
            self.fail(f"{prefix}conditions", "Must be a list of conditions.")
            return
        for index, condition in enumerate(conditions):
            self.count += 1
            if self.count > MAX_CONDITIONS:
                self.fail(
                    f"{prefix}conditions", f"A rule holds at most {MAX_CONDITIONS} conditions."
                )
                return
            self.condition(condition, f"{prefix}conditions[{index}]", depth)

    def unknown_keys(self, node: dict, allowed: set[str], prefix: str) -> None:
        for key in node:
            if key not in allowed:
                self.fail(f"{prefix}{key}", "Is not a known field of this condition.")

    def condition(self, node: Any, path: str, depth: int) -> None:
        if not isinstance(node, dict):
            self.fail(path, "Must be a condition object.")
            return
        kind = node.get("type")
        if kind == "group":
            self.group(node, path, depth + 1)
        elif kind in CONDITION_TYPES:
            getattr(self, kind)(node, path + ".")
        else:
            self.fail(f"{path}.type", f"Must be one of: {', '.join(CONDITION_TYPES)}.")

    def attribute(self, node: dict, prefix: str) -> None:
        self.unknown_keys(node, {"type", "attribute", "operator", "value", "ignore_case"}, prefix)
        if not is_attribute_key(node.get("attribute")):
            self.fail(
                f"{prefix}attribute",
                "Must be a built-in field, a trait key (1–100 letters, digits, _, - or space) "
                "or account.<key>.",
            )
        self.operator_and_value(node, prefix)

    def operator_and_value(self, node: dict, prefix: str) -> None:
        operator = node.get("operator")
        # A list or an object is unhashable: the set lookup alone would raise.
        if not isinstance(operator, str) or operator not in ATTRIBUTE_OPERATORS:
            self.fail(f"{prefix}operator", f"Unknown operator {str(operator)[:50]!r}.")
            return
        if "ignore_case" in node:
            if not isinstance(node["ignore_case"], bool):
                self.fail(f"{prefix}ignore_case", "Must be true or false.")
            elif operator not in CASE_OPERATORS:
                self.fail(f"{prefix}ignore_case", f"Does not apply to {operator}.")
        path, value = f"{prefix}value", node.get("value")
        if operator in NO_VALUE_OPERATORS:
            if "value" in node:
                self.fail(path, f"{operator} takes no value.")
        elif "value" not in node:
            self.fail(path, "This operator needs a value.")
        elif operator in SCALAR_OPERATORS:
            self.scalar(path, value, allow_bool=True)
        elif operator in LIST_OPERATORS:
            if not isinstance(value, list):
                self.fail(path, "Must be a list of strings or numbers.")
            elif len(value) > MAX_LIST:
                self.fail(path, f"Must hold at most {MAX_LIST} values.")
            else:
                for index, item in enumerate(value):
                    self.scalar(f"{path}[{index}]", item, allow_bool=False)
        elif operator in STRING_OPERATORS:
            self.check_string(path, value)
        elif operator in NUMBER_OPERATORS:
            if not is_json_number(value) or parse_number(value) is None:
                self.fail(path, "Must be a number.")
        elif operator in DATE_OPERATORS:
            if parse_date(value) is None:
                self.fail(path, "Must be an ISO-8601 date or datetime (2024-01-31T09:00:00Z).")
        elif operator in DAYS_OPERATORS:
            if not is_whole_number(value):
                self.fail(path, "Must be a whole number of days, 0 or more.")

    def scalar(self, path: str, value: Any, *, allow_bool: bool) -> None:
        if isinstance(value, bool):
            if not allow_bool:
                self.fail(path, "Must be a string or a number.")
        elif isinstance(value, str):
            self.check_string(path, value)
        elif not is_json_number(value) or parse_number(value) is None:
            self.fail(
                path,
                "Must be a string, a number or a boolean."
                if allow_bool
                else "Must be a string or a number.",
            )

    def event(self, node: dict, prefix: str) -> None:
        self.unknown_keys(node, {"type", "event", "operator", "value", "within_days"}, prefix)
        if self.check_string(f"{prefix}event", node.get("event")) and not node["event"]:
            self.fail(f"{prefix}event", "Must not be empty.")
        if node.get("operator") not in EVENT_OPERATORS:
            self.fail(f"{prefix}operator", 'Must be "at_least", "at_most" or "exactly".')
        if not is_whole_number(node.get("value")):
            self.fail(f"{prefix}value", "Must be a whole number, 0 or more.")
        self.within_days(node, prefix)

    def within_days(self, node: dict, prefix: str) -> None:
        if "within_days" in node and not is_whole_number(node["within_days"]):
            self.fail(f"{prefix}within_days", "Must be a whole number of days, 0 or more.")

    def survey_id(self, node: dict, prefix: str, *, allow_any: bool) -> None:
        survey = node.get("survey")
        if allow_any and survey == "any":
            return
        if not is_whole_number(survey):
            self.fail(
                f"{prefix}survey",
                'Must be a survey id or "any".' if allow_any else "Must be a survey id.",
            )
        elif self.surveys is not None and survey not in self.surveys:
            self.fail(f"{prefix}survey", f"There is no survey {survey} in this workspace.")

    def survey(self, node: dict, prefix: str) -> None:
        self.unknown_keys(node, {"type", "survey", "operator", "within_days"}, prefix)
        self.survey_id(node, prefix, allow_any=True)
        if node.get("operator") not in SURVEY_OPERATORS:
            self.fail(f"{prefix}operator", f"Must be one of: {', '.join(SURVEY_OPERATORS)}.")
        self.within_days(node, prefix)

    def answer(self, node: dict, prefix: str) -> None:
        self.unknown_keys(
            node, {"type", "survey", "question", "operator", "value", "ignore_case"}, prefix
        )
        self.survey_id(node, prefix, allow_any=False)
        question = node.get("question")
        if (
            not isinstance(question, str)
            or not 1 <= len(question) <= 100
            or not is_storable(question)
        ):
            self.fail(f"{prefix}question", "Must be a question key.")
        self.operator_and_value(node, prefix)

    def segment(self, node: dict, prefix: str) -> None:
        self.unknown_keys(node, {"type", "segment", "operator"}, prefix)
        if node.get("operator") not in SEGMENT_OPERATORS:
            self.fail(f"{prefix}operator", 'Must be "in" or "not_in".')
        segment = node.get("segment")
        if not is_whole_number(segment):
            self.fail(f"{prefix}segment", "Must be a segment id.")
        elif self.segments is not None and segment not in self.segments:
            self.fail(f"{prefix}segment", f"There is no segment {segment} in this workspace.")
        else:
            self.referenced_segments.add(segment)


def referenced_segments(rule: Any) -> set[int]:
    """Ids of the segments a (valid) rule names."""
    return set(_own_cost(rule).references)


def referenced_by(rule: Any) -> tuple[int, ...]:
    """The segment ids a rule names, once per reference."""
    return _own_cost(rule).references


class Problems(dict):
    """A rule's problems by path; `code` says which kind of error they make."""

    code = "invalid"


@dataclass(frozen=True)
class RuleCost:
    """What a rule costs to evaluate with every segment reference expanded."""

    conditions: int = 0
    values: int = 0
    depth: int = 0  # the longest chain of references followed from the rule
    references: tuple[int, ...] = ()  # segment ids named, once per reference

    def problem(self) -> str | None:
        if self.depth > MAX_REFERENCE_DEPTH:
            return f"chains of segment references are at most {MAX_REFERENCE_DEPTH} deep"
        if self.conditions > MAX_EXPANDED_CONDITIONS:
            return f"at most {MAX_EXPANDED_CONDITIONS:,} conditions"
        if self.values > MAX_EXPANDED_VALUES:
            return f"at most {MAX_EXPANDED_VALUES:,} list values"
        return None


def rule_nodes(rule: Any) -> Iterator[dict]:
    """Every group and condition of a rule document, however nested, skipping what is
    not an object (stored and posted documents are walked before they are validated).

    A loop over a stack rather than recursion: no document may exhaust the
    interpreter's stack.
    """
    stack = [rule]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        yield node
        children = node.get("conditions")
        if isinstance(children, list):
            stack.extend(children)


def _own_cost(rule: Any) -> RuleCost:
    """The rule's own conditions and list values, and the references it makes (no expansion)."""
    conditions = values = 0
    references: list[int] = []
    for node in rule_nodes(rule):
        if node.get("type") == "segment" and is_whole_number(node.get("segment")):
            references.append(node["segment"])
        if node.get("operator") in LIST_OPERATORS and isinstance(node.get("value"), list):
            values += len(node["value"])
        children = node.get("conditions")
        if isinstance(children, list):
            conditions += len(children)
    return RuleCost(conditions, values, 0, tuple(references))


def expanded_costs(rules: Mapping[int, Any]) -> dict[int, RuleCost | None]:
    """Each segment's cost with its references expanded; None when it cannot be expanded.

    `rules` maps segment ids to their rule (None for manual segments). A segment on
    a cycle, naming a missing segment, or naming one that cannot be expanded gets
    None. Each segment is costed once (memoised), walking without recursion, so the
    work is linear in the size of the definitions, however they reference each other.
    """
    own = {pk: _own_cost(rule) for pk, rule in rules.items()}
    costs: dict[int, RuleCost | None] = {}
    visiting: set[int] = set()
    for root in own:
        stack = [root]
        while stack:
            pk = stack[-1]
            if pk in costs:
                stack.pop()
                continue
            pending = [r for r in set(own[pk].references) if r in own and r not in costs]
            if pk not in visiting and pending:
                visiting.add(pk)
                # A referenced segment still being costed below us is a cycle: cost it as
                # broken, which then spreads to every segment on the way up.
                for referenced in pending:
                    if referenced in visiting:
                        costs[referenced] = None
                stack.extend(r for r in pending if r not in visiting)
                continue
            visiting.discard(pk)
            stack.pop()
            costs[pk] = _expand(own[pk], costs)
    return costs


def _expand(cost: RuleCost, costs: Mapping[int, RuleCost | None]) -> RuleCost | None:
    conditions, values, depth = cost.conditions, cost.values, 0
    for referenced in cost.references:
        below = costs.get(referenced)
        if below is None:
            return None
        conditions += below.conditions
        values += below.values
        depth = max(depth, below.depth + 1)
    return RuleCost(conditions, values, depth, cost.references)


class SegmentDefinitions(dict):
    """A workspace's segments by id, knowing once which of them cannot be evaluated."""

    @cached_property
    def unusable(self) -> frozenset[int]:
        return find_unusable(self)


def find_unusable(segments: Mapping[int, Any]) -> frozenset[int]:
    """Segments no evaluator may expand: on a cycle, naming a missing segment, or beyond
    the work bound (SPEC §3.1) once references are expanded; also those that name them.

    Saves refuse such definitions, but one may still be stored (written by hand, or by
    an older version): evaluation then fails closed, identically in both evaluators.
    """
    rules = {pk: None if d.kind == "manual" else d.rules for pk, d in segments.items()}
    costs = expanded_costs(rules)
    return frozenset(pk for pk, cost in costs.items() if cost is None or cost.problem())


def usable_segment(segments: Mapping[int, Any], segment_id: int) -> bool:
    """Can the segment be evaluated? When not, log it: no contact is then in it."""
    if isinstance(segments, SegmentDefinitions):
        unusable = segments.unusable
    else:
        unusable = find_unusable(segments)
    if segment_id in segments and segment_id not in unusable:
        return True
    log.warning(
        "Segment %s is missing, on a cycle of references or beyond the work bound: "
        "no contact is counted in it.",
        segment_id,
    )
    return False


def _find_cycle(start: int, references: Mapping[int, set[int]], segment_id: int) -> bool:
    seen: set[int] = set()
    stack = [start]
    while stack:
        current = stack.pop()
        if current == segment_id:
            return True
        if current in seen:
            continue
        seen.add(current)
        stack.extend(references.get(current, ()))
    return False


def _check_cost(
    validator: _Validator, rule: Any, segments: Mapping[int, Any], segment_id: int | None
) -> None:
    """The work bound, for the rule and for every segment that would expand it."""
    others = {pk: other for pk, other in segments.items() if pk != segment_id}
    costs = expanded_costs(others)
    cost = _expand(_own_cost(rule), costs)
    if cost is not None and (problem := cost.problem()):
        validator.fail("rules", f"With its segment references expanded, a rule holds {problem}.")
        validator.errors.code = TOO_COMPLEX
        return
    if segment_id is None:
        return
    # The saved segment changes what every segment naming it costs.
    costs = expanded_costs({**others, segment_id: rule})
    for pk, other in sorted(costs.items()):
        if pk != segment_id and other is not None and (problem := other.problem()):
            validator.fail(
                "rules",
                f"Segment {pk} references this one and would then hold {problem}, "
                "with its segment references expanded.",
            )
            validator.errors.code = TOO_COMPLEX
            return


def validate_rule(
    rule: Any,
    *,
    segments: Mapping[int, Any] | None = None,
    surveys: Iterable[int] | None = None,
    segment_id: int | None = None,
) -> Problems:
    """Problems with a rule document, keyed by path; empty when it is valid.

    `segments` maps the workspace's segment ids to their rule (None for manual
    segments) and `surveys` lists its survey ids; when given, references to
    others are errors, and so is a rule beyond the work bound once references are
    expanded (then the problems' `code` is `rule_too_complex`). `segment_id` is
    the segment being saved, for cycle checks and for the segments that name it.
    """
    validator = _Validator(segments, surveys)
    validator.group(rule, "", 1)
    if segments is not None and segment_id is not None:
        references = {pk: referenced_segments(other) for pk, other in segments.items()}
        for referenced in sorted(validator.referenced_segments):
            if _find_cycle(referenced, references, segment_id):
                validator.fail(
                    "rules", f"Referencing segment {referenced} would make a cycle of segments."
                )
    if segments is not None and not validator.errors:
        _check_cost(validator, rule, segments, segment_id)
    return validator.errors

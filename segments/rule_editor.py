"""The segment editor's rule codec: a rule as flat form fields and back.

The rule tree travels as flat form fields named by the node's position:
`c-match` is the top group's match, `c-0-kind` the kind of its first condition,
`c-2-1-value` the value of the second condition of the third (nested) group.
Every edit is a plain form post, so the editor works without JavaScript and
views are tested with the Django test client; the server turns the fields into
a SPEC §3 rule (`to_rule`) and a rule back into fields (`from_rule`).
A posted `rules` field holding JSON is accepted instead of the fields.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any

from refiner.http import parse_id
from segments.rules import (
    CASE_OPERATORS,
    DATE_OPERATORS,
    DAYS_OPERATORS,
    LIST_OPERATORS,
    MAX_CONDITIONS,
    MAX_DEPTH,
    NO_VALUE_OPERATORS,
    NUMBER_OPERATORS,
    STRING_OPERATORS,
    is_storable,
)
from segments.values import parse_number

ROOT = "c"

KINDS = [
    ("attribute", "Trait"),
    ("account", "Account trait"),
    ("event", "Event"),
    ("survey", "Survey interaction"),
    ("answer", "Survey answer"),
    ("segment", "Segment"),
]
KIND_NAMES = {kind for kind, _ in KINDS}

# Operators of attribute and answer conditions, grouped as the picker shows them.
ATTRIBUTE_OPERATOR_GROUPS = [
    (
        "Value",
        [
            ("equals", "equals"),
            ("not_equals", "does not equal"),
            ("in", "is one of"),
            ("not_in", "is not one of"),
        ],
    ),
    (
        "Text",
        [
            ("contains", "contains"),
            ("not_contains", "does not contain"),
            ("starts_with", "starts with"),
            ("ends_with", "ends with"),
        ],
    ),
    (
        "Number",
        [
            ("greater_than", "is greater than"),
            ("greater_than_or_equal", "is at least"),
            ("less_than", "is less than"),
            ("less_than_or_equal", "is at most"),
        ],
    ),
    (
        "Date",
        [
            ("more_than_days_ago", "more than … days ago"),
            ("less_than_days_ago", "less than … days ago"),
            ("before", "is before"),
            ("after", "is after"),
        ],
    ),
    (
        "Presence",
        [
            ("is_set", "is set"),
            ("is_not_set", "is not set"),
            ("is_true", "is true"),
            ("is_false", "is false"),
        ],
    ),
]
EVENT_OPERATOR_LABELS = [("at_least", "at least"), ("at_most", "at most"), ("exactly", "exactly")]
SURVEY_OPERATOR_LABELS = [
    ("seen", "was shown"),
    ("not_seen", "was not shown"),
    ("dismissed", "dismissed"),
    ("completed", "completed"),
    ("not_completed", "did not complete"),
]
SEGMENT_OPERATOR_LABELS = [("in", "is in"), ("not_in", "is not in")]
MATCH_LABELS = [("all", "all"), ("any", "any"), ("none", "none")]

DEFAULT_OPERATOR = {
    "attribute": "equals",
    "account": "equals",
    "answer": "equals",
    "event": "at_least",
    "survey": "seen",
    "segment": "in",
}

# A posted tree larger than the rule limits is cut off; validation then reports the limit.
MAX_FORM_NODES = MAX_CONDITIONS + 1
MAX_FORM_DEPTH = MAX_DEPTH + 1
FIELD = re.compile(r"^c((?:-\d{1,4})*)-([a-z_]+)$")


@dataclass
class ConditionNode:
    """One condition row, holding what the user typed (not yet typed JSON)."""

    kind: str = "attribute"
    attribute: str = ""
    operator: str = ""
    value: str = ""
    within_days: str = ""
    ignore_case: bool = False
    event: str = ""
    survey: str = ""
    question: str = ""
    segment: str = ""
    prefix: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    is_group = False

    @property
    def takes_value(self) -> bool:
        if self.kind in ("attribute", "account", "answer"):
            return self.operator not in NO_VALUE_OPERATORS
        return self.kind == "event"

    @property
    def takes_ignore_case(self) -> bool:
        return self.kind in ("attribute", "account", "answer") and self.operator in CASE_OPERATORS

    @property
    def takes_within_days(self) -> bool:
        return self.kind in ("event", "survey")

    @property
    def takes_date(self) -> bool:
        return self.takes_value and self.operator in DATE_OPERATORS

    @property
    def picked_date(self) -> str:
        """The date part of the value, for the date picker beside the box ("" if none)."""
        found = re.match(r"^\d{4}-\d{2}-\d{2}", self.value.strip())
        return found.group(0) if found else ""

    @property
    def value_hint(self) -> str:
        if self.kind == "event":
            return "times"
        if self.operator in LIST_OPERATORS:
            return "a, b, c"
        if self.operator in NUMBER_OPERATORS:
            return "number"
        if self.operator in DAYS_OPERATORS:
            return "days"
        if self.operator in DATE_OPERATORS:
            return "2024-01-31"
        return "value"


@dataclass
class GroupNode:
    match: str = "all"
    children: list = field(default_factory=list)
    prefix: str = ROOT
    errors: dict[str, str] = field(default_factory=dict)

    is_group = True

    @property
    def depth(self) -> int:
        return self.prefix.count("-") + 1


# Values ---------------------------------------------------------------------


def _literal(token: str) -> Any:
    """A typed value from what the user typed: JSON scalars as such, else the text itself.

    `12` is a number, `true` a boolean and `"12"` the string 12, so every value
    can be written; plain words need no quotes.
    """
    token = token.strip()
    try:
        value = json.loads(token)
    except ValueError:
        return token
    if isinstance(value, (str, bool, int, float)):
        return value
    return token


def _show_literal(value: Any) -> str:
    """The inverse of `_literal`: the text that reads back as this value."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if _literal(value) != value else value
    return json.dumps(value)


def _split_list(text: str) -> list[str]:
    """Comma-separated items; commas inside "double quotes" do not split."""
    items, current, quoted, escaped = [], [], False, False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _show_list_item(value: Any) -> str:
    text = _show_literal(value)
    if isinstance(value, str) and ("," in value or value != value.strip()) and text == value:
        return json.dumps(value, ensure_ascii=False)
    return text


def _whole_number(text: str) -> Any:
    text = text.strip()
    number = parse_id(text)
    return number if number is not None and len(text) < 12 else text


def _typed_value(node: ConditionNode) -> Any:
    operator, text = node.operator, node.value
    if operator in LIST_OPERATORS:
        return [_literal(item) for item in _split_list(text)]
    if operator in NUMBER_OPERATORS:
        number = parse_number(text.strip())
        if number is None:
            return text
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if operator in DAYS_OPERATORS:
        return _whole_number(text)
    if operator in STRING_OPERATORS or operator in DATE_OPERATORS:
        return text
    return _literal(text)


def _shown_value(operator: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_show_list_item(item) for item in value)
    if operator in STRING_OPERATORS or operator in DATE_OPERATORS:
        return str(value)
    if operator in NUMBER_OPERATORS or operator in DAYS_OPERATORS:
        return json.dumps(value) if not isinstance(value, str) else value
    return _show_literal(value)


def _id_or_text(text: str) -> Any:
    text = text.strip()
    number = parse_id(text)
    return number if number is not None and len(text) < 12 else text


# Form fields -> tree --------------------------------------------------------


def tree_from_post(data) -> GroupNode:
    """The editor's tree from posted fields, renumbered in order (gaps from removals closed)."""
    raw: dict[tuple[int, ...], dict[str, Any]] = {}
    for name in data:
        found = FIELD.match(name)
        if not found:
            continue
        path = tuple(int(part) for part in found.group(1).split("-")[1:])
        if len(path) > MAX_FORM_DEPTH:
            continue
        if path not in raw and len(raw) > MAX_FORM_NODES:
            continue
        value = data.getlist(name)[-1] if hasattr(data, "getlist") else data[name]
        raw.setdefault(path, {})[found.group(2)] = value
    return _group_at((), raw)


def _group_at(path: tuple[int, ...], raw: dict) -> GroupNode:
    fields = raw.get(path, {})
    group = GroupNode(match=str(fields.get("match", "all")))
    child_indexes = sorted(
        {p[len(path)] for p in raw if len(p) > len(path) and p[: len(path)] == path}
    )
    for index in child_indexes:
        child = path + (index,)
        child_fields = raw.get(child, {})
        if child_fields.get("kind") == "group":
            group.children.append(_group_at(child, raw))
        elif "kind" in child_fields:
            group.children.append(_condition_from_fields(child_fields))
    return group


def _condition_from_fields(fields: dict) -> ConditionNode:
    kind = str(fields.get("kind", "attribute"))
    node = ConditionNode(kind=kind if kind in KIND_NAMES else "attribute")
    for name in (
        "attribute",
        "operator",
        "value",
        "within_days",
        "event",
        "survey",
        "question",
        "segment",
    ):
        setattr(node, name, str(fields.get(name, ""))[:2000])
    node.ignore_case = fields.get("ignore_case") in ("on", "true", "1")
    if not node.operator or node.operator not in dict(operator_choices(node.kind)):
        node.operator = DEFAULT_OPERATOR[node.kind]
    return node


def operator_choices(kind: str) -> list[tuple[str, str]]:
    if kind == "event":
        return EVENT_OPERATOR_LABELS
    if kind == "survey":
        return SURVEY_OPERATOR_LABELS
    if kind == "segment":
        return SEGMENT_OPERATOR_LABELS
    return [choice for _, choices in ATTRIBUTE_OPERATOR_GROUPS for choice in choices]


# Tree -> rule ---------------------------------------------------------------


def to_rule(group: GroupNode) -> dict:
    """The SPEC §3 rule the tree stands for (possibly invalid: check it with check_rule)."""
    return {
        "type": "group",
        "match": group.match,
        "conditions": [
            to_rule(child) if child.is_group else _condition_rule(child) for child in group.children
        ],
    }


def _condition_rule(node: ConditionNode) -> dict:
    if node.kind in ("attribute", "account"):
        key = node.attribute.strip()
        if node.kind == "account":
            key = f"account.{key}"
        rule = {"type": "attribute", "attribute": key, "operator": node.operator}
        return _with_value(rule, node)
    if node.kind == "answer":
        rule = {
            "type": "answer",
            "survey": _id_or_text(node.survey),
            "question": node.question.strip(),
            "operator": node.operator,
        }
        return _with_value(rule, node)
    if node.kind == "event":
        rule = {
            "type": "event",
            "event": node.event.strip(),
            "operator": node.operator,
            "value": _whole_number(node.value),
        }
        return _with_days(rule, node)
    if node.kind == "survey":
        survey = node.survey.strip() or "any"
        rule = {
            "type": "survey",
            "survey": survey if survey == "any" else _id_or_text(survey),
            "operator": node.operator,
        }
        return _with_days(rule, node)
    return {"type": "segment", "segment": _id_or_text(node.segment), "operator": node.operator}


def _with_value(rule: dict, node: ConditionNode) -> dict:
    if node.takes_value:
        rule["value"] = _typed_value(node)
    if node.takes_ignore_case and node.ignore_case:
        rule["ignore_case"] = True
    return rule


def _with_days(rule: dict, node: ConditionNode) -> dict:
    if node.within_days.strip():
        rule["within_days"] = _whole_number(node.within_days)
    return rule


def blank_values(group: GroupNode, path: str = "") -> dict[str, str]:
    """Rows whose value box was left empty, as rule errors (`conditions[0].value`).

    The rule language accepts the empty text, so without this "plan equals"
    with nothing typed would save and match only contacts whose plan is "".
    Typing `""` still asks for the empty text on purpose.
    """
    errors = {}
    for index, child in enumerate(group.children):
        where = f"{path}conditions[{index}]"
        if child.is_group:
            errors.update(blank_values(child, f"{where}."))
        elif child.takes_value and not child.value.strip():
            errors[f"{where}.value"] = 'Enter a value (type "" for the empty text).'
    return errors


# Rule -> tree ---------------------------------------------------------------


def from_rule(rule: Any) -> GroupNode:
    """The editor's tree for a stored rule (what the form would post back)."""
    group = GroupNode()
    if not isinstance(rule, dict):
        return group
    group.match = str(rule.get("match", "all"))
    for condition in rule.get("conditions") or []:
        if not isinstance(condition, dict):
            continue
        if condition.get("type") == "group":
            group.children.append(from_rule(condition))
        else:
            group.children.append(_condition_from_rule(condition))
    return group


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _condition_from_rule(rule: dict) -> ConditionNode:
    kind = rule.get("type")
    operator = _text(rule.get("operator"))
    node = ConditionNode(operator=operator, ignore_case=rule.get("ignore_case") is True)
    if kind == "attribute":
        key = _text(rule.get("attribute"))
        node.kind = "account" if key.startswith("account.") else "attribute"
        node.attribute = key.removeprefix("account.")
        node.value = _shown_value(operator, rule.get("value"))
    elif kind == "answer":
        node.kind = "answer"
        node.survey, node.question = _text(rule.get("survey")), _text(rule.get("question"))
        node.value = _shown_value(operator, rule.get("value"))
    elif kind == "event":
        node.kind = "event"
        node.event, node.value = _text(rule.get("event")), _text(rule.get("value"))
        node.within_days = _text(rule.get("within_days"))
    elif kind == "survey":
        node.kind = "survey"
        node.survey, node.within_days = _text(rule.get("survey")), _text(rule.get("within_days"))
    elif kind == "segment":
        node.kind = "segment"
        node.segment = _text(rule.get("segment"))
    return node


# Editing operations -----------------------------------------------------------


def number(group: GroupNode, prefix: str = ROOT) -> GroupNode:
    """Give every node its field prefix (c, c-0, c-0-1, ...), in order."""
    group.prefix = prefix
    for index, child in enumerate(group.children):
        child_prefix = f"{prefix}-{index}"
        if child.is_group:
            number(child, child_prefix)
        else:
            child.prefix = child_prefix
    return group


def find(group: GroupNode, prefix: str):
    if group.prefix == prefix:
        return group
    for child in group.children:
        if child.prefix == prefix:
            return child
        if child.is_group and prefix.startswith(child.prefix + "-"):
            return find(child, prefix)
    return None


def apply_operation(tree: GroupNode, operation: str) -> GroupNode:
    """Apply one editor button (`add-condition:c-1`, `add-group:c`, `remove:c-0`)."""
    number(tree)
    action, _, prefix = operation.partition(":")
    if action == "remove":
        parent = find(tree, prefix.rpartition("-")[0]) if "-" in prefix else None
        if parent is not None and parent.is_group:
            parent.children = [c for c in parent.children if c.prefix != prefix]
    else:
        target = find(tree, prefix)
        if target is not None and target.is_group:
            if action == "add-condition":
                target.children.append(ConditionNode(operator="equals"))
            elif action == "add-group" and target.depth < MAX_DEPTH:
                target.children.append(
                    GroupNode(match="any", children=[ConditionNode(operator="equals")])
                )
    return number(tree)


def attach_errors(tree: GroupNode, errors: dict[str, str]) -> list[str]:
    """Hang each validation error on the row it is about; return those about no row."""
    number(tree)
    loose = []
    for path, message in errors.items():
        indexes = [int(i) for i in re.findall(r"conditions\[(\d+)\]", path)]
        field_name = re.sub(r"^.*?([a-z_]+)(\[\d+\])?$", r"\1", path) if path else "rules"
        prefix = "-".join([ROOT, *map(str, indexes)])
        node = find(tree, prefix)
        while node is None and "-" in prefix:
            prefix = prefix.rpartition("-")[0]
            node = find(tree, prefix)
        if node is None or (node.prefix == ROOT and field_name == "rules"):
            loose.append(message)
            continue
        node.errors[_editor_field(node, field_name)] = message
    return loose


def _editor_field(node, name: str) -> str:
    """The editor's name for a rule field: an account attribute's key is its `attribute`."""
    if name.startswith("conditions") and not node.is_group:
        return "value"
    return name


def parse_rules_json(text: str) -> tuple[Any, str | None]:
    """A rule posted as JSON text (the API-style way to submit the editor)."""
    try:
        rule = json.loads(text)
    except (ValueError, RecursionError):
        return None, "The rules are not valid JSON."
    # A lone surrogate escaped in JSON decodes to text that no page can show again.
    if not is_storable(json.dumps(rule, ensure_ascii=False)):
        return None, "The rules hold broken Unicode."
    return rule, None

"""The SQL evaluator: a rule compiled to a Django `Q` over `Contact`.

Every condition becomes an EXISTS over a table of parsed values, events,
displays or answers, so the database only compares what Python parsed
(`segments.values`) and the result agrees with `segments.memory`.
"""

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, Exists, F, Lookup, OuterRef, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Left, Length, Right, StrIndex
from django.db.models.lookups import Exact, GreaterThan

from segments.memory import SegmentDefinition
from segments.models import (
    AccountValue,
    Contact,
    ContactValue,
    Event,
    EventTotal,
    SegmentMember,
)
from segments.registry import survey_facts
from segments.rules import NEGATIONS, referenced_by, usable_segment
from segments.values import days_before, fold, parse_date, parse_number

# Explicit truth values: an empty Q() is the identity of both & and |, not "true".
ALWAYS = Q(pk__isnull=False)
NOTHING = Q(pk__in=[])
# No contact has more events than a table has rows; a larger OFFSET overflows SQL integers.
MAX_EVENTS = 2**62


def negate(q: Q) -> Q:
    return ~q if q.children else NOTHING


def _equals(expected: Any, ignore_case: bool) -> Q:
    if isinstance(expected, bool):
        return Q(boolean=expected)
    if isinstance(expected, str):
        return Q(text_folded=fold(expected)) if ignore_case else Q(text=expected)
    return Q(num=parse_number(expected))


class AnyOf(Lookup):
    """`column IN (list)`, sent to PostgreSQL as one array parameter: `column = ANY(%s)`.

    A rule may hold 5,000 list values; one parameter each would approach PostgreSQL's
    65,535 parameters per query and make every list a long statement to parse and plan.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def values(self, connection) -> list:
        values = self.rhs.value if isinstance(self.rhs, Value) else self.rhs
        return [self.lhs.output_field.get_db_prep_value(v, connection) for v in values]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = self.values(connection)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", [*lhs_params, self.values(connection)]


def _any_of(column: str, values: list) -> Q:
    return Q(AnyOf(F(column), list(dict.fromkeys(values))))


def _in(values: list, ignore_case: bool) -> Q:
    texts = [item for item in values if isinstance(item, str)]
    numbers = [parse_number(item) for item in values if not isinstance(item, str)]
    parts = []
    if texts:
        if ignore_case:
            parts.append(_any_of("text_folded", [fold(t) for t in texts]))
        else:
            parts.append(_any_of("text", texts))
    if numbers:
        parts.append(_any_of("num", numbers))
    return _combine_any(parts)


def _text_relation(operator: str, value: str, ignore_case: bool) -> Q:
    column = "text_folded" if ignore_case else "text"
    expected = fold(value) if ignore_case else value
    if not expected:
        return Q(**{f"{column}__isnull": False})
    # SQLite's LIKE ignores ASCII case, so none of these use LIKE.
    if operator == "contains":
        return Q(GreaterThan(StrIndex(column, Value(expected)), 0))
    size = len(expected)
    function = Left if operator == "starts_with" else Right
    return Q(
        GreaterThan(Length(column), size - 1),
        Exact(function(column, size), Value(expected)),
    )


def value_predicate(operator: str, value: Any, ignore_case: bool, now: datetime) -> Q:
    """A positive attribute operator over the parsed-value columns."""
    if operator == "is_set":
        return Q()
    if operator == "equals":
        return _equals(value, ignore_case)
    if operator == "in":
        return _in(value, ignore_case)
    if operator in ("contains", "starts_with", "ends_with"):
        return _text_relation(operator, value, ignore_case)
    lookups = {
        "greater_than": "num__gt",
        "greater_than_or_equal": "num__gte",
        "less_than": "num__lt",
        "less_than_or_equal": "num__lte",
    }
    if operator in lookups:
        return Q(**{lookups[operator]: parse_number(value)})
    if operator == "before":
        return Q(date__lt=parse_date(value))
    if operator == "after":
        return Q(date__gt=parse_date(value))
    if operator == "more_than_days_ago":
        return Q(date__lt=days_before(now, value))
    if operator == "less_than_days_ago":
        return Q(date__gte=days_before(now, value), date__lte=now)
    if operator == "is_true":
        return Q(boolean=True)
    if operator == "is_false":
        return Q(boolean=False)
    raise ValueError(f"unknown operator {operator}")


def positive_predicate(condition: Mapping, now: datetime) -> tuple[Q, bool]:
    """The condition's positive operator as a predicate over value rows, and whether
    the condition negates it."""
    operator = condition["operator"]
    negated = operator in NEGATIONS
    predicate = value_predicate(
        NEGATIONS.get(operator, operator),
        condition.get("value"),
        condition.get("ignore_case", False),
        now,
    )
    # Q() is "no filter" alone but vanishes when OR'ed with others: spell out "any row".
    return predicate if predicate.children else ALWAYS, negated


def value_condition(condition: Mapping, rows, now: datetime) -> Q:
    """`rows` (a queryset of parsed values already tied to the contact) for one condition."""
    predicate, negated = positive_predicate(condition, now)
    exists = Q(Exists(rows.filter(predicate)))
    return ~exists if negated else exists


def value_rows(condition: Mapping) -> QuerySet:
    """The rows an attribute or answer condition reads: at most one for the contact."""
    if condition["type"] == "answer":
        return survey_facts().answer_rows(condition)
    key = condition["attribute"]
    if key.startswith("account."):
        return AccountValue.objects.filter(
            account=OuterRef("account_id"), key=key.removeprefix("account.")
        )
    # The workspace term changes no answer (a value shares its contact's workspace) but
    # lets PostgreSQL derive the workspace constant and use the (workspace, key, …) indexes.
    return ContactValue.objects.filter(
        contact=OuterRef("pk"), workspace=OuterRef("workspace_id"), key=key
    )


def _attribute(condition: Mapping, now: datetime) -> Q:
    return value_condition(condition, value_rows(condition), now)


def _at_least(condition: Mapping, count: int, now: datetime) -> Q:
    """The contact has `count` or more of the condition's events (in its window)."""
    if count <= 0:
        return ALWAYS
    if count > MAX_EVENTS:
        return NOTHING
    if condition.get("within_days") is None:
        # Over all time the kept total (segments.totals) answers in one index probe.
        totals = EventTotal.objects.filter(
            contact=OuterRef("pk"), name=condition["event"], count__gte=count
        )
        return Q(Exists(totals))
    events = Event.objects.filter(contact=OuterRef("pk"), name=condition["event"])
    start = days_before(now, condition["within_days"])
    events = events.filter(occurred_at__gte=start, occurred_at__lte=now)
    # "There is an N-th event": EXISTS (... LIMIT 1 OFFSET N-1) stops after N index rows.
    return Q(Exists(events.order_by()[count - 1 : count]))


def _event(condition: Mapping, now: datetime) -> Q:
    wanted = condition["value"]
    operator = condition["operator"]
    if operator == "at_least":
        return _at_least(condition, wanted, now)
    fewer = negate(_at_least(condition, wanted + 1, now))
    if operator == "at_most":
        return fewer
    return _at_least(condition, wanted, now) & fewer


def _answer(condition: Mapping, now: datetime) -> Q:
    return value_condition(condition, value_rows(condition), now)


def _value_source(condition: Mapping) -> tuple | None:
    """Which rows an attribute or answer condition reads; None for other conditions."""
    if condition["type"] == "attribute":
        return ("attribute", condition["attribute"])
    if condition["type"] == "answer":
        return ("answer", condition["survey"], condition["question"])
    return None


def _merge_event_counts(conditions: list, match: str) -> list:
    """Counts of the same events in one group, as one condition where logic allows.

    "at least 3" and "at least 5" hold together when "at least 5" holds, and either
    holds when "at least 3" does; "at most" the other way round.
    """
    strongest = {
        ("all", "at_least"): max,
        ("all", "at_most"): min,
        ("any", "at_least"): min,
        ("any", "at_most"): max,
    }
    kept: list = []
    by_events: dict[tuple, int] = {}
    for condition in conditions:
        pick = strongest.get(("all" if match == "all" else "any", condition.get("operator")))
        if condition["type"] != "event" or pick is None:
            kept.append(condition)
            continue
        key = (condition["event"], condition["operator"], condition.get("within_days"))
        if key in by_events:
            index = by_events[key]
            kept[index] = {**kept[index], "value": pick(kept[index]["value"], condition["value"])}
        else:
            by_events[key] = len(kept)
            kept.append(condition)
    return kept


class Compiler:
    """Compiles rules of one workspace; `segments` resolves segment references."""

    def __init__(self, now: datetime, segments: Mapping[int, SegmentDefinition]):
        self.now, self.segments = now, segments
        self._compiled: dict[int, Q] = {}

    def segment(self, segment_id: int) -> Q:
        """Membership of a segment; a segment that cannot be evaluated has no members."""
        if segment_id not in self._compiled:
            self._compiled[segment_id] = self._segment(segment_id)
        return self._compiled[segment_id]

    def _segment(self, segment_id: int) -> Q:
        if not usable_segment(self.segments, segment_id):
            return NOTHING
        segment = self.segments[segment_id]
        if segment.kind == "manual":
            members = SegmentMember.objects.filter(segment_id=segment_id, contact=OuterRef("pk"))
            return Q(Exists(members))
        return self.compile(segment.rules)

    def group(self, node: Mapping) -> Q:
        """A group, reading each table once per key where the logic allows.

        In `any` (and `none`) groups, positive conditions on the same value rows become
        one EXISTS with their predicates OR'ed; in `all` groups, negated ones become one
        NOT EXISTS with their predicates OR'ed. Both identities hold whatever the rows.
        A contact or account has at most one row per attribute key, so there the
        other two hold as well: positive conditions in `all` groups become one EXISTS
        with their predicates AND'ed, negated ones in `any` groups one NOT EXISTS.
        """
        match = node["match"]
        parts: list[Q | None] = []
        # Merged conditions keep the place of their first: the database tests in order.
        merged: dict[tuple, tuple[int, Mapping, bool, list[Q]]] = {}
        for condition in _merge_event_counts(node["conditions"], match):
            source = _value_source(condition)
            if source is not None:
                predicate, negated = positive_predicate(condition, self.now)
                if negated == (match == "all"):
                    joined = "or"
                elif source[0] == "attribute":
                    joined = "and"
                else:
                    parts.append(self.compile(condition))
                    continue
                if (*source, joined) not in merged:
                    merged[(*source, joined)] = (len(parts), condition, negated, [])
                    parts.append(None)
                merged[(*source, joined)][3].append(predicate)
                continue
            parts.append(self.compile(condition))
        for (*_, joined), (place, condition, negated, predicates) in merged.items():
            combined = _combine_any(predicates) if joined == "or" else _combine_all(predicates)
            exists = Q(Exists(value_rows(condition).filter(combined)))
            parts[place] = ~exists if negated else exists
        if match == "all":
            return _combine_all(parts)
        if match == "any":
            return _combine_any(parts)
        return negate(_combine_any(parts))

    def compile(self, node: Mapping) -> Q:
        kind = node["type"]
        if kind == "group":
            return self.group(node)
        if kind == "attribute":
            return _attribute(node, self.now)
        if kind == "event":
            return _event(node, self.now)
        if kind == "survey":
            return survey_facts().survey_condition(node, self.now)
        if kind == "answer":
            return _answer(node, self.now)
        if kind == "segment":
            held = self.segment(node["segment"])
            return held if node["operator"] == "in" else negate(held)
        raise ValueError(f"unknown condition type {kind}")


# One Q with every part as a child: `q &= part` in a loop copies the children each
# time, which is quadratic in a group's size.
def _combine_all(parts: list[Q]) -> Q:
    if not parts:
        return ALWAYS
    return parts[0] if len(parts) == 1 else Q(*parts, _connector=Q.AND)


def _combine_any(parts: list[Q]) -> Q:
    if not parts:
        return NOTHING
    return parts[0] if len(parts) == 1 else Q(*parts, _connector=Q.OR)


def compile_rule(
    rule: Mapping, now: datetime, segments: Mapping[int, SegmentDefinition] | None = None
) -> Q:
    """A `Q` over `Contact` that holds for the contacts matching `rule` at `now`.

    Referenced segments are inlined here; `rule_members` computes each one once.
    """
    return Compiler(now, segments or {}).compile(rule)


class SharedCompiler(Compiler):
    """Compiles each referenced data-driven segment once, as a named list of member ids.

    Inlined, a segment named k times is evaluated k times per contact, and a chain of
    segments each naming the one below twice doubles at every level. Here each segment
    becomes one WITH query, computed once, and a rule reads it through a LEFT JOIN on
    the contact id (at most one row per contact): a hash join, which PostgreSQL spills
    to disk when large, where an `id IN (list)` under OR or NOT would rescan the list.

    `within`, ids of some of the workspace's contacts (a preview's sample), restricts
    the lists too: a list is only ever read for the contacts being asked about.
    """

    def __init__(
        self,
        now: datetime,
        segments: Mapping[int, SegmentDefinition],
        workspace_id,
        within: RawSQL | None = None,
    ):
        super().__init__(now, segments)
        self.workspace_id = workspace_id
        self.within = within
        self.lists: dict[int, tuple[str, list]] = {}  # segment id: (SQL, params), in order
        self.scopes: list[set[int]] = [set()]  # the lists each query being built reads
        self.uses: Counter[int] = Counter()

    def _segment(self, segment_id: int) -> Q:
        if not usable_segment(self.segments, segment_id):
            return NOTHING
        segment = self.segments[segment_id]
        if segment.kind == "manual" or self.uses[segment_id] < 2:
            # Named once: inlined, the database may stop early (a first page by user_id).
            return super()._segment(segment_id)
        self.scopes.append(set())
        condition = self.compile(segment.rules)
        self.lists[segment_id] = self.query_of(condition, self.scopes.pop())
        return Q(RawSQL(f'"{_list_name(segment_id)}"."id" IS NOT NULL', [], BooleanField()))

    def segment(self, segment_id: int) -> Q:
        q = super().segment(segment_id)
        if segment_id in self.lists:
            self.scopes[-1].add(segment_id)  # this query reads the list: it joins it
        return q

    def contacts(self, condition: Q) -> QuerySet:
        contacts = Contact.objects.filter(Q(workspace_id=self.workspace_id) & condition)
        return contacts if self.within is None else contacts.filter(pk__in=self.within)

    def query_of(self, condition: Q, reads: set[int]) -> tuple[str, list]:
        contacts = self.contacts(condition)
        table = Contact._meta.db_table
        try:
            sql, params = contacts.order_by().values("id").query.sql_with_params()
        except EmptyResultSet:  # the condition holds for no one
            return f'SELECT "{table}"."id" FROM "{table}" WHERE 1 = 0', []
        joins = "".join(
            f' LEFT JOIN "{_list_name(pk)}" ON "{_list_name(pk)}"."id" = "{table}"."id"'
            for pk in sorted(reads)
        )
        head = f'FROM "{table}"'
        return sql.replace(head, head + joins, 1), list(params)

    def count_uses(self, rule: Mapping) -> None:
        """How often each segment is named by the rule and the segments it reaches."""
        self.uses = Counter(referenced_by(rule))
        reached, stack = set(), list(self.uses)
        while stack:
            segment = self.segments.get(stack.pop())
            if segment is None or segment.id in reached or segment.kind == "manual":
                continue
            reached.add(segment.id)
            named = referenced_by(segment.rules)
            self.uses.update(named)
            stack.extend(named)

    def members(self, rule: Mapping) -> QuerySet:
        """The contacts matching `rule`, reading each segment named twice or more once."""
        self.count_uses(rule)
        condition = self.compile(rule)
        contacts = self.contacts(condition)
        if not self.lists:
            return contacts
        materialized = " MATERIALIZED" if connection.vendor == "postgresql" else ""
        parts, params = [], []
        for pk, (sql, list_params) in self.lists.items():
            parts.append(f'"{_list_name(pk)}" AS{materialized} ({sql})')
            params += list_params
        query, query_params = self.query_of(condition, self.scopes[0])
        raw = RawSQL(f"WITH {', '.join(parts)} {query}", [*params, *query_params])
        return Contact.objects.filter(workspace_id=self.workspace_id, pk__in=raw)


def _list_name(segment_id: int) -> str:
    return f"segment_{segment_id}_members"


def rule_members(
    workspace_id: int,
    rule: Mapping,
    now: datetime,
    segments: Mapping[int, SegmentDefinition],
    within: RawSQL | None = None,
) -> QuerySet:
    """The workspace's contacts matching `rule` at `now`, each referenced segment once;
    only those of the ids `within` when given."""
    return SharedCompiler(now, segments, workspace_id, within).members(rule)


def lone_attribute(rule: Mapping) -> Mapping | None:
    """The one positive trait condition `rule` amounts to, or None when it is more.

    Groups of one condition (matching all or any) are looked through.
    """
    node = rule
    while node["type"] == "group" and node["match"] != "none" and len(node["conditions"]) == 1:
        node = node["conditions"][0]
    if (
        node["type"] != "attribute"
        or node["attribute"].startswith("account.")
        or node["operator"] in NEGATIONS
    ):
        return None
    return node


def matching_values(workspace_id: int, condition: Mapping, now: datetime) -> QuerySet:
    """The parsed-value rows that meet a positive trait condition: one per matching contact.

    A contact has at most one row per key, in its own workspace, so counting these
    rows counts the contacts, without reading the contacts table at all: an index
    on (workspace, key, column) answers the count alone.
    """
    predicate = value_predicate(
        condition["operator"], condition.get("value"), condition.get("ignore_case", False), now
    )
    rows = ContactValue.objects.filter(workspace_id=workspace_id, key=condition["attribute"])
    return rows.filter(predicate)

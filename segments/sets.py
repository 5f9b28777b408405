"""Counting a rule's members with set-based SQL, on PostgreSQL (issue 12).

`segments.sql` asks each condition about each contact (an EXISTS per contact per
condition). That suits a first page in `user_id` order, which stops after 50
contacts, but a count visits every contact, so a wide rule costs contacts ×
conditions probes: 200 conditions over a million contacts took 6 to 42 s.

Here a condition, or a set of conditions one pass can answer, becomes the SQL of
the contact ids that meet it, computed once, and the rule's logic becomes
INTERSECT, UNION and EXCEPT of those sets:

- conditions on one attribute key in a group: one pass over that key's values,
  their predicates OR'ed or AND'ed as in `segments.sql.Compiler.group`;
- event counts over all time on one event name in a group: one pass over that
  name's event totals (segments.totals), one row per contact, their predicates
  merged as for an attribute key (no row is a count of 0);
- windowed event counts in a group: one pass over those names' totals for all the
  group's windows, each row's count in a window read from the latest moments the
  total keeps (segments.totals) when they hold it, else from that contact's events
  of that name (an index range); the conditions on a name and window are one range
  of counts, the names combined per contact (`events`); totals too small to change
  an answer are not read;
- a referenced segment: one `WITH` query, however often it is named;
- account, survey and answer conditions: the contact-by-contact compiler, once
  for all of them in the group.

A set holds the ids of contacts that meet a condition, or (`outside`) of those
that do not, so a negation costs nothing and "everyone but" is counted as the
workspace's contacts minus the set. Equality with a text of at most SHORT_TEXT
characters reads a partial index that holds the text and the contact (migration 0014:
no table row is read), a longer one an index on a digest of the folded text, and
substring operators add a `LIKE` a trigram index can answer (both built by migration
0008; all on PostgreSQL only). Every predicate is the one `segments.sql` uses, so the
count agrees with both evaluators; the index terms only narrow what is read.
"""

import hashlib
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import transaction
from django.db.models import BooleanField, F, Q, QuerySet
from django.db.models.expressions import RawSQL

from refiner.replicas import reads_of
from segments.memory import SegmentDefinition
from segments.models import Contact, ContactValue, Event, EventTotal, SegmentMember
from segments.rules import NEGATIONS, usable_segment
from segments.sql import MAX_EVENTS, AnyOf, Compiler, positive_predicate, value_predicate
from segments.values import EARLIEST, days_before, fold

SUBSTRING_OPERATORS = ("contains", "starts_with", "ends_with")
# work_mem of a count's transaction: each hash or sort of the query may use this much
# (hashes twice as much, PostgreSQL's hash_mem_multiplier), per parallel worker.
COUNT_WORK_MEM = "64MB"
# Texts of at most this many characters are in the partial indexes of migration 0014.
SHORT_TEXT = 200


@dataclass(frozen=True)
class Members:
    """Contact ids as SQL (None: no contact), or with `outside` every other contact.

    `repeats`: the SQL may name a contact more than once (a `UNION ALL`). A union that
    only feeds an INTERSECT or EXCEPT needs no deduplication of its own, since those
    deduplicate what they return; only a count of the set itself does (`count_query`).
    """

    sql: str | None
    params: tuple = ()
    outside: bool = False
    repeats: bool = False


NOBODY = Members(None)
EVERYBODY = Members(None, outside=True)


def negated(members: Members) -> Members:
    return Members(members.sql, members.params, not members.outside, members.repeats)


def _joined(operator: str, parts: list[Members]) -> tuple[str, tuple]:
    if len(parts) == 1:
        return parts[0].sql, parts[0].params
    sql = f" {operator} ".join(f"({part.sql})" for part in parts)
    return sql, tuple(param for part in parts for param in part.params)


def _same_set(members: Members) -> tuple[str | None, str]:
    # Parameters may hold lists (array parameters), so they are compared as text.
    return members.sql, repr(members.params)


def _simplified(parts: list[Members]) -> list[Members] | None:
    """The parts of an intersection without repeats, or None when two are a set and
    its complement (no contact is in both). A chain of segments that each name the one
    below with `in` and `not_in` in an `any` group collapses here, level by level,
    instead of hashing the same million ids at every level."""
    seen: dict[tuple, Members] = {}
    kept = []
    for part in parts:
        if part.sql is None:
            kept.append(part)
            continue
        same = seen.get(_same_set(part))
        if same is None:
            seen[_same_set(part)] = part
            kept.append(part)
        elif same.outside != part.outside:
            return None
    return kept


def all_of(parts: list[Members]) -> Members:
    """Contacts in every part: the sets intersected, minus every `outside` set."""
    parts = _simplified(parts)
    if parts is None:
        return NOBODY
    inside = [part for part in parts if not part.outside]
    outside = [part for part in parts if part.outside and part.sql is not None]
    if any(part.sql is None for part in inside):
        return NOBODY
    if not inside:
        if not outside:
            return EVERYBODY
        if len(outside) == 1:
            return outside[0]
        sql, params = _joined("UNION ALL", outside)
        return Members(sql, params, outside=True, repeats=True)
    if len(inside) == 1 and not outside:
        return inside[0]
    sql, params = _joined("INTERSECT", inside)
    if outside:
        excluded, excluded_params = _joined("UNION ALL", outside)
        sql, params = f"({sql}) EXCEPT ({excluded})", params + excluded_params
    return Members(sql, params)


def any_of(parts: list[Members]) -> Members:
    # De Morgan: in any part = not outside every part.
    return negated(all_of([negated(part) for part in parts]))


def text_digest(text: str) -> uuid.UUID:
    """What the digest index holds for a folded text: PostgreSQL's md5 of it, as a uuid."""
    return uuid.UUID(hashlib.md5(text.encode(), usedforsecurity=False).hexdigest())


def _digest_in(texts: list[str], ignore_case: bool) -> Q:
    """Text equal to one of `texts`: the digest index finds the rows, the text decides."""
    folded = list(dict.fromkeys(fold(text) for text in texts))
    digests = RawSQL(
        "md5(text_folded)::uuid = ANY(%s)", [[text_digest(t) for t in folded]], BooleanField()
    )
    # One array parameter (segments.sql.AnyOf), not one parameter per value.
    exact = AnyOf(F("text_folded"), folded) if ignore_case else AnyOf(F("text"), list(texts))
    return Q(digests) & Q(exact)


def _short_text_in(texts: list[str], ignore_case: bool) -> Q:
    """Text equal to one of `texts`, all of at most SHORT_TEXT characters: the length
    term (true of any text equal to one of them) names the partial index of migration
    0014, which holds the text and the contact, so the count reads no table row."""
    column = "text_folded" if ignore_case else "text"
    values = [fold(text) for text in texts] if ignore_case else texts
    short = RawSQL(f"length({column}) <= %s", [SHORT_TEXT], BooleanField())
    return Q(AnyOf(F(column), list(dict.fromkeys(values)))) & Q(short)


def _text_in(texts: list[str], ignore_case: bool) -> Q:
    """Text equal to one of `texts` (folding keeps a text's length: ASCII letters only)."""
    short = [text for text in texts if len(text) <= SHORT_TEXT]
    long = [text for text in texts if len(text) > SHORT_TEXT]
    if not long:
        return _short_text_in(short, ignore_case)
    if not short:
        return _digest_in(long, ignore_case)
    return _short_text_in(short, ignore_case) | _digest_in(long, ignore_case)


def _like_pattern(operator: str, text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return {"contains": f"%{escaped}%", "starts_with": f"{escaped}%"}.get(operator, f"%{escaped}")


def set_predicate(
    operator: str, value: Any, ignore_case: bool, now: datetime, like: bool = True
) -> Q:
    """`segments.sql.value_predicate`, with the terms PostgreSQL's text indexes answer.

    `like`: add the trigram index's LIKE to a substring operator. One pattern found in
    a third of a key's values reads faster by scanning the key than through the
    index, so only passes that test several patterns ask for it.
    """
    if operator == "equals" and isinstance(value, str):
        return _text_in([value], ignore_case)
    if operator == "in":
        texts = [item for item in value if isinstance(item, str)]
        others = [item for item in value if not isinstance(item, str)]
        if texts:
            parts = [_text_in(texts, ignore_case)]
            if others:
                parts.append(value_predicate("in", others, ignore_case, now))
            return parts[0] if len(parts) == 1 else parts[0] | parts[1]
    predicate = value_predicate(operator, value, ignore_case, now)
    if operator == "is_false":
        # Said outright, it names the partial index of migration 0018 ("NOT boolean"
        # alone does not imply it to the planner).
        return predicate & Q(boolean__isnull=False)
    if like and operator in SUBSTRING_OPERATORS and value:
        # Folding maps letter to letter, so a match implies one in the folded text.
        like = RawSQL("text_folded LIKE %s", [_like_pattern(operator, fold(value))], BooleanField())
        return Q(like) & predicate
    return predicate


def condition_predicate(condition: Mapping, now: datetime, like: bool) -> tuple[Q, bool]:
    """The condition's positive predicate over value rows, and whether it is negated."""
    operator = condition["operator"]
    if operator == "is_set" or operator == "is_not_set":
        return positive_predicate(condition, now)
    predicate = set_predicate(
        NEGATIONS.get(operator, operator),
        condition.get("value"),
        condition.get("ignore_case", False),
        now,
        like,
    )
    return predicate, operator in NEGATIONS


def _members_of(queryset: QuerySet) -> Members:
    try:
        sql, params = queryset.order_by().query.sql_with_params()
    except EmptyResultSet:  # the condition holds for no row
        return NOBODY
    return Members(sql, tuple(params))


def _substring_column(condition: Mapping, like: bool) -> str:
    """The text column a substring test without the trigram index's LIKE reads ("" for
    any other condition)."""
    operator = NEGATIONS.get(condition["operator"], condition["operator"])
    if operator not in SUBSTRING_OPERATORS or like:
        return ""
    return "text_folded" if condition.get("ignore_case", False) else "text"


def _short_or_long(rows: QuerySet, column: str) -> Members:
    """The contacts of `rows`, whose tests read only `column`, as two disjoint halves:
    texts of at most SHORT_TEXT characters from the partial index of migration 0014,
    which holds the text and the contact (an index-only scan, where the key's rows
    are spread over the whole table), and longer ones from that of 0017, which holds
    only them (folding keeps a text's length, so the halves are complementary)."""
    short = RawSQL(f"length({column}) <= %s", [SHORT_TEXT], BooleanField())
    long = RawSQL("length(text_folded) > %s", [SHORT_TEXT], BooleanField())
    halves = [_members_of(rows.filter(Q(part)).values_list("contact_id")) for part in (short, long)]
    halves = [half for half in halves if half.sql is not None]
    if not halves:
        return NOBODY
    # A contact has one value of a key, so no contact is in both halves.
    sql, params = _joined("UNION ALL", halves)
    return Members(sql, params)


def _holds_at(condition: Mapping, count: int) -> bool:
    """Does the count condition hold for a contact with `count` such events?"""
    wanted, operator = condition["value"], condition["operator"]
    if operator == "at_least":
        return count >= wanted
    if operator == "at_most":
        return count <= wanted
    return count == wanted


@dataclass(frozen=True)
class CountRanges:
    """The counts at which the conditions on one event name hold (all of them in an
    `all` group, any in an `any` one), as ranges (low, high or None for no bound): any
    number of conditions on a name is one or two comparisons of its count."""

    ranges: tuple[tuple[int, int | None], ...]

    @classmethod
    def of(cls, conditions: list[Mapping], every: bool) -> "CountRanges":
        def holds(count: int) -> bool:
            answers = (_holds_at(condition, count) for condition in conditions)
            return all(answers) if every else any(answers)

        # The answer only changes at a condition's value or one past it; no count
        # exceeds MAX_EVENTS.
        starts = {n for c in conditions for n in (c["value"], c["value"] + 1)}
        starts = sorted({0} | {n for n in starts if 0 < n <= MAX_EVENTS})
        ranges: list[tuple[int, int | None]] = []
        for start, end in zip(starts, [*starts[1:], None], strict=True):
            if not holds(start):
                continue
            high = None if end is None else end - 1
            if ranges and ranges[-1][1] == start - 1:
                start = ranges.pop()[0]  # adjoining ranges are one
            ranges.append((start, high))
        return cls(tuple(ranges))

    @property
    def at_zero(self) -> bool:
        return bool(self.ranges) and self.ranges[0][0] == 0

    @property
    def first_change(self) -> int | None:
        """The fewest events at which the answer differs from the answer at none;
        None if it never does (the answer is the same for every contact)."""
        if not self.ranges:
            return None
        low, high = self.ranges[0]
        if low > 0:
            return low
        return None if high is None else high + 1

    def sql(self, counted: str) -> tuple[str, list]:
        terms, params = [], []
        for low, high in self.ranges:
            if high is None:
                terms.append(f"{counted} >= %s")
                params.append(low)
            elif low == high:
                terms.append(f"{counted} = %s")
                params.append(low)
            else:
                terms.append(f"{counted} BETWEEN %s AND %s")
                params += [low, high]
        return " OR ".join(terms) or "FALSE", params


def _total_term(condition: Mapping) -> tuple[str | None, list, bool]:
    """A count over all time as a predicate on the contact's total of the event:
    (SQL, parameters, negated). A contact without events has no total row, so a count
    that holds at 0 is the negation of one that does not: at most N is not N+1 or
    more, exactly 0 is not 1 or more. SQL None: the count holds for no one (negated:
    for everyone)."""
    wanted, operator, negative = condition["value"], condition["operator"], False
    if operator == "at_most" or (operator == "exactly" and wanted == 0):
        operator, wanted, negative = "at_least", wanted + 1, True
    if operator == "at_least" and wanted <= 0:
        return None, [], True
    if wanted > MAX_EVENTS:
        return None, [], negative
    return f"count {'>=' if operator == 'at_least' else '='} %s", [wanted], negative


class SetCompiler:
    """Compiles rules of one workspace into `Members`; segments become `WITH` queries."""

    def __init__(self, workspace_id: int, now: datetime, segments: Mapping[int, SegmentDefinition]):
        self.workspace_id, self.now, self.segments = workspace_id, now, segments
        self.lists: list[tuple[str, str, tuple]] = []  # (name, SQL, params), in order
        self._segment_members: dict[int, Members] = {}

    def compile(self, node: Mapping) -> Members:
        if node["type"] != "group":
            node = {"type": "group", "match": "all", "conditions": [node]}
        return self.group(node)

    def group(self, node: Mapping) -> Members:
        match = node["match"]
        combine = "all" if match == "all" else "any"  # `none` is "not any"
        parts: list[Members] = []
        by_key: dict[tuple[str, str], tuple[bool, list[Q]]] = {}
        # (key, joined) → the text column its substring tests read; "" when a condition
        # of the pass is anything else (or they read both columns).
        substring_column: dict[tuple[str, str], str] = {}
        # negated → event name → its predicates on the total
        by_event: dict[bool, dict[str, list[tuple[str, list]]]] = {}
        windowed: list[Mapping] = []
        others: list[Mapping] = []
        patterns = Counter(
            condition["attribute"]
            for condition in node["conditions"]
            if condition["type"] == "attribute"
            and NEGATIONS.get(condition["operator"], condition["operator"]) in SUBSTRING_OPERATORS
        )
        for condition in node["conditions"]:
            kind = condition["type"]
            if kind == "group":
                parts.append(self.group(condition))
            elif kind == "segment":
                held = self.segment(condition["segment"])
                parts.append(held if condition["operator"] == "in" else negated(held))
            elif kind == "event" and condition.get("within_days") is None:
                sql, params, negative = _total_term(condition)
                if sql is None:
                    parts.append(negated(NOBODY) if negative else NOBODY)
                    continue
                names = by_event.setdefault(negative, {})
                names.setdefault(condition["event"], []).append((sql, params))
            elif kind == "event":
                windowed.append(condition)
            elif kind == "attribute" and not condition["attribute"].startswith("account."):
                like = patterns[condition["attribute"]] > 1
                predicate, negative = condition_predicate(condition, self.now, like)
                # Which identity merges them: see segments.sql.Compiler.group.
                joined = "or" if negative == (combine == "all") else "and"
                pass_key = (condition["attribute"], joined)
                by_key.setdefault(pass_key, (negative, []))[1].append(predicate)
                column = _substring_column(condition, like)
                if substring_column.setdefault(pass_key, column) != column:
                    substring_column[pass_key] = ""
            else:
                others.append(condition)
        for (key, joined), (negative, predicates) in by_key.items():
            combined = Q(*predicates, _connector=Q.OR if joined == "or" else Q.AND)
            rows = ContactValue.objects.filter(workspace_id=self.workspace_id, key=key)
            column = substring_column.get((key, joined))
            if column:
                found = _short_or_long(rows.filter(combined), column)
            else:
                found = _members_of(rows.filter(combined).values_list("contact_id"))
            parts.append(negated(found) if negative else found)
        for negative, names in by_event.items():
            # Merged as attribute conditions are (one total row per contact and name):
            # the positive counts of an `all` group must all hold, so must the counts
            # negated in an `any` group (not p or not q = not (p and q)).
            every = negative != (combine == "all")
            found = self.totals(names, every)
            parts.append(negated(found) if negative else found)
        if windowed:
            parts.append(self.events(windowed, combine))
        if others:
            rest = {"type": "group", "match": combine, "conditions": others}
            contacts = Contact.objects.filter(workspace_id=self.workspace_id)
            condition = Compiler(self.now, self.segments).group(rest)
            parts.append(_members_of(contacts.filter(condition).values_list("id")))
        held = all_of(parts) if combine == "all" else any_of(parts)
        return negated(held) if match == "none" else held

    def events(self, conditions: list[Mapping], combine: str) -> Members:
        """Windowed event counts of a group, in one pass over their names' totals.

        Each total row yields the contact's count of its name in each window, from its
        moments when they tell it all, else from that contact's events of that name
        (`_windowed_counts`). The conditions on one name and window become one
        predicate on that count (`CountRanges`), and the rows of a contact are
        combined as its names are: no grouping when one row can decide, else one
        `HAVING` with two aggregates however many conditions. A total smaller than
        its name's first change answers as no total would, so it is not read, and a
        contact without a row counts zero.
        """
        every = combine == "all"
        windows = sorted({condition["within_days"] for condition in conditions})
        by_slot: dict[tuple[str, int], list[Mapping]] = {}
        for condition in conditions:
            slot = (condition["event"], windows.index(condition["within_days"]))
            by_slot.setdefault(slot, []).append(condition)
        # name → window → when its conditions hold; a window that answers the same for
        # every contact decides the group (one that never holds in `all`, one that
        # always does in `any`) or else changes nothing.
        ranges: dict[str, dict[int, CountRanges]] = {}
        for (name, window), named in by_slot.items():
            held = CountRanges.of(named, every)
            if held.first_change is None:
                if held.at_zero != every:
                    return NOBODY if every else EVERYBODY
                continue
            ranges.setdefault(name, {})[window] = held
        if not ranges:
            return EVERYBODY if every else NOBODY
        pick = all if every else any
        at_zero = {name: pick(h.at_zero for h in held.values()) for name, held in ranges.items()}
        changes = {
            name: min(h.first_change for h in held.values()) for name, held in ranges.items()
        }
        names = list(ranges)
        holds_at_zero = pick(at_zero.values())
        joined = " AND " if every else " OR "
        # Whether the row meets its name's conditions: a CASE stops at the row's name,
        # where an OR of every name's test would try them all on most rows.
        met, row_params = "CASE name", []
        for name in names:
            terms = []
            row_params.append(name)
            for window, held in ranges[name].items():
                sql, params = held.sql(f"n{window}")
                terms.append(f"({sql})")
                row_params += params
            met += f" WHEN %s THEN {joined.join(terms)}"
        met += " END"
        counted, counted_params = self._windowed_counts(names, changes, windows)
        sql = f"SELECT contact_id FROM ({counted}) AS counted"  # noqa: S608
        # A contact has one row per name: one name needs no grouping to be a set.
        grouped = " GROUP BY contact_id" if len(names) > 1 else ""
        if not every and not holds_at_zero:
            # Some name must be met, by a row of it: the rows that do, one per contact.
            sql += f" WHERE {met}{grouped}"
            return Members(sql, tuple(counted_params + row_params))
        if every and holds_at_zero:
            # Every name holds at zero: the contacts with a row that fails, and the
            # members are everyone else.
            sql += f" WHERE NOT ({met}){grouped}"
            return Members(sql, tuple(counted_params + row_params), outside=True)
        if every:
            # Every row met, and a row of each name that fails at zero.
            having, params = f"bool_and({met})", list(row_params)
            wanted = [name for name in names if not at_zero[name]]
        else:
            # A row met, or some name that holds at zero without a row.
            having, params = f"bool_or({met})", list(row_params)
            wanted = [name for name in names if at_zero[name]]
        having += f" {'AND' if every else 'OR'} count(*) FILTER (WHERE name = ANY(%s)) "
        having += "= %s" if every else "< %s"
        params += [wanted, len(wanted)]
        # When the counts hold at zero, the set is of those they fail for, and the
        # members are everyone else (contacts without rows among them).
        sql += f" GROUP BY contact_id HAVING {'NOT ' if holds_at_zero else ''}({having})"
        return Members(sql, tuple(counted_params + params), outside=holds_at_zero)

    def _windowed_counts(
        self, names: list[str], changes: Mapping[str, int], windows: list[int]
    ) -> tuple[str, list]:
        """SQL of (contact_id, name, n0, n1, …): nI the contact's events of that name
        within the I-th of `windows` (days), for each total of `names` that reaches its
        name's first change.

        The moments (segments.totals) are the latest events of the total, oldest first.
        They hold the count in a window when they hold every event (as many moments as
        the count) or when the oldest is before the window; otherwise the contact has
        more events than moments since the window's start (a burst, or events in the
        future), and its events of that name are counted in the window's range of the
        (contact, name, occurred_at) index. `width_bucket` finds in the sorted moments
        how many are at or before a moment, by bisection.
        """
        events = Event._meta.db_table
        columns, params = [], []
        for index, within_days in enumerate(windows):
            start = days_before(self.now, within_days)
            # How many moments are before the window: those at or before the
            # microsecond before its start (timestamps have microseconds on both sides).
            if start > EARLIEST:
                before, before_params = (
                    "width_bucket(%s, moments)",
                    [start - timedelta(microseconds=1)],
                )
            else:
                before, before_params = "0", []
            columns.append(
                "CASE WHEN coalesce(cardinality(moments) = count OR moments[1] < %s, false) "
                f"THEN width_bucket(%s, moments) - {before} "
                f'ELSE (SELECT count(*) FROM "{events}" AS event '  # noqa: S608
                "WHERE event.contact_id = total.contact_id AND event.name = total.name "
                f"AND event.occurred_at >= %s AND event.occurred_at <= %s) END AS n{index}"
            )
            params += [start, self.now, *before_params, start, self.now]
        reached = " OR ".join(["(name = %s AND count >= %s)"] * len(names))
        reached_params = [item for name in names for item in (name, changes[name])]
        not_visitor, not_visitor_params = self._not_visitor()
        sql = (
            f"SELECT contact_id, name, {', '.join(columns)} "  # noqa: S608
            f'FROM "{EventTotal._meta.db_table}" AS total '
            f"WHERE workspace_id = %s AND ({reached}) AND {not_visitor} "
            # Not flattened into the query around it: that would copy the counts'
            # expressions into every condition that reads them.
            "OFFSET 0"
        )
        params += [self.workspace_id, *reached_params, *not_visitor_params]
        return sql, params

    def _not_visitor(self) -> tuple[str, list]:
        # Anonymous visitors' events count for no segment; visitors are few (a hashed NOT IN).
        sql = (
            f'contact_id NOT IN (SELECT id FROM "{Contact._meta.db_table}"'  # noqa: S608
            " WHERE workspace_id = %s AND user_id IS NULL)"
        )
        return sql, [self.workspace_id]

    def totals(self, names: Mapping[str, list[tuple[str, list]]], every: bool) -> Members:
        """Contacts whose totals meet the predicates of every name, each name's `every`
        (AND) or of some (OR), in one pass over those names' totals: one set however
        many names, since sets of hundreds of thousands of ids cost more to combine
        than to find."""
        joined = " AND " if every else " OR "
        terms, params = [], [self.workspace_id]
        for name, predicates in names.items():
            terms.append(f"(name = %s AND ({joined.join(sql for sql, _ in predicates)}))")
            params += [name, *(param for _, more in predicates for param in more)]
        not_visitor, not_visitor_params = self._not_visitor()
        sql = (
            f'SELECT contact_id FROM "{EventTotal._meta.db_table}" '  # noqa: S608
            f"WHERE workspace_id = %s AND ({' OR '.join(terms)}) AND {not_visitor}"
        )
        params += not_visitor_params
        if len(names) > 1:
            # A contact has one row per name: it meets all of them when all its rows match.
            sql += " GROUP BY contact_id"
            if every:
                sql += " HAVING count(*) = %s"
                params.append(len(names))
        return Members(sql, tuple(params))

    def segment(self, segment_id: int) -> Members:
        if segment_id not in self._segment_members:
            self._segment_members[segment_id] = self._segment(segment_id)
        return self._segment_members[segment_id]

    def _segment(self, segment_id: int) -> Members:
        if not usable_segment(self.segments, segment_id):
            return NOBODY
        segment = self.segments[segment_id]
        if segment.kind == "manual":
            rows = SegmentMember.objects.filter(segment_id=segment_id).values_list("contact_id")
            return _members_of(rows)
        held = self.compile(segment.rules)
        if held.sql is None:
            return held
        name = f"segment_{segment_id}_set"
        self.lists.append((name, held.sql, held.params))
        return Members(f'SELECT id FROM "{name}"', (), held.outside, held.repeats)  # noqa: S608

    def count_query(self, rule: Mapping) -> tuple[str, tuple] | int:
        """The SQL counting the rule's members, or the count itself when no query is needed."""
        held = self.compile(rule)
        table = Contact._meta.db_table
        # Anonymous visitors (no user id) are in no segment: "everyone" is the identified
        # contacts, and no set holds a visitor (their events are left out in `events`).
        contacts = f'SELECT count(*) FROM "{table}" WHERE workspace_id = %s AND user_id IS NOT NULL'
        if held.sql is None:
            return (contacts, (self.workspace_id,)) if held.outside else 0
        distinct = (
            f"SELECT DISTINCT id FROM ({held.sql}) AS named(id)" if held.repeats else held.sql
        )
        counted = f"SELECT count(*) FROM ({distinct}) AS members"  # noqa: S608
        params = held.params
        if held.outside:
            counted = f"SELECT ({contacts}) - ({counted})"
            params = (self.workspace_id, *params)
        return self.with_lists(counted, params)

    def members_query(self, rule: Mapping, up_to: int) -> tuple[str, tuple] | None:
        """SQL of one row (count, ids): how many contacts match the rule, and the first
        `up_to` + 1 of their ids (all of them when there are at most `up_to`), both read
        from one computed set. None when the members are not a set of ids (nobody, or
        everyone but a set): the count is then `count_query`'s."""
        held = self.compile(rule)
        if held.sql is None or held.outside:
            return None
        distinct = (
            f"SELECT DISTINCT id FROM ({held.sql}) AS named(id)" if held.repeats else held.sql
        )
        lists = [*self.lists_used_by(held.sql), ("members", distinct, held.params)]
        named = ", ".join(f'"{name}"(id) AS ({list_sql})' for name, list_sql, _ in lists)
        sql = (
            f'WITH {named} SELECT (SELECT count(*) FROM "members"), '  # noqa: S608
            '(SELECT array_agg(id) FROM (SELECT id FROM "members" LIMIT %s) AS few)'
        )
        params = tuple(p for _, _, list_params in lists for p in list_params)
        return sql, (*params, up_to + 1)

    def with_lists(self, sql: str, params: tuple) -> tuple[str, tuple]:
        """`sql` preceded by the `WITH` lists it names (the referenced segments' sets)."""
        used = self.lists_used_by(sql)
        if not used:
            return sql, params
        lists = ", ".join(f'"{name}"(id) AS ({list_sql})' for name, list_sql, _ in used)
        used_params = tuple(p for _, _, list_params in used for p in list_params)
        return f"WITH {lists} {sql}", used_params + tuple(params)

    def lists_used_by(self, sql: str) -> list[tuple[str, str, tuple]]:
        """The `WITH` lists that `sql` names, directly or through another list: a segment
        whose set collapsed (say, "in it or not in it") leaves its own list unnamed."""
        used = []
        for name, list_sql, params in reversed(self.lists):  # a list names only earlier ones
            if f'"{name}"' in sql:
                used.append((name, list_sql, params))
                sql += list_sql
        return used[::-1]


def _run_count(query: tuple[str, tuple], roomy: bool) -> tuple:
    database = reads_of(Contact)  # the replica in a dashboard page that may read it
    if not roomy:
        with database.cursor() as cursor:
            cursor.execute(*query)
            return cursor.fetchone()
    with transaction.atomic(using=database.alias), database.cursor() as cursor:
        # For this transaction only: room to hash the id sets and the grouped events in
        # memory, and no JIT, whose compiling cost more than these queries save by it.
        cursor.execute(
            "SELECT set_config('work_mem', %s, true), set_config('jit', 'off', true)",
            [COUNT_WORK_MEM],
        )
        cursor.execute(*query)
        return cursor.fetchone()


def set_count(
    workspace_id: int,
    rule: Mapping,
    now: datetime,
    segments: Mapping[int, SegmentDefinition],
    roomy: bool = True,
) -> int:
    """How many of the workspace's contacts match `rule` at `now`, in one set-based query.

    `roomy` runs it in a transaction of its own with more memory and no JIT; a count
    of one trait's values needs neither, and skips the round trips.
    """
    query = SetCompiler(workspace_id, now, segments).count_query(rule)
    if isinstance(query, int):
        return query
    return _run_count(query, roomy)[0]


def set_count_with_members(
    workspace_id: int,
    rule: Mapping,
    now: datetime,
    segments: Mapping[int, SegmentDefinition],
    up_to: int,
) -> tuple[int, list[int] | None]:
    """`set_count`, with the members' ids when they are a set of at most `up_to`
    contacts (None otherwise): what the count computed, so that the preview lists some
    of them without computing the set again."""
    compiler = SetCompiler(workspace_id, now, segments)
    query = compiler.members_query(rule, up_to)
    if query is None:
        return set_count(workspace_id, rule, now, segments), None
    count, ids = _run_count(query, roomy=True)
    return count, (ids or []) if count <= up_to else None

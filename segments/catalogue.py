"""The names people know: traits and events seen in a workspace (SPEC §6).

The catalogue feeds the rule editor's suggestions, its warning about names no
contact has, and a page that lists them. Each list is one GROUP BY over a table
whose indexes lead with (workspace, key) or (workspace, name), cut at `LIMIT`
rows. The editor, opened often, asks only for names (`names`), which the
indexes answer alone; the page adds counts, types and dates, which read every
value row of the workspace (about half a second for 2 million on PostgreSQL).
The unknown-name warning asks only about the names in the rule.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, QuerySet

from refiner.models import Workspace
from segments.models import AccountValue, ContactValue, Event
from segments.rules import BUILTIN_FIELDS

LIMIT = 500


@dataclass(frozen=True)
class Entry:
    """One trait or event name, with what its values look like."""

    name: str
    kind: str  # what the values are: "text", "number", "date", "true/false", or a mix
    contacts: int  # contacts (accounts) that have the trait; for an event, times tracked
    last_seen: datetime | None


def _kind(row: dict) -> str:
    # Parsed forms overlap ("12" is text and a number): the most specific one names it.
    found = []
    if row["booleans"]:
        found.append("true/false")
    if row["dates"]:
        found.append("date")
    if row["numbers"]:
        found.append("number")
    if row["texts"] > max(row["dates"], row["numbers"]):
        found.append("text")
    return " or ".join(found) or "list or object"


def _value_keys(values: QuerySet, last_seen: str, limit: int) -> list[Entry]:
    """Keys of parsed-value rows with how many owners have each and the kinds of values."""
    rows = (
        values.values("key")
        .annotate(
            total=Count("id"),
            texts=Count("text"),
            numbers=Count("num"),
            dates=Count("date"),
            booleans=Count("boolean"),
            last_seen=Max(last_seen),
        )
        .order_by("-total", "key")[:limit]
    )
    return [Entry(r["key"], _kind(r), r["total"], r["last_seen"]) for r in rows]


def traits(workspace: Workspace, *, limit: int = LIMIT) -> list[Entry]:
    """Contact traits (built-in fields left out), most used first."""
    values = ContactValue.objects.filter(workspace=workspace).exclude(key__in=BUILTIN_FIELDS)
    return _value_keys(values, "contact__last_seen_at", limit)


def account_traits(workspace: Workspace, *, limit: int = LIMIT) -> list[Entry]:
    """Account traits (`account.<key>` in rules), counted in accounts, most used first."""
    values = AccountValue.objects.filter(workspace=workspace)
    return _value_keys(values, "account__updated_at", limit)


def events(workspace: Workspace, *, limit: int = LIMIT) -> list[Entry]:
    """Event names with how often each was tracked and when it last happened.

    Times, not distinct contacts: the (workspace, name, occurred_at) index alone
    answers this, where counting contacts would read every event row.
    """
    rows = (
        Event.objects.filter(workspace=workspace)
        .values("name")
        .annotate(times=Count("*"), last_seen=Max("occurred_at"))
        .order_by("-times", "name")[:limit]
    )
    return [Entry(r["name"], "event", r["times"], r["last_seen"]) for r in rows]


def names(workspace: Workspace, *, limit: int = LIMIT) -> dict[str, list[str]]:
    """Only the names, in order: the editor's suggestions, cheap enough for every page."""

    def distinct(queryset, field: str) -> list[str]:
        return list(queryset.values_list(field, flat=True).distinct().order_by(field)[:limit])

    traits = ContactValue.objects.filter(workspace=workspace).exclude(key__in=BUILTIN_FIELDS)
    return {
        "traits": distinct(traits, "key"),
        "account_traits": distinct(AccountValue.objects.filter(workspace=workspace), "key"),
        "events": distinct(Event.objects.filter(workspace=workspace), "name"),
    }


def _names_in(rule: Any, kind: str, field: str) -> set[str]:
    """Every `field` of conditions of type `kind` in a rule, however deep."""
    found: set[str] = set()
    if not isinstance(rule, dict):
        return found
    if rule.get("type") == kind and isinstance(rule.get(field), str):
        found.add(rule[field])
    for condition in rule.get("conditions") or []:
        found |= _names_in(condition, kind, field)
    return found


def unknown_names(workspace: Workspace, rule: Any) -> list[str]:
    """Warnings for trait and event names that nothing in the workspace has.

    A misspelt name is valid and matches nobody; this says so without refusing
    the rule (a trait may be about to be sent for the first time).
    """
    attributes = {a for a in _names_in(rule, "attribute", "attribute") if a.strip()}
    contact_keys = {a for a in attributes if not a.startswith("account.")} - set(BUILTIN_FIELDS)
    account_keys = {a.removeprefix("account.") for a in attributes if a.startswith("account.")}
    account_keys -= {"id", "name"}
    event_names = {e for e in _names_in(rule, "event", "event") if e.strip()}
    known_traits = set(
        ContactValue.objects.filter(workspace=workspace, key__in=contact_keys)
        .values_list("key", flat=True)
        .distinct()
    )
    known_account = set(
        AccountValue.objects.filter(workspace=workspace, key__in=account_keys)
        .values_list("key", flat=True)
        .distinct()
    )
    known_events = set(
        Event.objects.filter(workspace=workspace, name__in=event_names)
        .values_list("name", flat=True)
        .distinct()
    )
    warnings = [f"No contact has the trait `{k}`." for k in sorted(contact_keys - known_traits)]
    warnings += [f"No account has the trait `{k}`." for k in sorted(account_keys - known_account)]
    warnings += [
        f"No event `{name}` was ever tracked." for name in sorted(event_names - known_events)
    ]
    return warnings

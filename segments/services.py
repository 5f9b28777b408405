"""Workflows over segments: their rules, members and counts (SPEC §3)."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from refiner.models import Workspace
from segments import membership
from segments.memory import ContactSnapshot, Evaluator, SegmentDefinition
from segments.models import Contact, Segment, SegmentMember
from segments.registry import survey_facts
from segments.rules import Problems, SegmentDefinitions, usable_segment, validate_rule
from segments.sets import set_count, set_count_with_members
from segments.snapshot import EventReads, load_snapshot
from segments.sql import lone_attribute, matching_values, rule_members


def definitions_of(rows: Iterable[tuple[int, str, Any]]) -> SegmentDefinitions:
    """The engine's definitions of segments given as (id, kind, rules)."""
    return SegmentDefinitions({pk: SegmentDefinition(pk, kind, rules) for pk, kind, rules in rows})


def segment_definitions(workspace_id: int) -> SegmentDefinitions:
    rows = Segment.objects.filter(workspace_id=workspace_id).values_list("id", "kind", "rules")
    return definitions_of(rows)


def lock_segments(workspace_id: int) -> None:
    """Serialise the saves of a workspace's segments, until the transaction ends.

    A save checks its rule against the other segments (cycles, the work bound); two
    saves checking at once would each miss the other's change and could together store
    a cycle. Holding the workspace's row, the second save waits, then reads the first.
    """
    list(Workspace.objects.select_for_update(no_key=True).filter(pk=workspace_id).values_list("pk"))


def check_rule(rule: Any, *, workspace_id: int, segment_id: int | None = None) -> Problems:
    """Errors of a rule in its workspace: references must stay inside it, without cycles,
    within the work bound. Call it after `lock_segments` when the rule is to be saved."""
    definitions = segment_definitions(workspace_id)
    segments = {pk: d.rules for pk, d in definitions.items()}
    surveys = survey_facts().survey_ids(workspace_id)
    return validate_rule(rule, segments=segments, surveys=surveys, segment_id=segment_id)


def rule_contacts(
    workspace_id: int,
    rule: dict,
    now: datetime,
    definitions: SegmentDefinitions | None = None,
    within: RawSQL | None = None,
) -> QuerySet[Contact]:
    """The contacts matching `rule` now; only those of the ids `within` when given."""
    if definitions is None:
        definitions = segment_definitions(workspace_id)
    return rule_members(workspace_id, rule, now, definitions, within)


def rule_count(
    workspace_id: int, rule: dict, now: datetime, definitions: SegmentDefinitions | None = None
) -> int:
    """How many contacts match `rule` now; a rule of one trait counts its value rows."""
    condition = lone_attribute(rule)
    if connection.vendor == "postgresql":
        # Set-based: one pass per key or event window, not a probe per contact and
        # condition (docs/decisions.md); a lone trait reads its value rows, with no
        # transaction of its own for more memory.
        if definitions is None:
            definitions = segment_definitions(workspace_id)
        return set_count(workspace_id, rule, now, definitions, roomy=condition is None)
    if condition is not None:
        return matching_values(workspace_id, condition, now).count()
    return rule_contacts(workspace_id, rule, now, definitions).count()


def rule_count_with_members(
    workspace_id: int, rule: dict, now: datetime, up_to: int
) -> tuple[int, list[int] | None]:
    """`rule_count`, with the members' ids when the count computed them as a set and
    there are at most `up_to` (PostgreSQL, a rule of more than one trait); else None."""
    if connection.vendor != "postgresql" or lone_attribute(rule) is not None:
        return rule_count(workspace_id, rule, now), None
    definitions = segment_definitions(workspace_id)
    return set_count_with_members(workspace_id, rule, now, definitions, up_to)


def segment_count(segment: Segment, now: datetime) -> int:
    """How many contacts are in the segment now (none when it cannot be evaluated)."""
    if segment.is_manual:
        return segment_contacts(segment, now).count()
    definitions = segment_definitions(segment.workspace_id)
    if not usable_segment(definitions, segment.pk):
        return 0
    return rule_count(segment.workspace_id, segment.rules, now, definitions)


def segment_contacts(segment: Segment, now: datetime) -> QuerySet[Contact]:
    """The segment's members right now, as SQL (none when it cannot be evaluated)."""
    if segment.is_manual:
        return Contact.objects.filter(
            workspace_id=segment.workspace_id, segment_memberships__segment=segment
        )
    definitions = segment_definitions(segment.workspace_id)
    if not usable_segment(definitions, segment.pk):
        return Contact.objects.none()
    return rule_contacts(segment.workspace_id, segment.rules, now, definitions)


def snapshot_of(contact: Contact, event_names: Iterable[str] | None = None) -> ContactSnapshot:
    """Everything rules can ask about one contact (see `segments.snapshot`), with every
    event of `event_names` (None: of every name)."""
    return load_snapshot(contact, EventReads.of_names(event_names))


def contact_segments(contact: Contact, now: datetime) -> list[Segment]:
    """The segments of its workspace the contact is in now (in-memory evaluation)."""
    segments = list(Segment.objects.filter(workspace_id=contact.workspace_id))
    definitions = definitions_of((s.pk, s.kind, s.rules) for s in segments)
    evaluator = Evaluator(snapshot_of(contact), now, definitions)
    return [s for s in segments if evaluator.in_segment(s.pk)]


@transaction.atomic
def add_members(segment: Segment, user_ids: list[str], now: datetime | None = None) -> int:
    contacts = Contact.objects.filter(workspace_id=segment.workspace_id, user_id__in=user_ids)
    rows = [SegmentMember(segment=segment, contact=c) for c in contacts]
    SegmentMember.objects.bulk_create(rows, ignore_conflicts=True)
    membership.manual_list_changed(segment, user_ids, now)
    return len(rows)


@transaction.atomic
def remove_members(segment: Segment, user_ids: list[str], now: datetime | None = None) -> int:
    deleted, _ = SegmentMember.objects.filter(
        segment=segment, contact__user_id__in=user_ids
    ).delete()
    membership.manual_list_changed(segment, user_ids, now)
    return deleted

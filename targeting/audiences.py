"""A Target Audience as a rule of segment references, so it is counted as rules are.

On PostgreSQL `segments.services.rule_count` counts with set-based SQL
(`segments.sets`): each segment of the audience is computed once and the
audience is their union or intersection minus the exclusions. The Targeting tab's
estimate and its overlap with other live surveys are such counts when a segment
involved is stale; when all are current they are set operations over the
segments' open memberships instead (`selection`, `segments.counts`).
"""

from collections.abc import Container
from datetime import datetime

from segments.counts import Selection
from segments.services import rule_count
from targeting.models import Targeting


def _reference(segment_id: int, operator: str) -> dict:
    return {"type": "segment", "segment": segment_id, "operator": operator}


def audience_rule(
    known: Container[int],
    *,
    audience: str,
    segments: list[int],
    segment_match: str,
    excluded_segments: list[int],
) -> dict | None:
    """The audience as a rule (None when it can hold nobody); ids not in `known` are ignored."""
    conditions = []
    if audience == Targeting.SEGMENTS:
        targeted = [_reference(pk, "in") for pk in dict.fromkeys(segments) if pk in known]
        if not targeted:
            return None
        match = "all" if segment_match == Targeting.ALL else "any"
        conditions.append({"type": "group", "match": match, "conditions": targeted})
    conditions += [
        _reference(pk, "not_in") for pk in dict.fromkeys(excluded_segments) if pk in known
    ]
    return {"type": "group", "match": "all", "conditions": conditions}


def audience_count(workspace_id: int, rule: dict | None, now: datetime) -> int:
    return 0 if rule is None else rule_count(workspace_id, rule, now)


def overlap_count(workspace_id: int, first: dict, second: dict, now: datetime) -> int:
    """How many contacts are in both audiences."""
    both = {"type": "group", "match": "all", "conditions": [first, second]}
    return rule_count(workspace_id, both, now)


def selection(
    known: Container[int],
    *,
    audience: str,
    segments: list[int],
    segment_match: str,
    excluded_segments: list[int],
) -> Selection:
    """The audience as segments to combine (`audience_rule`'s meaning, for cached counts)."""
    excluded = tuple(pk for pk in dict.fromkeys(excluded_segments) if pk in known)
    if audience != Targeting.SEGMENTS:
        return Selection(None, excluded=excluded)
    targeted = tuple(pk for pk in dict.fromkeys(segments) if pk in known)
    return Selection(targeted, segment_match == Targeting.ALL, excluded)

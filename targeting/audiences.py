"""A Target Audience as a rule of segment references, so it is counted as rules are.

On PostgreSQL `segments.services.rule_count` counts with set-based SQL
(`segments.sets`): each segment of the audience is computed once and the
audience is their union or intersection minus the exclusions. The Targeting tab's
estimate and its overlap with other live surveys are such counts when a segment
involved is stale; when all are current they are counted from the segments' open
memberships instead (`selection`, `segments.counts`), or read from the figures the
last sweep stored for the saved audiences of the live surveys and the recent drafts
(`AudienceFigures`).
"""

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations, product

from django.db import transaction
from django.db.models import QuerySet

from refiner.models import Workspace
from segments import counts
from segments.counts import Selection
from segments.models import Segment
from segments.services import rule_count
from surveys.models import Survey
from targeting.models import AudienceCount, Targeting


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


def saved_audience(targeting: Targeting) -> dict:
    """The audience part of saved targeting, as the tab's fields hold it."""
    return {
        "audience": targeting.audience,
        "segments": [s.pk for s in targeting.segments.all()],
        "segment_match": targeting.segment_match,
        "excluded_segments": [s.pk for s in targeting.excluded_segments.all()],
    }


def live_surveys(workspace_id: int) -> QuerySet[Survey]:
    """The workspace's live surveys with targeting, in the order they compete."""
    return (
        Survey.objects.with_parts()
        .filter(workspace_id=workspace_id, status=Survey.LIVE, targeting__isnull=False)
        .order_by("-targeting__priority", "created_at")
    )


def _pair(first: Selection, second: Selection) -> tuple[str, str]:
    return tuple(sorted([first.key, second.key]))


# The drafts whose saved audiences each sweep counts too, the most recently changed
# first: a draft is being set up, and its Targeting tab is opened again and again.
DRAFTS_COUNTED = 20


def drafts_counted(workspace_id: int) -> QuerySet[Survey]:
    """The workspace's drafts with targeting whose audiences the sweep counts."""
    drafts = Survey.objects.with_parts().filter(
        workspace_id=workspace_id, status=Survey.DRAFT, targeting__isnull=False
    )
    return drafts.order_by("-updated_at", "-pk")[:DRAFTS_COUNTED]


def _swept(
    surveys: Iterable[Survey], known: set[int], current: Mapping[int, datetime], at: datetime
) -> list[Selection]:
    """The surveys' saved audiences, each once, whose segments the sweep that began `at`
    stamped, in the order of their keys."""
    chosen = {}
    for survey in surveys:
        audience = selection(known, **saved_audience(survey.targeting))
        if audience.segments and all(current.get(pk) == at for pk in audience.segments):
            chosen[audience.key] = audience
    return [chosen[key] for key in sorted(chosen)]


def record_audience_counts(workspace_id: int, at: datetime) -> int:
    """Count each live survey's saved audience and each two's overlap, and each recent
    draft's saved audience and its overlap with each live survey (`drafts_counted`),
    from open memberships, as of the sweep that began `at`; replace the workspace's
    figures.

    Only audiences of segments that sweep stamped are counted: the others are stale, and
    the tab counts them live. Returns how many figures were stored.
    """
    workspace = Workspace.objects.get(pk=workspace_id)
    current = counts.current_segments(workspace)
    known = set(Segment.objects.filter(workspace_id=workspace_id).values_list("pk", flat=True))

    live = _swept(live_surveys(workspace_id), known, current, at)
    live_keys = {audience.key for audience in live}
    drafts = _swept(drafts_counted(workspace_id), known, current, at)
    drafts = [audience for audience in drafts if audience.key not in live_keys]
    read = counts.Known()  # each segment read once for every figure
    figures = [
        AudienceCount(
            workspace_id=workspace_id,
            audience=audience.key,
            contacts=counts.selection_count(workspace_id, audience, read),
            as_of=at,
        )
        for audience in live + drafts
    ]
    for first, second in [*combinations(live, 2), *product(drafts, live)]:
        mine, theirs = _pair(first, second)
        shared = counts.overlap_count(workspace_id, first, second, read)
        figures.append(
            AudienceCount(
                workspace_id=workspace_id, audience=mine, other=theirs, contacts=shared, as_of=at
            )
        )
    with transaction.atomic():
        AudienceCount.objects.filter(workspace_id=workspace_id).delete()
        AudienceCount.objects.bulk_create(figures)
    return len(figures)


@dataclass(frozen=True)
class AudienceFigures:
    """The figures the last sweep stored for a workspace, and when each may stand in for
    a count from memberships: when every segment involved is current, stamped by that
    very sweep (not saved or compared again since), and no manual list it is or names
    was edited since. Writes of contacts' data between sweeps are not looked for: the
    figure is "as of" its sweep (docs/segments.md)."""

    workspace: Workspace
    current: Mapping[int, datetime]
    stored: Mapping[tuple[str, str], AudienceCount]

    @classmethod
    def load(cls, workspace: Workspace, current: Mapping[int, datetime]) -> "AudienceFigures":
        rows = AudienceCount.objects.filter(workspace=workspace)
        return cls(workspace, current, {(row.audience, row.other): row for row in rows})

    def size(self, audience: Selection) -> AudienceCount | None:
        return self._standing(self.stored.get((audience.key, "")), audience.segments)

    def shared(self, first: Selection, second: Selection) -> AudienceCount | None:
        if first.key == second.key:
            return self.size(first)
        # Everyone (no exclusions) is every identified contact, and members are all
        # identified: what it shares with an audience is that audience.
        for one, other in ((first, second), (second, first)):
            if one.targeted is None and not one.excluded:
                return self.size(other)
        both = first.segments | second.segments
        return self._standing(self.stored.get(_pair(first, second)), both)

    def _standing(
        self, figure: AudienceCount | None, segment_ids: set[int]
    ) -> AudienceCount | None:
        if figure is None or not segment_ids:
            return None
        if any(self.current.get(pk) != figure.as_of for pk in segment_ids):
            return None
        if counts.lists_changed_since(self.workspace, segment_ids, figure.as_of):
            return None
        return figure

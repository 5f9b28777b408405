"""What the apps above `segments` lend it: the facts of surveys, and who uses a segment.

The rule language has survey and answer conditions (SPEC §3), yet displays and
answers are tables of `surveys`, and surveys target segments through `targeting`:
both sit above `segments`, which may not import them (docs/architecture.md). So
each registers here, when Django starts (its `AppConfig.ready`), the few things
`segments` asks of it, and `segments` asks through this module alone.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet


@dataclass(frozen=True)
class SurveyFacts:
    """How the engine and the rule editor read surveys, displays and answers."""

    # A `survey` condition as a Q over contacts, at `now`.
    survey_condition: Callable[[Mapping, datetime], Q]
    # The answer rows (at most one, tied to the contact by OuterRef) an `answer` condition reads.
    answer_rows: Callable[[Mapping], QuerySet]
    # The snapshot's UNION ALL branches for displays and answers, naming the contact as
    # `{contact}` (see `segments.snapshot.snapshot_sql`).
    snapshot_displays: str
    snapshot_answers: str
    # The ids of a workspace's surveys, which rules may name.
    survey_ids: Callable[[int], list[int]]
    # What the rule editor offers for survey and answer conditions in a workspace.
    editor_choices: Callable[..., dict]


@dataclass(frozen=True)
class SegmentUsers:
    """Who outside `segments` uses a segment, so that a used segment is not deleted."""

    # Each of the segment's users as "survey 12 (Onboarding)".
    names: Callable[[Any], list[str]]
    # For the segment list: each segment's uses, by segment id (dicts for the template).
    uses: Callable[[Any, list], dict[int, list[dict]]]


_survey_facts: SurveyFacts | None = None
_segment_users: list[SegmentUsers] = []


def register_survey_facts(facts: SurveyFacts) -> None:
    global _survey_facts
    _survey_facts = facts


def survey_facts() -> SurveyFacts:
    if _survey_facts is None:
        raise LookupError("The surveys app is not installed: nothing answers survey conditions.")
    return _survey_facts


def register_segment_users(users: SegmentUsers) -> None:
    if users not in _segment_users:
        _segment_users.append(users)


def segment_users() -> list[SegmentUsers]:
    return list(_segment_users)

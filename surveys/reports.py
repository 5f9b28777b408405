"""What the Responses pages show: filtered responses, NPS and rating summaries, CSV rows."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.fields.json import KeyTextTransform

from segments.models import Segment
from segments.services import segment_contacts
from segments.values import iso
from surveys.models import Question, Response, Survey

SCORED_TYPES = (Question.NPS, Question.RATING)
SCALES = {Question.NPS: range(0, 11), Question.RATING: range(1, 6)}
MAX_SUMMARIES = 12
CSV_FIXED = [
    "response_id",
    "survey_id",
    "survey",
    "user_id",
    "email",
    "created_at",
    "completed",
    "completed_at",
]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def filtered_responses(
    workspace_id: int,
    *,
    survey: Survey | None = None,
    segment: Segment | None = None,
    start: date | None = None,
    end: date | None = None,
    include_test: bool = False,
    now: datetime,
) -> QuerySet[Response]:
    """The workspace's responses, narrowed by survey, current segment members and UTC days.

    `end` is inclusive: the whole of that day counts. Test contacts' answers are left
    out unless `include_test`: a PM trying a survey must not move its results.
    """
    responses = Response.objects.filter(workspace_id=workspace_id)
    if not include_test:
        responses = responses.filter(contact__is_test=False)
    if survey is not None:
        responses = responses.filter(survey=survey)
    if segment is not None:
        responses = responses.filter(contact__in=segment_contacts(segment, now).values("pk"))
    if start is not None:
        responses = responses.filter(created_at__gte=_day_start(start))
    if end is not None:
        responses = responses.filter(created_at__lt=_day_start(end + timedelta(days=1)))
    return responses


@dataclass
class Bar:
    label: str
    count: int
    tone: str
    x: float = 0
    y: float = 0
    width: float = 0
    height: float = 0

    @property
    def cx(self) -> float:
        return round(self.x + self.width / 2, 1)

    @property
    def count_y(self) -> float:
        return round(self.y - 6, 1)


@dataclass
class ScoreSummary:
    """The answers to one NPS or rating question: counts per score and what they add up to."""

    survey: Survey
    question: Question
    counts: dict[int, int]
    bars: list[Bar] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def is_nps(self) -> bool:
        return self.question.type == Question.NPS

    @property
    def promoters(self) -> int:
        return sum(n for score, n in self.counts.items() if score >= 9)

    @property
    def passives(self) -> int:
        return sum(n for score, n in self.counts.items() if 7 <= score <= 8)

    @property
    def detractors(self) -> int:
        return sum(n for score, n in self.counts.items() if score <= 6)

    @property
    def score(self) -> int | None:
        """Net Promoter Score: % promoters − % detractors, rounded to a whole number."""
        return nps_score(self.promoters, self.detractors, self.total)

    @property
    def average(self) -> float | None:
        if not self.total:
            return None
        return round(sum(score * n for score, n in self.counts.items()) / self.total, 2)

    def share(self, part: int) -> int:
        return round(100 * part / self.total) if self.total else 0

    @property
    def promoter_share(self) -> int:
        return self.share(self.promoters)

    @property
    def passive_share(self) -> int:
        return self.share(self.passives)

    @property
    def detractor_share(self) -> int:
        return self.share(self.detractors)


def nps_score(promoters: int, detractors: int, total: int) -> int | None:
    """100 × (promoters − detractors) / total, halves rounded up; None without answers.

    Integer arithmetic, so 12.5 is always 13 and −12.5 is −12 on every platform.
    """
    if total <= 0:
        return None
    return (200 * (promoters - detractors) + total) // (2 * total)


def _tone(kind: str, score: int) -> str:
    if kind == Question.RATING:
        return "rating"
    if score >= 9:
        return "promoter"
    return "passive" if score >= 7 else "detractor"


CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM = 440, 180, 22, 24


def chart_bars(kind: str, counts: dict[int, int]) -> list[Bar]:
    """Bar geometry for the inline SVG chart (viewBox 440 × 180), one bar per score."""
    scale = list(SCALES[kind])
    highest = max(counts.values(), default=0) or 1
    slot = CHART_WIDTH / len(scale)
    plot = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    bars = []
    for index, score in enumerate(scale):
        count = counts.get(score, 0)
        height = round(plot * count / highest, 1)
        bars.append(
            Bar(
                label=str(score),
                count=count,
                tone=_tone(kind, score),
                x=round(index * slot + slot * 0.15, 1),
                y=round(CHART_TOP + plot - height, 1),
                width=round(slot * 0.7, 1),
                height=height,
            )
        )
    return bars


def _as_score(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def score_counts(responses: QuerySet[Response], question: Question) -> dict[int, int]:
    """How many of the responses gave each score to the question: one GROUP BY query."""
    rows = (
        responses.filter(survey_id=question.survey_id)
        .annotate(score=KeyTextTransform(question.key, "answers"))
        .exclude(score=None)
        .order_by()
        .values("score")
        .annotate(n=Count("id"))
    )
    counts: dict[int, int] = {}
    scale = SCALES[question.type]
    for row in rows:
        score = _as_score(row["score"])
        if score is not None and score in scale:
            counts[score] = counts.get(score, 0) + row["n"]
    return counts


def score_summaries(responses: QuerySet[Response], survey: Survey | None) -> list[ScoreSummary]:
    """One summary per NPS / rating question of the chosen survey (or of the answered ones)."""
    surveys = [survey] if survey else Survey.objects.filter(pk__in=responses.values("survey_id"))
    questions = (
        Question.objects.filter(survey__in=surveys, type__in=SCORED_TYPES)
        .select_related("survey")
        .order_by("-survey__created_at", "survey_id", "position", "id")[:MAX_SUMMARIES]
    )
    summaries = []
    for question in questions:
        counts = score_counts(responses, question)
        if survey is None and not counts:
            continue
        summary = ScoreSummary(survey=question.survey, question=question, counts=counts)
        summary.bars = chart_bars(question.type, counts)
        summaries.append(summary)
    return summaries


def csv_columns(responses: QuerySet[Response], survey: Survey | None) -> list[str]:
    """Question keys as columns: the survey's in order, or every answered survey's."""
    surveys = [survey] if survey else Survey.objects.filter(pk__in=responses.values("survey_id"))
    keys = Question.objects.filter(survey__in=surveys).order_by("survey_id", "position", "id")
    return list(dict.fromkeys(keys.values_list("key", flat=True)))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = "; ".join(str(item) for item in value)
    text = str(value)
    # A cell that starts like a formula would run as one in a spreadsheet; answers
    # are typed by end users, so they are neutralised with a leading quote.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not isinstance(value, int | float):
        return "'" + text
    return text


def csv_rows(responses: QuerySet[Response], keys: list[str]) -> Iterable[list[str]]:
    """Header, then one row per response; answers not under `keys` go to `other_answers`."""
    columns = set(keys)
    yield CSV_FIXED + keys + ["other_answers"]
    rows: Iterator[Response] = (
        responses.select_related("contact", "survey").order_by("created_at", "id").iterator(1000)
    )
    for response in rows:
        answers = response.answers or {}
        other = {k: v for k, v in answers.items() if k not in columns}
        yield [
            str(response.pk),
            str(response.survey_id),
            _cell(response.survey.name),
            _cell(response.contact.user_id),
            _cell(response.contact.email),
            iso(response.created_at),
            _cell(response.completed),
            iso(response.completed_at) if response.completed_at else "",
            *[_cell(answers.get(key)) for key in keys],
            _cell(json.dumps(other, ensure_ascii=False)) if other else "",
        ]

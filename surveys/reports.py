"""What the Responses pages show: filtered responses, NPS and rating summaries, CSV rows."""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, TruncWeek

from segments.models import Contact, Segment
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
        # The workspace's few test contacts, as a list the database holds in a hash,
        # rather than a join of every response with its contact (index `contact_test`).
        testers = Contact.all_contacts.filter(workspace_id=workspace_id, is_test=True)
        responses = responses.exclude(contact__in=testers.values("pk"))
    if survey is not None:
        responses = responses.filter(survey=survey)
    if segment is not None:
        responses = responses.filter(contact__in=segment_contacts(segment, now).values("pk"))
    if start is not None:
        responses = responses.filter(created_at__gte=_day_start(start))
    # The last day the calendar has has no next day to stop before: no upper bound then.
    if end is not None and end < date.max:
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
        return nps_of(self.counts)

    @property
    def average(self) -> float | None:
        return average_of(self.counts)

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


def nps_of(counts: dict[int, int]) -> int | None:
    """The NPS of {score: how many}: promoters score 9–10, detractors 0–6."""
    promoters = sum(n for score, n in counts.items() if score >= 9)
    detractors = sum(n for score, n in counts.items() if score <= 6)
    return nps_score(promoters, detractors, sum(counts.values()))


def average_of(counts: dict[int, int]) -> float | None:
    """The mean score of {score: how many}, to two places; None without answers."""
    total = sum(counts.values())
    if not total:
        return None
    return round(sum(score * n for score, n in counts.items()) / total, 2)


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


def answered_surveys(responses: QuerySet[Response]) -> QuerySet[Survey]:
    """The surveys that some of the responses answer: one look per survey, which stops at
    its first response, rather than a pass over every response."""
    return Survey.objects.filter(Exists(responses.filter(survey_id=OuterRef("pk"))))


def score_summaries(responses: QuerySet[Response], survey: Survey | None) -> list[ScoreSummary]:
    """One summary per NPS / rating question of the chosen survey (or of the answered ones)."""
    surveys = [survey] if survey else answered_surveys(responses)
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
    surveys = [survey] if survey else answered_surveys(responses)
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
    """Header, then one row per response; answers not under `keys` go to `other_answers`,
    and the page's own fields (`addToResponse`) to `extra`, both as JSON objects."""
    columns = set(keys)
    # Question keys are typed by dashboard users and become the header: escaped like any cell.
    yield CSV_FIXED + [_cell(key) for key in keys] + ["other_answers", "extra"]
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
            _cell(json.dumps(response.extra, ensure_ascii=False)) if response.extra else "",
        ]


# Results by segment -----------------------------------------------------------

SMALL_GROUP = 30
RESULT_WEEKS = 12
CHOICE_TYPES = (Question.SINGLE, Question.MULTIPLE)
# The chart's plot area inside its viewBox (TREND_WIDTH × TREND_HEIGHT).
TREND_WIDTH, TREND_HEIGHT, TREND_TOP, TREND_BOTTOM, TREND_SIDE = 320, 140, 12, 22, 36
TREND_RANGE = {Question.NPS: (-100, 100), Question.RATING: (1, 5)}


def week_of(moment: datetime) -> date:
    """The Monday (UTC) that starts the moment's week."""
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


@dataclass
class WeekPoint:
    week: date
    answers: int
    value: float | None
    x: float = 0
    y: float = 0


@dataclass
class ChoiceShare:
    choice: str
    count: int
    percent: int


@dataclass
class QuestionFigures:
    """One group's answers to one question: the headline figure, its weeks, its shares."""

    question: Question
    counts: dict[Any, int] = field(default_factory=dict)
    weekly: dict[date, dict[Any, int]] = field(default_factory=dict)
    answers: int = 0
    weeks: list[WeekPoint] = field(default_factory=list)
    chart_id: str = ""

    @property
    def too_small(self) -> bool:
        return self.answers < SMALL_GROUP

    @property
    def headline(self) -> float | int | None:
        return _figure(self.question.type, self.counts)

    @property
    def shares(self) -> list[ChoiceShare]:
        """Each choice's share of the people who answered (multiple choice adds past 100%)."""
        choices = list(self.question.choices or [])
        choices += [c for c in self.counts if c not in choices]
        return [
            ChoiceShare(c, self.counts.get(c, 0), self._percent(self.counts.get(c, 0)))
            for c in choices
        ]

    def _percent(self, part: int) -> int:
        return round(100 * part / self.answers) if self.answers else 0

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x},{p.y}" for p in self.weeks if p.value is not None)

    def add(self, value: Any, week: date, times: int = 1) -> None:
        """Count `times` answers of `value` given in `week`."""
        kind = self.question.type
        if kind in SCORED_TYPES:
            score = _as_score(value)
            if score is None or score not in SCALES[kind]:
                return
            tallied = [score]
        elif kind in CHOICE_TYPES:
            tallied = [str(v) for v in (value if isinstance(value, list) else [value])]
            tallied = list(dict.fromkeys(v for v in tallied if v))
        else:
            tallied = [] if value in (None, "") else [None]
        if not tallied:
            return
        self.answers += times
        by_week = self.weekly.setdefault(week, {})
        for item in tallied:
            self.counts[item] = self.counts.get(item, 0) + times
            by_week[item] = by_week.get(item, 0) + times


def _figure(kind: str, counts: dict[Any, int]) -> float | int | None:
    """NPS for an NPS question, the average for a rating, nothing for the others."""
    if kind == Question.NPS:
        return nps_of(counts)
    if kind == Question.RATING:
        return average_of(counts)
    return None


def trend_points(kind: str, weekly: dict[date, dict[Any, int]], weeks: list[date]):
    """One point per week for the inline SVG trend; weeks without answers have no value."""
    low, high = TREND_RANGE[kind]
    plot = TREND_HEIGHT - TREND_TOP - TREND_BOTTOM
    step = (TREND_WIDTH - 2 * TREND_SIDE) / max(len(weeks) - 1, 1)
    points = []
    for index, week in enumerate(weeks):
        counts = weekly.get(week, {})
        value = _figure(kind, counts)
        y = TREND_TOP + plot * (high - value) / (high - low) if value is not None else 0
        points.append(
            WeekPoint(
                week, sum(counts.values()), value, round(TREND_SIDE + index * step, 1), round(y, 1)
            )
        )
    return points


@dataclass
class ResultGroup:
    """A column of the results page: everyone, or the current members of one segment."""

    name: str
    segment: Segment | None
    responses: int = 0
    figures: list[QuestionFigures] = field(default_factory=list)


@dataclass
class SurveyResults:
    survey: Survey
    questions: list[Question]
    groups: list[ResultGroup]
    weeks: list[date]

    @property
    def rows(self) -> list[tuple[Question, list[tuple[ResultGroup, QuestionFigures]]]]:
        """Question by question, each group with its figures, side by side."""
        return [
            (question, [(group, group.figures[index]) for group in self.groups])
            for index, question in enumerate(self.questions)
        ]


def _answer_tallies(responses: QuerySet[Response], question: Question):
    """(week, answer, how many) for one question: one GROUP BY query, whatever the volume.

    Free texts are only counted, so they are not grouped by their (all different) words.
    """
    rows = (
        responses.order_by()
        .annotate(
            week=TruncWeek("created_at", tzinfo=UTC),
            # As text, so that comparing with "" is a text comparison on every database.
            answer=Cast(KeyTextTransform(question.key, "answers"), TextField()),
        )
        .exclude(answer=None)
        .exclude(answer="")
    )
    if question.type == Question.TEXT:
        for row in rows.values("week").annotate(n=Count("id")):
            yield row["week"].date(), "answered", row["n"]
        return
    for row in rows.values("week", "answer").annotate(n=Count("id")):
        answer = row["answer"]
        if question.type == Question.MULTIPLE:
            # The key's text is the JSON of the list of choices on every database.
            try:
                answer = json.loads(answer)
            except ValueError:
                pass
        yield row["week"].date(), answer, row["n"]


def _group(survey: Survey, questions, key, name, segment, weeks, now) -> ResultGroup:
    responses = filtered_responses(survey.workspace_id, survey=survey, segment=segment, now=now)
    group = ResultGroup(name, segment, responses=responses.count())
    for question in questions:
        figures = QuestionFigures(question, chart_id=f"{question.pk}-{key}")
        for week, answer, times in _answer_tallies(responses, question):
            figures.add(answer, week, times)
        if question.type in SCORED_TYPES:
            figures.weeks = trend_points(question.type, figures.weekly, weeks)
        group.figures.append(figures)
    return group


def survey_results(survey: Survey, segments: list[Segment], *, now: datetime) -> SurveyResults:
    """Every question's figures for everyone and for each segment's current members.

    Membership is the segment's rule evaluated in SQL at `now`, never a stored list;
    the trend covers the last RESULT_WEEKS weeks, the headline figures all responses.
    """
    questions = list(survey.questions.all())
    this_week = week_of(now)
    weeks = [this_week - timedelta(weeks=n) for n in range(RESULT_WEEKS - 1, -1, -1)]
    groups = [_group(survey, questions, "all", "Everyone", None, weeks, now)]
    groups += [_group(survey, questions, s.pk, s.name, s, weeks, now) for s in segments]
    return SurveyResults(survey=survey, questions=questions, groups=groups, weeks=weeks)

"""Dashboard: a survey's results page, everyone and chosen segments side by side (issue 14)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from segments.ingest import sync_contact_values
from segments.models import Contact, Segment
from surveys.models import Response, Survey
from surveys.reports import SMALL_GROUP, survey_results, week_of
from tests.factories import (
    NPS_QUESTION,
    ContactFactory,
    SegmentFactory,
    SurveyFactory,
    record_response,
)
from tests.rules import plan_is

MONDAY = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LAST_WEEK = MONDAY - timedelta(days=6)  # Tuesday 9 June


def respond(survey: Survey, answers: dict, *, plan: str, at: datetime) -> Response:
    """A response recorded the way the widget records one, by a contact on `plan`."""
    contact = ContactFactory(workspace=survey.workspace, traits={"plan": plan})
    return record_response(survey, contact, answers, at, completed=True)


@pytest.fixture
def survey(workspace) -> Survey:
    return SurveyFactory(
        workspace=workspace,
        name="Quarterly NPS",
        questions=[
            NPS_QUESTION,
            {"key": "stars", "type": "rating", "text": "How useful are reports?"},
            {"key": "uses", "type": "multiple_choice", "text": "Uses?", "choices": ["A", "B", "C"]},
            {"key": "why", "type": "text", "text": "Why?"},
        ],
    )


@pytest.fixture
def segments(workspace) -> dict[str, Segment]:
    return {
        "enterprise": SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("ent")),
        "free": SegmentFactory(workspace=workspace, name="Free", rules=plan_is("free")),
    }


@pytest.fixture
def answered(survey):
    """Enterprise: NPS 10, 9, 6 last week; free: NPS 3, 8 this week."""
    respond(survey, {"nps": 10, "stars": 5, "uses": ["A", "B"]}, plan="ent", at=LAST_WEEK)
    respond(survey, {"nps": 9, "stars": 4, "uses": ["A"], "why": "Fast"}, plan="ent", at=LAST_WEEK)
    respond(survey, {"nps": 6}, plan="ent", at=LAST_WEEK)
    respond(survey, {"nps": 3, "stars": 2, "uses": ["C"]}, plan="free", at=MONDAY)
    respond(survey, {"nps": 8, "why": ""}, plan="free", at=MONDAY)


def figures_of(results, group: int) -> dict[str, object]:
    return {f.question.key: f for f in results.groups[group].figures}


# The figures ----------------------------------------------------------------


def test_figures_match_hand_computed_values(survey, segments, answered):
    results = survey_results(survey, [segments["enterprise"], segments["free"]], now=MONDAY)

    everyone, enterprise, free = (figures_of(results, i) for i in range(3))
    assert [g.name for g in results.groups] == ["Everyone", "Enterprise", "Free"]
    assert [g.responses for g in results.groups] == [5, 3, 2]
    # NPS = % promoters − % detractors: 2 of 5 − 2 of 5; 2 of 3 − 1 of 3; 0 of 2 − 1 of 2.
    assert [everyone["nps"].headline, enterprise["nps"].headline, free["nps"].headline] == [
        0,
        33,
        -50,
    ]
    assert [everyone["nps"].answers, enterprise["nps"].answers, free["nps"].answers] == [5, 3, 2]
    # Average rating: (5 + 4 + 2) / 3, (5 + 4) / 2, 2 / 1.
    assert [everyone["stars"].headline, enterprise["stars"].headline] == [3.67, 4.5]
    assert free["stars"].headline == 2.0
    # Choice shares are of the people who answered the question: 3 people, A chosen twice.
    assert [(s.choice, s.count, s.percent) for s in everyone["uses"].shares] == [
        ("A", 2, 67),
        ("B", 1, 33),
        ("C", 1, 33),
    ]
    assert [(s.choice, s.count) for s in free["uses"].shares] == [("A", 0), ("B", 0), ("C", 1)]
    # An empty text answer is no answer.
    assert everyone["why"].answers == 1 and everyone["why"].headline is None


def test_nps_by_week_over_the_last_twelve_weeks(survey, answered):
    results = survey_results(survey, [], now=MONDAY)

    weeks = results.groups[0].figures[0].weeks
    assert len(weeks) == 12 and weeks[-1].week == date(2026, 6, 15)
    assert weeks[0].week == date(2026, 3, 30)  # 11 weeks before
    assert [(p.week, p.value, p.answers) for p in weeks if p.answers] == [
        (date(2026, 6, 8), 33, 3),
        (date(2026, 6, 15), -50, 2),
    ]
    assert all(p.value is None for p in weeks[:-2])
    # NPS 33 is above the zero line, −50 below it (the chart's y grows downwards).
    assert weeks[-2].y < 65 < weeks[-1].y


def test_weeks_start_on_monday_utc():
    assert week_of(datetime(2026, 6, 14, 23, 59, tzinfo=UTC)) == date(2026, 6, 8)
    assert week_of(datetime(2026, 6, 15, 0, 0, tzinfo=UTC)) == date(2026, 6, 15)


def test_a_segment_column_counts_only_its_current_members(survey, segments, answered):
    """Membership is the rule evaluated now: a contact who moved plan moves column."""
    mover = Contact.objects.get(responses__answers__nps=3)
    mover.traits = {"plan": "ent"}
    mover.save()
    sync_contact_values(mover)

    results = survey_results(survey, [segments["enterprise"], segments["free"]], now=MONDAY)

    assert [g.responses for g in results.groups] == [5, 4, 1]
    assert figures_of(results, 2)["nps"].counts == {8: 1}


def test_a_small_group_is_flagged_and_a_large_one_is_not(survey, segments):
    for _ in range(SMALL_GROUP):
        respond(survey, {"nps": 10}, plan="ent", at=MONDAY)
    respond(survey, {"nps": 0}, plan="free", at=MONDAY)

    results = survey_results(survey, [segments["enterprise"], segments["free"]], now=MONDAY)

    assert [figures_of(results, i)["nps"].too_small for i in range(3)] == [False, False, True]


# The page -------------------------------------------------------------------


def page_url(survey: Survey) -> str:
    return f"/surveys/{survey.pk}/results/"


@pytest.fixture
def recent(survey):
    """The page reads the real clock: the same answers, this week."""
    now = timezone.now()
    for nps, plan in ((10, "ent"), (9, "ent"), (6, "ent"), (3, "free"), (8, "free")):
        respond(survey, {"nps": nps}, plan=plan, at=now)


def test_page_shows_everyone_and_each_chosen_segment_side_by_side(owner, survey, segments, recent):
    enterprise, free = segments["enterprise"], segments["free"]

    response = owner.get(page_url(survey), {"segment": [enterprise.pk, free.pk]})

    page = response.content.decode()
    assert response.status_code == 200
    assert re.findall(r"<h2>(Everyone|Enterprise|Free)</h2>", page) == [
        "Everyone",
        "Enterprise",
        "Free",
    ]
    nps = re.findall(r'<span class="score-value">(-?\d+)</span>\s*<span class="label">NPS', page)
    assert nps == ["0", "33", "-50"]
    assert '<span class="count">5</span> responses' in page
    assert '<span class="count">3</span> responses' in page
    assert "<svg" in page and "trend-line" in page


def test_each_column_links_to_the_export_of_its_members(owner, survey, segments, recent):
    enterprise = segments["enterprise"]
    page = owner.get(page_url(survey), {"segment": enterprise.pk}).content.decode()

    everyone_link = f'href="/responses/export.csv?survey={survey.pk}"'
    segment_link = f'href="/responses/export.csv?survey={survey.pk}&amp;segment={enterprise.pk}"'
    assert everyone_link in page and segment_link in page
    export = owner.get(f"/responses/export.csv?survey={survey.pk}&segment={enterprise.pk}")
    rows = b"".join(export.streaming_content).decode().strip().splitlines()
    assert len(rows) == 1 + 3  # the header, then the enterprise responses only


def test_the_small_group_note_is_on_the_page(owner, survey, segments, recent):
    page = owner.get(page_url(survey), {"segment": segments["free"].pk}).content.decode()

    assert "Only 2 answers: too few to read (fewer than 30)." in page
    assert "Only 5 answers: too few to read (fewer than 30)." in page


def test_without_segments_the_page_shows_everyone(owner, survey, recent):
    page = owner.get(page_url(survey)).content.decode()

    assert re.findall(r"<h2>(Everyone|Enterprise|Free)</h2>", page) == ["Everyone"]


def test_viewer_reads_the_results(viewer, survey, segments, recent):
    response = viewer.get(page_url(survey), {"segment": segments["free"].pk})

    assert response.status_code == 200 and "Free" in response.content.decode()


def test_outsider_gets_404(outsider, survey, recent):
    assert outsider.get(page_url(survey)).status_code == 404


def test_another_workspaces_segment_is_refused(owner, other_workspace, survey, recent):
    theirs = SegmentFactory(workspace=other_workspace, name="Their segment", rules=plan_is("ent"))

    response = owner.get(page_url(survey), {"segment": theirs.pk})

    page = response.content.decode()
    assert response.status_code == 400
    assert "Their segment" not in page and "score-value" not in page


@pytest.mark.parametrize("raw", ["abc", "99999999999999999999", "-1", "1\x00"])
def test_a_bad_segment_id_is_a_400_not_a_crash(owner, survey, raw):
    assert owner.get(page_url(survey), {"segment": raw}).status_code == 400


def test_at_most_four_segments_are_compared(owner, workspace, survey):
    chosen = [SegmentFactory(workspace=workspace).pk for _ in range(5)]

    response = owner.get(page_url(survey), {"segment": chosen})

    assert response.status_code == 400
    assert "Choose at most 4 segments." in response.content.decode()


def test_a_survey_without_answers_shows_empty_columns(owner, workspace):
    quiet = SurveyFactory(
        workspace=workspace, questions=[{"key": "nps", "type": "nps", "text": "Q?"}]
    )

    page = owner.get(page_url(quiet)).content.decode()

    assert "No answers yet." in page and "–" in page

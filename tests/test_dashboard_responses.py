"""Dashboard: the Responses list, its NPS / rating summary with chart, and the CSV export."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest

from surveys.models import Response, Survey
from surveys.reports import ScoreSummary, chart_bars, nps_score
from tests.factories import (
    NPS_QUESTION,
    ContactFactory,
    SegmentFactory,
    SurveyFactory,
    record_response,
)
from tests.rules import plan_is

HTMX = {"HX-Request": "true"}
JUNE_1 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
JUNE_10 = datetime(2026, 6, 10, 23, 30, tzinfo=UTC)
JUNE_20 = datetime(2026, 6, 20, 8, 0, tzinfo=UTC)


def respond(survey: Survey, answers: dict, *, at=JUNE_10, completed=True, **contact) -> Response:
    """A response recorded the way the widget records one."""
    person = ContactFactory(workspace=survey.workspace, **contact)
    return record_response(survey, person, answers, at, completed)


@pytest.fixture
def nps_survey(workspace) -> Survey:
    return SurveyFactory(
        workspace=workspace,
        name="Quarterly NPS",
        questions=[
            NPS_QUESTION,
            {"key": "why", "type": "text", "text": "What is the main reason?"},
            {"key": "uses", "type": "multiple_choice", "text": "Uses?", "choices": ["A", "B"]},
        ],
    )


@pytest.fixture
def rating_survey(workspace) -> Survey:
    return SurveyFactory(
        workspace=workspace,
        name="Docs rating",
        questions=[{"key": "stars", "type": "rating", "text": "How useful were the docs?"}],
    )


# NPS arithmetic -------------------------------------------------------------


@pytest.mark.parametrize(
    "promoters, detractors, total, expected",
    [
        (3, 3, 8, 0),
        (3, 1, 4, 50),
        (10, 0, 10, 100),
        (0, 7, 7, -100),
        (1, 0, 8, 13),  # 12.5 rounds up
        (0, 1, 8, -12),  # -12.5 rounds up too
        (2, 1, 3, 33),
        (1, 2, 3, -33),
        (0, 0, 5, 0),
        (0, 0, 0, None),
    ],
)
def test_nps_score_is_promoters_minus_detractors_in_percent(promoters, detractors, total, expected):
    assert nps_score(promoters, detractors, total) == expected


def test_summary_groups_scores_into_promoters_passives_and_detractors(nps_survey):
    question = nps_survey.questions.get(key="nps")
    counts = {10: 2, 9: 1, 8: 1, 7: 1, 6: 1, 3: 1, 0: 1}

    summary = ScoreSummary(survey=nps_survey, question=question, counts=counts)

    assert (summary.promoters, summary.passives, summary.detractors) == (3, 2, 3)
    assert summary.total == 8
    assert summary.score == 0
    assert (summary.promoter_share, summary.passive_share, summary.detractor_share) == (38, 25, 38)


def test_chart_bars_scale_to_the_tallest_and_are_coloured_by_group():
    bars = chart_bars("nps", {10: 4, 5: 2})

    assert [bar.label for bar in bars] == [str(n) for n in range(11)]
    assert bars[10].height == 134 and bars[5].height == 67 and bars[0].height == 0
    assert bars[10].y + bars[10].height == bars[5].y + bars[5].height == 156
    assert [bars[6].tone, bars[7].tone, bars[9].tone] == ["detractor", "passive", "promoter"]


# The page -------------------------------------------------------------------


def test_page_lists_responses_with_answers_and_the_nps_summary(owner, nps_survey):
    for score in (10, 9, 9, 8, 7, 6, 0, 3):
        respond(nps_survey, {"nps": score})
    respond(nps_survey, {"why": "Fast & friendly", "uses": ["A", "B"]}, email="ada@example.com")

    response = owner.get("/responses/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "9 responses" in page
    assert "What is the main reason?" in page and "Fast &amp; friendly" in page
    assert "A, B" in page and "ada@example.com" in page
    nps = re.search(r'<span class="score-value">(-?\d+)</span>\s*<span class="label">NPS', page)
    assert nps and nps.group(1) == "0"
    assert re.search(r"Promoters \(9–10\)</dt><dd><span class=\"count\">3</span>", page)
    assert re.search(r"Passives \(7–8\)</dt><dd><span class=\"count\">2</span>", page)
    assert re.search(r"Detractors \(0–6\)</dt><dd><span class=\"count\">3</span>", page)


def test_the_chart_is_an_inline_svg_with_one_bar_per_score(owner, nps_survey, rating_survey):
    respond(nps_survey, {"nps": 10})
    respond(rating_survey, {"stars": 4})
    respond(rating_survey, {"stars": 5})

    page = owner.get("/responses/").content.decode()

    charts = re.findall(r'<svg class="chart".*?</svg>', page, flags=re.S)
    assert len(charts) == 2
    bar_counts = sorted(chart.count("<rect") for chart in charts)
    assert bar_counts == [5, 11]
    assert "<script" not in page.split("<main", 1)[1]
    assert "Average / 5" in page and ">4.5<" in page


def test_rating_summary_shows_the_average(owner, rating_survey):
    for stars in (5, 4, 4, 1):
        respond(rating_survey, {"stars": stars})

    page = owner.get("/responses/", {"survey": rating_survey.pk}).content.decode()

    assert ">3.5<" in page
    assert "4 answers." in page


def test_partial_responses_count_in_the_summary(owner, nps_survey):
    respond(nps_survey, {"nps": 10}, completed=False)

    page = owner.get("/responses/", {"survey": nps_survey.pk}).content.decode()

    assert "Partial" in page
    assert re.search(r'<span class="score-value">100</span>', page)


def test_filter_by_survey(owner, nps_survey, rating_survey):
    respond(nps_survey, {"why": "nps survey answer"})
    respond(rating_survey, {"stars": 3})

    page = owner.get("/responses/", {"survey": rating_survey.pk}).content.decode()

    assert "1 response" in page
    assert "nps survey answer" not in page
    assert "How useful were the docs?" in page


def test_filter_by_segment_uses_current_membership(owner, workspace, nps_survey):
    enterprise = SegmentFactory(
        workspace=workspace,
        rules=plan_is("ent"),
    )
    respond(nps_survey, {"why": "from enterprise"}, traits={"plan": "ent"})
    respond(nps_survey, {"why": "from free"}, traits={"plan": "free"})

    page = owner.get("/responses/", {"segment": enterprise.pk}).content.decode()

    assert "from enterprise" in page and "from free" not in page


def test_filter_by_date_range_includes_the_whole_end_day(owner, nps_survey):
    respond(nps_survey, {"why": "early"}, at=JUNE_1)
    respond(nps_survey, {"why": "middle"}, at=JUNE_10)
    respond(nps_survey, {"why": "late"}, at=JUNE_20)

    page = owner.get("/responses/", {"start": "2026-06-02", "end": "2026-06-10"}).content.decode()

    assert "middle" in page
    assert "early" not in page and "late" not in page


def test_filters_return_an_htmx_fragment(owner, nps_survey):
    respond(nps_survey, {"nps": 9})

    response = owner.get("/responses/", {"survey": nps_survey.pk}, headers=HTMX)

    page = response.content.decode()
    assert "<html" not in page and page.lstrip().startswith('<div id="results">')
    assert "1 response" in page
    assert "HX-Request" in response["Vary"]


def test_the_export_link_keeps_the_filters(owner, nps_survey):
    page = owner.get("/responses/", {"survey": nps_survey.pk, "page": "1"}).content.decode()

    assert f'href="/responses/export.csv?survey={nps_survey.pk}"' in page


def test_pages_link_with_the_filters_kept(owner, nps_survey):
    for _ in range(26):
        respond(nps_survey, {"nps": 9})

    response = owner.get("/responses/", {"survey": nps_survey.pk})

    page, older = response.content.decode(), response.context["page"].older
    assert f'href="?survey={nps_survey.pk}&amp;after={older}"' in page
    assert f'hx-get="?survey={nps_survey.pk}&amp;after={older}"' in page


def test_invalid_filters_show_errors_and_list_nothing(owner, other_workspace, nps_survey):
    respond(nps_survey, {"why": "visible otherwise"})
    foreign = SurveyFactory(workspace=other_workspace)

    response = owner.get("/responses/", {"survey": foreign.pk, "end": "not a date"})

    page = response.content.decode()
    assert response.status_code == 200
    assert "Select a valid choice." in page and "Enter a valid date." in page
    assert "visible otherwise" not in page


def test_an_end_before_the_start_is_refused(owner, nps_survey):
    page = owner.get("/responses/", {"start": "2026-06-10", "end": "2026-06-01"}).content.decode()

    assert "Must not be before the start date." in page


def test_viewer_reads_responses(viewer, nps_survey):
    respond(nps_survey, {"why": "viewer can read this"})

    response = viewer.get("/responses/")

    assert response.status_code == 200
    assert "viewer can read this" in response.content.decode()


def test_outsider_sees_none_of_our_responses(outsider, nps_survey):
    respond(nps_survey, {"why": "our secret"})

    page = outsider.get("/responses/").content.decode()

    assert "our secret" not in page and "Quarterly NPS" not in page
    assert "0 responses" in page


def test_anonymous_is_sent_to_login(client):
    for path in ("/responses/", "/responses/export.csv"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


# CSV export -----------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="responses-')
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_csv_has_one_column_per_question_and_one_row_per_response(owner, nps_survey):
    first = respond(nps_survey, {"nps": 9, "why": "Speed", "uses": ["A", "B"]}, user_id="u-1")
    respond(nps_survey, {"nps": 4}, completed=False, at=JUNE_20, user_id="u-2")

    rows = read_csv(owner.get("/responses/export.csv"))

    assert rows[0] == [
        "response_id",
        "survey_id",
        "survey",
        "user_id",
        "email",
        "created_at",
        "completed",
        "completed_at",
        "nps",
        "why",
        "uses",
        "other_answers",
        "extra",
    ]
    assert rows[1] == [
        str(first.pk),
        str(nps_survey.pk),
        "Quarterly NPS",
        "u-1",
        "u-1@example.com",
        "2026-06-10T23:30:00Z",
        "true",
        "2026-06-10T23:30:00Z",
        "9",
        "Speed",
        "A; B",
        "",
        "",
    ]
    assert rows[2][3] == "u-2" and rows[2][6] == "false" and rows[2][7] == ""
    assert rows[2][8:] == ["4", "", "", "", ""]
    assert len(rows) == 3


def test_csv_applies_the_same_filters(owner, nps_survey, rating_survey):
    respond(nps_survey, {"nps": 9}, at=JUNE_1)
    respond(nps_survey, {"nps": 7}, at=JUNE_20)
    respond(rating_survey, {"stars": 2}, at=JUNE_20)

    rows = read_csv(
        owner.get("/responses/export.csv", {"survey": nps_survey.pk, "start": "2026-06-15"})
    )

    assert len(rows) == 2
    assert rows[1][1] == str(nps_survey.pk) and rows[1][8] == "7"
    assert "stars" not in rows[0]


def test_csv_keeps_answers_to_removed_questions(owner, nps_survey):
    respond(nps_survey, {"nps": 9, "why": "Kept"})
    nps_survey.questions.filter(key="why").delete()

    rows = read_csv(owner.get("/responses/export.csv"))

    assert "why" not in rows[0]
    assert rows[1][-2] == '{"why": "Kept"}'


def test_csv_neutralises_formulas_typed_by_end_users(owner, nps_survey):
    respond(nps_survey, {"why": '=HYPERLINK("http://evil.test")'}, user_id="+danger")

    rows = read_csv(owner.get("/responses/export.csv"))

    assert rows[1][3] == "'+danger"
    assert rows[1][9] == '\'=HYPERLINK("http://evil.test")'


def test_csv_with_invalid_filters_is_refused(owner, other_workspace):
    foreign = SurveyFactory(workspace=other_workspace)

    response = owner.get("/responses/export.csv", {"survey": foreign.pk})

    assert response.status_code == 400


def test_outsider_exports_none_of_our_responses(outsider, nps_survey):
    respond(nps_survey, {"nps": 9})

    rows = read_csv(outsider.get("/responses/export.csv"))

    assert len(rows) == 1


def test_viewer_may_export(viewer, nps_survey):
    respond(nps_survey, {"nps": 9})

    assert len(read_csv(viewer.get("/responses/export.csv"))) == 2

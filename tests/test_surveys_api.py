"""REST API for surveys and their eligibility (SPEC §5.2), and the targeting settings (§4)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from refiner.errors import Invalid
from surveys.models import Question, Survey
from targeting.models import Targeting
from targeting.services import audience_estimate, clean_targeting
from tests.clients import ApiClient, fields_of
from tests.factories import (
    NPS_QUESTION,
    ContactFactory,
    EventFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import plan

pytestmark = pytest.mark.django_db

QUESTIONS = [
    NPS_QUESTION,
    {"key": "plan", "type": "single_choice", "text": "Your plan?", "choices": ["Free", "Pro"]},
]


def test_it_creates_a_survey_with_questions_and_targeting(api, workspace):
    power = SegmentFactory(workspace=workspace)
    response = api.post(
        "/api/v1/surveys",
        {
            "name": "NPS",
            "status": "live",
            "questions": QUESTIONS,
            "targeting": {
                "audience": "segments",
                "segments": [power.pk],
                "trigger": "event",
                "trigger_event": "report_exported",
                "allowed_pages": [{"match": "starts_with", "value": "/app"}],
                "sample_percent": 50,
                "starts_at": "2026-07-01",
                "priority": 3,
            },
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    survey = Survey.objects.get(workspace=workspace)
    assert body["id"] == survey.pk and body["status"] == "live"
    assert body["questions"] == QUESTIONS
    targeting = body["targeting"]
    assert targeting["segments"] == [power.pk] and targeting["excluded_segments"] == []
    assert targeting["trigger_event"] == "report_exported"
    assert targeting["starts_at"] == "2026-07-01T00:00:00Z" and targeting["ends_at"] is None
    assert targeting["sample_percent"] == 50 and targeting["frequency"] == "once"
    assert list(survey.targeting.segments.all()) == [power]
    assert api.get(f"/api/v1/surveys/{survey.pk}").json() == body
    assert api.get("/api/v1/surveys").json()["results"] == [body]


def test_a_new_survey_is_a_draft_for_everyone(api, workspace):
    response = api.post("/api/v1/surveys", {"name": "Quick"})
    assert response.status_code == 201
    assert response.json()["status"] == "draft"
    assert response.json()["targeting"]["audience"] == "everyone"
    assert Targeting.objects.filter(survey__workspace=workspace).count() == 1


def test_put_changes_only_what_it_names(api, workspace):
    survey = SurveyFactory(workspace=workspace, targeting={"priority": 4, "sample_percent": 20})
    response = api.put(
        f"/api/v1/surveys/{survey.pk}",
        {"name": "Renamed", "targeting": {"frequency": "recurring", "recurring_days": 90}},
    )
    assert response.status_code == 200, response.content
    targeting = response.json()["targeting"]
    assert response.json()["name"] == "Renamed" and response.json()["status"] == "live"
    assert (targeting["frequency"], targeting["recurring_days"]) == ("recurring", 90)
    assert (targeting["priority"], targeting["sample_percent"]) == (4, 20)
    assert [q["key"] for q in response.json()["questions"]] == ["nps"]


def test_put_replaces_questions_and_keeps_rows_by_key(api, workspace):
    survey = SurveyFactory(workspace=workspace)
    kept = survey.questions.get()
    response = api.put(
        f"/api/v1/surveys/{survey.pk}",
        {"questions": [QUESTIONS[1], {**QUESTIONS[0], "text": "Recommend us?"}]},
    )
    assert response.status_code == 200
    assert [q["key"] for q in response.json()["questions"]] == ["plan", "nps"]
    kept.refresh_from_db()
    assert kept.text == "Recommend us?" and kept.position == 1


def test_it_deletes_a_survey(api, workspace):
    survey = SurveyFactory(workspace=workspace)
    assert api.delete(f"/api/v1/surveys/{survey.pk}").status_code == 204
    assert not Survey.objects.exists()


def test_a_survey_named_by_a_segment_cannot_be_deleted(api, workspace):
    survey = SurveyFactory(workspace=workspace)
    SegmentFactory(
        workspace=workspace,
        name="Promoters",
        rules={
            "type": "group",
            "match": "all",
            "conditions": [
                {
                    "type": "answer",
                    "survey": survey.pk,
                    "question": "nps",
                    "operator": "greater_than",
                    "value": 8,
                }
            ],
        },  # fmt: skip
    )
    response = api.delete(f"/api/v1/surveys/{survey.pk}")
    assert response.status_code == 409
    assert "Promoters" in response.json()["error"]["message"]
    assert Survey.objects.filter(pk=survey.pk).exists()


def test_the_outsider_sees_no_survey(api, outsider_api, workspace):
    survey = SurveyFactory(workspace=workspace)
    assert outsider_api.get("/api/v1/surveys").json()["results"] == []
    assert outsider_api.get(f"/api/v1/surveys/{survey.pk}").status_code == 404
    assert outsider_api.put(f"/api/v1/surveys/{survey.pk}", {"name": "x"}).status_code == 404
    assert outsider_api.delete(f"/api/v1/surveys/{survey.pk}").status_code == 404
    response = outsider_api.get(f"/api/v1/surveys/{survey.pk}/eligibility/u-1")
    assert response.status_code == 404
    survey.refresh_from_db()
    assert survey.name != "x"


def test_it_needs_the_secret_key(workspace):
    assert ApiClient(None).get("/api/v1/surveys").status_code == 401
    assert ApiClient(workspace.widget_key).get("/api/v1/surveys").status_code == 401


def test_another_workspaces_segment_cannot_be_targeted(api, workspace, other_workspace):
    foreign = SegmentFactory(workspace=other_workspace)
    mine = SegmentFactory(workspace=workspace)
    response = api.post(
        "/api/v1/surveys",
        {
            "name": "x",
            "targeting": {
                "audience": "segments",
                "segments": [mine.pk],
                "excluded_segments": [foreign.pk],
            },
        },  # fmt: skip
    )
    assert "targeting.excluded_segments" in fields_of(response)
    assert not Survey.objects.exists()
    survey = SurveyFactory(workspace=workspace)
    response = api.put(
        f"/api/v1/surveys/{survey.pk}",
        {"targeting": {"audience": "segments", "segments": [foreign.pk]}},
    )
    assert "targeting.segments" in fields_of(response)
    assert not survey.targeting.segments.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"questions": [QUESTIONS[0], {"key": "c", "type": "single_choice", "text": "?"}]},
         "questions[1].choices"),
        ({"questions": [QUESTIONS[0], QUESTIONS[0]]}, "questions[1].key"),
        ({"questions": [{"key": "x", "type": "slider", "text": "?"}]}, "questions[0].type"),
        ({"questions": [{"key": "", "type": "nps", "text": "?"}]}, "questions[0].key"),
        ({"questions": [{"key": "x", "type": "nps", "text": ""}]}, "questions[0].text"),
        ({"questions": [{"key": "x", "type": "nps", "text": "?", "choices": ["a"]}]},
         "questions[0].choices"),
        ({"questions": [{"key": "x", "type": "multiple_choice", "text": "?",
                         "choices": ["a", "a"]}]}, "questions[0].choices"),
        ({"questions": "nps"}, "questions"),
        ({"questions": [{"key": ["x"], "type": ["nps"], "text": "?"}]}, "questions[0].type"),
        ({"questions": [{"key": {"x": 1}, "type": "nps", "text": "?"}]}, "questions[0].key"),
        ({"questions": [{"key": "x", "type": "single_choice", "text": "?",
                         "choices": [["a"]]}]}, "questions[0].choices"),
        ({"targeting": {"trigger": ["event"], "allowed_pages": [{"match": ["x"],
                        "value": "/"}]}}, "targeting.allowed_pages[0].match"),
        ({"status": "live", "questions": []}, "questions"),
        ({"status": "running"}, "status"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"targeting": []}, "targeting"),
        ({"targeting": {"audience": "segments"}}, "targeting.segments"),
        ({"targeting": {"audience": "vips"}}, "targeting.audience"),
        ({"targeting": {"segment_match": "most"}}, "targeting.segment_match"),
        ({"targeting": {"trigger": "event"}}, "targeting.trigger_event"),
        ({"targeting": {"trigger": "hover"}}, "targeting.trigger"),
        ({"targeting": {"allowed_pages": [{"match": "regex", "value": ".*"}]}},
         "targeting.allowed_pages[0].match"),
        ({"targeting": {"excluded_pages": [{"match": "equals", "value": ""}]}},
         "targeting.excluded_pages[0].value"),
        ({"targeting": {"allowed_pages": ["/app"]}}, "targeting.allowed_pages[0]"),
        ({"targeting": {"sample_percent": 101}}, "targeting.sample_percent"),
        ({"targeting": {"sample_percent": "50"}}, "targeting.sample_percent"),
        ({"targeting": {"frequency": "daily"}}, "targeting.frequency"),
        ({"targeting": {"recurring_days": 0}}, "targeting.recurring_days"),
        ({"targeting": {"delay_seconds": -1}}, "targeting.delay_seconds"),
        ({"targeting": {"max_responses": 0}}, "targeting.max_responses"),
        ({"targeting": {"max_displays_per_contact": "2"}}, "targeting.max_displays_per_contact"),
        ({"targeting": {"starts_at": "next week"}}, "targeting.starts_at"),
        ({"targeting": {"starts_at": "2026-02-01", "ends_at": "2026-01-01"}},
         "targeting.ends_at"),
        ({"targeting": {"starts_at": "2026-01-01", "ends_at": "2026-01-01"}},
         "targeting.ends_at"),
        ({"targeting": {"priority": 1.5}}, "targeting.priority"),
        ({"targeting": {"ignore_recontact": "yes"}}, "targeting.ignore_recontact"),
        ({"targeting": {"segments": ["x"]}}, "targeting.segments"),
        ({"targeting": {"colour": "red"}}, "targeting.colour"),
    ],
)  # fmt: skip
def test_bad_surveys_are_refused_and_write_nothing(api, body, field):
    response = api.post("/api/v1/surveys", {"name": "Survey", **body})
    assert field in fields_of(response)
    assert response.json()["error"]["code"] == "invalid"
    assert not Survey.objects.exists() and not Question.objects.exists()


def test_a_segment_cannot_be_both_targeted_and_excluded(workspace):
    segment = SegmentFactory(workspace=workspace)
    data = {"audience": "segments", "segments": [segment.pk], "excluded_segments": [segment.pk]}
    with pytest.raises(Invalid) as raised:
        clean_targeting(data, workspace=workspace)
    assert "excluded_segments" in raised.value.fields


def test_clean_targeting_fills_defaults(workspace):
    cleaned = clean_targeting({}, workspace=workspace)
    assert cleaned["audience"] == "everyone" and cleaned["sample_percent"] == 100
    assert cleaned["segments"] == [] and cleaned["starts_at"] is None


# Eligibility explained ------------------------------------------------------------------------


def test_it_explains_eligibility(api, workspace):
    survey = SurveyFactory(
        workspace=workspace, targeting={"trigger": "event", "trigger_event": "report_exported"}
    )
    ContactFactory(workspace=workspace, user_id="u-1")
    path = f"/api/v1/surveys/{survey.pk}/eligibility/u-1"
    body = api.get(path).json()
    assert body["eligible"] is False
    assert [r["code"] for r in body["reasons"]] == ["trigger_mismatch"]
    assert body["reasons"][0]["message"]
    assert api.get(path, {"event": "report_exported"}).json() == {"eligible": True, "reasons": []}


def test_it_explains_an_unknown_contact_and_a_paused_survey(api, workspace):
    survey = SurveyFactory(workspace=workspace, status="paused")
    body = api.get(f"/api/v1/surveys/{survey.pk}/eligibility/nobody").json()
    assert body["reasons"][0]["code"] == "unknown_contact"
    ContactFactory(workspace=workspace, user_id="u/1")
    body = api.get(f"/api/v1/surveys/{survey.pk}/eligibility/u/1").json()
    assert [r["code"] for r in body["reasons"]] == ["not_live"]


def test_it_explains_pages(api, workspace):
    survey = SurveyFactory(
        workspace=workspace, targeting={"allowed_pages": [{"match": "contains", "value": "/app"}]}
    )
    ContactFactory(workspace=workspace, user_id="u-1")
    path = f"/api/v1/surveys/{survey.pk}/eligibility/u-1"
    assert api.get(path, {"url": "https://x.com/app"}).json()["eligible"] is True
    body = api.get(path, {"url": "https://x.com/home"}).json()
    assert [r["code"] for r in body["reasons"]] == ["page_mismatch"]


def test_an_unknown_survey_has_no_eligibility(api, workspace):
    assert api.get("/api/v1/surveys/999999/eligibility/u-1").status_code == 404


# Audience estimate -----------------------------------------------------------------------------


def test_the_audience_estimate_counts_in_sql(workspace, other_workspace):
    now = timezone.now()
    exported = {"type": "event", "event": "export", "operator": "at_least", "value": 1}
    on_pro = plan("pro")
    power = SegmentFactory(
        workspace=workspace, rules={"type": "group", "match": "all", "conditions": [exported]}
    )
    pro = SegmentFactory(
        workspace=workspace, rules={"type": "group", "match": "all", "conditions": [on_pro]}
    )
    both = ContactFactory(workspace=workspace, traits={"plan": "pro"})
    exporter = ContactFactory(workspace=workspace, traits={"plan": "free"})
    ContactFactory(workspace=workspace, traits={"plan": "pro"})
    ContactFactory(workspace=workspace)
    ContactFactory(workspace=other_workspace, traits={"plan": "pro"})
    for contact in (both, exporter):
        EventFactory(contact=contact, name="export", occurred_at=now - timedelta(days=1))

    def estimate(**kwargs):
        base = {"audience": "segments", "segments": [], "segment_match": "any",
                "excluded_segments": [], "now": now}  # fmt: skip
        return audience_estimate(workspace.pk, **{**base, **kwargs})

    assert estimate(audience="everyone") == 4
    assert estimate(audience="everyone", excluded_segments=[pro.pk]) == 2
    assert estimate(segments=[power.pk, pro.pk]) == 3
    assert estimate(segments=[power.pk, pro.pk], segment_match="all") == 1
    assert estimate(segments=[power.pk], excluded_segments=[pro.pk]) == 1
    assert estimate(segments=[]) == 0

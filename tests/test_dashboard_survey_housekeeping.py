"""Dashboard: renaming, duplicating and deleting surveys, and the small things around them
(the link to a survey's responses, answers shown in words, plain error texts, the favicon)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from surveys.forms import plain_words
from surveys.models import Question, Response, Survey
from targeting.models import Targeting
from tests.clients import signed_in
from tests.factories import (
    NPS_QUESTION,
    ContactFactory,
    SegmentFactory,
    SurveyFactory,
    record_response,
)

HTMX = {"HX-Request": "true"}


@pytest.fixture
def survey(workspace) -> Survey:
    survey = SurveyFactory(
        workspace=workspace,
        name="Onboarding NPS",
        status=Survey.LIVE,
        questions=[
            NPS_QUESTION,
            {"key": "plan", "type": "single_choice", "text": "Plan?", "choices": ["Free", "Pro"]},
        ],
        targeting={"trigger": Targeting.EVENT, "trigger_event": "signed_up", "priority": 3},
    )
    return survey


def url(survey: Survey, action: str) -> str:
    return f"/surveys/{survey.pk}/{action}/"


def respond(survey: Survey, answers: dict) -> Response:
    contact = ContactFactory(workspace=survey.workspace)
    return record_response(survey, contact, answers, timezone.now(), completed=True)


def naming(survey_pk: int) -> dict:
    """A rule that names the survey, as segment rules may (SPEC §3.4)."""
    condition = {"type": "survey", "survey": survey_pk, "operator": "completed"}
    return {"type": "group", "match": "all", "conditions": [condition]}


# Rename ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_owners_and_editors_rename_a_survey(workspace, survey, role):
    client = signed_in(workspace, role)

    response = client.post(url(survey, "rename"), {"name": "  Welcome NPS  "})

    assert response.status_code == 302 and response["Location"] == f"/surveys/{survey.pk}/"
    survey.refresh_from_db()
    assert survey.name == "Welcome NPS" and survey.status == Survey.LIVE


def test_rename_offers_the_current_name_in_the_editor(owner, survey):
    page = owner.get(f"/surveys/{survey.pk}/").content.decode()

    assert f'action="/surveys/{survey.pk}/rename/"' in page
    assert 'name="name" maxlength="200" value="Onboarding NPS"' in page


def test_a_blank_name_is_refused_in_words_and_changes_nothing(owner, survey):
    response = owner.post(url(survey, "rename"), {"name": "   "}, follow=True)

    assert "Must be a name of 1 to 200 characters." in response.content.decode()
    survey.refresh_from_db()
    assert survey.name == "Onboarding NPS"


# Duplicate ------------------------------------------------------------------


def test_duplicate_copies_questions_and_targeting_as_a_draft(owner, workspace, survey):
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise")
    survey.targeting.audience = Targeting.SEGMENTS
    survey.targeting.save()
    survey.targeting.segments.set([enterprise])
    respond(survey, {"nps": 9})

    response = owner.post(url(survey, "duplicate"))

    copy = Survey.objects.exclude(pk=survey.pk).get(workspace=workspace)
    assert response.status_code == 302 and response["Location"] == f"/surveys/{copy.pk}/"
    assert copy.name == "Onboarding NPS (copy)" and copy.status == Survey.DRAFT
    assert [q.to_dict() for q in copy.questions.all()] == [
        q.to_dict() for q in survey.questions.all()
    ]
    assert copy.targeting.to_dict() == survey.targeting.to_dict()
    assert copy.targeting.to_dict()["segments"] == [enterprise.pk]
    assert not copy.responses.exists(), "answers belong to the original"
    assert Survey.objects.get(pk=survey.pk).status == Survey.LIVE


def test_the_copy_of_a_longest_name_still_fits(owner, workspace, survey):
    survey.name = "N" * 200
    survey.save()

    owner.post(url(survey, "duplicate"))

    copy = Survey.objects.exclude(pk=survey.pk).get(workspace=workspace)
    assert len(copy.name) == 200 and copy.name.endswith("N (copy)")


# Delete ---------------------------------------------------------------------


def test_delete_asks_first_and_says_what_goes(owner, survey):
    respond(survey, {"nps": 9})

    response = owner.get(url(survey, "delete"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Delete “Onboarding NPS”?" in page and "1 response" in page
    assert f'method="post" action="/surveys/{survey.pk}/delete/"' in page
    assert Survey.objects.filter(pk=survey.pk).exists()


def test_delete_removes_the_survey_with_its_questions_and_responses(owner, survey):
    respond(survey, {"nps": 9})

    response = owner.post(url(survey, "delete"))

    assert response.status_code == 302 and response["Location"] == "/surveys/"
    assert not Survey.objects.filter(pk=survey.pk).exists()
    assert not Question.objects.filter(survey_id=survey.pk).exists()
    assert not Response.objects.filter(survey_id=survey.pk).exists()


def test_delete_is_refused_while_a_segment_rule_names_the_survey(owner, workspace, survey):
    SegmentFactory(workspace=workspace, name="Answered onboarding", rules=naming(survey.pk))
    SegmentFactory(workspace=workspace, name="Unrelated")

    asked = owner.get(url(survey, "delete")).content.decode()
    response = owner.post(url(survey, "delete"))

    page = response.content.decode()
    assert response.status_code == 409
    assert "Answered onboarding" in page and "Unrelated" not in page
    assert "cannot be deleted" in page and "Answered onboarding" in asked
    assert 'value="Delete' not in asked and "Delete the survey" not in asked
    assert Survey.objects.filter(pk=survey.pk).exists()


def test_delete_uses_the_same_in_use_rule_as_the_rest_api(api, owner, workspace, survey):
    SegmentFactory(workspace=workspace, name="Answered onboarding", rules=naming(survey.pk))

    assert api.delete(f"/api/v1/surveys/{survey.pk}").status_code == 409
    assert owner.post(url(survey, "delete")).status_code == 409


def test_delete_is_get_or_post_only(owner, survey):
    assert owner.put(url(survey, "delete")).status_code == 405
    assert Survey.objects.filter(pk=survey.pk).exists()


# Who may ---------------------------------------------------------------------


@pytest.mark.parametrize("action", ["rename", "duplicate", "delete"])
def test_viewer_cannot_rename_duplicate_or_delete(viewer, workspace, survey, action):
    response = viewer.post(url(survey, action), {"name": "Hacked"})

    assert response.status_code == 403
    assert list(Survey.objects.filter(workspace=workspace).values_list("name", flat=True)) == [
        "Onboarding NPS"
    ]


def test_viewer_is_not_offered_the_buttons(viewer, survey):
    page = viewer.get(f"/surveys/{survey.pk}/").content.decode()

    assert "/rename/" not in page and "/duplicate/" not in page and "/delete/" not in page


@pytest.mark.parametrize("action", ["rename", "duplicate", "delete"])
def test_outsider_gets_404_and_changes_nothing(outsider, workspace, survey, action):
    assert outsider.get(url(survey, action)).status_code in (404, 405)
    assert outsider.post(url(survey, action), {"name": "Hacked"}).status_code == 404
    assert Survey.objects.get(pk=survey.pk).name == "Onboarding NPS"
    assert Survey.objects.count() == 1


# Around the editor -----------------------------------------------------------


def test_the_editor_links_to_the_survey_responses_and_results(owner, survey):
    page = owner.get(f"/surveys/{survey.pk}/").content.decode()

    assert f'href="/responses/?survey={survey.pk}"' in page
    assert f'href="/surveys/{survey.pk}/results/"' in page


def test_an_htmx_change_clears_the_stale_banner(owner, workspace):
    """Publishing an empty survey leaves a banner; the question added next removes it."""
    empty = SurveyFactory(workspace=workspace, status=Survey.DRAFT, questions=[])
    owner.post(url(empty, "status"), {"status": "live"})
    shown = owner.get(f"/surveys/{empty.pk}/").content.decode()
    assert "A live survey needs at least one question." in shown

    response = owner.post(
        f"/surveys/{empty.pk}/questions/", {"type": "nps", "text": "Recommend us?"}, headers=HTMX
    )

    fragment = response.content.decode()
    assert 'hx-swap-oob="delete:main &gt; ul.messages' in fragment or (
        'hx-swap-oob="delete:main > ul.messages' in fragment
    )
    assert 'class="messages-marker"' in fragment


def test_boolean_answers_show_as_yes_or_no(owner, survey):
    respond(survey, {"nps": 9, "consent": True, "newsletter": False})

    page = owner.get("/responses/").content.decode()

    assert re.search(r"<dt>consent</dt><dd>Yes</dd>", page)
    assert re.search(r"<dt>newsletter</dt><dd>No</dd>", page)
    assert "True" not in page and "False" not in page


@pytest.mark.parametrize(
    "api_message, words",
    [
        ("Must be after starts_at.", "Must be after the start."),
        (
            "Must be an ISO-8601 date or datetime, or null.",
            "Must be a date, or a date and time, or left empty.",
        ),
        (
            "Must be an ISO-8601 date or datetime (2024-01-31T09:00:00Z).",
            "Must be a date, or a date and time.",
        ),
        ("conditions[0].value is missing", "the value of condition 1 is missing"),
        ("questions[2]: Must be an object", "question 3: Must be an object"),
    ],
)
def test_dashboard_errors_are_said_in_plain_words(api_message, words):
    assert plain_words(api_message) == words


def test_the_targeting_tab_says_dates_in_words_but_the_api_keeps_field_paths(owner, api, survey):
    form = {"audience": "everyone", "trigger": "page_load", "frequency": "once",
            "delay_seconds": "0", "sample_percent": "100", "recurring_days": "30",
            "priority": "0", "starts_at": "2026-07-01T09:00", "ends_at": "2026-06-01T09:00",
            "action": "save"}  # fmt: skip

    page = owner.post(f"/surveys/{survey.pk}/targeting/", form, headers=HTMX).content.decode()
    refused = api.put(
        f"/api/v1/surveys/{survey.pk}",
        {"targeting": {"starts_at": "2026-07-01T09:00:00Z", "ends_at": "2026-06-01T09:00:00Z"}},
    )

    assert "Must be after the start." in page and "Must be after starts_at." not in page
    assert refused.json()["error"]["fields"]["targeting.ends_at"] == "Must be after starts_at."


def test_every_page_names_the_favicon(owner):
    page = owner.get("/surveys/").content.decode()

    assert re.search(r'<link rel="icon" href="/static/refiner/favicon\.svg"', page)
    icon = Path(settings.BASE_DIR) / "static" / "refiner" / "favicon.svg"
    assert icon.read_text().startswith("<svg")

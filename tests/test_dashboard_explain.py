"""The contact page explains, in plain words, which surveys the contact would see and why not.

Also the contact list's history: a fragment must never be what Back shows.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.clients import Widget
from tests.factories import (
    ContactFactory,
    DisplayFactory,
    ManualSegmentFactory,
    MembershipFactory,
    SurveyFactory,
    target,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def ada(workspace):
    return ContactFactory(workspace=workspace, user_id="ada", name="Ada Lovelace")


def page_text(client, user_id: str = "ada", **what_if) -> str:
    response = client.get(f"/contacts/{user_id}/", what_if)
    assert response.status_code == 200, response.content
    return response.content.decode()


def explanation_of(client, survey, **what_if) -> str:
    """The text of one survey's explanation on the contact page."""
    html = page_text(client, **what_if)
    start = html.index(f'id="explain-{survey.pk}"')
    return html[start : html.index("</article>", start)]


# The contact list's history -----------------------------------------------------------------


# The pages whose templates push URLs with htmx (`hx-push-url`): Back loads those URLs.
PUSHING_PAGES = ["/contacts/", "/surveys/", "/responses/"]


@pytest.mark.parametrize("path", PUSHING_PAGES)
def test_a_page_that_pushes_urls_says_it_varies_on_htmx(owner, ada, path):
    for headers in ({}, HX):
        response = owner.get(path, headers=headers)
        assert response.status_code == 200
        assert "HX-Request" in response.headers.get("Vary", "")


def test_every_page_that_pushes_urls_is_listed():
    templates = Path(settings.BASE_DIR) / "templates"
    pushing = {
        str(path.relative_to(templates))
        for path in templates.rglob("*.html")
        if "hx-push-url" in path.read_text()
    }
    # The delivery log needs an endpoint: tests/test_dashboard_webhooks.py checks its Vary.
    # The keyset pages' links, included by the contact list and the responses alone.
    assert pushing == {
        "refiner/_keyset_nav.html",
        "segments/contact_list.html",
        "surveys/list.html",
        "responses/list.html",
        "webhooks/deliveries.html",
    }, "A new page pushes URLs: add it to PUSHING_PAGES."


def test_the_contact_list_fragment_and_page_differ(owner, ada):
    fragment = owner.get("/contacts/", {"q": "ada"}, headers=HX).content.decode()
    whole = owner.get("/contacts/", {"q": "ada"}).content.decode()
    assert "mainnav" not in fragment and "Ada" in fragment
    assert "mainnav" in whole and "dashboard.css" in whole


def test_a_history_restore_gets_the_whole_contact_list(owner, ada):
    # htmx asks the server when its own history cache misses, and puts what it gets
    # in place of the whole body: a fragment would lose the navigation.
    headers = {**HX, "HX-History-Restore-Request": "true"}
    html = owner.get("/contacts/", {"q": "ada", "page": "1"}, headers=headers).content.decode()
    assert "mainnav" in html and "Ada" in html


# Event-triggered surveys -----------------------------------------------------------------------


@pytest.fixture
def on_export(workspace):
    """A survey shown when the contact exports a report."""
    return SurveyFactory(
        workspace=workspace, targeting={"trigger": "event", "trigger_event": "report_exported"}
    )


def test_an_event_survey_shows_on_its_event_when_no_event_is_asked(owner, workspace, ada):
    survey = SurveyFactory(
        workspace=workspace, name="Export feedback",
        targeting={"trigger": "event", "trigger_event": "report_exported"},
    )  # fmt: skip
    text = explanation_of(owner, survey)
    assert "Would show on report_exported" in text
    assert "Shows when “report_exported” is tracked" in text
    assert "Would not" not in text


def test_the_what_if_event_makes_it_show_now(owner, on_export, ada):
    text = explanation_of(owner, on_export, event="report_exported")
    assert "Would show now" in text
    assert "Shows when" not in text


def test_another_event_says_which_event_it_needs(owner, on_export, ada):
    text = explanation_of(owner, on_export, event="signed_up")
    assert "Would not show" in text
    assert "It shows when “report_exported” is tracked, not “signed_up”." in text


def test_the_what_if_form_keeps_what_was_asked_in_a_shareable_url(owner, workspace, ada):
    html = page_text(owner, event="signed_up", url="/pricing")
    assert 'method="get"' in html
    assert 'name="event" value="signed_up"' in html
    assert 'name="url" value="/pricing"' in html


def test_a_page_survey_checked_without_a_page_says_its_pages(owner, workspace, ada):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"allowed_pages": [{"match": "starts_with", "value": "/pricing"}]},
    )
    assert "Would show on its pages" in explanation_of(owner, survey)
    assert "Would show now" in explanation_of(owner, survey, url="/pricing/teams")
    text = explanation_of(owner, survey, url="/blog")
    assert "Would not show" in text
    assert "The page is not one of the survey’s pages." in text


def test_a_manual_survey_shows_when_asked_for(owner, workspace, ada):
    survey = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    text = explanation_of(owner, survey, event="signed_up")
    assert "Would show when asked for by id" in text
    assert "Shows only when the widget asks for it by id." in text


# Segments by name ----------------------------------------------------------------------------


def test_an_excluded_segment_is_named(owner, workspace, ada):
    staff = ManualSegmentFactory(workspace=workspace, name="Employees", members=[ada])
    survey = SurveyFactory(workspace=workspace)
    target(survey, excluded=[staff])
    text = explanation_of(owner, survey)
    assert "Would not show" in text
    assert "The contact is in the excluded segment “Employees”." in text
    assert f"segment {staff.pk}" not in text
    assert "in_excluded_segment" not in text


def test_a_segment_the_contact_misses_is_named_when_all_are_needed(owner, workspace, ada):
    paying = ManualSegmentFactory(workspace=workspace, name="Paying", members=[ada])
    admins = ManualSegmentFactory(workspace=workspace, name="Admins")
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[paying, admins], segment_match="all")
    text = explanation_of(owner, survey)
    assert "The contact is not in “Admins”, and the survey needs all of its segments." in text
    assert "none or not" not in text
    assert 'class="fit in"' in text and "Paying" in text
    assert 'class="fit out"' in text


def test_no_segment_of_any_is_named(owner, workspace, ada):
    survey = SurveyFactory(workspace=workspace)
    target(
        survey,
        segments=[
            ManualSegmentFactory(workspace=workspace, name="Trial"),
            ManualSegmentFactory(workspace=workspace, name="Beta"),
        ],
    )
    text = explanation_of(owner, survey)
    assert "The contact is in none of its segments: “Beta”, “Trial”." in text
    assert "not_in_audience" not in text


def test_a_contact_in_its_audience_sees_which_segments_match(owner, workspace, ada):
    paying = ManualSegmentFactory(workspace=workspace, name="Paying", members=[ada])
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[paying, ManualSegmentFactory(workspace=workspace, name="Admins")])
    text = explanation_of(owner, survey)
    assert "Would show now" in text
    assert "In “Paying”" in text and "Not in “Admins”" in text


# Recurring surveys -----------------------------------------------------------------------------


@pytest.fixture
def recurring(workspace):
    return SurveyFactory(
        workspace=workspace, targeting={"frequency": "recurring", "recurring_days": 30}
    )


def test_a_recurring_survey_says_when_it_may_show_again(owner, recurring, ada):
    answered = timezone.now() - timedelta(days=10)
    DisplayFactory(survey=recurring, contact=ada, shown_at=answered, completed_at=answered)
    text = explanation_of(owner, recurring)
    again = answered + timedelta(days=30)
    assert "Would not show" in text
    assert f"It recurs every 30 days; it may show again from {again:%b} {again.day}, " in text


def test_a_recurring_survey_past_its_wait_says_since_when(owner, recurring, ada):
    answered = timezone.now() - timedelta(days=40)
    DisplayFactory(survey=recurring, contact=ada, shown_at=answered, completed_at=answered)
    text = explanation_of(owner, recurring)
    again = answered + timedelta(days=30)
    assert "Would show now" in text
    assert f"it may show again since {again:%b} {again.day}, {again:%Y}." in text


def test_a_recurring_survey_never_answered_says_how_often_it_recurs(owner, recurring, ada):
    assert "Recurs 30 days after each answer or dismissal" in explanation_of(owner, recurring)


# Bad input and strangers -----------------------------------------------------------------------


def test_a_too_long_what_if_is_refused_and_explains_nothing_made_up(owner, workspace, ada):
    SurveyFactory(workspace=workspace)
    response = owner.get("/contacts/ada/", {"event": "x" * 201})
    assert response.status_code == 400
    assert "Ensure this value has at most 200 characters" in response.content.decode()


def test_another_workspaces_member_gets_404(client, workspace, other_workspace, ada):
    SurveyFactory(workspace=workspace)
    client.force_login(MembershipFactory(workspace=other_workspace).user)
    assert client.get("/contacts/ada/").status_code == 404
    assert client.get("/contacts/ada/", {"event": "signed_up"}).status_code == 404


# The API keeps its codes ----------------------------------------------------------------------


def test_the_api_keeps_the_codes_with_the_plain_messages(api, workspace, on_export, ada):
    staff = ManualSegmentFactory(workspace=workspace, name="Employees", members=[ada])
    target(on_export, excluded=[staff])
    body = api.get(f"/api/v1/surveys/{on_export.pk}/eligibility/ada").json()
    assert body["reasons"] == [
        {
            "code": "in_excluded_segment",
            "message": "The contact is in the excluded segment “Employees”.",
        },
        {
            "code": "trigger_mismatch",
            "message": "It shows when “report_exported” is tracked; no event was tracked.",
        },
    ]


def test_the_widget_does_not_learn_segment_names(workspace, ada):
    # The public key is in every page of the customer's product: segment names are theirs.
    staff = ManualSegmentFactory(workspace=workspace, name="Churn risk", members=[ada])
    survey = SurveyFactory(workspace=workspace)
    target(survey, excluded=[staff])
    response = Widget(workspace).post("displays", {"user_id": "ada", "survey": survey.pk})
    assert response.status_code == 409
    assert response.json()["error"]["reasons"][0]["code"] == "in_excluded_segment"
    assert "Churn risk" not in response.content.decode()
    message = response.json()["error"]["reasons"][0]["message"]
    assert message == f"The contact is in the excluded segment #{staff.pk}."

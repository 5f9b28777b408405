"""Refiner's snippet calls and anonymous visitors, in Chromium against the live server.

dismissForm, closeForm, addToResponse, stopPinging; the callbacks onBeforeShow,
onNavigation, onClose, onRequestResponse; once-per-session surveys; and a visitor
who answers before signing in, whose response is then the user's.
"""

import json
from urllib.parse import urlsplit

import pytest

from refiner.models import Membership
from segments.models import Contact
from surveys.models import Display, Response
from targeting.models import Targeting
from tests.browser.test_targeting_tab import sign_in
from tests.browser.test_widget import card
from tests.browser.urls import HOST_PAGES
from tests.factories import ContactFactory, MembershipFactory, SurveyFactory, WorkspaceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.browser.urls"),
]

CALLBACKS = ("onBeforeShow", "onShow", "onNavigation", "onRequestResponse", "onComplete",
             "onDismiss", "onClose", "onError")  # fmt: skip
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Customer product</title></head>
<body>
<h1>Customer product</h1>
<script>
  window.seen = {};
  window.veto = false;
  window._refiner = window._refiner || function () {
    (window._refinerQueue = window._refinerQueue || []).push(arguments);
  };
  %CALLBACKS%
  _refiner('setProject', %KEY%);
  %CALLS%
</script>
<script async src="%WIDGET%"></script>
</body></html>"""
TWO_QUESTIONS = [
    {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"},
    {"key": "why", "type": "text", "text": "Why?"},
]


@pytest.fixture(autouse=True)
def fresh_host_pages():
    HOST_PAGES.clear()


@pytest.fixture
def workspace(transactional_db):
    return WorkspaceFactory(name="Acme Analytics")


class Site:
    """A customer's page with the snippet; `calls` run after setProject."""

    def __init__(self, page, live_server):
        self.page = page
        self.widget_url = f"{live_server.url}/static/refiner/widget.js"
        self.origin = f"http://127.0.0.1:{urlsplit(live_server.url).port}"

    def serve(self, workspace, calls: str = "", name: str = "page") -> str:
        recorders = "\n  ".join(
            f"seen.{c} = []; _refiner('{c}', function (d) {{ seen.{c}.push(d); "
            + ("return !window.veto; " if c == "onBeforeShow" else "")
            + "});"
            for c in CALLBACKS
        )
        html = (
            PAGE.replace("%CALLBACKS%", recorders)
            .replace("%KEY%", json.dumps(workspace.widget_key))
            .replace("%CALLS%", calls)
            .replace("%WIDGET%", self.widget_url)
        )
        HOST_PAGES[name] = html
        return f"{self.origin}/host/{name}"

    def open(self, workspace, calls: str = "", name: str = "page") -> None:
        """Load the page and wait for its first eligibility check."""
        url = self.serve(workspace, calls, name)
        with self.page.expect_response(lambda r: r.url.endswith("/widget/eligibility")):
            self.page.goto(url)

    def seen(self, name: str) -> list:
        return self.page.evaluate(f"window.seen.{name}")

    def run(self, call: str) -> None:
        self.page.evaluate(f"_refiner({call})")


@pytest.fixture
def site(page, live_server):
    return Site(page, live_server)


def identify(user_id: str) -> str:
    return f"_refiner('identifyUser', {json.dumps({'id': user_id})});"


# Anonymous visitors ------------------------------------------------------------------------


def test_a_visitor_answers_then_signs_in_and_the_response_is_the_users(
    site, page, workspace, page_errors
):
    survey = SurveyFactory(workspace=workspace, targeting={"audience": "anyone"})
    site.open(workspace)  # no identifyUser: an anonymous visitor

    with page.expect_response(lambda r: r.url.endswith("/answers")):
        page.get_by_role("button", name="9 of 10").click()
    page.get_by_text("Thank you!").wait_for()
    anonymous_id = page.evaluate("localStorage.getItem('refiner.anonymous')")
    response = Response.objects.get(survey=survey)
    assert response.completed and response.contact.anonymous_id == anonymous_id
    assert len(anonymous_id) == 32

    with page.expect_response(lambda r: r.url.endswith("/widget/identify")) as identified:
        site.run("'identifyUser', {id: 'u-9', email: 'nine@example.com'}")
    assert json.loads(identified.value.request.post_data)["anonymous_id"] == anonymous_id

    response.refresh_from_db()
    assert response.contact.user_id == "u-9"
    assert Display.objects.get(survey=survey).contact.user_id == "u-9"
    page.wait_for_function("localStorage.getItem('refiner.anonymous') === null")
    assert page_errors == []


def test_a_visitor_sees_no_survey_for_signed_in_contacts_and_the_widget_stops_asking(
    site, page, workspace
):
    SurveyFactory(workspace=workspace)  # audience: identified contacts
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/widget/" in r.url else None)
    site.open(workspace)

    page.evaluate("history.pushState({}, '', '/host/elsewhere')")
    page.wait_for_timeout(400)

    assert card(page).count() == 0
    assert [u.rsplit("/", 1)[1] for u in asked] == ["eligibility"], "one check, then quiet"
    assert not Contact.all_contacts.exists()


# Callbacks ---------------------------------------------------------------------------------


def test_on_before_show_can_cancel_the_show(site, page, workspace):
    survey = SurveyFactory(workspace=workspace, name="Welcome")
    ContactFactory(workspace=workspace, user_id="u-1")
    url = site.serve(workspace, "window.veto = true;\n  " + identify("u-1"))
    with page.expect_response(lambda r: r.url.endswith("/widget/eligibility")):
        page.goto(url)
    page.wait_for_function("window.seen.onBeforeShow.length === 1")
    page.wait_for_timeout(300)

    assert site.seen("onBeforeShow") == [{"survey": survey.pk, "name": "Welcome"}]
    assert card(page).count() == 0
    assert not Display.objects.exists(), "a cancelled show records nothing"
    assert site.seen("onShow") == []


def test_navigation_request_response_and_extra_fields_go_with_the_answers(
    site, page, workspace, page_errors
):
    survey = SurveyFactory(workspace=workspace, questions=TWO_QUESTIONS)
    calls = identify("u-1") + "\n  _refiner('addToResponse', {plan: 'pro', seats: 12});"
    site.open(workspace, calls)
    card(page).wait_for()

    page.get_by_role("button", name="7 of 10").click()
    page.get_by_text("2 / 2").wait_for()
    site.run("'addToResponse', {plan: 'team', trial: true}")
    page.get_by_role("textbox").fill("Fast")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_function("window.seen.onComplete.length === 1")

    display = str(Display.objects.get(survey=survey).pk)
    assert site.seen("onNavigation") == [
        {"survey": survey.pk, "display": display, "step": 1, "done": False},
        {"survey": survey.pk, "display": display, "step": 2, "done": True},
    ]
    assert site.seen("onRequestResponse") == [
        {"survey": survey.pk, "display": display, "answers": {"nps": 7}, "completed": False,
         "extra": {"plan": "pro", "seats": 12}},
        {"survey": survey.pk, "display": display, "answers": {"why": "Fast"}, "completed": True,
         "extra": {"plan": "team", "trial": True}},
    ]  # fmt: skip
    response = Response.objects.get(survey=survey)
    assert response.answers == {"nps": 7, "why": "Fast"}
    assert response.extra == {"plan": "team", "trial": True}
    page.wait_for_function("window.seen.onClose.length === 1", timeout=8000)
    assert site.seen("onClose") == [{"survey": survey.pk, "display": display}]
    assert page_errors == []


def test_bad_extra_fields_are_reported_and_the_answer_is_not_saved(site, page, workspace):
    survey = SurveyFactory(workspace=workspace)
    site.open(workspace, identify("u-1") + "\n  _refiner('addToResponse', {nested: {a: 1}});")
    card(page).wait_for()

    page.get_by_role("button", name="7 of 10").click()
    page.wait_for_function("window.seen.onError.length === 1")

    assert site.seen("onError")[0]["code"] == "invalid"
    assert not Response.objects.filter(survey=survey).exists()


# dismissForm, closeForm, stopPinging -------------------------------------------------------


def test_dismiss_form_dismisses_the_survey_and_close_form_only_closes_it(site, page, workspace):
    first = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    second = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    site.open(workspace, identify("u-1"))

    site.run(f"'showForm', {first.pk}")
    card(page).wait_for()
    site.run("'dismissForm', 999999")  # another survey's id: nothing happens
    assert card(page).count() == 1
    with page.expect_response(lambda r: r.url.endswith("/dismiss")):
        site.run(f"'dismissForm', {first.pk}")
    assert card(page).count() == 0
    assert Display.objects.get(survey=first).dismissed_at is not None

    site.run(f"'showForm', {second.pk}")
    card(page).wait_for()
    site.run(f"'closeForm', '{second.pk}'")
    assert card(page).count() == 0
    page.wait_for_timeout(300)
    assert Display.objects.get(survey=second).dismissed_at is None, "closed, not dismissed"
    displays = {s.pk: str(Display.objects.get(survey=s).pk) for s in (first, second)}
    assert site.seen("onDismiss") == [{"survey": first.pk, "display": displays[first.pk]}]
    assert site.seen("onClose") == [
        {"survey": first.pk, "display": displays[first.pk]},
        {"survey": second.pk, "display": displays[second.pk]},
    ]


def test_stop_pinging_stops_the_checks_but_not_show_form(site, page, workspace):
    on_event = SurveyFactory(workspace=workspace, targeting={
        "trigger": "event", "trigger_event": "report_exported"})  # fmt: skip
    manual = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    site.open(workspace, identify("u-1"))
    checks = []
    page.on("request", lambda r: checks.append(r) if r.url.endswith("/eligibility") else None)

    site.run("'stopPinging'")
    with page.expect_response(lambda r: r.url.endswith("/widget/track")):
        site.run("'trackEvent', 'report_exported'")
    page.evaluate("history.pushState({}, '', '/host/other')")
    page.wait_for_timeout(400)
    assert checks == [] and card(page).count() == 0
    assert not Display.objects.filter(survey=on_event).exists()

    site.run(f"'showForm', {manual.pk}")
    card(page).wait_for()
    assert len(checks) == 1


# Once per session --------------------------------------------------------------------------


def test_a_once_per_session_survey_comes_back_in_a_new_tab_only(site, page, workspace):
    survey = SurveyFactory(workspace=workspace, targeting={"frequency": "once_per_session"})
    site.open(workspace, identify("u-1"))
    card(page).wait_for()
    with page.expect_response(lambda r: r.url.endswith("/dismiss")):
        page.get_by_role("button", name="Close survey").click()

    with page.expect_response(lambda r: r.url.endswith("/widget/eligibility")) as again:
        page.reload()
    assert again.value.json()["surveys"] == [], "the same tab is the same session"

    other_tab = page.context.new_page()
    with other_tab.expect_response(lambda r: r.url.endswith("/widget/eligibility")) as fresh:
        other_tab.goto(page.url)
    assert [s["id"] for s in fresh.value.json()["surveys"]] == [survey.pk]
    card(other_tab).wait_for()
    sessions = set(Display.objects.values_list("session", flat=True))
    assert len(sessions) == 2 and None not in sessions


# The Targeting tab -------------------------------------------------------------------------


def test_the_targeting_tab_saves_anyone_and_once_per_session(page, live_server, page_errors):
    from playwright.sync_api import expect  # imported here: the browser tests may skip

    owner = MembershipFactory(role=Membership.OWNER)
    survey = SurveyFactory(workspace=owner.workspace, status="draft")
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/surveys/{survey.pk}/targeting/")

    page.check("input[name=audience][value=segments]")
    expect(page.locator(".segment-picker")).to_be_visible()
    page.check("input[name=audience][value=anyone]")
    expect(page.locator(".segment-picker")).to_be_hidden()
    page.select_option("#frequency", "once_per_session")
    page.locator(".form-bar").get_by_role("button", name="Save targeting").click()
    expect(page.locator(".saved")).to_be_visible()

    targeting = Targeting.objects.get(survey=survey)
    assert (targeting.audience, targeting.frequency) == ("anyone", "once_per_session")
    assert page_errors == []

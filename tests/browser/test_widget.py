"""The widget in a real browser (SPEC §7), against the live server's widget API (§5.1).

Customer pages are served on http://127.0.0.1:PORT by a test-only route, while the
widget and its API live on http://localhost:PORT: another origin, as in production,
so CORS is exercised on every call.
"""

import json
import socket
from pathlib import Path
from unittest.mock import ANY
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from segments.models import Account
from surveys.models import Display, Response, Survey
from targeting.preview import preview_token
from targeting.widget_api import signature_of
from tests.browser.urls import HOST_PAGES
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory, WorkspaceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.browser.urls"),
]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "widget-card.png"
ENTERPRISE = {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "enterprise"}
QUESTIONS = [
    {"key": "nps", "type": "nps", "text": "How likely are you to recommend Acme Analytics?"},
    {
        "key": "used",
        "type": "single_choice",
        "text": "What do you use most?",
        "choices": ["Reports", "Alerts", "API"],
    },
]
HOSTILE_CSS = """
* { color: red !important; font-size: 40px !important; font-family: cursive !important;
    letter-spacing: 4px !important; text-transform: uppercase !important;
    line-height: 3 !important; box-sizing: content-box !important; }
div { padding: 30px !important; background: yellow !important; border: 9px solid blue !important; }
button { border: 6px solid lime !important; width: 300px !important; height: 90px !important;
         background: black !important; }
p, span, label { margin: 40px !important; display: block !important; }
refiner-survey { display: none !important; opacity: 0 !important; right: 900px !important; }
"""
HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Customer product</title><style>%CSS%</style></head>
<body>
<h1>Customer product</h1>
<button id="own" type="button">Count</button> <span id="count">0</span>
<button id="export" type="button">Export report</button>
<script>
  window.seen = {shown: [], completed: [], dismissed: [], errors: []};
  document.getElementById('own').addEventListener('click', function () {
    var count = document.getElementById('count');
    count.textContent = String(Number(count.textContent) + 1);
  });
  window._refiner = window._refiner || function () {
    (window._refinerQueue = window._refinerQueue || []).push(arguments);
  };
  _refiner('onShow', function (d) { seen.shown.push(d); });
  _refiner('onComplete', function (d) { seen.completed.push(d); });
  _refiner('onDismiss', function (d) { seen.dismissed.push(d); });
  _refiner('onError', function (d) { seen.errors.push(d); });
  %CALLS%
  document.getElementById('export').addEventListener('click', function () {
    _refiner('trackEvent', 'report_exported');
  });
</script>
<script async src="%WIDGET%"></script>
</body></html>"""


@pytest.fixture(autouse=True)
def fresh_state():
    HOST_PAGES.clear()


class Host:
    """A customer's page with the §7 snippet, on another origin than Refiner."""

    def __init__(self, page, live_server):
        self.page = page
        self.widget_url = f"{live_server.url}/static/refiner/widget.js"
        self.origin = f"http://127.0.0.1:{urlsplit(live_server.url).port}"

    def open(
        self,
        workspace,
        user: dict,
        *,
        options=None,
        css="",
        api_host=None,
        name="page",
        check=True,
    ) -> None:
        """Serve the page at /host/NAME and load it; wait for its first eligibility check."""
        calls = []
        if api_host:
            calls.append(f"_refiner('setApiHost', {json.dumps(api_host)});")
        calls.append(f"_refiner('setProject', {json.dumps(workspace.widget_key)});")
        extra = f", {json.dumps(options)}" if options else ""
        calls.append(f"_refiner('identifyUser', {json.dumps(user)}{extra});")
        html = HOST_PAGE.replace("%CSS%", css).replace("%CALLS%", "\n  ".join(calls))
        HOST_PAGES[name] = html.replace("%WIDGET%", self.widget_url)
        if not check:
            self.page.goto(f"{self.origin}/host/{name}")
            return
        with self.page.expect_response(_eligibility()):
            self.page.goto(f"{self.origin}/host/{name}")

    def trigger(self, *, expect_check: bool = True) -> list[int]:
        """Click the page's own "Export report" button, which tracks report_exported.

        Returns the ids of the surveys the eligibility check that follows answered.
        """
        if not expect_check:
            self.page.click("#export")
            return []
        with self.page.expect_response(_eligibility("report_exported")) as checked:
            self.page.click("#export")
        assert checked.value.ok
        return [survey["id"] for survey in checked.value.json()["surveys"]]

    def seen(self) -> dict:
        return self.page.evaluate("window.seen")


def _eligibility(event: str | None = None):
    def wanted(response) -> bool:
        if not response.url.endswith("/api/v1/widget/eligibility"):
            return False
        if response.request.method != "POST":
            return False
        return event is None or json.loads(response.request.post_data).get("event") == event

    return wanted


@pytest.fixture
def host(page, live_server):
    return Host(page, live_server)


@pytest.fixture
def workspace(transactional_db):
    return WorkspaceFactory(name="Acme Analytics")


@pytest.fixture
def survey(workspace):
    enterprise = SegmentFactory(
        workspace=workspace,
        name="Enterprise",
        rules={"type": "group", "match": "all", "conditions": [ENTERPRISE]},
    )
    survey = SurveyFactory(
        workspace=workspace,
        name="Exporters NPS",
        questions=QUESTIONS,
        targeting={
            "audience": "segments",
            "trigger": "event",
            "trigger_event": "report_exported",
        },
    )
    survey.targeting.segments.add(enterprise)
    return survey


def card(page):
    """The survey card, inside the widget's shadow root (Playwright's locators pierce it)."""
    return page.locator("refiner-survey .card")


def enterprise_user(user_id: str = "u-42") -> dict:
    return {"id": user_id, "email": f"{user_id}@example.com", "plan": "enterprise"}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_user_in_the_segment_answers_after_the_trigger_event(host, page, survey, page_errors):
    host.open(survey.workspace, enterprise_user())
    assert card(page).count() == 0, "the survey waits for its trigger event"

    assert host.trigger() == [survey.pk]
    page.get_by_role("button", name="9 of 10").click()
    expect_progress = page.get_by_text("2 / 2")
    expect_progress.wait_for()
    page.get_by_label("Reports").check()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Thank you!").wait_for()
    page.wait_for_function("window.seen.completed.length === 1")

    response = Response.objects.get(survey=survey)
    assert response.contact.user_id == "u-42"
    assert response.completed is True
    assert response.answers == {"nps": 9, "used": "Reports"}
    assert host.seen()["shown"] == [{"survey": survey.pk, "display": str(response.display_id)}]
    assert host.seen()["errors"] == []
    assert page_errors == []


def test_every_question_type_is_saved_as_it_is_answered(host, page, workspace):
    survey = SurveyFactory(
        workspace=workspace,
        questions=[
            {"key": "score", "type": "rating", "text": "Rate the reports"},
            {
                "key": "tools",
                "type": "multiple_choice",
                "text": "Which?",
                "choices": ["A", "B", "C"],
            },
            {"key": "why", "type": "text", "text": "Anything else?"},
        ],
    )
    host.open(workspace, {"id": "u-7"})

    page.get_by_role("button", name="4 of 5").click()
    page.get_by_text("2 / 3").wait_for()
    page.get_by_label("A", exact=True).check()
    page.get_by_label("C", exact=True).check()
    with page.expect_response(lambda r: "tools" in (r.request.post_data or "")) as saved:
        page.get_by_role("button", name="Next").click()
    assert saved.value.json()["completed"] is False
    partial = Response.objects.get(survey=survey)
    assert partial.answers == {"score": 4, "tools": ["A", "C"]}
    assert partial.completed is False

    page.get_by_role("textbox").fill("  More charts, please.  ")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_function("window.seen.completed.length === 1")
    response = Response.objects.get(survey=survey)
    assert response.completed is True
    assert response.answers == {"score": 4, "tools": ["A", "C"], "why": "More charts, please."}


def test_a_user_outside_the_audience_sees_nothing(host, page, survey):
    host.open(survey.workspace, {"id": "u-free", "plan": "free"})
    assert host.trigger() == []
    page.wait_for_timeout(300)

    assert card(page).count() == 0
    assert not Display.objects.filter(survey=survey).exists()
    assert host.seen() == {"shown": [], "completed": [], "dismissed": [], "errors": []}


def test_a_dismissed_survey_does_not_come_back(host, page, survey):
    host.open(survey.workspace, enterprise_user())
    host.trigger()
    with page.expect_response(lambda r: r.url.endswith("/dismiss")):
        page.get_by_role("button", name="Close survey").click()
    assert card(page).count() == 0
    assert Display.objects.get(survey=survey).dismissed_at is not None
    assert len(host.seen()["dismissed"]) == 1

    with page.expect_response(_eligibility()):
        page.reload()
    assert host.trigger() == []
    page.wait_for_timeout(300)
    assert card(page).count() == 0
    assert Display.objects.filter(survey=survey).count() == 1


def test_the_card_takes_focus_and_escape_dismisses_it(host, page, survey):
    host.open(survey.workspace, enterprise_user())
    page.focus("#export")
    host.trigger()
    card(page).wait_for()

    focused = page.evaluate(
        "document.querySelector('refiner-survey').shadowRoot.activeElement.getAttribute('aria-label')"
    )
    assert focused == "0 of 10"
    page.keyboard.press("Tab")

    with page.expect_response(lambda r: r.url.endswith("/dismiss")):
        page.keyboard.press("Escape")
    assert host.seen()["dismissed"] == [{"survey": survey.pk, "display": ANY}]
    assert card(page).count() == 0
    assert page.evaluate("document.activeElement.id") == "export", "focus goes back to the page"
    display = Display.objects.get(survey=survey)
    assert display.dismissed_at is not None
    assert not Response.objects.filter(display=display).exists()


def test_identity_verification_with_a_wrong_signature_shows_nothing(host, page, survey):
    workspace = survey.workspace
    workspace.identity_verification = True
    workspace.save()
    host.open(workspace, enterprise_user(), options={"signature": "00" * 32}, check=False)
    page.wait_for_function("window.seen.errors.length > 0")
    host.trigger(expect_check=False)
    page.wait_for_timeout(500)

    assert card(page).count() == 0
    errors = host.seen()["errors"]
    assert errors[0]["code"] == "bad_signature"
    assert errors[0]["status"] == 403
    assert not Display.objects.exists()


def test_identity_verification_with_the_right_signature_shows_the_survey(host, page, survey):
    workspace = survey.workspace
    workspace.identity_verification = True
    workspace.save()
    signature = signature_of(workspace, "u-42")
    host.open(workspace, enterprise_user(), options={"signature": signature})
    with page.expect_request(lambda r: r.url.endswith("/widget/displays")) as shown:
        host.trigger()
    assert json.loads(shown.value.post_data)["signature"] == signature
    card(page).wait_for()
    assert host.seen()["errors"] == []


def test_an_account_is_identified_with_its_own_signature(host, page, survey):
    workspace = survey.workspace
    workspace.identity_verification = True
    workspace.save()
    user = {**enterprise_user(), "account": {"id": "acme", "name": "Acme"}}
    options = {"signature": signature_of(workspace, "u-42"),
               "accountSignature": signature_of(workspace, "acme")}  # fmt: skip
    with page.expect_response(lambda r: r.url.endswith("/widget/identify")) as identified:
        host.open(workspace, user, options=options)
    assert identified.value.status == 200
    sent = json.loads(identified.value.request.post_data)
    assert sent["account_signature"] == options["accountSignature"]
    assert Account.objects.get(workspace=workspace).name == "Acme"
    assert host.seen()["errors"] == []


def test_the_display_is_recorded_for_the_event_and_page_that_were_checked(host, page, survey):
    host.open(survey.workspace, enterprise_user())
    with page.expect_request(lambda r: r.url.endswith("/widget/eligibility")) as asked:
        with page.expect_response(lambda r: r.url.endswith("/widget/displays")) as shown:
            page.click("#export")
    checked, recorded = json.loads(asked.value.post_data), json.loads(shown.value.request.post_data)
    assert checked["event"] == recorded["event"] == "report_exported"
    assert recorded["url"] == checked["url"] and recorded["url"].endswith("/host/page")
    assert shown.value.status == 201
    card(page).wait_for()


STYLE_PROBE = """() => {
  const host = document.querySelector('refiner-survey');
  const root = host.shadowRoot;
  const props = ['color', 'font-size', 'font-family', 'font-weight', 'letter-spacing',
    'text-transform', 'line-height', 'background-color', 'padding-top', 'margin-top',
    'border-top-width', 'border-top-color', 'display', 'width', 'height', 'opacity',
    'box-sizing', 'position', 'right', 'bottom'];
  const style = (el) => {
    const s = getComputedStyle(el);
    return Object.fromEntries(props.map((p) => [p, s.getPropertyValue(p)]));
  };
  return {
    host: style(host),
    card: style(root.querySelector('.card')),
    question: style(root.querySelector('.q')),
    option: style(root.querySelector('.opt')),
    close: style(root.querySelector('.close')),
    progress: style(root.querySelector('.progress')),
    box: root.querySelector('.card').getBoundingClientRect().toJSON(),
  };
}"""


def test_host_page_css_does_not_change_the_card(host, page, workspace):
    SurveyFactory(workspace=workspace, questions=QUESTIONS)
    host.open(workspace, {"id": "u-plain"}, name="plain")
    card(page).wait_for()
    plain = page.evaluate(STYLE_PROBE)

    host.open(workspace, {"id": "u-hostile"}, css=HOSTILE_CSS, name="hostile")
    card(page).wait_for()
    hostile = page.evaluate(STYLE_PROBE)

    assert page.evaluate("getComputedStyle(document.querySelector('h1')).color") == "rgb(255, 0, 0)"
    assert plain["question"]["font-size"] == "15px"
    assert hostile == plain
    assert page.get_by_role("button", name="10 of 10").is_visible()


def test_a_server_that_is_down_leaves_the_host_page_working(host, page, workspace, page_errors):
    warnings: list[str] = []
    page.on("console", lambda m: m.type == "warning" and warnings.append(m.text))
    host.open(workspace, {"id": "u-42"}, api_host=f"http://127.0.0.1:{closed_port()}", check=False)
    page.wait_for_function("window.seen.errors.length > 0")

    host.trigger(expect_check=False)
    page.click("#own")
    page.click("#own")
    page.wait_for_function("window.seen.errors.length >= 3")

    assert page.inner_text("#count") == "2"
    assert {e["code"] for e in host.seen()["errors"]} == {"network_error"}
    assert card(page).count() == 0
    assert page_errors == []
    assert len([w for w in warnings if w.startswith("Refiner:")]) == 1


def test_a_page_change_in_a_single_page_app_asks_again(host, page, workspace):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"allowed_pages": [{"match": "contains", "value": "/pricing"}]},
    )
    host.open(workspace, {"id": "u-spa"})
    assert card(page).count() == 0

    with page.expect_response(_eligibility()) as checked:
        page.evaluate("history.pushState({}, '', '/host/pricing')")
    assert json.loads(checked.value.request.post_data)["url"].endswith("/host/pricing")
    card(page).wait_for()
    assert host.seen()["shown"][0]["survey"] == survey.pk


def test_show_form_asks_for_one_manual_survey(host, page, workspace):
    survey = SurveyFactory(
        workspace=workspace, targeting={"trigger": "manual", "delay_seconds": 30}
    )
    host.open(workspace, {"id": "u-manual"})
    assert card(page).count() == 0

    with page.expect_response(_eligibility()) as checked:
        page.evaluate(f"_refiner('showForm', {survey.pk})")
    assert json.loads(checked.value.request.post_data)["survey"] == survey.pk
    card(page).wait_for(timeout=3000)


def test_the_survey_waits_for_its_delay_and_sign_out_closes_it(host, page, workspace):
    survey = SurveyFactory(workspace=workspace, targeting={"delay_seconds": 1})
    host.open(workspace, {"id": "u-slow"})
    page.wait_for_timeout(400)
    assert card(page).count() == 0, "not before its delay"
    card(page).wait_for(timeout=3000)

    page.evaluate("_refiner('resetUser')")
    assert card(page).count() == 0
    display = Display.objects.get(survey=survey)
    assert display.dismissed_at is None, "signing out is not a dismissal"
    assert host.seen()["dismissed"] == []


def test_the_card_fits_a_360px_phone(host, page, workspace):
    SurveyFactory(workspace=workspace)
    page.set_viewport_size({"width": 360, "height": 740})
    host.open(workspace, {"id": "u-phone"})
    card(page).wait_for()

    box = card(page).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    assert box["y"] >= 0 and box["y"] + box["height"] <= 740
    rows = set()
    for score in range(11):
        button = page.get_by_role("button", name=f"{score} of 10", exact=True).bounding_box()
        assert button["x"] >= box["x"] and button["x"] + button["width"] <= box["x"] + box["width"]
        assert button["width"] >= 20, "big enough to tap"
        rows.add(round(button["y"]))
    assert len(rows) == 1, "the scores stay on one row"


def test_the_demo_page_shows_the_card(page, page_errors, live_server, settings, transactional_db):
    settings.DEMO_PAGE_ENABLED = True
    # A fixed key, so the screenshot only changes when the page or the card does.
    workspace = WorkspaceFactory(name="Acme Analytics", widget_key="wk_demo")
    ContactFactory(workspace=workspace, user_id="u-42", traits={"plan": "enterprise"})
    SurveyFactory(
        workspace=workspace,
        questions=QUESTIONS,
        targeting={"trigger": "event", "trigger_event": "report_exported"},
    )
    page.set_viewport_size({"width": 1200, "height": 760})
    with page.expect_response(_eligibility()):
        page.goto(f"{live_server.url}/demo/?key=wk_demo")
    page.get_by_role("button", name="Export report").click()
    card(page).wait_for()
    page.get_by_role("button", name="10 of 10").wait_for()
    page.mouse.move(0, 0)

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert page.get_by_text("Report exported.").is_visible(), "the page's own code still runs"
    assert page.get_by_text("onShow").count() == 1
    assert Display.objects.filter(contact__user_id="u-42").count() == 1
    assert page_errors == []


# Events that come while a survey is pending or open (docs/widget.md, "One at a time") ----


def _eligibility_events(page) -> list:
    """The `event` of every eligibility check the page makes from now on, in order."""
    events: list = []

    def asked(request) -> None:
        if request.url.endswith("/widget/eligibility"):
            events.append(json.loads(request.post_data).get("event"))

    page.on("request", asked)
    return events


def test_an_event_during_another_surveys_delay_is_checked_when_it_closes(host, page, survey):
    waiting = SurveyFactory(
        workspace=survey.workspace, name="Welcome", targeting={"delay_seconds": 1}
    )
    host.open(survey.workspace, enterprise_user())
    assert card(page).count() == 0, "Welcome waits for its delay"
    events = _eligibility_events(page)

    page.click("#export")  # tracked while Welcome is pending
    card(page).wait_for(timeout=3000)
    assert host.seen()["shown"][0]["survey"] == waiting.pk
    assert events == [], "no check while a survey is pending"

    with page.expect_response(_eligibility("report_exported")) as checked:
        page.get_by_role("button", name="Close survey").click()
    assert [s["id"] for s in checked.value.json()["surveys"]] == [survey.pk]
    page.wait_for_function("window.seen.shown.length === 2")
    assert host.seen()["shown"][1]["survey"] == survey.pk
    assert Display.objects.filter(survey=survey, contact__user_id="u-42").count() == 1


def test_events_and_page_changes_while_a_card_is_open_are_checked_in_order(host, page, survey):
    workspace = survey.workspace
    opened = SurveyFactory(workspace=workspace, name="Open first", questions=QUESTIONS[:1])
    host.open(workspace, enterprise_user())
    card(page).wait_for()
    events = _eligibility_events(page)

    page.evaluate("history.pushState({}, '', '/host/pricing')")
    page.evaluate("_refiner('trackEvent', 'alert_created')")
    page.click("#export")
    page.wait_for_timeout(300)
    assert events == [], "nothing is asked while the card is open"

    with page.expect_response(_eligibility("report_exported")):
        page.get_by_role("button", name="9 of 10").click()  # completes Open first
    page.wait_for_function("window.seen.shown.length === 2", timeout=8000)
    assert events == [None, "alert_created", "report_exported"]
    assert [s["survey"] for s in host.seen()["shown"]] == [opened.pk, survey.pk]
    assert Response.objects.get(survey=opened).completed is True


def test_a_new_user_does_not_inherit_the_last_ones_waiting_events(host, page, survey):
    SurveyFactory(workspace=survey.workspace, questions=QUESTIONS[:1])
    host.open(survey.workspace, enterprise_user())
    card(page).wait_for()
    page.click("#export")
    events = _eligibility_events(page)

    with page.expect_response(_eligibility()):
        page.evaluate(f"_refiner('identifyUser', {json.dumps(enterprise_user('u-43'))})")
    page.wait_for_timeout(300)
    assert events == [None], "u-43's own first check only, not u-42's report_exported"
    assert not Display.objects.filter(survey=survey).exists()


# Preview on my site ---------------------------------------------------------------------

PREVIEW_SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "preview.png"


def _widget_calls(page) -> list[str]:
    calls: list[str] = []
    page.on(
        "request", lambda r: "/api/v1/widget/" in r.url and calls.append(r.url.split("/widget/")[1])
    )
    return calls


def test_a_preview_link_shows_a_draft_on_the_demo_page_and_saves_nothing(
    page, page_errors, live_server, settings, transactional_db
):
    settings.DEMO_PAGE_ENABLED = True
    workspace = WorkspaceFactory(name="Acme Analytics", widget_key="wk_demo")
    draft = SurveyFactory(
        workspace=workspace,
        status=Survey.DRAFT,
        questions=QUESTIONS,
        targeting={"trigger": "event", "trigger_event": "report_exported", "delay_seconds": 30},
    )
    # A live survey u-42 would see on this page load: the preview must not wait behind it.
    SurveyFactory(workspace=workspace, questions=[{"key": "q", "type": "rating", "text": "Live?"}])
    calls = _widget_calls(page)
    page.set_viewport_size({"width": 1280, "height": 760})
    page.goto(f"{live_server.url}/demo/?key=wk_demo&refiner_preview={preview_token(draft)}")

    card(page).wait_for(timeout=3000)  # at once: no 30 s delay, no trigger event
    page.get_by_text("Preview: answers are not saved").wait_for()
    assert page.get_by_text("Live?").count() == 0
    page.get_by_role("button", name="10 of 10").wait_for()
    page.mouse.move(0, 0)
    PREVIEW_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(PREVIEW_SCREENSHOT))

    page.get_by_role("button", name="8 of 10").click()
    page.get_by_label("Alerts").check()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Thank you!").wait_for()
    page.wait_for_timeout(300)

    assert "preview" in calls
    assert not [c for c in calls if c.startswith("displays")], calls
    assert Display.objects.count() == 0 and Response.objects.count() == 0
    assert page.get_by_text("onShow").count() == 0, "a preview is not the product's display"
    assert page_errors == []


def test_preview_form_from_the_console_shows_it_and_closing_it_records_nothing(
    host, page, workspace
):
    paused = SurveyFactory(workspace=workspace, status=Survey.PAUSED, questions=QUESTIONS)
    host.open(workspace, {"id": "u-pm"})
    calls = _widget_calls(page)

    with page.expect_response(lambda r: r.url.endswith("/widget/preview")) as previewed:
        page.evaluate(f"_refiner('previewForm', {json.dumps(preview_token(paused))})")
    assert previewed.value.status == 200
    card(page).wait_for()
    page.get_by_role("button", name="Close survey").click()
    page.wait_for_timeout(300)

    assert card(page).count() == 0
    assert calls == ["preview"], "no display, no dismissal"
    assert host.seen() == {"shown": [], "completed": [], "dismissed": [], "errors": []}
    assert not Display.objects.exists()


def test_a_bad_preview_token_shows_nothing_and_reports_it(host, page, workspace):
    theirs = SurveyFactory(workspace=WorkspaceFactory(name="Another"))
    host.open(workspace, {"id": "u-pm"})

    page.evaluate(f"_refiner('previewForm', {json.dumps(preview_token(theirs))})")
    page.wait_for_function("window.seen.errors.length === 1")

    assert host.seen()["errors"][0]["code"] == "bad_preview_token"
    assert host.seen()["errors"][0]["call"] == "preview"
    assert card(page).count() == 0


def test_a_preview_stays_open_when_the_page_signs_its_user_in_afterwards(host, page, workspace):
    draft = SurveyFactory(workspace=workspace, status=Survey.DRAFT, questions=QUESTIONS)
    calls = f"_refiner('setProject', {json.dumps(workspace.widget_key)});"
    html = HOST_PAGE.replace("%CSS%", "").replace("%CALLS%", calls)
    HOST_PAGES["late"] = html.replace("%WIDGET%", host.widget_url)
    page.goto(f"{host.origin}/host/late?refiner_preview={preview_token(draft)}")
    page.get_by_text("Preview: answers are not saved").wait_for()

    with page.expect_response(lambda r: r.url.endswith("/widget/identify")):
        page.evaluate("_refiner('identifyUser', {id: 'u-pm'})")  # the app signs in later

    assert card(page).count() == 1
    page.get_by_role("button", name="7 of 10").click()
    page.get_by_text("2 / 2").wait_for()
    assert not Display.objects.exists()

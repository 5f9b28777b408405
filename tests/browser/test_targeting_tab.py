"""The survey editor in a real browser: questions, the Targeting tab with its live
estimate, publishing, and the widget endpoint offering the survey to the right contact."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from segments import membership
from segments.models import MemberSet
from surveys.models import Survey
from targeting.models import Targeting
from tests.browser.pages import sign_in
from tests.factories import (
    ContactFactory,
    EventFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import attribute, event, group, plan_is

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "targeting-tab.png"


@pytest.fixture
def owner(owner):
    membership = owner  # the shared fixture's owner, with this module's data added
    workspace = membership.workspace
    segments = {
        "Enterprise": plan_is("enterprise"),
        "Power users": group(event("report_exported", "at_least", 3, within_days=30)),
        "Employees": group(attribute("email", "ends_with", "@acme.test")),
        "New users (first seen < 7 days)": group(
            attribute("first_seen_at", "less_than_days_ago", 7)
        ),
    }
    for name, rules in segments.items():
        SegmentFactory(workspace=workspace, name=name, rules=rules)
    return membership


@pytest.fixture
def contacts(owner) -> dict[str, object]:
    """Only `ada` is an enterprise power user who is not an employee."""
    now = timezone.now()
    people = {
        "ada": ("ada@example.com", "enterprise", 5),
        "eve": ("eve@acme.test", "enterprise", 6),  # an employee: excluded
        "bob": ("bob@example.com", "enterprise", 1),  # not a power user
        "kim": ("kim@example.com", "free", 8),  # not on enterprise
    }
    made = {}
    for user_id, (email, plan, exports) in people.items():
        contact = ContactFactory(
            workspace=owner.workspace, user_id=user_id, email=email, traits={"plan": plan}
        )
        for day in range(exports):
            EventFactory(contact=contact, name="report_exported",
                         occurred_at=now - timedelta(days=day + 1))  # fmt: skip
        made[user_id] = contact
    return made


@pytest.fixture
def rival(owner) -> Survey:
    """A live survey for the whole Enterprise segment: it competes for ada."""
    survey = SurveyFactory(workspace=owner.workspace, name="Enterprise pulse",
                           targeting={"audience": Targeting.SEGMENTS, "priority": 2})  # fmt: skip
    survey.targeting.segments.set(owner.workspace.segments.filter(name="Enterprise"))
    return survey


def offered(page, live_server, workspace, user_id: str, **check) -> list[int]:
    response = page.request.post(
        f"{live_server.url}/api/v1/widget/eligibility",
        data={"workspace": workspace.widget_key, "user_id": user_id, **check},
    )
    assert response.status == 200, response.text()
    return [survey["id"] for survey in response.json()["surveys"]]


def test_targeting_tab_reaches_exactly_the_matching_contact(
    page, page_errors, live_server, owner, contacts, rival
):
    from playwright.sync_api import expect

    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/surveys/")
    page.fill("input[name=name]", "Power-user feedback")
    page.get_by_role("button", name="New survey").click()
    page.wait_for_url("**/surveys/*/")
    survey = Survey.objects.get(workspace=owner.workspace, name="Power-user feedback")

    # Questions tab: two questions, added with htmx.
    page.fill("#new-text", "How likely are you to recommend our reports?")
    page.get_by_role("button", name="Add question").click()
    expect(page.locator(".question-card:not(.new-question)")).to_have_count(1)
    page.select_option("#new-type", "multiple_choice")
    page.fill("#new-text", "Which reports do you export most?")
    page.fill("#new-choices", "Revenue\nRetention\nFunnels")
    page.get_by_role("button", name="Add question").click()
    expect(page.locator(".question-card:not(.new-question)")).to_have_count(2)
    assert [q.type for q in survey.questions.all()] == ["nps", "multiple_choice"]

    # Targeting tab: two segments with "all", one exclusion, an event trigger.
    page.get_by_role("link", name="Targeting").click()
    estimate = page.locator("#estimate .preview-count")
    expect(estimate).to_have_text("4")
    page.check("input[name=audience][value=segments]")
    page.check("label:has-text('Enterprise') input[name=segments]")
    expect(estimate).to_have_text("3")
    page.check("label:has-text('Power users') input[name=segments]")
    expect(estimate).to_have_text("4")  # "at least one of" by default
    page.select_option("select[name=segment_match]", "all")
    expect(estimate).to_have_text("2")
    page.check("label:has-text('Employees') input[name=excluded_segments]")
    expect(estimate).to_have_text("1")
    expect(page.locator("#estimate .competitors")).to_contain_text(
        "Enterprise pulse: shares 1 contact"
    )
    page.select_option("#trigger", "event")
    page.fill("#trigger_event", "report_exported")
    page.get_by_role("button", name="+ Add page").first.click()
    page.locator("input[name='allowed_pages-value']").fill("/app")
    page.fill("#delay_seconds", "3")
    page.fill("#priority", "5")
    page.locator(".form-bar").get_by_role("button", name="Save targeting").click()
    expect(page.locator(".saved")).to_be_visible()

    targeting = Targeting.objects.get(survey=survey).to_dict()
    segment_ids = dict(owner.workspace.segments.values_list("name", "id"))
    assert targeting["segments"] == sorted([segment_ids["Enterprise"], segment_ids["Power users"]])
    assert targeting["segment_match"] == "all"
    assert targeting["excluded_segments"] == [segment_ids["Employees"]]
    assert (targeting["trigger"], targeting["trigger_event"]) == ("event", "report_exported")
    assert targeting["allowed_pages"] == [{"match": "starts_with", "value": "/app"}]

    page.get_by_role("button", name="Publish").click()
    expect(page.locator(".editor-header .badge")).to_have_text("Live")
    survey.refresh_from_db()
    assert survey.status == Survey.LIVE

    check = {"event": "report_exported", "url": "https://app.example.com/app/reports"}
    for user_id in contacts:
        surveys = offered(page, live_server, owner.workspace, user_id, **check)
        assert (survey.pk in surveys) == (user_id == "ada"), user_id
    assert survey.pk not in offered(page, live_server, owner.workspace, "ada", url=check["url"])

    page.set_viewport_size({"width": 1360, "height": 900})
    page.reload()
    expect(estimate).to_have_text("1")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page_errors == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates: PostgreSQL only")
def test_a_drafts_estimate_is_replaced_by_the_exact_figure(
    page, page_errors, live_server, owner, contacts, settings
):
    """A draft set up since the last sweep has no stored figure: the tab of a large
    workspace whose segments have no member set yet (not swept since the upgrade)
    shows an estimate from the sample, then the exact figure its fragment loads. The
    exact requests are held back until the test lets them through, so the
    estimate can be seen."""
    from playwright.sync_api import expect

    settings.PREVIEW_ESTIMATE_ABOVE = 3
    settings.PREVIEW_SAMPLE_SIZE = 2
    draft = SurveyFactory(
        workspace=owner.workspace,
        name="Draft for enterprise",
        status=Survey.DRAFT,
        targeting={"audience": Targeting.SEGMENTS},
    )
    membership.sweep(timezone.now())
    MemberSet.objects.all().delete()
    draft.targeting.segments.set(owner.workspace.segments.filter(name="Enterprise"))
    held = []

    def hold_exact_figures(route) -> None:
        if "exact=1" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route(re.compile(r"/targeting/"), hold_exact_figures)
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/surveys/{draft.pk}/targeting/")
    count = page.locator("#estimate .preview-count")
    expect(count).to_have_text(re.compile("about"))
    expect(page.get_by_test_id("preview-estimate")).to_contain_text("estimated from 2 sampled")
    release_exact_figures(page, held)
    expect(count).to_have_text("3")
    expect(page.get_by_test_id("preview-estimate")).to_have_count(0)

    page.check("label:has-text('Employees') input[name=excluded_segments]")
    expect(page.get_by_test_id("preview-estimate")).to_be_visible()
    release_exact_figures(page, held)
    expect(count).to_have_text("2")
    expect(page.get_by_test_id("preview-exact")).to_have_count(0)
    assert page_errors == []


def release_exact_figures(page, held: list) -> None:
    """Let the exact figures asked for through, once the browser has asked."""
    for _ in range(100):
        if held:
            held.pop(0).continue_()
            return
        page.wait_for_timeout(50)
    raise AssertionError("No exact figures were asked for")

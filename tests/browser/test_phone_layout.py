"""The dashboard on a phone (390 × 844): a menu that opens, editors in one column, no page
wider than the screen."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from segments.models import Segment, SegmentMember
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.pages import sign_in
from tests.factories import (
    ContactFactory,
    DisplayFactory,
    EventFactory,
    SurveyFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "segment-editor-phone.png"
ENTERPRISE = {
    "type": "group",
    "match": "all",
    "conditions": [
        {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "enterprise"},
        {"type": "group", "match": "any", "conditions": [
            {"type": "event", "event": "report_exported", "operator": "at_least",
             "value": 5, "within_days": 30},
            {"type": "attribute", "attribute": "role", "operator": "equals", "value": "admin"},
        ]},
    ],
}  # fmt: skip


@pytest.fixture
def phone(browser) -> Iterator:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def ada(owner):
    return contact_with_everything(owner.workspace)


def contact_with_everything(workspace):
    """A contact whose page has everything: long traits, events, segments, explanations."""
    now = timezone.now()
    ada = ContactFactory(
        workspace=workspace, user_id="ada-lovelace-analytical-engine-0001",
        email="ada.lovelace@analytical-engine.example.com", name="Ada Lovelace",
        traits={"plan": "enterprise", "role": "admin",
                "favourite_report": "revenue-by-cohort-and-region-with-annotations-2026"},
    )  # fmt: skip
    for day in range(6):
        EventFactory(contact=ada, name="report_exported_with_all_columns_and_filters",
                     occurred_at=now - timedelta(days=day + 1))  # fmt: skip
    staff = Segment.objects.create(workspace=workspace, name="Employees of Acme Analytics Inc.",
                                   kind=Segment.MANUAL)  # fmt: skip
    SegmentMember.objects.create(segment=staff, contact=ada)
    power = Segment.objects.create(workspace=workspace, name="Enterprise power users",
                                   rules=ENTERPRISE)  # fmt: skip
    exports = SurveyFactory(
        workspace=workspace, name="How are exports working for your whole team this quarter?",
        targeting={"trigger": "event", "trigger_event": "report_exported_with_all_columns",
                   "audience": "segments", "segment_match": "all",
                   "allowed_pages": [{"match": "starts_with", "value": "/reports/exports/"}]},
    )  # fmt: skip
    exports.targeting.segments.set([power, staff])
    SurveyFactory(
        workspace=workspace, name="Welcome tour feedback", targeting={"ignore_recontact": True}
    )
    pulse = SurveyFactory(
        workspace=workspace,
        name="Quarterly pulse",
        targeting={"frequency": "recurring", "recurring_days": 90},
    )
    pulse.targeting.excluded_segments.set([staff])
    answered = now - timedelta(days=3)
    DisplayFactory(survey=pulse, contact=ada, shown_at=answered, completed_at=answered)
    return ada


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def overlap(a: dict, b: dict) -> float:
    """The area two bounding boxes share (0 when apart)."""
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(width, 0) * max(height, 0)


def assert_apart(form, preview) -> None:
    form_box, preview_box = form.bounding_box(), preview.bounding_box()
    assert form_box["width"] > PHONE["width"] / 2, form_box  # the form keeps the screen
    assert overlap(form_box, preview_box) == 0, (form_box, preview_box)
    # Nothing in the form reaches under the preview either.
    for field in form.locator("input:visible, select:visible").all():
        assert overlap(field.bounding_box(), preview_box) == 0, field.bounding_box()


def test_the_menu_opens_and_its_links_work(phone, page_errors, live_server, owner):
    from playwright.sync_api import expect

    sign_in(phone, live_server, owner)
    nav = phone.get_by_role("navigation", name="Main")
    contacts = nav.get_by_role("link", name="Contacts")
    expect(contacts).to_be_hidden()
    menu = phone.locator("label.menu-button")
    expect(menu).to_be_visible()
    menu.click()
    for name in ("Segments", "Surveys", "Contacts", "Responses", "Install", "Settings"):
        link = nav.get_by_role("link", name=name)
        expect(link).to_be_visible()
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)
    expect(phone.get_by_role("button", name="Sign out")).to_be_visible()
    contacts.click()
    phone.wait_for_url(f"{live_server.url}/contacts/")
    expect(phone.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    expect(contacts).to_be_hidden()  # a new page starts with the menu closed
    assert page_width(phone) <= PHONE["width"]


def test_the_segment_editor_keeps_its_preview_below_the_form(
    phone, page_errors, live_server, owner, ada
):
    from playwright.sync_api import expect

    sign_in(phone, live_server, owner)
    segment = Segment.objects.get(name="Enterprise power users")
    phone.goto(f"{live_server.url}/segments/{segment.pk}/")
    expect(phone.get_by_test_id("preview-count")).to_have_text("1")
    assert_apart(phone.locator(".editor-layout > div").first, phone.locator(".preview-card"))
    assert page_width(phone) <= PHONE["width"]
    phone.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page_errors == []


def test_the_targeting_tab_keeps_its_estimate_below_the_form(
    phone, page_errors, live_server, owner, ada
):
    from playwright.sync_api import expect

    sign_in(phone, live_server, owner)
    survey = owner.workspace.surveys.get(name="Quarterly pulse")
    phone.goto(f"{live_server.url}/surveys/{survey.pk}/targeting/")
    expect(phone.locator("#estimate")).to_be_visible()
    assert_apart(phone.locator(".targeting-main"), phone.locator(".targeting-aside"))
    assert page_width(phone) <= PHONE["width"]
    assert page_errors == []


# Every element of each card ends inside its card (a badge can poke out of one
# without making the page wider).
OUTSIDE_THEIR_CARD = """() => [...document.querySelectorAll('.card')].flatMap(card => {
  const edge = card.getBoundingClientRect().right + 0.5;
  return [...card.querySelectorAll('*')]
    .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > edge)
    .map(e => e.outerHTML.slice(0, 120));
})"""


def test_the_contact_page_fits_the_phone(phone, page_errors, live_server, owner, ada):
    from playwright.sync_api import expect

    sign_in(phone, live_server, owner)
    for check in ("", "?url=/reports/exports/2026", "?event=report_exported_with_all_columns"):
        phone.goto(f"{live_server.url}/contacts/{ada.user_id}/{check}")
        expect(phone.locator(".explanation")).to_have_count(3)
        expect(phone.get_by_text("The contact is in the excluded segment")).to_be_visible()
        assert page_width(phone) <= PHONE["width"]
        assert phone.evaluate(OUTSIDE_THEIR_CARD) == []
    assert page_errors == []

"""The contact page's what-if check in a real browser: a GET form whose answer can be shared."""

from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.pages import sign_in
from tests.browser.test_phone_layout import contact_with_everything

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "contact-explain.png"
EXPORTS = "How are exports working for your whole team this quarter?"


def test_what_if_an_event_and_a_page_makes_the_survey_show_now(
    page, page_errors, live_server, owner
):
    from playwright.sync_api import expect

    ada = contact_with_everything(owner.workspace)
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/contacts/{ada.user_id}/")
    exports = page.locator("article.explanation", has_text=EXPORTS)
    expect(exports.locator(".verdict")).to_have_text(
        "Would show on report_exported_with_all_columns, on its pages"
    )

    page.fill("#what-if-event", "report_exported_with_all_columns")
    page.fill("#what-if-url", "/reports/exports/q3")
    page.get_by_role("button", name="Check").click()
    page.wait_for_url("**/contacts/*/?event=report_exported_with_all_columns&url=*")
    expect(exports.locator(".verdict")).to_have_text("Would show now")
    expect(page.locator("#what-if-event")).to_have_value("report_exported_with_all_columns")

    # The same question, asked from a shared link, gets the same answer.
    shared = page.url
    page.goto(f"{live_server.url}/contacts/")
    page.goto(shared)
    expect(exports.locator(".verdict")).to_have_text("Would show now")
    page.fill("#what-if-url", "")
    page.fill("#what-if-event", "")
    page.get_by_role("button", name="Check").click()
    page.wait_for_url("**/contacts/*/?event=&url=*")
    expect(exports.locator(".verdict")).to_have_text(
        "Would show on report_exported_with_all_columns, on its pages"
    )
    page.evaluate("window.scrollTo(0, 0)")  # the form's #surveys anchor scrolled past the bar
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page_errors == []

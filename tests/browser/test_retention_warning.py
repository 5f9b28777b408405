"""The editor's live preview warns when an event window reaches past retention."""

import pytest

from tests.browser.test_segment_editor import owner, settled, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
__all__ = ["owner"]  # the fixture, used by name


def test_the_preview_warns_of_a_window_past_retention(
    page, page_errors, live_server, owner, settings
):
    from playwright.sync_api import expect

    settings.EVENT_RETENTION_MONTHS = 12
    sign_in(page, live_server, owner)
    page.get_by_role("link", name="New segment").click()
    root_actions = page.locator(".rule-group[data-prefix='c'] > .group-actions")
    root_actions.get_by_role("button", name="+ Condition").click()
    page.locator("#c-0-kind").wait_for()
    settled(page)
    page.select_option("#c-0-kind", "event")
    page.fill("#c-0-event", "report_exported")
    page.fill("#c-0-value", "1")
    page.fill("#c-0-within_days", "400")

    warning = page.get_by_test_id("retention-warning")
    expect(warning).to_contain_text("Looks back 400 days")
    expect(page.get_by_test_id("preview-count")).to_have_text("4")

    page.fill("#c-0-within_days", "30")
    expect(page.get_by_test_id("preview-count")).to_have_text("4")
    expect(warning).to_have_count(0)
    page.fill("#c-0-within_days", "")
    expect(warning).to_contain_text("of all time")
    assert page_errors == []

"""Back from a contact to a searched contact list shows the whole page, not an htmx fragment."""

import pytest

from tests.browser.pages import sign_in
from tests.factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def owner(owner):
    membership = owner  # the shared fixture's owner, with this module's data added
    for n, name in enumerate(["Ada Lovelace", "Grace Hopper", "Alan Turing"]):
        ContactFactory(workspace=membership.workspace, user_id=f"u-{n + 1}", name=name)
    return membership


def test_back_from_a_contact_shows_the_styled_list_with_navigation(
    page, page_errors, live_server, owner
):
    from playwright.sync_api import expect

    sign_in(page, live_server, owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.wait_for_url(f"{live_server.url}/contacts/")
    page.fill("#q", "grace")
    page.wait_for_url("**/contacts/?q=grace*")
    expect(page.get_by_test_id("contact-count")).to_have_text("1")

    page.get_by_role("link", name="u-2").click()
    page.wait_for_url(f"{live_server.url}/contacts/u-2/")
    expect(page.get_by_role("heading", name="Grace Hopper")).to_be_visible()

    page.go_back()
    page.wait_for_url("**/contacts/?q=grace*")
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    expect(page.get_by_test_id("contact-count")).to_have_text("1")
    # Styled: the stylesheet's background, not the browser's default white.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(246, 247, 251)"
    assert page_errors == []

"""A real browser for what needs JavaScript: Playwright (sync API) driving Debian's Chromium.

Playwright's own browser downloads are never used (no `playwright install`): the
tests run the system `chromium`. Without it they skip, unless CI demands them
with REFINER_REQUIRE_BROWSER=1, where a missing browser is a failure.
"""

import os
import shutil
from collections.abc import Iterator

import pytest
from django.db import connection

from refiner.models import Membership
from tests.factories import MembershipFactory

# The sync API keeps an event loop running in this thread; Django would otherwise
# refuse ORM calls from the tests ("You cannot call this from an async context").
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
]
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if os.environ.get("REFINER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"Browser tests are required (REFINER_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    executable = shutil.which("chromium")
    if executable is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh page in its own context (no cookies or storage shared between tests)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def page_errors(page) -> list[str]:
    """Uncaught exceptions in the page: a host page must never see one because of us."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


@pytest.fixture(autouse=True)
def no_progress_handler_on_a_shared_sqlite_connection(db) -> None:
    """On SQLite the live server's threads and the test share the in-memory database's
    one connection. The time budget's progress handler is Python code that SQLite calls
    while holding that connection's lock, so it waits for the interpreter's lock, which
    another thread may hold while it waits for the connection's: a deadlock (CI hung on
    it twice, once a late request against the test's teardown). Browser tests do not
    test budgets: the handler is off from here until the next test starts (`fresh_cache`
    lets the next budgeted query put it back), so also through this test's teardown."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        connection.connection.set_progress_handler(None, 0)
        connection.refiner_progress_for = connection.connection  # nothing to install


@pytest.fixture
def owner(live_server):
    """The owner of Acme Analytics: a membership the browser signs in with (the suite's own
    `owner` is a test client, which a browser cannot use)."""
    return MembershipFactory(role=Membership.OWNER, workspace__name="Acme Analytics")

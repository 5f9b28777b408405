import os
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from hypothesis import settings as hypothesis_settings

from refiner.budget import unlimited_outside_requests
from targeting import eligibility, memo, widget_api
from tests.clients import ApiClient, Widget, signed_in
from tests.factories import WorkspaceFactory
from tests.webhook_receiver import Receiver, start_receiver

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

# The property tests that take their example count from the profile (the SQL/memory
# agreement) run a quick 60 on a laptop, 500 under `make test` (HYPOTHESIS_PROFILE=ci)
# and 2,000 for a deliberate hunt (HYPOTHESIS_PROFILE=deep). Tests that name their own
# max_examples keep it under every profile.
hypothesis_settings.register_profile("dev", max_examples=60, deadline=None)
hypothesis_settings.register_profile("ci", max_examples=500, deadline=None)
hypothesis_settings.register_profile("deep", max_examples=2000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def now():
    """A fixed moment; the engine takes `now` as an argument."""
    return NOW


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts as a new process would: no cached definitions, counters or
    sessions, and nothing held in memory, so no test passes or fails by what ran before."""
    cache.clear()
    eligibility._in_process.clear()
    eligibility._workspace_of_key.clear()
    memo.answers.clear()
    widget_api._admitted.clear()
    # A browser test before this one may have turned the time budget's SQLite progress
    # handler off (tests/browser/conftest.py): the next budgeted query puts it back.
    connection.refiner_progress_for = None


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Outsider")


@pytest.fixture
def api(workspace):
    return ApiClient(workspace.secret_key)


@pytest.fixture
def outsider_api(other_workspace):
    return ApiClient(other_workspace.secret_key)


@pytest.fixture
def widget(workspace) -> Widget:
    return Widget(workspace)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2 costs seconds per user on this machine; tests need no strong hashes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(workspace) -> Client:
    """A dashboard client signed in as an owner of `workspace`."""
    return signed_in(workspace, "owner")


@pytest.fixture
def viewer(workspace) -> Client:
    return signed_in(workspace, "viewer")


@pytest.fixture
def outsider(other_workspace) -> Client:
    """An owner, but of another workspace."""
    return signed_in(other_workspace, "owner")


@pytest.fixture
def no_rate_limits(settings):
    """For tests that send more requests a minute than any client would, to check what
    happens to the data; tests/test_security_ratelimit.py checks the limits."""
    settings.RATE_LIMIT_WIDGET_PER_MINUTE = 0
    settings.RATE_LIMIT_REST_PER_MINUTE = 0


@pytest.fixture
def patient_widget(settings):
    """Threads queueing for one row lock wait longer than the widget's 1 s budget on a
    small machine; race tests are about nothing being lost, not about latency
    (tests/test_time_budget.py checks the budget)."""
    settings.WIDGET_TIME_BUDGET_MS = 60_000


@pytest.fixture(autouse=True)
def no_wrong_key_limit(settings):
    """The suite sends many wrong keys from one address within a minute, and the counter
    would carry from test to test; tests/test_security_ratelimit.py turns it on."""
    settings.RATE_LIMIT_INVALID_KEY_PER_MINUTE = 0


@pytest.fixture(autouse=True)
def no_budget_after_the_test():
    """A request leaves its budget on the connection, as it should on a server; the
    test's own clean-up (flush) runs outside any request, so it gets no limit."""
    yield
    if connection.connection is not None and not connection.in_atomic_block:
        unlimited_outside_requests(None, connection)


@pytest.fixture
def receiver():
    """A local HTTP receiver of webhook deliveries, on a free port of 127.0.0.1."""
    found = Receiver()
    server = start_receiver(found)
    yield found
    if found.hang is not None:
        found.hang.set()  # a test's held requests end before the server stops
    server.shutdown()
    server.server_close()

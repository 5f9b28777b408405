"""Two app servers on one PostgreSQL and one Redis, as docs/scaling.md adds them.

Two production gunicorns (tests/servers.py) share the test database and a Redis
database of their own: what changes through one is offered by the other at once (each
process keeps the workspace's definitions in memory, versioned in the workspace
row), and the widget's rate limit is one count across both. PostgreSQL only: two
processes writing one SQLite file is not a deployment. Without Redis the tests skip,
unless REFINER_REQUIRE_REDIS=1 (CI).
"""

import json
import os
import time

import pytest
import redis
from django.db import connection

from refiner.models import Workspace
from segments.models import Segment
from targeting.models import Targeting
from tests import servers
from tests.factories import ContactFactory, MembershipFactory, SegmentFactory, SurveyFactory
from tests.served_dashboard import dashboard, signed_in_session
from tests.servers import call, gunicorn, served_database

static_root = servers.static_root
# As nginx says it of every request: without it, production redirects to HTTPS.
THROUGH_HTTPS = {"X-Forwarded-Proto": "https"}
# A Redis database apart from development's (0) and production's examples.
REDIS_URL = "redis://127.0.0.1:6379/11"
LIMIT = 6


@pytest.fixture
def two_nodes(transactional_db, tmp_path, request, static_root):
    """Ports of servers A and B, and the keys of the workspace they serve."""
    if connection.vendor != "postgresql":
        pytest.skip("Several app servers share a PostgreSQL database; SQLite is one process's.")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        if os.environ.get("REFINER_REQUIRE_REDIS") == "1":
            pytest.fail(f"two-node tests are required (REFINER_REQUIRE_REDIS=1): no Redis ({e})")
        pytest.skip(f"no Redis at {REDIS_URL} ({e})")
    url, keys = served_database(tmp_path, request)
    shared = {
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_WIDGET_PER_MINUTE": str(LIMIT),
        # A loaded CI machine must not turn a slow call into a 503: budgets are not tested here.
        "WIDGET_TIME_BUDGET_MS": "10000",
        "DB_CONNECT_TIMEOUT": "10",
    }
    with (
        gunicorn(tmp_path, url, static_root, settings=shared) as a,
        gunicorn(tmp_path, url, static_root, settings=shared) as b,
    ):
        yield a, b, keys


def widget(port: int, endpoint: str, body: dict) -> tuple[int, dict]:
    status, _, raw = call(
        f"http://localhost:{port}/api/v1/widget/{endpoint}",
        "POST",
        body=body,
        headers=THROUGH_HTTPS,
    )
    return status, json.loads(raw)


def offered(port: int, keys: dict, user_id: str) -> list[str]:
    status, body = widget(
        port, "eligibility", {"workspace": keys["widget_key"], "user_id": user_id}
    )
    assert status == 200, body
    return [survey["name"] for survey in body["surveys"]]


def test_what_changes_through_one_server_is_offered_by_the_other_at_once(two_nodes, settings):
    a, b, keys = two_nodes
    workspace = Workspace.objects.get(widget_key=keys["widget_key"])
    ContactFactory(workspace=workspace, user_id="ada")
    beta = SegmentFactory(workspace=workspace, name="Beta", kind=Segment.MANUAL, rules=None)
    for_beta = SurveyFactory(
        workspace=workspace, name="Beta feedback", targeting={"audience": Targeting.SEGMENTS}
    )
    for_beta.targeting.segments.add(beta)
    launch = SurveyFactory(workspace=workspace, name="Launch NPS")
    # B holds the definitions in memory from here on.
    assert offered(b, keys, "ada") == ["Launch NPS"]

    # A segment changed through A's REST API...
    status, _, _ = call(
        f"http://localhost:{a}/api/v1/segments/{beta.pk}/members",
        "POST",
        body={"user_ids": ["ada"]},
        headers={"Authorization": f"Bearer {keys['secret_key']}"} | THROUGH_HTTPS,
    )
    assert status == 200
    assert sorted(offered(b, keys, "ada")) == ["Beta feedback", "Launch NPS"]

    # ...and a survey paused in A's dashboard: B stops offering it on its next call.
    session = signed_in_session(settings, MembershipFactory(workspace=workspace, role="owner").user)
    status, location, _ = dashboard(
        a, "POST", f"/surveys/{launch.pk}/status/", session, {"status": "paused"}
    )
    assert (status, location) == (302, f"/surveys/{launch.pk}/")
    assert offered(b, keys, "ada") == ["Beta feedback"]


def test_the_widget_rate_limit_counts_calls_to_both_servers(two_nodes):
    a, b, keys = two_nodes
    # The count is per minute: start well inside one.
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    body = {"workspace": keys["widget_key"], "user_id": "ada", "event": "opened"}
    statuses = [widget(port, "track", body)[0] for port in [a, b] * (LIMIT // 2)]
    assert statuses == [202] * LIMIT
    # Each server has seen only half the limit; together they have seen all of it.
    assert widget(a, "track", body)[0] == 429
    assert widget(b, "track", body)[0] == 429

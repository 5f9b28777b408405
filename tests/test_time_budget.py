"""Time budgets (SPEC §5): 1 s for widget calls, 10 s for the rest; past it, 503 `timeout`.

The budgets are lowered through settings and a slow query is run by test-only
views (PostgreSQL's pg_sleep; on SQLite a recursive count that runs for seconds),
under the widget, REST and dashboard prefixes, next to the real URLconf.
"""

import time

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import include, path

from refiner.budget import Budget
from refiner.http import api
from segments.models import Contact
from tests.clients import timed
from tests.factories import MembershipFactory, SegmentFactory, SurveyFactory, WorkspaceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

POSTGRES = connection.vendor == "postgresql"


def slow_query(seconds: float) -> None:
    with connection.cursor() as cursor:
        if POSTGRES:
            cursor.execute("SELECT pg_sleep(%s)", [seconds])
        else:
            # About 1.5 million rows a second on this machine's kind of CPU; five times
            # that many, so that a faster CPU still runs past the budgets under test.
            cursor.execute(
                "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %s) "
                "SELECT count(*) FROM n",
                [int(seconds * 7_500_000)],
            )
            cursor.fetchone()


@api(["POST", "GET"])
def slow(request: HttpRequest) -> JsonResponse:
    slow_query(float(request.GET.get("seconds", "2")))
    return JsonResponse({"done": True})


@api(["POST"])
def slow_write(request: HttpRequest) -> JsonResponse:
    workspace = WorkspaceFactory._meta.model.objects.get(widget_key=request.GET["key"])
    with transaction.atomic():
        Contact.objects.create(workspace=workspace, user_id="written-before-the-slow-query")
        slow_query(2)
    return JsonResponse({"done": True})


def late_query(request: HttpRequest) -> JsonResponse:
    time.sleep(0.2)  # the budget runs out in Python, before the query starts
    return JsonResponse({"contacts": Contact.objects.count()})


@api(["GET"])
def two_slow(request: HttpRequest) -> JsonResponse:
    seconds = float(request.GET["seconds"])
    slow_query(seconds)
    slow_query(seconds)
    return JsonResponse({"done": True})


def slow_page(request: HttpRequest) -> JsonResponse:
    slow_query(2)
    return JsonResponse({"done": True})


urlpatterns = [
    path("api/v1/widget/test-slow", slow),
    path("api/v1/widget/test-slow-write", slow_write),
    path("api/v1/widget/test-late-query", api(["GET"])(late_query)),
    path("api/v1/test-slow", slow),
    path("api/v1/test-two-slow", two_slow),
    path("test-slow/", slow_page),
    path("", include(django_settings.ROOT_URLCONF)),
]


@pytest.fixture
def lenient() -> Client:
    return Client(raise_request_exception=False)


def assert_timeout(response) -> None:
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "timeout"


@pytest.mark.parametrize(
    ("budget", "method", "path"),
    [
        ("WIDGET_TIME_BUDGET_MS", "post", "/api/v1/widget/test-slow"),
        ("REQUEST_TIME_BUDGET_MS", "get", "/api/v1/test-slow"),
    ],
    ids=["widget", "rest"],
)
def test_a_slow_query_stops_at_its_budget(settings, lenient, budget, method, path):
    setattr(settings, budget, 100)

    response, seconds = timed(lambda: getattr(lenient, method)(path))

    assert_timeout(response)
    assert seconds < 1.5


def test_a_slow_dashboard_page_shows_the_timeout_page(settings, lenient):
    settings.REQUEST_TIME_BUDGET_MS = 100

    response, seconds = timed(lambda: lenient.get("/test-slow/"))

    assert response.status_code == 503
    assert "Taking too long" in response.content.decode()
    assert seconds < 1.5


def test_a_request_that_timed_out_wrote_nothing(settings, lenient):
    settings.WIDGET_TIME_BUDGET_MS = 100
    workspace = WorkspaceFactory()

    response = lenient.post(f"/api/v1/widget/test-slow-write?key={workspace.widget_key}")

    assert_timeout(response)
    assert not Contact.objects.filter(workspace=workspace).exists()


@pytest.mark.skipif(not POSTGRES, reason="statement_timeout is PostgreSQL's")
def test_a_late_statement_gets_only_what_the_request_has_left(settings, lenient):
    """Two statements of 0.6 s each fit a 1 s limit apiece, but not a 1 s request."""
    settings.REQUEST_TIME_BUDGET_MS = 1000

    response, seconds = timed(lambda: lenient.get("/api/v1/test-two-slow?seconds=0.6"))

    assert_timeout(response)
    assert seconds < 1.5


def test_a_query_started_after_the_deadline_is_refused(settings, lenient):
    settings.WIDGET_TIME_BUDGET_MS = 100

    assert_timeout(lenient.get("/api/v1/widget/test-late-query"))


def test_budgets_that_overlap_on_one_connection_leave_none_behind():
    # A live-server test shares one SQLite connection between request threads, so two
    # requests' budgets can begin and end interleaved: the first one's must not outlive
    # both and interrupt every later query once its deadline passes.
    first, second = Budget(50).applied(), Budget(10_000).applied()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    time.sleep(0.1)  # the first budget's deadline passes

    assert getattr(connection, "refiner_budget", None) is None
    slow_query(0.2)  # runs to its end: no budget is left on the connection


def test_a_nested_budget_gives_the_outer_one_back_to_the_next_query(settings):
    with Budget(100).applied():
        with Budget(10_000).applied():
            slow_query(0.01)
        with pytest.raises(Exception) as stopped:
            slow_query(2)
    assert "interrupted" in str(stopped.value) or "statement timeout" in str(stopped.value)


def test_each_request_class_gets_its_own_budget_on_one_connection(settings, lenient):
    """Widget, then REST, then widget again on the same connection: the budget follows."""
    settings.WIDGET_TIME_BUDGET_MS = 100
    settings.REQUEST_TIME_BUDGET_MS = 5000

    first = lenient.post("/api/v1/widget/test-slow?seconds=0.3")
    rest = lenient.get("/api/v1/test-slow?seconds=0.3")
    again = lenient.post("/api/v1/widget/test-slow?seconds=0.3")

    assert_timeout(first)
    assert rest.status_code == 200
    assert_timeout(again)


def statement_timeout() -> tuple[str, str]:
    """The connection's statement_timeout and where it came from ("client": its options)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting, source FROM pg_settings WHERE name = 'statement_timeout'")
        return cursor.fetchone()


@pytest.mark.skipif(not POSTGRES, reason="statement_timeout is PostgreSQL's")
def test_a_widget_call_on_a_fresh_connection_needs_no_set(lenient):
    """Connections open with the widget's budget, so the hot path sends no SET."""
    workspace = WorkspaceFactory()
    connection.close()

    response = lenient.post(
        "/api/v1/widget/identify",
        {"workspace": workspace.widget_key, "user": {"id": "u-1"}},
        content_type="application/json",
    )

    assert response.status_code == 200
    assert statement_timeout() == ("1000", "client")


@pytest.mark.skipif(not POSTGRES, reason="statement_timeout is PostgreSQL's")
def test_commands_and_migrations_run_without_a_budget():
    connection.close()

    assert statement_timeout() == ("0", "session")


@pytest.fixture
def owner_client(settings):
    membership = MembershipFactory()
    client = Client(raise_request_exception=False)
    client.force_login(membership.user)
    settings.REQUEST_TIME_BUDGET_MS = 0  # spent before the first query starts
    return client, membership.workspace


def test_the_segment_preview_answers_the_timeout_page_not_a_500(owner_client):
    client, _ = owner_client

    response = client.post(
        "/segments/preview/",
        {"rules": '{"type": "group", "match": "all", "conditions": []}'},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 503
    assert "Taking too long" in response.content.decode()


def test_the_targeting_estimate_answers_the_timeout_page_not_a_500(owner_client):
    client, workspace = owner_client
    survey = SurveyFactory(workspace=workspace)
    segment = SegmentFactory(workspace=workspace)

    response = client.get(
        f"/surveys/{survey.pk}/targeting/",
        {"audience": "segments", "segments": segment.pk},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 503
    assert "Taking too long" in response.content.decode()

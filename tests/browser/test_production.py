"""The widget flow against the production configuration, in a real browser.

tests/servers.py starts gunicorn with two workers, DEBUG off, a real SECRET_KEY and the
static files collected (hashed names, WhiteNoise), on the suite's test database (on
SQLite a file copy, which gunicorn's processes can open). The flow runs twice: on
gunicorn itself, and as docs/deploy.md deploys it, behind deploy/'s nginx site over
HTTPS (a self-signed certificate, which the browser context accepts). The customer's
page is on another origin, a small server on loopback (Chromium keeps pages of other
address spaces away from loopback), so the widget's script and its API calls are all
cross-origin. The survey is made through the REST API, as a customer would.
"""

import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings

from tests import servers
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_widget import ENTERPRISE, HOST_PAGE, QUESTIONS, card

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
METRICS_TOKEN = secrets.token_urlsafe(24)
# dashboard.css's page background (--bg); without the stylesheet the body is transparent.
DASHBOARD_BACKGROUND = "rgb(246, 247, 251)"

sqlite_template = servers.sqlite_template
static_root = servers.static_root


@dataclass
class Refiner:
    """A running Refiner at the address its users reach, and a workspace's keys in it."""

    url: str
    database_url: str
    widget_key: str
    secret_key: str

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
        return servers.call(f"{self.url}{path}", headers=headers)

    def api(self, method: str, path: str, body=None) -> dict:
        """A REST call with the secret key; the JSON it answered, once it succeeded."""
        auth = {"Authorization": f"Bearer {self.secret_key}"}
        status, _, answer = servers.call(f"{self.url}{path}", method, body=body, headers=auth)
        assert status in (200, 201), answer
        return json.loads(answer)


def metrics(tmp_path: Path) -> dict:
    """The settings for /metrics: the two workers' counts add up in one directory."""
    (tmp_path / "metrics").mkdir()
    return {"METRICS_TOKEN": METRICS_TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}


@pytest.fixture
def production(tmp_path, request, static_root) -> Iterator[Refiner]:
    """gunicorn on its own, on plain HTTP; stopped after the test."""
    url, keys = servers.served_database(tmp_path, request)
    # Behind nginx the proxy says X-Forwarded-Proto: https; here nothing does.
    plain = metrics(tmp_path) | {"SECURE_SSL_REDIRECT": "false"}
    with servers.gunicorn(tmp_path, url, static_root, workers=2, settings=plain) as port:
        yield Refiner(f"http://localhost:{port}", url, keys["widget_key"], keys["secret_key"])


@pytest.fixture
def behind_nginx(tmp_path, request, static_root) -> Iterator[Refiner]:
    """deploy/'s nginx site over HTTPS in front of gunicorn; stopped after the test."""
    servers.check_nginx_available()  # before the database is made
    url, keys = servers.served_database(tmp_path, request)
    options = {"workers": 2, "settings": metrics(tmp_path)}
    with servers.behind_nginx(tmp_path, url, static_root, **options) as nginx:
        yield Refiner(nginx.url, url, keys["widget_key"], keys["secret_key"])


@pytest.fixture(params=["production", "behind_nginx"])
def refiner(request) -> Refiner:
    return request.getfixturevalue(request.param)


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh page that accepts the test nginx's self-signed certificate."""
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def enterprise_survey(refiner: Refiner) -> int:
    """A live survey for the Enterprise segment, shown after "report_exported"; its id."""
    rules = {"type": "group", "match": "all", "conditions": [ENTERPRISE]}
    segment = refiner.api("POST", "/api/v1/segments", {"name": "Enterprise", "rules": rules})
    targeting = {
        "audience": "segments",
        "segments": [segment["id"]],
        "trigger": "event",
        "trigger_event": "report_exported",
    }
    survey = {"name": "NPS", "status": "live", "questions": QUESTIONS, "targeting": targeting}
    return refiner.api("POST", "/api/v1/surveys", survey)["id"]


def customer_page(widget_key: str, widget_url: str) -> str:
    calls = "\n  ".join(
        [
            f"_refiner('setProject', {json.dumps(widget_key)});",
            '_refiner(\'identifyUser\', {"id": "u-42", "plan": "enterprise"});',
        ]
    )
    return HOST_PAGE.replace("%CSS%", "").replace("%CALLS%", calls).replace("%WIDGET%", widget_url)


def eligibility_answered(event: str | None):
    def wanted(response) -> bool:
        if not response.url.endswith("/api/v1/widget/eligibility"):
            return False
        return json.loads(response.request.post_data).get("event") == event

    return wanted


@pytest.fixture
def customer_site() -> Iterator[tuple[str, dict]]:
    """A customer's site on http://127.0.0.1:PORT, answering PAGES["/app"] for any path.

    Refiner is at http(s)://localhost:ITS_PORT: another origin, on loopback too.
    """
    pages: dict[str, str] = {}

    class Site(BaseHTTPRequestHandler):
        def do_GET(self):
            body = pages["/app"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


def test_the_widget_flow_on_gunicorn_with_debug_off(refiner, customer_site, page, page_errors):
    survey = enterprise_survey(refiner)
    site, pages = customer_site
    pages["/app"] = customer_page(refiner.widget_key, f"{refiner.url}/static/refiner/widget.js")

    with page.expect_response(eligibility_answered(None)) as first:
        page.goto(f"{site}/app")
    assert first.value.url.startswith(refiner.url)
    assert first.value.json() == {"surveys": []}, "the survey waits for its trigger event"
    with page.expect_response(eligibility_answered("report_exported")) as checked:
        page.click("#export")
    assert [s["id"] for s in checked.value.json()["surveys"]] == [survey]
    card(page).wait_for()
    page.get_by_role("button", name="9 of 10").click()
    page.get_by_text("2 / 2").wait_for()
    page.get_by_label("Reports").check()
    page.get_by_role("button", name="Submit").click()
    page.get_by_text("Thank you!").wait_for()
    page.wait_for_function("window.seen.completed.length === 1")

    [response] = refiner.api("GET", f"/api/v1/responses?survey={survey}")["results"]
    assert response["user_id"] == "u-42"
    assert response["completed"] is True
    assert response["answers"] == {"nps": 9, "used": "Reports"}
    assert page.evaluate("window.seen.errors") == []
    assert page_errors == []

    # Both workers' counts, summed through PROMETHEUS_MULTIPROC_DIR.
    status, _, body = refiner.get("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200
    assert (
        'refiner_eligibility_decisions_total{reason="offered",route="widget-eligibility"} 1.0'
        in body.decode()
    )


def owner_with_a_password(refiner: Refiner) -> tuple[str, str]:
    """The owner of a new workspace, made by the commands an operator runs; (email, password)."""
    email, password = "owner@example.com", secrets.token_urlsafe(12)
    servers.manage(refiner.database_url, "create_workspace", "Signed in", "--owner", email)
    servers.manage(
        refiner.database_url,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"user = get_user_model().objects.get(email={email!r}); "
        f"user.set_password({password!r}); user.save()",
    )
    return email, password


def test_the_dashboard_is_served_styled_through_nginx(behind_nginx, page, page_errors):
    shown = page.goto(f"{behind_nginx.url}/login/")

    assert shown.status == 200
    sheets = page.evaluate("[...document.styleSheets].map((s) => s.href)")
    assert any(s.startswith(f"{behind_nginx.url}/static/refiner/dashboard.") for s in sheets)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == DASHBOARD_BACKGROUND
    assert page.evaluate("getComputedStyle(document.body).marginTop") == "0px"
    assert page_errors == []


def test_an_owner_signs_in_to_the_dashboard_through_nginx(behind_nginx, page):
    email, password = owner_with_a_password(behind_nginx)
    page.goto(f"{behind_nginx.url}/login/")

    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(password)
    # The form's CSRF check passes over HTTPS, and the secure session cookie comes back.
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert "/login/" not in page.url
    assert page.get_by_text("Signed in").count() >= 1
    [session] = [c for c in page.context.cookies() if c["name"] == "sessionid"]
    assert session["secure"] is True


def test_the_widget_has_a_stable_short_lived_cross_origin_address(production):
    status, headers, body = production.get("/static/refiner/widget.js")

    assert status == 200
    assert body == (BASE_DIR / "static" / "refiner" / "widget.js").read_bytes()
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Type"].startswith("text/javascript")
    etag = headers["ETag"]
    assert production.get("/static/refiner/widget.js", {"If-None-Match": etag})[0] == 304
    _, zipped, _ = production.get("/static/refiner/widget.js", {"Accept-Encoding": "gzip"})
    assert zipped["Content-Encoding"] == "gzip"


def test_the_dashboard_links_hashed_assets_cached_for_good(production):
    status, _, body = production.get("/login/")
    assert status == 200
    page = body.decode()

    for prefix in ("/static/refiner/dashboard.", "/static/django_htmx/htmx"):
        start = page.index(prefix)
        asset = page[start : page.index('"', start)]
        assert asset.count(".") >= 2, f"{asset} has a content hash in its name"
        status, headers, _ = production.get(asset)
        assert status == 200, asset
        assert "immutable" in headers["Cache-Control"]

"""The widget flow against the production configuration, in a real browser.

A gunicorn with two workers, DEBUG off, a real SECRET_KEY and the static files collected
(hashed names, WhiteNoise) into a temporary STATIC_ROOT, on a free loopback port and on
the suite's test database. The customer's page is on another origin, a small server on
loopback (Chromium keeps pages of other address spaces away from loopback), so the
widget's script and its API calls are all cross-origin.

PostgreSQL only: on SQLite the suite's test database lives in this process's memory,
out of gunicorn's reach.
"""

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from surveys.models import Response
from tests.browser.test_widget import ENTERPRISE, HOST_PAGE, QUESTIONS, card, closed_port
from tests.factories import SegmentFactory, SurveyFactory, WorkspaceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent
METRICS_TOKEN = secrets.token_urlsafe(24)


def database_url() -> str:
    db = connection.settings_dict  # during the test: the test database
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def production(tmp_path, transactional_db) -> Iterator[str]:
    """The URL of a production gunicorn on the test database; stopped after the test."""
    if connection.vendor != "postgresql":
        pytest.skip(
            "needs PostgreSQL (DATABASE_URL): the SQLite test database is in memory, "
            "which gunicorn's processes cannot open"
        )
    port = closed_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "refiner.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback; behind nginx the proxy sends X-Forwarded-Proto instead.
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": database_url(),
        # No connection outlives a request, so the test database can be dropped afterwards.
        "CONN_MAX_AGE": "0",
        "STATIC_ROOT": str(tmp_path / "static"),
        "METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "LOG_LEVEL": "WARNING",
    }
    (tmp_path / "metrics").mkdir()
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert collected.returncode == 0, collected.stderr
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "refiner.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                if get(f"{url}/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def survey():
    workspace = WorkspaceFactory(name="Acme Analytics")
    enterprise = SegmentFactory(
        workspace=workspace,
        name="Enterprise",
        rules={"type": "group", "match": "all", "conditions": [ENTERPRISE]},
    )
    survey = SurveyFactory(
        workspace=workspace,
        questions=QUESTIONS,
        targeting={"audience": "segments", "trigger": "event", "trigger_event": "report_exported"},
    )
    survey.targeting.segments.add(enterprise)
    return survey


def customer_page(workspace, widget_url: str) -> str:
    calls = "\n  ".join(
        [
            f"_refiner('setProject', {json.dumps(workspace.widget_key)});",
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
    """A customer's site on http://localhost:PORT, answering PAGES["/app"] for any path."""
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
    yield f"http://localhost:{server.server_address[1]}", pages
    server.shutdown()
    server.server_close()


def test_the_widget_flow_on_gunicorn_with_debug_off(
    production, customer_site, page, survey, page_errors
):
    site, pages = customer_site
    pages["/app"] = customer_page(survey.workspace, f"{production}/static/refiner/widget.js")

    with page.expect_response(eligibility_answered(None)) as first:
        page.goto(f"{site}/app")
    assert first.value.json() == {"surveys": []}, "the survey waits for its trigger event"
    with page.expect_response(eligibility_answered("report_exported")) as checked:
        page.click("#export")
    assert [s["id"] for s in checked.value.json()["surveys"]] == [survey.pk]
    card(page).wait_for()
    page.get_by_role("button", name="9 of 10").click()
    page.get_by_text("2 / 2").wait_for()
    page.get_by_label("Reports").check()
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Thank you!").wait_for()
    page.wait_for_function("window.seen.completed.length === 1")

    response = Response.objects.get(survey=survey)
    assert response.contact.user_id == "u-42"
    assert response.completed is True
    assert response.answers == {"nps": 9, "used": "Reports"}
    assert page.evaluate("window.seen.errors") == []
    assert page_errors == []

    # Both workers' counts, summed through PROMETHEUS_MULTIPROC_DIR.
    status, _, body = get(f"{production}/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert status == 200
    assert (
        'refiner_eligibility_decisions_total{reason="offered",route="widget-eligibility"} 1.0'
        in body.decode()
    )


def test_the_widget_has_a_stable_short_lived_cross_origin_address(production):
    status, headers, body = get(f"{production}/static/refiner/widget.js")

    assert status == 200
    assert body == (BASE_DIR / "static" / "refiner" / "widget.js").read_bytes()
    assert headers["Cache-Control"] == "public, max-age=300"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Content-Type"].startswith("text/javascript")
    etag = headers["ETag"]
    assert get(f"{production}/static/refiner/widget.js", {"If-None-Match": etag})[0] == 304
    _, zipped, _ = get(f"{production}/static/refiner/widget.js", {"Accept-Encoding": "gzip"})
    assert zipped["Content-Encoding"] == "gzip"


def test_the_dashboard_links_hashed_assets_cached_for_good(production):
    status, _, body = get(f"{production}/login/")
    assert status == 200
    page = body.decode()

    for prefix in ("/static/refiner/dashboard.", "/static/django_htmx/htmx"):
        start = page.index(prefix)
        asset = page[start : page.index('"', start)]
        assert asset.count(".") >= 2, f"{asset} has a content hash in its name"
        status, headers, _ = get(f"{production}{asset}")
        assert status == 200, asset
        assert "immutable" in headers["Cache-Control"]

"""deploy/nginx-refiner.conf, run for real: Debian's nginx in front of gunicorn.

tests/servers.py starts both: the shipped site with only its ports, certificate and
upstream replaced, and gunicorn on the test database with the production settings of
deploy/refiner.env.example (DEBUG off). These tests speak plain HTTP clients to it;
tests/browser/test_production.py runs the widget in Chromium through the same stack.
Without nginx the tests skip, unless REFINER_REQUIRE_NGINX=1 (CI), where that is a failure.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import servers

WIDGET_LIMIT = 3
ORIGIN = "https://app.customer.example"

pytestmark = pytest.mark.django_db(transaction=True)

sqlite_template = servers.sqlite_template
static_root = servers.static_root


@dataclass
class Stack:
    nginx: servers.Nginx
    widget_key: str
    secret_key: str

    def request(self, method: str, path: str, *, tls: bool = True, body=None,
                headers: dict | None = None, source: str = "127.0.0.1"):  # fmt: skip
        """One request to nginx from loopback address `source`; (status, headers, body)."""
        base = self.nginx.url if tls else f"http://localhost:{self.nginx.http_port}"
        return servers.call(f"{base}{path}", method, body=body, headers=headers, source=source)

    def identify(self, user_id: str, **kwargs):
        body = {"workspace": self.widget_key, "user": {"id": user_id}}
        return self.request("POST", "/api/v1/widget/identify", body=body, **kwargs)


@pytest.fixture
def stack(tmp_path: Path, request, static_root: Path) -> Iterator[Stack]:
    """nginx (deploy/'s site) in front of one gunicorn worker on the test database."""
    servers.check_nginx_available()  # before the database is made
    url, keys = servers.served_database(tmp_path, request)
    # One worker: the test's minute-long counters all live in its memory.
    limit = {"RATE_LIMIT_WIDGET_PER_MINUTE": str(WIDGET_LIMIT)}
    with servers.behind_nginx(tmp_path, url, static_root, settings=limit) as nginx:
        yield Stack(nginx, keys["widget_key"], keys["secret_key"])


def test_the_widget_script_is_served_through_nginx_to_any_origin(stack):
    status, headers, body = stack.request(
        "GET", "/static/refiner/widget.js", headers={"Origin": ORIGIN}
    )
    assert status == 200
    assert "javascript" in headers["Content-Type"]
    assert headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert b"_refinerQueue" in body


def test_a_widget_call_through_nginx_gets_the_cors_header_of_an_allowed_origin(stack):
    auth = {"Authorization": f"Bearer {stack.secret_key}"}
    status, _, _ = stack.request(
        "PATCH", "/api/v1/workspace", body={"allowed_origins": [ORIGIN]}, headers=auth
    )
    assert status == 200
    status, headers, body = stack.identify("u-1", headers={"Origin": ORIGIN})
    assert status == 200, body
    assert json.loads(body)["contact"]["user_id"] == "u-1"
    assert headers["Access-Control-Allow-Origin"] == ORIGIN


def test_widget_rate_limits_count_the_address_nginx_saw_not_the_clients_header(stack):
    for n in range(WIDGET_LIMIT):
        status, _, body = stack.identify(f"u-{n}", source="127.0.0.2")
        assert status == 200, body
    # A client that makes up its own X-Forwarded-For is still counted as itself.
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9"}
    status, headers, body = stack.identify("u-x", source="127.0.0.2", headers=spoofed)
    assert status == 429, body
    assert json.loads(body)["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) > 0
    # Another address has its own counter.
    status, _, body = stack.identify("u-y", source="127.0.0.3")
    assert status == 200, body


def test_plain_http_is_redirected_to_https_even_when_the_client_claims_https(stack):
    for headers in ({}, {"X-Forwarded-Proto": "https"}):
        status, response_headers, _ = stack.request(
            "GET", "/login/?next=/segments/", tls=False, headers=headers
        )
        assert status == 301
        assert response_headers["Location"] == "https://localhost/login/?next=/segments/"


def test_the_dashboard_login_page_is_served_over_https_without_a_redirect(stack):
    status, headers, body = stack.request("GET", "/login/")
    assert status == 200, headers
    assert b'name="password"' in body
    assert "Strict-Transport-Security" in headers
    assert "secure" in headers["Set-Cookie"].lower()

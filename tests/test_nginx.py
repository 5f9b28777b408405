"""deploy/nginx-refiner.conf, run for real: Debian's nginx in front of gunicorn.

The site file is used as shipped, with only its ports, certificate and upstream
address replaced: free loopback ports, a self-signed certificate made with
openssl in a temporary directory, and gunicorn started on the test database with
the production settings of deploy/refiner.env.example (DEBUG off). Without nginx
the tests skip, unless REFINER_REQUIRE_NGINX=1 (CI), where that is a failure.
"""

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import WorkspaceFactory

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx-refiner.conf"
ENV_EXAMPLE = ROOT / "deploy" / "refiner.env.example"
NGINX = "/usr/sbin/nginx"
WIDGET_LIMIT = 3
ORIGIN = "https://app.customer.example"
# The suite's own settings force DEBUG on; the processes here run production's.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "refiner.settings",
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
}

pytestmark = pytest.mark.django_db(transaction=True)


def _unavailable(reason: str) -> None:
    if os.environ.get("REFINER_REQUIRE_NGINX") == "1":
        pytest.fail(f"nginx tests are required (REFINER_REQUIRE_NGINX=1): {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {process.stderr.read().decode()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} within {seconds} s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile reads the example."""
    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> tuple[Path, dict]:
    """An SQLite file with every table and one workspace, made once: migrating costs seconds."""
    path = tmp_path_factory.mktemp("nginx-db") / "template.sqlite3"
    url = f"sqlite:///{path}"
    manage(url, "migrate", "--noinput")
    return path, json.loads(manage(url, "create_workspace", "Through nginx"))


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    """What `manage.py collectstatic` writes for WhiteNoise, made once."""
    path = tmp_path_factory.mktemp("static_root")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT,
        env=os.environ | PRODUCTION | {"STATIC_ROOT": str(path)},
        check=True,
        capture_output=True,
    )
    return path


def served_database(tmp_path: Path, request) -> tuple[str, dict]:
    """The database gunicorn serves and the keys of a workspace in it."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        # The test database itself: rows committed here (transaction=True) are
        # what gunicorn reads.
        workspace = WorkspaceFactory(name="Through nginx")
        auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        url = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        return url, {"widget_key": workspace.widget_key, "secret_key": workspace.secret_key}
    # Another process cannot open SQLite's in-memory test database: gunicorn gets
    # a copy of a file made by the same commands docs/deploy.md runs.
    template, keys = request.getfixturevalue("sqlite_template")
    path = tmp_path / "refiner.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}", keys


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def site_config(http_port: int, https_port: int, app_port: int, cert: Path, key: Path) -> str:
    """The shipped site with local ports and certificate; everything else as written."""
    site = SITE.read_text()
    replacements = [
        (r"listen 80;", f"listen 127.0.0.1:{http_port};"),
        (r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        (r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{app_port};"),
        (r"ssl_certificate \S+;", f"ssl_certificate {cert};"),
        (r"ssl_certificate_key \S+;", f"ssl_certificate_key {key};"),
    ]
    for pattern, value in replacements:
        site, count = re.subn(pattern, value, site)
        assert count == 1, f"deploy/nginx-refiner.conf no longer has `{pattern}`"
    return site


def nginx_config(directory: Path, site: Path) -> str:
    """A main nginx.conf that keeps every file nginx writes in `directory`."""
    return f"""
daemon off;
master_process on;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {directory}/access.log;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;
    include {site};
}}
"""


@dataclass
class Stack:
    http_port: int
    https_port: int
    widget_key: str
    secret_key: str

    def request(self, method: str, path: str, *, tls: bool = True, body=None,
                headers: dict | None = None, source: str = "127.0.0.1"):  # fmt: skip
        """One request to nginx from loopback address `source`; (status, headers, body)."""
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(
                "127.0.0.1", self.https_port, timeout=15, context=context,
                source_address=(source, 0),
            )  # fmt: skip
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", self.http_port, timeout=15, source_address=(source, 0)
            )
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"Host": "localhost", **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def identify(self, user_id: str, **kwargs):
        body = {"workspace": self.widget_key, "user": {"id": user_id}}
        return self.request("POST", "/api/v1/widget/identify", body=body, **kwargs)


def manage(url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=os.environ | PRODUCTION | {"DATABASE_URL": url},
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


@pytest.fixture
def stack(tmp_path: Path, request, static_root: Path) -> Iterator[Stack]:
    """nginx (deploy/'s site) in front of gunicorn (the example environment) on the test DB."""
    if not os.access(NGINX, os.X_OK):
        _unavailable(f"nginx is not installed at {NGINX} (apt-get install -y nginx)")
    if shutil.which("openssl") is None:
        _unavailable("openssl is not installed")
    url, keys = served_database(tmp_path, request)
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    environment = (
        PRODUCTION
        | env_file(ENV_EXAMPLE)
        | {
            "DATABASE_URL": url,
            "STATIC_ROOT": str(static_root),
            "ALLOWED_HOSTS": "localhost",
            "CSRF_TRUSTED_ORIGINS": f"https://localhost:{https_port}",
            "RATE_LIMIT_WIDGET_PER_MINUTE": str(WIDGET_LIMIT),
            "LOG_LEVEL": "WARNING",
            # The test's minute-long counters stay in this one worker's memory.
            "REDIS_URL": "",
        }
    )
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "refiner.wsgi",
         "--bind", f"127.0.0.1:{app_port}", "--workers", "1"],
        cwd=ROOT,
        env=os.environ | environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    nginx = None
    try:
        wait_for_port(app_port, gunicorn, "gunicorn")
        cert, key = self_signed_certificate(tmp_path)
        site = tmp_path / "refiner-site.conf"
        site.write_text(site_config(http_port, https_port, app_port, cert, key))
        main = tmp_path / "nginx.conf"
        main.write_text(nginx_config(tmp_path, site))
        nginx = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(main), "-e", str(tmp_path / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(https_port, nginx, "nginx")
        yield Stack(http_port, https_port, keys["widget_key"], keys["secret_key"])
    finally:
        if nginx is not None:
            stop(nginx)
        stop(gunicorn)


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

"""Refiner as production runs it, for the tests that need real servers.

gunicorn with the production settings of deploy/refiner.env.example (DEBUG off, a
real SECRET_KEY, the static files collected for WhiteNoise), on the suite's test
database, and optionally Debian's nginx in front of it, configured from
deploy/nginx-refiner.conf as shipped with only its ports, certificate and upstream
replaced: free loopback ports and a self-signed certificate made with openssl.

tests/test_nginx.py and tests/browser/test_production.py start their servers here,
so both run the same production. Without nginx the tests that need it skip, unless
REFINER_REQUIRE_NGINX=1 (CI), where that is a failure.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection

from tests.factories import WorkspaceFactory

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "deploy" / "nginx-refiner.conf"
ENV_EXAMPLE = ROOT / "deploy" / "refiner.env.example"
NGINX = "/usr/sbin/nginx"
GUNICORN = Path(sys.executable).parent / "gunicorn"
# The suite's own settings force DEBUG on; the processes here run production's.
PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "refiner.settings",
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
}


def nginx_unavailable(reason: str) -> None:
    if os.environ.get("REFINER_REQUIRE_NGINX") == "1":
        pytest.fail(f"nginx tests are required (REFINER_REQUIRE_NGINX=1): {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} within 30 s")


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


def call(url: str, method: str = "GET", *, body=None, headers: dict | None = None,
         source: str | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:  # fmt: skip
    """One request, from loopback address `source` if given; (status, headers, body).

    The certificate is not checked: the tests' nginx has a self-signed one.
    """
    parts = urlsplit(url)
    # The servers listen on 127.0.0.1 only; the name is what the Host header says.
    address = ("127.0.0.1", parts.port)
    options = {"timeout": 15, "source_address": (source, 0) if source else None}
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(*address, context=context, **options)
    else:
        conn = http.client.HTTPConnection(*address, **options)
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Host": parts.hostname, **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        # The message, not a dict: header names are case-insensitive (granian sends them
        # in lower case, gunicorn capitalised).
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> tuple[Path, dict]:
    """An SQLite file with every table and one workspace, made once: migrating costs seconds."""
    path = tmp_path_factory.mktemp("served-db") / "template.sqlite3"
    url = f"sqlite:///{path}"
    manage(url, "migrate", "--noinput")
    return path, json.loads(manage(url, "create_workspace", "Served"))


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
    """The database gunicorn serves and the keys of a workspace in it.

    Needs a transactional test (transaction=True): the server's processes see only
    committed rows.
    """
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        # The test database itself: rows committed here are what gunicorn reads.
        workspace = WorkspaceFactory(name="Served")
        auth = (db["USER"] or "postgres") + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        url = f"postgres://{auth}@{host}:{port}/{db['NAME']}"
        return url, {"widget_key": workspace.widget_key, "secret_key": workspace.secret_key}
    # Another process cannot open SQLite's in-memory test database: gunicorn gets
    # a copy of a file made by the same commands docs/deploy.md runs.
    template, keys = request.getfixturevalue("sqlite_template")
    path = tmp_path / "refiner.sqlite3"
    shutil.copy(template, path)
    return f"sqlite:///{path}", keys


# REFINER_TEST_SERVER=granian runs the served tests (nginx, two nodes) against granian's
# WSGI server instead, to see whether everything holds behind it (docs/benchmarks.md).
TEST_SERVER = os.environ.get("REFINER_TEST_SERVER", "gunicorn")


def server_command(port: int, workers: int) -> list[str]:
    if TEST_SERVER == "granian":
        granian = Path(sys.executable).parent / "granian"
        options = f"--interface wsgi --host 127.0.0.1 --port {port} --workers {workers}"
        return [
            str(granian),
            *options.split(),
            "--blocking-threads",
            "1",
            "refiner.wsgi:application",
        ]
    return [str(GUNICORN), "refiner.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]


@contextmanager
def gunicorn(directory: Path, database_url: str, static_root: Path, *, workers: int = 1,
             settings: dict | None = None) -> Iterator[int]:  # fmt: skip
    """A production gunicorn (the example environment) on `database_url`; yields its port.

    `settings` overrides the environment, e.g. a tighter rate limit.
    """
    port = free_port()
    environment = (
        PRODUCTION
        | env_file(ENV_EXAMPLE)
        | {
            "DATABASE_URL": database_url,
            "STATIC_ROOT": str(static_root),
            "ALLOWED_HOSTS": "localhost",
            # No connection outlives a request, so the test database can be dropped afterwards.
            "CONN_MAX_AGE": "0",
            "LOG_LEVEL": "WARNING",
            # Rate-limit counters stay in the workers' memory, apart from other tests'.
            "REDIS_URL": "",
        }
        | (settings or {})
    )
    log = directory / f"gunicorn-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            server_command(port, workers),
            cwd=ROOT,
            env=os.environ | environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_port(port, process, "gunicorn", log)
        yield port
    finally:
        stop(process)


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
class Nginx:
    http_port: int
    https_port: int

    @property
    def url(self) -> str:
        """Where the dashboard, the API and widget.js are, as a browser names it."""
        return f"https://localhost:{self.https_port}"


def check_nginx_available() -> None:
    if not os.access(NGINX, os.X_OK):
        nginx_unavailable(f"nginx is not installed at {NGINX} (apt-get install -y nginx)")
    if shutil.which("openssl") is None:
        nginx_unavailable("openssl is not installed")


@contextmanager
def behind_nginx(directory: Path, database_url: str, static_root: Path, *, workers: int = 1,
                 settings: dict | None = None) -> Iterator[Nginx]:  # fmt: skip
    """gunicorn (as `gunicorn` starts it) behind Debian's nginx with deploy/'s site."""
    check_nginx_available()
    front = Nginx(http_port=free_port(), https_port=free_port())
    # nginx passes the Host without its port, so the browser's Origin, which has the
    # test's port, must be trusted by name, as a deployment on another port would be.
    settings = {"CSRF_TRUSTED_ORIGINS": front.url} | (settings or {})
    with gunicorn(directory, database_url, static_root, workers=workers, settings=settings) as app:
        cert, key = self_signed_certificate(directory)
        site = directory / "refiner-site.conf"
        site.write_text(site_config(front.http_port, front.https_port, app, cert, key))
        main = directory / "nginx.conf"
        main.write_text(nginx_config(directory, site))
        log = directory / "error.log"
        process = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(main), "-e", str(log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(front.https_port, process, "nginx", log)
            yield front
        finally:
            stop(process)

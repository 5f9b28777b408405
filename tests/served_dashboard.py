"""A signed-in browser for the dashboard of a production server started by tests/servers.py.

The session is made in the test process (Django's `force_login`) under the server's
SECRET_KEY, so the server reads it as its own; requests say they came through the
HTTPS proxy, as nginx does; unsafe ones carry a CSRF cookie and its token.
"""

import http.client
import secrets
from urllib.parse import urlencode

from django.test import Client

from tests.servers import ENV_EXAMPLE, PRODUCTION, env_file

# What tests/servers.py's gunicorn runs with: the example environment over PRODUCTION.
SERVER_SECRET_KEY = (PRODUCTION | env_file(ENV_EXAMPLE))["SECRET_KEY"]


def signed_in_session(settings, user) -> str:
    """A session id for `user` that a production server of tests/servers.py accepts."""
    settings.SECRET_KEY = SERVER_SECRET_KEY
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def dashboard(port: int, method: str, path: str, session: str,
              form: dict | None = None) -> tuple[int, str, bytes]:  # fmt: skip
    """One dashboard request to the server on `port`; (status, Location, body)."""
    csrf = secrets.token_hex(16)  # a 32-character secret, sent as both cookie and token
    headers = {
        "Host": "localhost",
        "X-Forwarded-Proto": "https",
        "Cookie": f"sessionid={session}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
        "Referer": "https://localhost/",
    }
    body = None
    if form is not None:
        body = urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheader("Location", ""), response.read()
    finally:
        conn.close()

"""Clients as the product's callers use it (the REST API with the secret key, the widget with
its key, the dashboard signed in), and readers of the §5 error body."""

import json
import time
from collections.abc import Callable

from django.test import Client

from tests.factories import MembershipFactory


class ApiClient:
    """Django's test client speaking JSON with a secret key."""

    def __init__(self, key: str | None):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}

    def request(self, method: str, path: str, data=None, raw: bytes | None = None):
        body = raw if raw is not None else (json.dumps(data) if data is not None else "")
        return getattr(self.client, method)(
            path, body, content_type="application/json", headers=self.headers
        )

    def get(self, path, data=None):
        return self.client.get(path, data or {}, headers=self.headers)

    def post(self, path, data=None, raw=None):
        return self.request("post", path, data, raw)

    def put(self, path, data=None, raw=None):
        return self.request("put", path, data, raw)

    def patch(self, path, data=None, raw=None):
        return self.request("patch", path, data, raw)

    def delete(self, path, data=None):
        return self.request("delete", path, data)


class Widget:
    """What the widget script sends: JSON bodies with the widget key, from a page's origin."""

    def __init__(self, workspace, origin: str | None = None):
        self.client = Client()
        self.key = workspace.widget_key
        self.headers = {"Origin": origin} if origin else {}

    def post(self, path: str, body: dict | None = None, *, key: str | None = "default"):
        body = dict(body or {})
        if key == "default":
            body["workspace"] = self.key
        elif key is not None:
            body["workspace"] = key
        return self.client.post(
            f"/api/v1/widget/{path}",
            json.dumps(body),
            content_type="application/json",
            headers=self.headers,
        )


def error_code(response) -> str:
    return response.json()["error"]["code"]


def fields_of(response) -> dict:
    """The field errors of a 400 `invalid` body."""
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "invalid"
    return body["error"]["fields"]


def signed_in(workspace, role: str) -> Client:
    """A dashboard client signed in as a new member of `workspace` with `role`."""
    client = Client()
    client.force_login(MembershipFactory(workspace=workspace, role=role).user)
    return client


def timed(call: Callable):
    """What `call()` returned, and how many seconds it took."""
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started

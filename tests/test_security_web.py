"""Web security: headers, CSP, CSRF, deploy checks, errors that keep their shape, quiet logs."""

import logging
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path, reverse

from tests.factories import ManualSegmentFactory, MembershipFactory

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)


def explode(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug in a view")


# A URLconf with the real one plus two views that fail, to see what users get from a bug.
urlpatterns = [
    path("api/v1/test-explode", explode),
    path("test-explode", explode),
    path("", include(settings.ROOT_URLCONF)),
]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # A clean environment, as on a server: other tests set variables (such as
    # DJANGO_ALLOW_ASYNC_UNSAFE for the browser) that a deployment would not have.
    environment = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_checks_pass_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="refiner.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_checks_fail_with_the_development_defaults():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="true", SECRET_KEY="")

    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on


def test_dashboard_pages_carry_the_security_headers(client):
    response = client.get(reverse("admin:login"))

    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_api_responses_have_no_csp_but_do_have_nosniff(client):
    response = client.get("/api/v1/ping")

    assert "Content-Security-Policy" not in response
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_logged_in_dashboard_page_carries_the_csp(client):
    membership = MembershipFactory()
    client.force_login(membership.user)

    response = client.get("/")

    assert response.status_code in (200, 302)
    assert "default-src 'self'" in response["Content-Security-Policy"]


def template_files() -> list[Path]:
    roots = [BASE_DIR / "templates", *BASE_DIR.glob("*/templates")]
    return sorted(p for root in roots if root.is_dir() for p in root.rglob("*.html"))


# An inline script is allowed only with a nonce, which its view must put in the CSP.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(src|nonce)=)[^>]*>\s*\S", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)
INLINE_JS_URL = re.compile(r"""(href|src|action)\s*=\s*["']\s*javascript:""", re.IGNORECASE)


@pytest.mark.parametrize("template", template_files(), ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_templates_have_no_inline_javascript_the_csp_would_block(template):
    text = template.read_text()
    # JSON data blocks are not executed, so the CSP allows them.
    text = re.sub(
        r"<script[^>]*type=[\"']application/(ld\+)?json[\"'][^>]*>.*?</script>",
        "",
        text,
        flags=re.S | re.I,
    )

    assert not INLINE_SCRIPT.search(text), "inline <script> (move it to a static file)"
    assert not INLINE_HANDLER.search(text), "inline on*= handler (use a static script)"
    assert not INLINE_JS_URL.search(text), "javascript: URL"


def test_a_dashboard_post_without_the_csrf_token_is_rejected():
    membership = MembershipFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(membership.user)

    response = client.post(reverse("admin:logout"))

    assert response.status_code == 403
    assert "_auth_user_id" in client.session  # still signed in


def test_the_login_form_without_the_csrf_token_is_rejected():
    membership = MembershipFactory()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        reverse("admin:login"), {"username": membership.user.username, "password": "password"}
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_an_unknown_api_address_answers_the_json_error_body(client):
    response = client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@override_settings(ROOT_URLCONF=__name__)
def test_a_bug_in_an_api_view_answers_500_with_the_error_body_and_no_traceback(caplog):
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/test-explode")

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Something went wrong on our side."}
    }
    assert any("a bug in a view" in (r.exc_text or "") or r.exc_info for r in caplog.records)


@override_settings(ROOT_URLCONF=__name__)
def test_a_bug_still_raises_in_tests_so_it_is_not_hidden():
    with pytest.raises(RuntimeError):
        Client().get("/api/v1/test-explode")


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_bug_in_a_dashboard_page_shows_the_error_page():
    client = Client(raise_request_exception=False)

    response = client.get("/test-explode")

    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()
    assert "RuntimeError" not in response.content.decode()


def test_secrets_never_reach_the_logs(client, workspace, caplog):
    caplog.set_level(logging.DEBUG)
    good = {"HTTP_AUTHORIZATION": f"Bearer {workspace.secret_key}"}
    bad = {"HTTP_AUTHORIZATION": "Bearer sk_not_a_real_key_but_secret"}
    client.get("/api/v1/contacts", **good)
    client.get("/api/v1/contacts/nobody", **good)
    client.get("/api/v1/contacts", **bad)
    client.post("/api/v1/track-event", "{", content_type="application/json", **good)
    client.post(
        "/api/v1/widget/identify",
        {"workspace": workspace.widget_key, "user": {"id": "u"}, "signature": "f" * 64},
        content_type="application/json",
    )

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert caplog.records  # the 4xx answers are logged...
    assert workspace.secret_key not in logged  # ...but never the keys
    assert "sk_not_a_real_key_but_secret" not in logged
    assert "f" * 64 not in logged


@pytest.mark.parametrize("name", ["segment-members-add", "segment-members-remove"])
@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x"])
def test_dashboard_forms_never_redirect_to_another_site(name, target):
    from tests.factories import ContactFactory

    membership = MembershipFactory()
    segment = ManualSegmentFactory(workspace=membership.workspace)
    contact = ContactFactory(workspace=membership.workspace)
    client = Client()
    client.force_login(membership.user)

    response = client.post(
        reverse(name, kwargs={"pk": segment.pk}),
        {"user_ids": contact.user_id, "user_id": contact.user_id, "next": target},
    )

    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_the_demo_page_allows_its_own_inline_script_by_nonce_only(client, workspace, settings):
    settings.DEMO_PAGE_ENABLED = True
    response = client.get("/demo/", {"key": workspace.widget_key})
    assert response.status_code == 200

    policy = response["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))

    assert f'nonce="{nonce}"' in response.content.decode()
    assert "'unsafe-inline'" not in script_src
    assert client.get("/demo/", {"key": workspace.widget_key})["Content-Security-Policy"] != policy


def test_no_dashboard_url_accepts_a_post_without_the_csrf_token():
    from tests.test_isolation import DASHBOARD, all_routes

    membership = MembershipFactory()
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(membership.user)
    routes = all_routes()
    checked = 0
    for name in DASHBOARD:
        if name not in routes or name == "demo":
            continue
        # The object ids do not matter: the CSRF check runs before the view looks them up.
        url = "/" + re.sub(r"<(?:\w+:)?\w+>", "1", routes[name])

        response = client.post(url, {"name": "x"})

        assert response.status_code == 403, f"{url}: {response.status_code}"
        checked += 1
    assert checked >= 20

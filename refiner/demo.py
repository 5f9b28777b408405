"""The widget's demo host page: a fake customer product with the SPEC §7 snippet in it."""

import json
import secrets

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from refiner.models import Workspace
from targeting.widget_api import signature_of

MAX_USER_ID = 200
# What `json.dumps` leaves that could end the <script> element it is written into.
SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def _script_json(value: object) -> SafeString:
    return mark_safe(json.dumps(value).translate(SCRIPT_ESCAPES))


def _demo_workspace(request: HttpRequest) -> Workspace:
    key = request.GET.get("key", "")
    workspaces = Workspace.objects.order_by("pk")
    workspace = workspaces.filter(widget_key=key).first() if key else workspaces.first()
    if workspace is None:
        raise Http404("No workspace with that widget key; create one with create_workspace.")
    return workspace


def _is_member(request: HttpRequest, workspace: Workspace) -> bool:
    user = request.user
    return user.is_authenticated and workspace.memberships.filter(user=user).exists()


def _csp_with_nonce(nonce: str) -> str:
    """The site's policy, with the snippet's inline script allowed by its nonce only."""
    policy = settings.CONTENT_SECURITY_POLICY
    return policy.replace("script-src", f"script-src 'nonce-{nonce}'", 1) if policy else ""


@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    if not settings.DEMO_PAGE_ENABLED:
        raise Http404("The demo page is disabled (DEMO_PAGE_ENABLED).")
    workspace = _demo_workspace(request)
    user_id = request.GET.get("user", "").strip()[:MAX_USER_ID] or "u-42"
    user = {
        "id": user_id,
        "email": f"{user_id}@example.com",
        "plan": "enterprise",
        "account": {"id": "acme", "name": "Acme"},
    }
    # The demo server knows the secret, so it signs as a customer's backend would, but
    # only for the workspace's own members: a signature for any user id, handed to a
    # stranger, would be as good as the secret key.
    options = None
    if workspace.identity_verification and _is_member(request, workspace):
        options = {"signature": signature_of(workspace, user_id)}
    nonce = secrets.token_urlsafe(16)
    context = {
        "workspace": workspace,
        "user_id": user_id,
        "key_json": _script_json(workspace.widget_key),
        "user_json": _script_json(user),
        "options_json": _script_json(options) if options else "",
        "widget_url": request.build_absolute_uri(static("refiner/widget.js")),
        "nonce": nonce,
    }
    response = render(request, "demo/product.html", context)
    if settings.CONTENT_SECURITY_POLICY:
        response["Content-Security-Policy"] = _csp_with_nonce(nonce)
    return response

"""The widget's demo host page: a fake customer product with the SPEC §7 snippet in it."""

import json
import secrets

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from refiner.models import Membership, Workspace
from segments.models import Contact
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


def _may_sign(request: HttpRequest, workspace: Workspace) -> bool:
    """Owners and editors only: a viewer may not act as any contact of the workspace."""
    user = request.user
    if not user.is_authenticated:
        return False
    roles = (Membership.OWNER, Membership.EDITOR)
    return workspace.memberships.filter(user=user, role__in=roles).exists()


def _demo_user(workspace: Workspace, user_id: str) -> dict:
    """What the page identifies: made-up details only for a user id the workspace lacks.

    "Be another user" may name a real contact; identifying it with the id alone
    changes none of its stored details. A new demo user joins the demo account by
    id only, so a real account of that id keeps its name and traits.
    """
    if Contact.objects.filter(workspace=workspace, user_id=user_id).exists():
        return {"id": user_id}
    return {
        "id": user_id,
        "email": f"{user_id}@example.com",
        "plan": "enterprise",
        "account": {"id": "acme"},
    }


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
    user = _demo_user(workspace, user_id)
    # The demo server knows the secret, so it signs as a customer's backend would, but
    # only for the workspace's owners and editors: a signature for any user id, handed
    # to anyone else, would be as good as the secret key.
    options = None
    if workspace.identity_verification and _may_sign(request, workspace):
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

"""The widget's calls go around the page middleware they never use (refiner.pages_only)."""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import SurveyFactory
from tests.test_isolation import all_routes

pytestmark = pytest.mark.django_db

WIDGET_ROUTES = sorted(name for name in all_routes() if name.startswith("widget-"))
PAGE_ONLY = ("user", "_messages")


def widget_path(name: str) -> str:
    if "<uuid:display_id>" in all_routes()[name]:
        return reverse(name, kwargs={"display_id": uuid.uuid4()})
    return reverse(name)


def test_every_widget_route_is_checked():
    assert {"widget-identify", "widget-track", "widget-eligibility"} <= set(WIDGET_ROUTES)


@pytest.mark.parametrize("name", WIDGET_ROUTES)
def test_a_widget_call_sets_up_no_user_or_messages(widget, name):
    response = widget.post(widget_path(name).removeprefix("/api/v1/widget/"), {"user_id": "u-1"})
    assert response["Content-Type"] == "application/json"
    request = response.wsgi_request
    assert [attribute for attribute in PAGE_ONLY if hasattr(request, attribute)] == []


def test_a_widget_call_keeps_the_host_check_and_the_security_headers(widget, workspace):
    client = Client(headers={"Host": "evil.example"})
    response = client.post(
        "/api/v1/widget/eligibility",
        {"workspace": workspace.widget_key, "user_id": "u-1"},
        content_type="application/json",
    )
    assert response.status_code == 400
    response = widget.post("eligibility", {"user_id": "u-1"})
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_a_widget_call_needs_no_csrf_token(workspace):
    SurveyFactory(workspace=workspace)
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/api/v1/widget/identify",
        {"workspace": workspace.widget_key, "user": {"id": "u-1"}},
        content_type="application/json",
    )
    assert response.status_code == 200


def test_pages_keep_their_user_and_messages(owner):
    response = owner.get(reverse("segment-list"))
    assert response.status_code == 200
    request = response.wsgi_request
    assert [attribute for attribute in PAGE_ONLY if not hasattr(request, attribute)] == []
    assert request.user.is_authenticated and request.session.session_key


def test_a_page_form_still_needs_its_csrf_token(workspace):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "a", "password": "b"})
    assert response.status_code == 403

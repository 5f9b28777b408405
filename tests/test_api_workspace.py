"""REST API of the workspace's own settings (SPEC §5.2)."""

import pytest

from refiner.models import Membership, Workspace
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def settings_of(workspace: Workspace) -> dict:
    workspace.refresh_from_db()
    return workspace.settings_dict()


def test_it_shows_the_settings_without_keys(api, workspace):
    response = api.get("/api/v1/workspace")
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "name": workspace.name,
        "identity_verification": False,
        "allowed_origins": [],
        "recontact_days": 0,
    }
    assert workspace.secret_key not in response.content.decode()
    assert workspace.widget_key not in response.content.decode()


def test_it_changes_only_the_given_settings(api, workspace):
    response = api.patch(
        "/api/v1/workspace",
        {"identity_verification": True, "allowed_origins": ["https://app.example.com/"]},
    )
    assert response.status_code == 200, response.content
    expected = {
        "name": workspace.name,
        "identity_verification": True,
        "allowed_origins": ["https://app.example.com"],
        "recontact_days": 0,
    }
    assert response.json() == expected
    assert settings_of(workspace) == expected
    api.patch("/api/v1/workspace", {"name": " Acme app ", "recontact_days": 14})
    assert settings_of(workspace) == expected | {"name": "Acme app", "recontact_days": 14}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "name"),
        ({"name": 3}, "name"),
        ({"identity_verification": "yes"}, "identity_verification"),
        ({"allowed_origins": "https://a.example"}, "allowed_origins"),
        ({"allowed_origins": ["ftp://a.example"]}, "allowed_origins"),
        # A path, query or fragment never matches a browser's Origin header.
        ({"allowed_origins": ["https://a.example/app"]}, "allowed_origins"),
        ({"allowed_origins": ["https://a.example?x=1"]}, "allowed_origins"),
        ({"allowed_origins": ["https://"]}, "allowed_origins"),
        ({"allowed_origins": [3]}, "allowed_origins"),
        ({"recontact_days": -1}, "recontact_days"),
        ({"recontact_days": True}, "recontact_days"),
        ({"recontact_days": 2.5}, "recontact_days"),
        ({"secret_key": "sk_mine"}, "secret_key"),
        ({"name": "Fine", "widget_key": "wk_mine"}, "widget_key"),
    ],
)
def test_it_refuses_bad_settings_and_writes_nothing(api, workspace, body, field):
    before = (settings_of(workspace), workspace.widget_key, workspace.secret_key)
    response = api.patch("/api/v1/workspace", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert (settings_of(workspace), workspace.widget_key, workspace.secret_key) == before


def test_it_refuses_bad_bodies_keys_and_methods(api, client, workspace):
    before = settings_of(workspace)
    assert api.patch("/api/v1/workspace", raw=b"{nope").status_code == 400
    response = api.patch("/api/v1/workspace", {"name": "x" * (64 * 1024)})
    assert response.status_code == 413
    response = api.post("/api/v1/workspace", {"name": "New"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert client.get("/api/v1/workspace").status_code == 401
    response = client.patch(
        "/api/v1/workspace",
        '{"name": "Hijacked"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {workspace.widget_key}"},
    )
    assert response.status_code == 401
    assert settings_of(workspace) == before


def test_a_rotated_secret_key_stops_working(api, workspace):
    old = api.headers
    workspace.rotate_keys(secret=True)
    response = api.get("/api/v1/workspace")
    assert response.status_code == 401 and api.headers == old
    api.headers = {"Authorization": f"Bearer {workspace.secret_key}"}
    assert api.get("/api/v1/workspace").status_code == 200


def test_the_outsider_sees_and_changes_only_its_own_workspace(
    outsider_api, workspace, other_workspace
):
    before = settings_of(workspace)
    assert outsider_api.get("/api/v1/workspace").json()["name"] == "Outsider"
    outsider_api.patch("/api/v1/workspace", {"name": "Renamed", "recontact_days": 3})
    assert settings_of(other_workspace)["name"] == "Renamed"
    assert settings_of(workspace) == before


def test_the_api_and_the_settings_page_refuse_the_same_origin_alike(api, client, workspace):
    """One validator: an origin the page refuses, the API refuses with the same words."""
    refused = api.patch("/api/v1/workspace", {"allowed_origins": ["https://a.example/app"]})
    message = refused.json()["error"]["fields"]["allowed_origins"]
    assert message == "“https://a.example/app” is not an origin like https://app.example.com."
    owner = MembershipFactory(workspace=workspace, role=Membership.OWNER).user
    client.force_login(owner)
    page = client.post(
        "/settings/",
        {"name": "X", "allowed_origins": "https://a.example/app", "recontact_days": "0"},
    )
    assert page.status_code == 400
    assert "is not an origin like https://app.example.com" in page.content.decode()
    workspace.refresh_from_db()
    assert workspace.allowed_origins == []

import hashlib
import hmac

import pytest
from django.core.cache import cache

from refiner.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()


def login(client, workspace, role=Membership.OWNER):
    membership = MembershipFactory(workspace=workspace, role=role)
    client.force_login(membership.user)
    return membership


# Sign in ------------------------------------------------------------------------


def test_it_signs_in_and_lands_on_segments(client, workspace):
    membership = MembershipFactory(workspace=workspace)
    page = client.get("/login/")
    assert page.status_code == 200
    response = client.post(
        "/login/", {"username": membership.user.username, "password": "password"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/segments/"
    assert b"Sign out" in response.content


def test_a_wrong_password_is_refused(client, workspace):
    membership = MembershipFactory(workspace=workspace)
    response = client.post("/login/", {"username": membership.user.username, "password": "x"})
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_it_signs_out(client, workspace):
    login(client, workspace)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/segments/").status_code == 302


def test_home_redirects_to_segments_or_login(client, workspace):
    assert client.get("/")["Location"].startswith("/login/")
    login(client, workspace)
    assert client.get("/")["Location"] == "/segments/"


def test_base_layout_has_nav_htmx_and_csrf_header(client, workspace):
    login(client, workspace)
    html = client.get("/segments/").content.decode()
    assert 'src="/static/django_htmx/htmx-2.min.js"' in html
    assert 'hx-headers=\'{"x-csrftoken": ' in html
    for link in ('href="/segments/"', 'href="/contacts/"', 'href="/install/"',
                 'href="/settings/"', 'action="/logout/"'):  # fmt: skip
        assert link in html
    assert "https://" not in html.split("<body")[0]  # no CDN


# Workspace switcher -------------------------------------------------------------------


def test_it_switches_to_another_workspace_of_the_user(client, workspace, other_workspace):
    membership = login(client, workspace)
    MembershipFactory(workspace=other_workspace, user=membership.user, role=Membership.VIEWER)
    response = client.post("/workspace/switch/", {"workspace": other_workspace.pk})
    assert response.status_code == 302
    assert client.session["workspace_id"] == other_workspace.pk
    page = client.get("/settings/")
    assert page.context["workspace"] == other_workspace
    assert b'<select id="workspace-switcher"' in page.content


def test_switching_with_htmx_redirects_the_client(client, workspace, other_workspace):
    membership = login(client, workspace)
    MembershipFactory(workspace=other_workspace, user=membership.user)
    response = client.post("/workspace/switch/", {"workspace": other_workspace.pk}, headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/"


def test_it_refuses_to_switch_to_a_workspace_of_others(client, workspace, other_workspace):
    login(client, workspace)
    response = client.post("/workspace/switch/", {"workspace": other_workspace.pk})
    assert response.status_code == 404
    assert "workspace_id" not in client.session


def test_a_user_without_workspace_gets_404(client):
    client.force_login(UserFactory())
    assert client.get("/segments/").status_code == 404


# Settings -------------------------------------------------------------------------------


def test_owner_changes_settings(client, workspace):
    login(client, workspace)
    response = client.post(
        "/settings/",
        {"name": "Acme app", "identity_verification": "on",
         "allowed_origins": "https://app.acme.test/\nhttps://app.acme.test\n",
         "recontact_days": "14"},
    )  # fmt: skip
    assert response.status_code == 302
    workspace.refresh_from_db()
    assert workspace.name == "Acme app"
    assert workspace.identity_verification is True
    assert workspace.allowed_origins == ["https://app.acme.test"]
    assert workspace.recontact_days == 14


def test_bad_origins_are_refused(client, workspace):
    login(client, workspace)
    response = client.post(
        "/settings/", {"name": "X", "allowed_origins": "not an origin", "recontact_days": "0"}
    )
    assert response.status_code == 400
    assert "is not an origin" in response.content.decode()
    workspace.refresh_from_db()
    assert workspace.allowed_origins == []


def test_owner_sees_and_rotates_keys(client, workspace):
    login(client, workspace)
    old_widget, old_secret = workspace.widget_key, workspace.secret_key
    assert old_secret in client.get("/settings/").content.decode()
    client.post("/settings/keys/", {"key": "secret"})
    workspace.refresh_from_db()
    assert workspace.secret_key != old_secret and workspace.widget_key == old_widget
    client.post("/settings/keys/", {"key": "widget"})
    workspace.refresh_from_db()
    assert workspace.widget_key != old_widget


@pytest.mark.parametrize("role", [Membership.EDITOR, Membership.VIEWER])
def test_others_see_settings_read_only_without_the_secret(client, workspace, role):
    membership = login(client, workspace, role)
    page = client.get("/settings/")
    html = page.content.decode()
    assert page.status_code == 200
    assert workspace.widget_key in html
    assert workspace.secret_key not in html
    assert "disabled" in html
    old = (workspace.name, workspace.widget_key, workspace.secret_key)
    assert client.post("/settings/", {"name": "Hijacked", "recontact_days": "1"}).status_code == 403
    assert client.post("/settings/keys/", {"key": "secret"}).status_code == 403
    assert client.post("/settings/members/", {"email": "x@example.com"}).status_code == 403
    assert (
        client.post(f"/settings/members/{membership.pk}/role/", {"role": "owner"}).status_code
        == 403
    )
    workspace.refresh_from_db()
    membership.refresh_from_db()
    assert (workspace.name, workspace.widget_key, workspace.secret_key) == old
    assert membership.role == role


def test_owner_manages_members(client, workspace):
    owner = login(client, workspace)
    teammate = UserFactory(username="sam", email="Sam@Example.com")
    client.post("/settings/members/", {"email": "sam@example.com", "role": "viewer"})
    added = Membership.objects.get(workspace=workspace, user=teammate)
    assert added.role == Membership.VIEWER
    client.post(f"/settings/members/{added.pk}/role/", {"role": "editor"})
    added.refresh_from_db()
    assert added.role == Membership.EDITOR
    client.post(f"/settings/members/{added.pk}/remove/")
    assert not Membership.objects.filter(pk=added.pk).exists()
    assert Membership.objects.filter(pk=owner.pk).exists()


def test_adding_an_unknown_email_explains_why(client, workspace):
    login(client, workspace)
    response = client.post("/settings/members/", {"email": "ghost@example.com"}, follow=True)
    assert "no user with this email" in response.content.decode()
    assert Membership.objects.filter(workspace=workspace).count() == 1


def test_the_last_owner_stays(client, workspace):
    owner = login(client, workspace)
    client.post(f"/settings/members/{owner.pk}/role/", {"role": "viewer"})
    client.post(f"/settings/members/{owner.pk}/remove/")
    owner.refresh_from_db()
    assert owner.role == Membership.OWNER


def test_owner_cannot_touch_members_of_another_workspace(client, workspace, other_workspace):
    login(client, workspace)
    foreign = MembershipFactory(workspace=other_workspace, role=Membership.EDITOR)
    assert (
        client.post(f"/settings/members/{foreign.pk}/role/", {"role": "viewer"}).status_code == 404
    )
    assert client.post(f"/settings/members/{foreign.pk}/remove/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.role == Membership.EDITOR


def test_anonymous_cannot_reach_settings_or_install(client, workspace):
    for url in ("/settings/", "/install/"):
        assert client.get(url)["Location"].startswith("/login/")
    assert client.post("/settings/keys/", {"key": "secret"}).status_code == 302


# Install ----------------------------------------------------------------------------------


def test_install_page_has_snippet_with_key_and_host(client, workspace, settings):
    settings.ALLOWED_HOSTS = ["refiner.example.com"]
    login(client, workspace)
    html = client.get("/install/", HTTP_HOST="refiner.example.com").content.decode()
    assert f"_refiner('setProject', '{workspace.widget_key}')" in html
    assert 'src="http://refiner.example.com/static/refiner/widget.js"' in html
    assert workspace.secret_key in html  # owners get a ready-to-use signing example


def test_install_signature_example_matches_what_the_server_checks(client, workspace):
    expected = hmac.new(workspace.secret_key.encode(), b"u-42", hashlib.sha256).hexdigest()
    assert len(expected) == 64
    login(client, workspace)
    html = client.get("/install/").content.decode()
    assert "hmac.new(REFINER_SECRET_KEY.encode(), user_id.encode(), hashlib.sha256)" in html
    assert 'crypto.createHmac("sha256", REFINER_SECRET_KEY).update(userId).digest("hex")' in html


def test_install_hides_the_secret_from_non_owners(client, workspace):
    login(client, workspace, Membership.EDITOR)
    html = client.get("/install/").content.decode()
    assert workspace.widget_key in html
    assert workspace.secret_key not in html
    assert "YOUR_SECRET_KEY" in html


def test_install_shows_only_the_current_workspace(client, workspace, other_workspace):
    login(client, other_workspace)
    html = client.get("/install/").content.decode()
    assert workspace.widget_key not in html and other_workspace.widget_key in html

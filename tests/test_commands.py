"""Management commands (SPEC §5.3) and the workspace's keys."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from refiner.models import Membership, Workspace
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def create_workspace(*args: str) -> dict:
    out = StringIO()
    call_command("create_workspace", *args, stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_create_workspace_prints_one_json_line():
    data = create_workspace("Acme app")
    workspace = Workspace.objects.get()
    assert data == {
        "id": workspace.pk,
        "name": "Acme app",
        "widget_key": workspace.widget_key,
        "secret_key": workspace.secret_key,
    }
    assert data["widget_key"].startswith("wk_") and data["secret_key"].startswith("sk_")
    assert not workspace.memberships.exists()


def test_create_workspace_keys_are_unique_and_random():
    created = [create_workspace(f"W{i}") for i in range(5)]
    keys = [d["widget_key"] for d in created] + [d["secret_key"] for d in created]
    assert len(set(keys)) == 10
    assert all(len(d["secret_key"]) >= 40 and len(d["widget_key"]) >= 20 for d in created)


def test_create_workspace_makes_an_existing_user_owner():
    user = UserFactory(email="ada@example.com")
    data = create_workspace("Acme", "--owner", "ADA@example.com")
    membership = Membership.objects.get(workspace_id=data["id"])
    assert membership.user == user and membership.role == Membership.OWNER


def test_create_workspace_creates_a_missing_owner():
    data = create_workspace("Acme", "--owner", "new@example.com")
    membership = Membership.objects.get(workspace_id=data["id"])
    assert membership.user.email == "new@example.com" and membership.can_manage
    # No password was chosen: nobody can log in as the new user until one is set.
    assert not membership.user.has_usable_password()


def test_create_workspace_refuses_an_empty_name():
    with pytest.raises(CommandError):
        call_command("create_workspace", "  ", stdout=StringIO())
    assert not Workspace.objects.exists()


def test_create_workspace_refuses_an_owner_that_is_not_an_email():
    with pytest.raises(CommandError, match="email"):
        call_command("create_workspace", "Acme", "--owner", "ada", stdout=StringIO())
    assert not Workspace.objects.exists()


def test_rotate_keys_changes_the_keys_asked_for(workspace):
    widget, secret = workspace.widget_key, workspace.secret_key
    workspace.rotate_keys(secret=True)
    workspace.refresh_from_db()
    assert workspace.widget_key == widget and workspace.secret_key != secret
    secret = workspace.secret_key
    workspace.rotate_keys(widget=True, secret=True)
    workspace.refresh_from_db()
    assert workspace.widget_key != widget and workspace.secret_key != secret

"""Backups that restore: backup_workspace, delete, restore_workspace, the same rows again."""

import json

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from refiner.models import Membership, Workspace
from segments.membership import sweep_workspace
from segments.models import Contact
from surveys.services import record_answers, record_display
from targeting.models import Targeting
from tests.conftest import NOW
from tests.factories import (
    AccountFactory,
    ContactFactory,
    EndpointFactory,
    EventFactory,
    ManualSegmentFactory,
    MembershipFactory,
    SegmentFactory,
    SurveyFactory,
    WorkspaceFactory,
    record_response,
)
from webhooks.models import Delivery
from workspace_backups.backups import DERIVED, TABLES

pytestmark = pytest.mark.django_db(transaction=True)

# A cache token, not data: a restore gives a new one so no process keeps old definitions.
NOT_DATA = {Workspace: {"definitions_version"}}


def full_workspace(name: str) -> Workspace:
    """A workspace with rows in every table a backup covers."""
    workspace = WorkspaceFactory(name=name, allowed_origins=["https://app.acme.test"])
    MembershipFactory(workspace=workspace, role=Membership.OWNER)
    account = AccountFactory(workspace=workspace, traits={"plan": "enterprise", "seats": 40})
    contact = ContactFactory(
        workspace=workspace, account=account, traits={"role": "admin", "signed_up": "2026-01-02"}
    )
    other = ContactFactory(workspace=workspace, traits={"beta": True})
    EventFactory(contact=contact)
    EventFactory(contact=other, name="invited_teammate")
    admins = SegmentFactory(
        workspace=workspace,
        rules={
            "type": "group",
            "match": "all",
            "conditions": [
                {"type": "attribute", "attribute": "role", "operator": "equals", "value": "admin"}
            ],
        },
    )
    manual = ManualSegmentFactory(workspace=workspace, members=[other])
    survey = SurveyFactory(
        workspace=workspace,
        questions=[
            {"key": "nps", "type": "nps", "text": "How likely?"},
            {"key": "why", "type": "text", "text": "Why?"},
        ],
        targeting={"audience": "segments", "trigger": "event", "trigger_event": "report_exported"},
    )
    survey.targeting.segments.add(admins)
    survey.targeting.excluded_segments.add(manual)
    record_response(survey, contact, {"nps": 9, "why": "Fast"}, NOW, completed=True)
    record_display(survey=survey, contact=other, now=NOW)
    # An anonymous visitor, whom Contact.objects leaves out, with its answered display.
    visitor = Contact.all_contacts.create(workspace=workspace, anonymous_id="v" * 32)
    seen = record_display(survey=survey, contact=visitor, now=NOW)
    record_answers(display=seen, answers={"nps": 3}, completed=True, now=NOW, extra={"p": 1})
    endpoint = EndpointFactory(workspace=workspace, events=["survey.completed"])
    Delivery.objects.create(
        endpoint=endpoint,
        workspace=workspace,
        contact=contact,
        event="survey.completed",
        payload={"type": "survey.completed", "data": {"answers": {"nps": 9}}},
        status=Delivery.SUCCEEDED,
        attempts=1,
        response_code=200,
    )
    sweep_workspace(workspace.pk, NOW)  # membership history, and the sweep that opened it
    return workspace


def restart_key_sequences() -> None:
    """PostgreSQL: back to 1, as in a database the rows were never created in."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model, _ in TABLES:
            if model._meta.pk.get_internal_type() == "BigAutoField":
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), 1, false)",
                    [model._meta.db_table],
                )


def snapshot(workspace_id: int) -> dict[str, list[dict]]:
    """Every row of every table of the workspace, by primary key, with every field."""
    tables = {}
    for model, lookup in TABLES:
        rows = model._base_manager.filter(**{lookup: workspace_id}).order_by("pk")
        skip = NOT_DATA.get(model, set())
        tables[model._meta.label] = [
            {k: v for k, v in row.items() if k not in skip} for row in rows.values()
        ]
    targeting = Targeting.objects.filter(survey__workspace=workspace_id)
    for name in ("segments", "excluded_segments"):
        tables[f"targeting.{name}"] = sorted(targeting.values_list("pk", f"{name}__pk"))
    return tables


def test_a_deleted_workspace_comes_back_with_every_row_and_key(tmp_path):
    workspace = full_workspace("Acme")
    neighbour = full_workspace("Neighbour")
    before, neighbour_before = snapshot(workspace.pk), snapshot(neighbour.pk)
    assert all(rows for rows in before.values()), "every table has rows to compare"
    assert all(rows for rows in neighbour_before.values())
    file = tmp_path / "acme.json"

    call_command("backup_workspace", workspace.pk, str(file))
    Workspace.objects.filter(pk=workspace.pk).delete()
    assert not any(snapshot(workspace.pk).values())
    restart_key_sequences()  # as in a new database
    call_command("restore_workspace", str(file))

    assert snapshot(workspace.pk) == before
    assert snapshot(neighbour.pk) == neighbour_before
    # New rows get fresh keys: PostgreSQL's sequences were moved past the restored ones.
    assert ContactFactory(workspace=workspace).pk > max(r["id"] for r in before["segments.Contact"])


def test_the_file_holds_only_that_workspace_and_members_by_username(tmp_path):
    workspace = full_workspace("Acme")
    neighbour = full_workspace("Neighbour")
    file = tmp_path / "acme.json"

    call_command("backup_workspace", workspace.pk, str(file))

    rows = json.loads(file.read_text())
    workspaces = {r["fields"].get("workspace") for r in rows if "workspace" in r["fields"]}
    assert workspaces == {workspace.pk}
    assert not [r for r in rows if r["model"] == "refiner.workspace" and r["pk"] == neighbour.pk]
    (user,) = [r for r in rows if r["model"] == "auth.user"]
    assert "pk" not in user, "users are matched by username, never by key"
    (membership,) = [r for r in rows if r["model"] == "refiner.membership"]
    assert membership["fields"]["user"] == [user["fields"]["username"]]


def test_restoring_over_an_existing_workspace_fails_and_writes_nothing(tmp_path):
    workspace = full_workspace("Acme")
    file = tmp_path / "acme.json"
    call_command("backup_workspace", workspace.pk, str(file))
    Contact.objects.filter(workspace=workspace).first().delete()
    before = snapshot(workspace.pk)

    with pytest.raises(CommandError, match="already exists"):
        call_command("restore_workspace", str(file))

    assert snapshot(workspace.pk) == before


def test_a_member_whose_user_was_removed_gets_the_user_back(tmp_path):
    workspace_id = full_workspace("Acme").pk
    user = Membership.objects.get(workspace=workspace_id).user
    file = tmp_path / "acme.json"
    call_command("backup_workspace", workspace_id, str(file))
    Workspace.objects.filter(pk=workspace_id).delete()
    user.delete()

    call_command("restore_workspace", str(file))

    restored = Membership.objects.get(workspace=workspace_id).user
    assert (restored.username, restored.email, restored.password) == (
        user.username,
        user.email,
        user.password,
    )


def test_an_unknown_workspace_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="no workspace 999"):
        call_command("backup_workspace", 999, str(tmp_path / "x.json"))


def test_every_model_of_ours_is_in_the_backup():
    ours = {
        model
        for model in apps.get_models()
        if model._meta.app_label in {"refiner", "segments", "surveys", "targeting", "webhooks"}
    }
    assert ours == {model for model, _ in TABLES} | set(DERIVED)
    assert get_user_model() not in ours

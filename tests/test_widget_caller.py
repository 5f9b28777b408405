"""The widget's one query for its caller gives the same instances as the ORM would."""

import pytest

from refiner.models import Workspace
from segments.models import Account, Contact
from targeting.widget_api import caller
from tests.factories import AccountFactory, ContactFactory

pytestmark = pytest.mark.django_db


def fields(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_workspace_contact_and_account_are_whole(workspace, other_workspace):
    workspace.allowed_origins = ["https://app.example.com"]
    workspace.identity_verification = True
    workspace.save()
    account = AccountFactory(workspace=workspace, traits={"tier": "gold", "seats": 12.5})
    ContactFactory(workspace=workspace, user_id="u-1", account=account,
                   traits={"plan": "pro", "vip": True, "tags": ["a", "b"]})  # fmt: skip
    ContactFactory(workspace=other_workspace, user_id="u-1")
    found_workspace, contact = caller(workspace.widget_key, "u-1")
    assert fields(found_workspace) == fields(Workspace.objects.get(pk=workspace.pk))
    assert fields(contact) == fields(Contact.objects.get(workspace=workspace, user_id="u-1"))
    assert fields(contact.account) == fields(Account.objects.get(pk=account.pk))
    assert contact.workspace is found_workspace


def test_a_contact_without_account_and_an_unknown_user(workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    _, contact = caller(workspace.widget_key, "u-1")
    assert contact.account is None
    found_workspace, nobody = caller(workspace.widget_key, "u-2")
    assert found_workspace.pk == workspace.pk and nobody is None
    assert caller(workspace.widget_key, None)[1] is None


def test_an_unknown_key_finds_nothing(workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    assert caller(workspace.secret_key, "u-1") == (None, None)
    assert caller("wk_nope", "u-1") == (None, None)

"""The widget's demo host page (/demo/) and the widget script's budget, without a browser."""

import gzip
import json
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from refiner.models import Membership
from segments.models import Contact
from targeting.widget_api import signature_of
from tests.factories import AccountFactory, ContactFactory, MembershipFactory

pytestmark = pytest.mark.django_db

WIDGET_JS = Path(django_settings.BASE_DIR) / "static" / "refiner" / "widget.js"


@pytest.fixture
def demo_on(settings):
    settings.DEMO_PAGE_ENABLED = True


def test_it_is_not_found_when_disabled(client, settings, workspace):
    settings.DEMO_PAGE_ENABLED = False
    assert client.get("/demo/").status_code == 404


def test_it_embeds_the_first_workspace_key(client, demo_on, workspace, other_workspace):
    response = client.get("/demo/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme Analytics" in page
    assert f"_refiner('setProject', \"{workspace.widget_key}\")" in page
    assert other_workspace.widget_key not in page
    assert '<script async src="http://testserver/static/refiner/widget.js">' in page


def test_it_uses_the_key_from_the_query(client, demo_on, workspace, other_workspace):
    page = client.get("/demo/", {"key": other_workspace.widget_key}).content.decode()
    assert f"_refiner('setProject', \"{other_workspace.widget_key}\")" in page
    assert workspace.widget_key not in page


def test_an_unknown_key_is_not_found(client, demo_on, workspace):
    assert client.get("/demo/", {"key": "wk_nobody"}).status_code == 404


def test_it_is_not_found_without_any_workspace(client, demo_on):
    assert client.get("/demo/").status_code == 404


def test_it_only_answers_get(client, demo_on, workspace):
    assert client.post("/demo/").status_code == 405


def test_a_user_id_cannot_break_out_of_the_script(client, demo_on, workspace):
    attack = "</script><script>alert(1)</script>"
    page = client.get("/demo/", {"user": attack}).content.decode()
    assert attack not in page
    assert "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(1)" in page


def test_inline_scripts_run_by_nonce_only(client, demo_on, workspace):
    response = client.get("/demo/")
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy).group(1)
    nonce = re.search(r"'nonce-([^']+)'", script_src).group(1)
    assert "unsafe-inline" not in script_src
    inline = re.findall(r"<script( nonce=\"[^\"]*\")?>", response.content.decode())
    assert inline and all(attrs == f' nonce="{nonce}"' for attrs in inline)
    assert client.get("/demo/")["Content-Security-Policy"] != policy, "a new nonce each time"


def test_the_page_signs_the_user_for_a_member_when_verification_is_on(client, demo_on, workspace):
    workspace.identity_verification = True
    workspace.save()
    client.force_login(MembershipFactory(workspace=workspace).user)
    page = client.get("/demo/", {"user": "u-7"}).content.decode()
    assert f'{{"signature": "{signature_of(workspace, "u-7")}"}}' in page


def test_the_page_signs_nothing_for_a_stranger(client, demo_on, workspace):
    workspace.identity_verification = True
    workspace.save()
    page = client.get("/demo/", {"user": "u-7"}).content.decode()
    assert signature_of(workspace, "u-7") not in page


def test_the_page_sends_no_signature_when_verification_is_off(client, demo_on, workspace):
    page = client.get("/demo/", {"user": "u-7"}).content.decode()
    assert "signature" not in page.split("_refiner('identifyUser'")[1].split(");")[0]


def test_the_widget_script_stays_small_and_dependency_free():
    """What a customer's visitor downloads is the compressed script (WhiteNoise serves it
    gzipped); the source keeps its comments for whoever maintains it."""
    source = WIDGET_JS.read_text()
    assert len(gzip.compress(source.encode(), compresslevel=9)) < 7_000
    assert len(source.encode()) < 19_000
    assert not re.search(r"^\s*import\s|require\(|innerHTML|eval\(", source, re.MULTILINE)


def identify_call(page: str) -> dict:
    """The user object the page's snippet hands to identifyUser."""
    found = re.search(r"_refiner\('identifyUser', (\{.*?\})(?:, \{|\);)", page)
    return json.loads(found.group(1))


def test_the_page_signs_nothing_for_a_viewer(client, demo_on, workspace):
    workspace.identity_verification = True
    workspace.save()
    viewer = MembershipFactory(workspace=workspace, role=Membership.VIEWER).user
    client.force_login(viewer)

    page = client.get("/demo/", {"user": "u-7"}).content.decode()

    assert signature_of(workspace, "u-7") not in page


def test_the_page_signs_for_an_editor(client, demo_on, workspace):
    workspace.identity_verification = True
    workspace.save()
    client.force_login(MembershipFactory(workspace=workspace, role=Membership.EDITOR).user)

    page = client.get("/demo/", {"user": "u-7"}).content.decode()

    assert signature_of(workspace, "u-7") in page


def test_being_a_real_contact_changes_none_of_its_stored_data(client, demo_on, workspace):
    """The widget identifies with what the page hands it; a real contact must come out as is."""
    account = AccountFactory(workspace=workspace, external_id="acme", name="Acme Corp")
    real = ContactFactory(workspace=workspace, user_id="ana", email="ana@corp.example",
                          traits={"plan": "free"}, account=account)  # fmt: skip
    page = client.get("/demo/", {"user": "ana"}).content.decode()
    user = identify_call(page)

    identified = client.post(
        "/api/v1/widget/identify",
        json.dumps({"workspace": workspace.widget_key, "user": user}),
        content_type="application/json",
    )
    newcomer = identify_call(client.get("/demo/", {"user": "newcomer"}).content.decode())
    client.post(
        "/api/v1/widget/identify",
        json.dumps({"workspace": workspace.widget_key, "user": newcomer}),
        content_type="application/json",
    )

    assert identified.status_code == 200
    real.refresh_from_db()
    account.refresh_from_db()
    assert (real.email, real.traits, real.account_id) == ("ana@corp.example", {"plan": "free"},
                                                          account.pk)  # fmt: skip
    assert (account.name, account.traits) == ("Acme Corp", {})
    assert Contact.objects.get(workspace=workspace, user_id="newcomer").email == (
        "newcomer@example.com"
    )

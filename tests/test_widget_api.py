"""The widget's endpoints over HTTP (SPEC §5.1)."""

import hashlib
import hmac
import uuid

import pytest
from django.test import Client
from django.urls import get_resolver

from segments.models import Contact, Event
from surveys.models import Answer, Display, Response
from targeting.preview import preview_token
from tests.clients import Widget, error_code
from tests.factories import (
    NPS_QUESTION,
    AccountFactory,
    ContactFactory,
    DisplayFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db

QUESTIONS = [
    NPS_QUESTION,
    {"key": "why", "type": "text", "text": "Why?"},
    {
        "key": "used",
        "type": "multiple_choice",
        "text": "What do you use?",
        "choices": ["Reports", "Alerts", "API"],
    },
]


def sign(workspace, user_id: str) -> str:
    return hmac.new(workspace.secret_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def survey_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["surveys"]]


@pytest.fixture
def nps(workspace):
    return SurveyFactory(
        workspace=workspace,
        name="NPS",
        questions=QUESTIONS,
        targeting={"trigger": "event", "trigger_event": "report_exported", "delay_seconds": 3},
    )


# The whole flow -----------------------------------------------------------------------


def test_the_widget_flow_from_identify_to_completion(widget, workspace, nps):
    user = {"id": "u-42", "email": "ada@example.com", "plan": "enterprise",
            "account": {"id": "acme", "name": "Acme"}}  # fmt: skip
    response = widget.post("identify", {"user": user})
    assert response.status_code == 200
    assert response.json() == {"contact": {"user_id": "u-42"}}
    contact = Contact.objects.select_related("account").get(user_id="u-42")
    assert contact.traits == {"plan": "enterprise"} and contact.account.name == "Acme"

    assert survey_ids(widget.post("eligibility", {"user_id": "u-42"})) == []
    response = widget.post("track", {"user_id": "u-42", "event": "report_exported"})
    assert response.status_code == 202
    assert Event.objects.filter(contact__user_id="u-42", name="report_exported").count() == 1

    response = widget.post("eligibility", {"user_id": "u-42", "event": "report_exported",
                                           "url": "https://app.example.com/reports"})  # fmt: skip
    assert response.json() == {
        "surveys": [
            {
                "id": nps.pk,
                "name": "NPS",
                "delay_seconds": 3,
                "questions": QUESTIONS,
            }
        ]
    }

    response = widget.post("displays", {"user_id": "u-42", "survey": nps.pk,
                                        "event": "report_exported"})  # fmt: skip
    assert response.status_code == 201
    display_id = response.json()["display"]
    display = Display.objects.get(pk=display_id)
    assert display.contact.user_id == "u-42" and display.survey == nps

    response = widget.post(f"displays/{display_id}/answers", {"answers": {"nps": 9}})
    assert response.status_code == 200
    assert Response.objects.get(display=display).completed is False
    # A partly answered display can still be offered again.
    check = {"user_id": "u-42", "event": "report_exported"}
    assert survey_ids(widget.post("eligibility", check)) == [nps.pk]

    response = widget.post(
        f"displays/{display_id}/answers",
        {"answers": {"why": "Fast", "used": ["Reports", "API"]}, "completed": True},
    )
    assert response.status_code == 200
    assert response.json() == {"display": display_id, "completed": True}
    saved = Response.objects.get(display=display)
    assert saved.answers == {"nps": 9, "why": "Fast", "used": ["Reports", "API"]}
    assert saved.completed and saved.completed_at is not None
    display.refresh_from_db()
    assert display.completed_at == saved.completed_at

    # Once: never offered again after completion.
    assert survey_ids(widget.post("eligibility", check)) == []


def test_a_dismissed_once_survey_is_not_offered_again(widget, workspace, nps):
    ContactFactory(workspace=workspace, user_id="u-1")
    check = {"user_id": "u-1", "event": "report_exported"}
    assert survey_ids(widget.post("eligibility", check)) == [nps.pk]
    display_id = widget.post("displays", {"survey": nps.pk, **check}).json()["display"]
    response = widget.post(f"displays/{display_id}/dismiss")
    assert response.status_code == 200
    assert response.json()["dismissed"] is True
    assert Display.objects.get(pk=display_id).dismissed_at is not None
    assert survey_ids(widget.post("eligibility", check)) == []
    # Dismissing twice is harmless; answering a dismissed display is refused.
    assert widget.post(f"displays/{display_id}/dismiss").status_code == 200
    response = widget.post(f"displays/{display_id}/answers", {"answers": {"nps": 3}})
    assert response.status_code == 409 and error_code(response) == "display_closed"
    assert not Response.objects.exists()


def test_a_manual_survey_is_offered_when_asked_for(widget, workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    manual = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    assert survey_ids(widget.post("eligibility", {"user_id": "u-1"})) == []
    assert survey_ids(widget.post("eligibility", {"user_id": "u-1", "survey": manual.pk})) == [
        manual.pk
    ]


def test_an_unknown_contact_gets_no_survey(widget, workspace, nps):
    response = widget.post("eligibility", {"user_id": "stranger", "event": "report_exported"})
    assert response.status_code == 200
    assert response.json() == {"surveys": []}
    assert not Contact.objects.exists()


# Answers ---------------------------------------------------------------------------------


@pytest.fixture
def display(workspace, nps):
    contact = ContactFactory(workspace=workspace, user_id="u-1")
    return DisplayFactory(survey=nps, contact=contact)


def test_answers_merge_and_repeating_them_is_harmless(widget, display):
    path = f"displays/{display.pk}/answers"
    assert widget.post(path, {"answers": {"nps": 7}}).status_code == 200
    assert widget.post(path, {"answers": {"nps": 8}}).status_code == 200
    assert widget.post(path, {"answers": {"why": "ok"}, "completed": True}).status_code == 200
    assert widget.post(path, {"answers": {"why": "ok"}, "completed": True}).status_code == 200
    response = Response.objects.get()
    assert response.answers == {"nps": 8, "why": "ok"} and response.completed
    assert sorted(Answer.objects.values_list("key", "num")) == [("nps", 8.0), ("why", None)]
    changed = widget.post(path, {"answers": {"why": "changed my mind"}})
    assert changed.status_code == 409 and error_code(changed) == "display_closed"
    assert Response.objects.get().answers["why"] == "ok"


@pytest.mark.parametrize(
    "answers, field",
    [
        ({"nps": 11}, "answers.nps"),
        ({"nps": "9"}, "answers.nps"),
        ({"nps": True}, "answers.nps"),
        ({"nps": 7.5}, "answers.nps"),
        ({"used": ["Reports", "Email"]}, "answers.used"),
        ({"used": "Reports"}, "answers.used"),
        ({"why": "x" * 5001}, "answers.why"),
        ({"unknown": 1}, "answers.unknown"),
        ([1, 2], "answers"),
    ],
)
def test_bad_answers_are_refused_and_write_nothing(widget, display, answers, field):
    response = widget.post(f"displays/{display.pk}/answers", {"answers": answers})
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Response.objects.exists() and not Answer.objects.exists()


def test_completed_must_be_a_boolean(widget, display):
    response = widget.post(f"displays/{display.pk}/answers", {"answers": {}, "completed": "yes"})
    assert response.status_code == 400 and "completed" in response.json()["error"]["fields"]


# Keys, signatures, other workspaces ---------------------------------------------------------


@pytest.mark.parametrize("path", ["identify", "track", "eligibility", "displays"])
def test_a_missing_or_unknown_widget_key_is_refused(widget, path):
    body = {"user": {"id": "u-1"}, "user_id": "u-1", "event": "e", "survey": 1}
    for key in (None, "wk_nope", ""):
        response = widget.post(path, body, key=key)
        assert response.status_code == 401 and error_code(response) == "unauthorized"
    assert not Contact.objects.exists() and not Event.objects.exists()


def test_the_secret_key_is_not_a_widget_key(widget, workspace):
    response = widget.post("identify", {"user": {"id": "u-1"}}, key=workspace.secret_key)
    assert response.status_code == 401
    assert not Contact.objects.exists()


@pytest.fixture
def verified(workspace):
    workspace.identity_verification = True
    workspace.save()
    return workspace


@pytest.mark.parametrize("signature", [None, "", "00" * 32, "not hex", "é" * 64, 42])
def test_a_bad_signature_is_refused_and_writes_nothing(widget, verified, nps, signature):
    extra = {} if signature is None else {"signature": signature}
    calls = [
        ("identify", {"user": {"id": "u-1", "plan": "pro"}}),
        ("track", {"user_id": "u-1", "event": "report_exported"}),
        ("eligibility", {"user_id": "u-1"}),
        ("displays", {"user_id": "u-1", "survey": nps.pk}),
    ]
    for path, body in calls:
        response = widget.post(path, {**body, **extra})
        assert response.status_code == 403, path
        assert error_code(response) == "bad_signature"
    assert not Contact.objects.exists() and not Event.objects.exists()
    assert not Display.objects.exists()


def test_a_signature_for_another_user_is_refused(widget, verified):
    response = widget.post("identify", {"user": {"id": "u-1"}, "signature": sign(verified, "u-2")})
    assert response.status_code == 403
    assert not Contact.objects.exists()


def test_a_right_signature_is_accepted(widget, verified, nps):
    signature = sign(verified, "u-1")
    response = widget.post("identify", {"user": {"id": "u-1"}, "signature": signature})
    assert response.status_code == 200
    response = widget.post("track", {"user_id": "u-1", "event": "report_exported",
                                     "signature": signature.upper()})  # fmt: skip
    assert response.status_code == 202
    check = {"user_id": "u-1", "event": "report_exported", "signature": signature}
    assert survey_ids(widget.post("eligibility", check)) == [nps.pk]
    response = widget.post("displays", {"survey": nps.pk, **check})
    assert response.status_code == 201
    # The display id is the capability: answers and dismissal need no signature.
    display_id = response.json()["display"]
    response = widget.post(f"displays/{display_id}/answers", {"answers": {"nps": 10}})
    assert response.status_code == 200


def test_a_numeric_user_id_is_signed_as_its_text(widget, verified):
    response = widget.post("identify", {"user": {"id": 42}, "signature": sign(verified, "42")})
    assert response.status_code == 200
    assert Contact.objects.get().user_id == "42"


def test_another_workspaces_key_cannot_touch_a_display(widget, workspace, other_workspace, display):
    outsider = Widget(other_workspace)
    for path in (f"displays/{display.pk}/answers", f"displays/{display.pk}/dismiss"):
        response = outsider.post(path, {"answers": {"nps": 1}, "completed": True})
        assert response.status_code == 404 and error_code(response) == "not_found"
    display.refresh_from_db()
    assert display.dismissed_at is None and display.completed_at is None
    assert not Response.objects.exists()


def test_another_contact_cannot_touch_a_display(widget, workspace, display):
    ContactFactory(workspace=workspace, user_id="u-2")
    for path in (f"displays/{display.pk}/answers", f"displays/{display.pk}/dismiss"):
        response = widget.post(path, {"user_id": "u-2", "answers": {"nps": 1}})
        assert response.status_code == 404
    display.refresh_from_db()
    assert display.dismissed_at is None and not Response.objects.exists()


def test_an_unknown_display_is_not_found(widget, display):
    for path in (f"displays/{uuid.uuid4()}/answers", f"displays/{uuid.uuid4()}/dismiss"):
        response = widget.post(path, {"answers": {"nps": 1}})
        assert response.status_code == 404 and error_code(response) == "not_found"
    assert widget.post("displays/not-a-uuid/dismiss").status_code == 404


def test_a_display_needs_a_live_survey_of_the_workspace(widget, workspace, other_workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    draft = SurveyFactory(workspace=workspace, status="draft")
    foreign = SurveyFactory(workspace=other_workspace)
    for survey_id in (draft.pk, foreign.pk, 999_999):
        response = widget.post("displays", {"user_id": "u-1", "survey": survey_id})
        assert response.status_code == 404 and error_code(response) == "not_found"
    response = widget.post("displays", {"user_id": "u-1", "survey": "1"})
    assert response.status_code == 400 and "survey" in response.json()["error"]["fields"]
    assert not Display.objects.exists()


def test_a_display_needs_a_known_contact(widget, nps):
    response = widget.post("displays", {"user_id": "nobody", "survey": nps.pk})
    assert response.status_code == 404
    assert not Display.objects.exists() and not Contact.objects.exists()


def test_the_contact_of_another_workspace_is_a_stranger(widget, other_workspace, workspace, nps):
    ContactFactory(workspace=other_workspace, user_id="u-1")
    response = widget.post("eligibility", {"user_id": "u-1", "event": "report_exported"})
    assert response.json() == {"surveys": []}
    response = widget.post("displays", {"user_id": "u-1", "survey": nps.pk})
    assert response.status_code == 404 and not Display.objects.exists()


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("identify", {"user": {"id": ""}}, "user.id"),
        ("identify", {"user": "u-1"}, "user"),
        ("track", {"user_id": "u-1"}, "event"),
        ("track", {"event": "x"}, "user_id"),
        ("eligibility", {"user_id": "u-1", "url": 5}, "url"),
        ("eligibility", {"user_id": "u-1", "survey": True}, "survey"),
    ],
)
def test_bad_input_gets_a_400_and_writes_nothing(widget, path, body, field):
    response = widget.post(path, body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Contact.objects.exists() and not Event.objects.exists()


def test_it_only_answers_post(widget):
    response = widget.client.get("/api/v1/widget/eligibility")
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


# CORS --------------------------------------------------------------------------------------


def test_a_preflight_is_answered(workspace):
    response = Client().options(
        "/api/v1/widget/eligibility",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "POST" in response["Access-Control-Allow-Methods"]
    assert "Content-Type" in response["Access-Control-Allow-Headers"]


def test_any_origin_is_allowed_when_the_list_is_empty(workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    response = Widget(workspace, "https://anything.example").post("eligibility", {"user_id": "u-1"})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://anything.example"


def test_only_allowed_origins_get_in(workspace):
    workspace.allowed_origins = ["https://app.example.com"]
    workspace.save()
    allowed = Widget(workspace, "https://app.example.com")
    response = allowed.post("identify", {"user": {"id": "u-1"}})
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"

    evil = Widget(workspace, "https://evil.example")
    for path, body in [
        ("identify", {"user": {"id": "u-2"}}),
        ("track", {"user_id": "u-1", "event": "x"}),
        ("eligibility", {"user_id": "u-1"}),
    ]:
        response = evil.post(path, body)
        assert response.status_code == 403 and error_code(response) == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response
    assert list(Contact.objects.values_list("user_id", flat=True)) == ["u-1"]
    assert not Event.objects.exists()
    # Without an Origin (a server, a same-origin page) the key alone decides.
    assert Widget(workspace).post("track", {"user_id": "u-1", "event": "x"}).status_code == 202


def test_errors_carry_cors_headers_for_an_allowed_origin(workspace):
    response = Widget(workspace, "https://app.example.com").post("track", {"user_id": "u-1"})
    assert response.status_code == 400
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


# The widget key reads nothing stored -----------------------------------------------------


SECRETS = ("ada.secret@example.com", "Ada Secretname", "trait-secret-plan", "Secret Corp",
           "account-secret-tier", "answer-secret-text")  # fmt: skip


def widget_routes() -> dict[str, str]:
    """Every widget URL of the URLconf, by name: a new one cannot skip the test below."""
    routes = get_resolver("targeting.api_urls").reverse_dict
    return {name: name for name in routes if isinstance(name, str) and name.startswith("widget-")}


def test_no_widget_endpoint_returns_stored_contact_account_or_answer_data(widget, workspace):
    account = AccountFactory(workspace=workspace, name="Secret Corp",
                             traits={"tier": "account-secret-tier"})  # fmt: skip
    ContactFactory(workspace=workspace, user_id="u-1", email="ada.secret@example.com",
                   name="Ada Secretname", traits={"plan": "trait-secret-plan"},
                   account=account)  # fmt: skip
    survey = SurveyFactory(
        workspace=workspace,
        questions=[{"key": "nps", "type": "nps", "text": "How likely?"},
                   {"key": "why", "type": "text", "text": "Why?"}],
        targeting={"frequency": "every_trigger"},
    )  # fmt: skip
    first = widget.post("displays", {"user_id": "u-1", "survey": survey.pk}).json()["display"]
    saved = widget.post(f"displays/{first}/answers", {"answers": {"why": "answer-secret-text"}})
    assert saved.status_code == 200

    calls = {
        "widget-identify": ("identify", {"user": {"id": "u-1"}}),
        "widget-track": ("track", {"user_id": "u-1", "event": "opened"}),
        "widget-eligibility": ("eligibility", {"user_id": "u-1"}),
        "widget-displays": ("displays", {"user_id": "u-1", "survey": survey.pk}),
        "widget-display-answers": (f"displays/{first}/answers", {"answers": {"nps": 7}}),
        "widget-display-dismiss": (f"displays/{first}/dismiss", {"user_id": "u-1"}),
        "widget-preview": ("preview", {"token": preview_token(survey)}),
    }
    assert set(calls) == set(widget_routes())
    for name, (path, body) in calls.items():
        response = widget.post(path, body)
        assert response.status_code < 300, (name, response.content)
        text = response.content.decode()
        assert not [secret for secret in SECRETS if secret in text], name
    # The calls above did reach the stored data they must not show.
    assert Response.objects.get(display_id=first).answers == {"why": "answer-secret-text", "nps": 7}


def test_identify_answers_with_the_user_id_only(widget, workspace):
    user = {"id": "u-1", "email": "a@example.com", "name": "Ada", "plan": "pro",
            "account": {"id": "acme", "name": "Acme", "tier": "gold"}}  # fmt: skip
    response = widget.post("identify", {"user": user})
    assert response.status_code == 200
    assert response.json() == {"contact": {"user_id": "u-1"}}


def test_answers_answer_with_the_display_and_completion_only(widget, display):
    path = f"displays/{display.pk}/answers"
    response = widget.post(path, {"answers": {"nps": 7, "why": "Because"}})
    assert response.json() == {"display": str(display.pk), "completed": False}
    response = widget.post(path, {"answers": {}, "completed": True})
    assert response.json() == {"display": str(display.pk), "completed": True}


# Accounts under identity verification ---------------------------------------------------------


@pytest.fixture
def acme(verified):
    return AccountFactory(workspace=verified, external_id="acme", name="Acme",
                          traits={"tier": "gold"})  # fmt: skip


def hijack(user_id: str = "u-1") -> dict:
    return {"id": user_id, "plan": "changed", "account": {"id": "acme", "name": "Hacked",
                                                          "tier": "free"}}  # fmt: skip


@pytest.mark.parametrize("account_signature", [None, "", "00" * 32, "u-1", 7, "signed-u-1"])
def test_an_account_without_its_own_signature_is_refused(widget, verified, acme, account_signature):
    ContactFactory(workspace=verified, user_id="u-2", traits={"plan": "pro"})
    body = {"signature": sign(verified, "u-1")}
    if account_signature == "signed-u-1":
        account_signature = sign(verified, "u-1")
    if account_signature is not None:
        body["account_signature"] = account_signature
    response = widget.post("identify", {"user": hijack(), **body})
    assert response.status_code == 403 and error_code(response) == "bad_signature"
    assert "account" in response.json()["error"]["message"]
    # An existing contact is not changed or moved either.
    body["signature"] = sign(verified, "u-2")
    response = widget.post("identify", {"user": hijack("u-2"), **body})
    assert response.status_code == 403 and error_code(response) == "bad_signature"
    acme.refresh_from_db()
    assert (acme.name, acme.traits) == ("Acme", {"tier": "gold"})
    assert list(Contact.objects.values_list("user_id", "traits", "account")) == [
        ("u-2", {"plan": "pro"}, None)
    ]


def test_an_account_with_its_signature_is_accepted(widget, verified, acme):
    body = {"signature": sign(verified, "u-1"), "account_signature": sign(verified, "acme")}
    response = widget.post("identify", {"user": hijack(), **body})
    assert response.status_code == 200
    acme.refresh_from_db()
    assert (acme.name, acme.traits) == ("Hacked", {"tier": "free"})
    assert Contact.objects.get(user_id="u-1").account == acme


def test_a_numeric_account_id_is_signed_as_its_text(widget, verified):
    user = {"id": "u-1", "account": {"id": 7}}
    body = {"signature": sign(verified, "u-1"), "account_signature": sign(verified, "7")}
    assert widget.post("identify", {"user": user, **body}).status_code == 200
    assert Contact.objects.get().account.external_id == "7"


def test_an_account_needs_no_signature_without_identity_verification(widget, workspace):
    response = widget.post("identify", {"user": hijack()})
    assert response.status_code == 200
    assert Contact.objects.get().account.name == "Hacked"

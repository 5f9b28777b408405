"""REST API for contacts and events (SPEC §5.2): identify-user, track-event, contacts."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from segments.models import Account, Contact, ContactValue, Event, SegmentMember
from surveys.models import Answer, Display, Response
from tests.clients import fields_of
from tests.factories import (
    AccountFactory,
    AnswerFactory,
    ContactFactory,
    DisplayFactory,
    EventFactory,
    ManualSegmentFactory,
    ResponseFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import plan_is

pytestmark = pytest.mark.django_db


def row_counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Contact, ContactValue, Account, Event, Display, Response, SegmentMember)
    }


def when(days: float = 0) -> datetime:
    return timezone.now() - timedelta(days=days)


# identify-user -------------------------------------------------------------


def test_identify_creates_a_contact(api, workspace):
    response = api.post(
        "/api/v1/identify-user",
        {"id": "u-1", "email": "ada@example.com", "name": "Ada", "plan": "enterprise"},
    )
    assert response.status_code == 200, response.content
    body = response.json()["contact"]
    assert body["user_id"] == "u-1"
    assert body["email"] == "ada@example.com" and body["name"] == "Ada"
    assert body["traits"] == {"plan": "enterprise"}
    assert body["account"] is None
    contact = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert contact.traits == {"plan": "enterprise"}
    # The parsed values SQL compares are written with the contact.
    assert ContactValue.objects.get(contact=contact, key="plan").text == "enterprise"


def test_identify_merges_traits(api, workspace):
    ContactFactory(workspace=workspace, user_id="u-1", traits={"plan": "free", "seats": 3, "x": 1})
    response = api.post(
        "/api/v1/identify-user", {"id": "u-1", "plan": "pro", "x": None, "role": "admin"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["contact"]["traits"] == {"plan": "pro", "seats": 3, "role": "admin"}
    contact = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert contact.traits == {"plan": "pro", "seats": 3, "role": "admin"}
    keys = set(ContactValue.objects.filter(contact=contact).values_list("key", flat=True))
    assert "x" not in keys and {"plan", "seats", "role"} <= keys


def test_identify_keeps_email_and_name_unless_given(api, workspace):
    api.post("/api/v1/identify-user", {"id": "u-1", "email": "a@example.com", "name": "Ada"})
    api.post("/api/v1/identify-user", {"id": "u-1", "plan": "pro"})
    contact = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert (contact.email, contact.name) == ("a@example.com", "Ada")
    api.post("/api/v1/identify-user", {"id": "u-1", "email": "b@example.com", "name": None})
    contact.refresh_from_db()
    assert (contact.email, contact.name) == ("b@example.com", None)


def test_identify_keeps_first_seen_and_advances_last_seen(api, workspace):
    ContactFactory(
        workspace=workspace, user_id="u-1", first_seen_at=when(days=40), last_seen_at=when(days=2)
    )
    before = timezone.now()
    response = api.post("/api/v1/identify-user", {"id": "u-1"})
    assert response.status_code == 200
    contact = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert contact.first_seen_at < when(days=39)
    assert contact.last_seen_at >= before
    value = ContactValue.objects.get(contact=contact, key="last_seen_at")
    assert value.date == contact.last_seen_at


def test_identify_shares_an_account_between_contacts(api, workspace):
    api.post(
        "/api/v1/identify-user",
        {"id": "u-1", "account": {"id": "acme", "name": "Acme", "tier": "gold", "size": 50}},
    )
    response = api.post(
        "/api/v1/identify-user", {"id": "u-2", "account": {"id": "acme", "size": 60}}
    )
    assert response.status_code == 200, response.content
    assert response.json()["contact"]["account"] == {
        "id": "acme",
        "name": "Acme",
        "traits": {"tier": "gold", "size": 60},
    }
    account = Account.objects.get(workspace=workspace, external_id="acme")
    assert set(account.contacts.values_list("user_id", flat=True)) == {"u-1", "u-2"}
    assert api.get("/api/v1/contacts/u-1").json()["account"]["traits"]["size"] == 60


def test_identify_refuses_a_bad_trait_key_and_writes_nothing(api, workspace):
    before = row_counts()
    response = api.post("/api/v1/identify-user", {"id": "u-1", "bad.key": 1, "plan": "pro"})
    assert "bad.key" in fields_of(response)
    response = api.post("/api/v1/identify-user", {"id": "u-1", "account": {"id": "a", "-x": 1}})
    assert "account.-x" in fields_of(response)
    response = api.post("/api/v1/identify-user", {"id": "u-1", "first_seen_at": "2020-01-01"})
    assert "first_seen_at" in fields_of(response)
    assert row_counts() == before


def test_identify_refuses_over_100_traits(api):
    before = row_counts()
    user = {"id": "u-1", **{f"t{i}": i for i in range(101)}}
    assert "traits" in fields_of(api.post("/api/v1/identify-user", user))
    assert row_counts() == before
    user = {"id": "u-1", **{f"t{i}": i for i in range(100)}}
    assert api.post("/api/v1/identify-user", user).status_code == 200


def test_identify_refuses_a_value_over_10000_characters(api):
    before = row_counts()
    response = api.post("/api/v1/identify-user", {"id": "u-1", "bio": "x" * 10_001})
    assert "bio" in fields_of(response)
    response = api.post("/api/v1/identify-user", {"id": "u-1", "tags": ["x" * 10_001]})
    assert "tags" in fields_of(response)
    assert row_counts() == before
    assert api.post("/api/v1/identify-user", {"id": "u-1", "bio": "x" * 10_000}).status_code == 200


@pytest.mark.parametrize(
    "user, field",
    [
        ({}, "id"),
        ({"id": ""}, "id"),
        ({"id": "x" * 201}, "id"),
        ({"id": True}, "id"),
        ({"id": "u", "email": 5}, "email"),
        ({"id": "u", "name": ["Ada"]}, "name"),
        ({"id": "u", "account": "acme"}, "account"),
        ({"id": "u", "account": {"name": "Acme"}}, "account.id"),
    ],
)
def test_identify_refuses_bad_fields(api, user, field):
    before = row_counts()
    assert field in fields_of(api.post("/api/v1/identify-user", user))
    assert row_counts() == before


# track-event -----------------------------------------------------------------


def test_track_records_an_event(api, workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1", last_seen_at=when(days=3))
    response = api.post("/api/v1/track-event", {"user_id": "u-1", "event": "report_exported"})
    assert response.status_code == 202, response.content
    event = Event.objects.get(contact=contact)
    assert event.name == "report_exported" and event.workspace == workspace
    assert event.occurred_at > when(days=0.01)
    contact.refresh_from_db()
    assert contact.last_seen_at > when(days=0.01)


def test_track_creates_an_unknown_contact(api, workspace):
    response = api.post("/api/v1/track-event", {"user_id": "new", "event": "signed_up"})
    assert response.status_code == 202
    contact = Contact.objects.get(workspace=workspace, user_id="new")
    assert list(contact.events.values_list("name", flat=True)) == ["signed_up"]


def test_track_parses_occurred_at(api, workspace):
    api.post(
        "/api/v1/track-event",
        {"user_id": "u", "event": "a", "occurred_at": "2026-01-22T13:00:00+02:00"},
    )
    api.post("/api/v1/track-event", {"user_id": "u", "event": "b", "occurred_at": "2026-01-22"})
    events = dict(Event.objects.values_list("name", "occurred_at"))
    assert events["a"] == datetime(2026, 1, 22, 11, 0, tzinfo=UTC)
    assert events["b"] == datetime(2026, 1, 22, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"event": "a"}, "user_id"),
        ({"user_id": "", "event": "a"}, "user_id"),
        ({"user_id": "u"}, "event"),
        ({"user_id": "u", "event": ""}, "event"),
        ({"user_id": "u", "event": 7}, "event"),
        ({"user_id": "u", "event": "a", "occurred_at": "yesterday"}, "occurred_at"),
        ({"user_id": "u", "event": "a", "occurred_at": "2024-02-30"}, "occurred_at"),
        ({"user_id": "u", "event": "a", "occurred_at": 1700000000}, "occurred_at"),
    ],
)
def test_track_refuses_bad_input(api, body, field):
    before = row_counts()
    assert field in fields_of(api.post("/api/v1/track-event", body))
    assert row_counts() == before


def test_track_reports_every_bad_field_at_once(api):
    fields = fields_of(api.post("/api/v1/track-event", {"user_id": "", "event": ""}))
    assert {"user_id", "event"} <= set(fields)


# contacts --------------------------------------------------------------------


def test_contacts_list_paginates(api, workspace):
    for i in range(51):
        ContactFactory(workspace=workspace, user_id=f"u-{i:02}")
    first = api.get("/api/v1/contacts").json()
    assert first["count"] == 51 and len(first["results"]) == 50
    assert first["results"][0]["user_id"] == "u-00"
    assert first["next"].endswith("/api/v1/contacts?page=2")
    second = api.get("/api/v1/contacts", {"page": 2}).json()
    assert [c["user_id"] for c in second["results"]] == ["u-50"]
    assert second["next"] is None and second["count"] == 51
    assert api.get("/api/v1/contacts", {"page": 3}).status_code == 404
    assert "page" in fields_of(api.get("/api/v1/contacts", {"page": "x"}))


def test_contacts_list_filters_by_segment(api, workspace):
    ContactFactory(workspace=workspace, user_id="pro", traits={"plan": "pro"})
    ContactFactory(workspace=workspace, user_id="free", traits={"plan": "free"})
    segment = SegmentFactory(
        workspace=workspace,
        rules=plan_is("pro"),
    )
    body = api.get("/api/v1/contacts", {"segment": segment.pk}).json()
    assert [c["user_id"] for c in body["results"]] == ["pro"] and body["count"] == 1
    assert "segment" in fields_of(api.get("/api/v1/contacts", {"segment": "abc"}))
    assert "segment" in fields_of(api.get("/api/v1/contacts", {"segment": 999999}))


def test_contact_shows_its_segments(api, workspace):
    contact = ContactFactory(workspace=workspace, user_id="u/1", traits={"plan": "pro"})
    pro = SegmentFactory(
        workspace=workspace,
        name="Pro",
        rules=plan_is("pro"),
    )
    SegmentFactory(
        workspace=workspace,
        rules={
            "type": "group",
            "match": "all",
            "conditions": [{"type": "attribute", "attribute": "plan", "operator": "is_not_set"}],
        },
    )
    vip = ManualSegmentFactory(workspace=workspace, name="VIP", members=[contact])
    response = api.get("/api/v1/contacts/u/1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user_id"] == "u/1" and body["traits"] == {"plan": "pro"}
    assert sorted(s["id"] for s in body["segments"]) == sorted([pro.pk, vip.pk])
    assert api.get("/api/v1/contacts/nobody").status_code == 404


def test_contact_delete_removes_its_events_displays_and_responses(api, workspace):
    contact = ContactFactory(workspace=workspace, user_id="u-1")
    kept = ContactFactory(workspace=workspace, user_id="u-2")
    survey = SurveyFactory(workspace=workspace)
    for who in (contact, kept):
        EventFactory(contact=who)
        display = DisplayFactory(survey=survey, contact=who)
        response = ResponseFactory(display=display, answers={"nps": 9})
        AnswerFactory(response=response, key="nps", num=9)
    assert api.delete("/api/v1/contacts/u-1").status_code == 204
    assert not Contact.objects.filter(pk=contact.pk).exists()
    for model in (Event, Display, Response, Answer, ContactValue):
        assert not model.objects.filter(contact_id=contact.pk).exists()
        assert model.objects.filter(contact=kept).exists()
    assert api.delete("/api/v1/contacts/u-1").status_code == 404


def test_contacts_refuse_wrong_methods(api):
    ContactFactory(user_id="u-1")
    for call in (api.post, api.put):
        response = call("/api/v1/contacts", {})
        assert response.status_code == 405
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert api.get("/api/v1/identify-user").status_code == 405
    assert api.put("/api/v1/track-event", {"user_id": "u", "event": "a"}).status_code == 405


# bad requests ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/identify-user", "/api/v1/track-event"])
def test_malformed_json_is_refused(api, path):
    before = row_counts()
    for raw in (b"{", b"[1, 2]", b"", b'{"id": NaN}', b"\xff\xfe"):
        response = api.post(path, raw=raw)
        assert response.status_code == 400, raw
        assert response.json()["error"]["code"] == "invalid_json"
    assert row_counts() == before


@pytest.mark.parametrize("path", ["/api/v1/identify-user", "/api/v1/track-event"])
def test_a_body_over_64_kib_is_refused(api, path):
    before = row_counts()
    body = {"id": "u", "user_id": "u", "event": "a", "bio": "x" * (64 * 1024)}
    response = api.post(path, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert row_counts() == before


def test_a_missing_or_wrong_key_is_refused(client, workspace):
    before = row_counts()
    for headers in ({}, {"Authorization": "Bearer sk_wrong"}, {"Authorization": "Basic x"}):
        for method, path in (
            ("post", "/api/v1/identify-user"),
            ("post", "/api/v1/track-event"),
            ("get", "/api/v1/contacts"),
        ):
            if method == "get":
                response = client.get(path, headers=headers)
            else:
                response = client.post(
                    path,
                    '{"id": "u", "user_id": "u", "event": "a"}',
                    content_type="application/json",
                    headers=headers,
                )
            assert response.status_code == 401, (headers, path)
            assert response.json()["error"]["code"] == "unauthorized"
    # The widget key is public: it never opens the REST API.
    response = client.get(
        "/api/v1/contacts", headers={"Authorization": f"Bearer {workspace.widget_key}"}
    )
    assert response.status_code == 401
    assert row_counts() == before


# the outsider ----------------------------------------------------------------


def test_the_outsider_sees_no_contacts_of_this_workspace(api, outsider_api, workspace):
    ContactFactory(workspace=workspace, user_id="u-1")
    EventFactory(contact=ContactFactory(workspace=workspace, user_id="u-2"))
    segment = SegmentFactory(workspace=workspace)
    body = outsider_api.get("/api/v1/contacts").json()
    assert body == {"results": [], "next": None, "count": 0}
    assert outsider_api.get("/api/v1/contacts/u-1").status_code == 404
    assert outsider_api.delete("/api/v1/contacts/u-1").status_code == 404
    assert "segment" in fields_of(outsider_api.get("/api/v1/contacts", {"segment": segment.pk}))
    assert Contact.objects.filter(workspace=workspace).count() == 2


def test_the_outsider_identifying_the_same_user_id_gets_a_separate_contact(
    api, outsider_api, workspace, other_workspace
):
    AccountFactory(workspace=workspace, external_id="acme", name="Acme", traits={"tier": "gold"})
    api.post("/api/v1/identify-user", {"id": "u-1", "plan": "pro", "account": {"id": "acme"}})
    response = outsider_api.post(
        "/api/v1/identify-user", {"id": "u-1", "plan": "free", "account": {"id": "acme"}}
    )
    assert response.status_code == 200
    assert response.json()["contact"]["traits"] == {"plan": "free"}
    assert response.json()["contact"]["account"] == {"id": "acme", "name": None, "traits": {}}
    outsider_api.post("/api/v1/track-event", {"user_id": "u-1", "event": "x"})
    ours = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert ours.traits == {"plan": "pro"} and not ours.events.exists()
    assert ours.account.traits == {"tier": "gold"}
    assert Contact.objects.get(workspace=other_workspace, user_id="u-1").events.count() == 1


@pytest.mark.parametrize(
    "value",
    [True, 0, -0.5, 10**30, 1.25, "", "ünïcödé 🎉", ["a", 1], {"nested": {"deep": [1]}}],
)
def test_identify_keeps_any_json_trait_value(api, workspace, value):
    response = api.post("/api/v1/identify-user", {"id": "u-1", "thing": value})
    assert response.status_code == 200, response.content
    assert response.json()["contact"]["traits"] == {"thing": value}
    contact = Contact.objects.get(workspace=workspace, user_id="u-1")
    assert contact.traits == {"thing": value}
    assert ContactValue.objects.filter(contact=contact, key="thing").exists()

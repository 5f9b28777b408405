"""Personal data can be erased: deleting a contact removes everything recorded about them."""

import pytest

from segments.models import Contact, ContactValue, Event, SegmentMember
from surveys.models import Answer, Display, Response
from tests.factories import (
    AccountFactory,
    ContactFactory,
    DisplayFactory,
    EventFactory,
    ManualSegmentFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db


def give_history(contact, survey, manual):
    EventFactory(contact=contact)
    display = DisplayFactory(survey=survey, contact=contact)
    SegmentMember.objects.create(segment=manual, contact=contact)
    return display


def rows_about(contact_id: int) -> dict:
    return {
        "values": ContactValue.objects.filter(contact_id=contact_id).count(),
        "events": Event.objects.filter(contact_id=contact_id).count(),
        "displays": Display.objects.filter(contact_id=contact_id).count(),
        "responses": Response.objects.filter(contact_id=contact_id).count(),
        "answers": Answer.objects.filter(contact_id=contact_id).count(),
        "memberships": SegmentMember.objects.filter(contact_id=contact_id).count(),
    }


@pytest.fixture
def history(workspace, api):
    account = AccountFactory(workspace=workspace)
    survey = SurveyFactory(workspace=workspace)
    manual = ManualSegmentFactory(workspace=workspace)
    leaving = ContactFactory(workspace=workspace, user_id="leaving", account=account)
    staying = ContactFactory(workspace=workspace, user_id="staying", account=account)
    for contact in (leaving, staying):
        display = give_history(contact, survey, manual)
        response = api.client.post(
            f"/api/v1/widget/displays/{display.pk}/answers",
            {"workspace": workspace.widget_key, "answers": {"nps": 9}, "completed": True},
            content_type="application/json",
        )
        assert response.status_code == 200
    return leaving, staying, account


def test_deleting_a_contact_removes_their_events_displays_responses_and_answers(api, history):
    leaving, staying, account = history
    assert all(rows_about(leaving.pk).values())

    response = api.delete("/api/v1/contacts/leaving")

    assert response.status_code == 204
    assert not Contact.objects.filter(pk=leaving.pk).exists()
    assert set(rows_about(leaving.pk).values()) == {0}
    assert all(rows_about(staying.pk).values())  # the neighbour keeps everything
    account.refresh_from_db()  # the company stays: other contacts share it


def test_another_workspace_cannot_delete_the_contact(outsider_api, history):
    leaving, _, _ = history

    response = outsider_api.delete("/api/v1/contacts/leaving")

    assert response.status_code == 404
    assert all(rows_about(leaving.pk).values())


def test_the_deleted_contact_is_gone_from_every_list(api, history):
    api.delete("/api/v1/contacts/leaving")

    listed = [c["user_id"] for c in api.get("/api/v1/contacts").json()["results"]]
    responses = api.get("/api/v1/responses").json()["results"]

    assert listed == ["staying"]
    assert "leaving" not in str(responses)
    assert api.get("/api/v1/contacts/leaving").status_code == 404

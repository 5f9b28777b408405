"""Test contacts: a teammate's answers stay out of results unless asked for (include_test=1)."""

import csv
import io

import pytest
from django.db import connection

from segments.models import Contact
from surveys.models import Response, Survey
from tests.clients import signed_in
from tests.conftest import NOW
from tests.factories import NPS_QUESTION, ContactFactory, SurveyFactory, record_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey(workspace) -> Survey:
    return SurveyFactory(workspace=workspace, name="Quarterly NPS", questions=[NPS_QUESTION])


def respond(survey: Survey, score: int, **contact) -> Response:
    person = ContactFactory(workspace=survey.workspace, **contact)
    return record_response(survey, person, {"nps": score}, NOW, completed=True)


@pytest.fixture
def answered(survey):
    """A real customer gave 10, the PM trying the survey gave 0."""
    respond(survey, 10, user_id="customer-1")
    respond(survey, 0, user_id="pm-trying-it", is_test=True)


def toggle(client, user_id: str, is_test: str):
    return client.post("/test-contacts/", {"user_id": user_id, "is_test": is_test})


# The flag on the contact page -----------------------------------------------------------


def test_an_owner_marks_a_contact_as_test_and_back(owner, workspace):
    ContactFactory(workspace=workspace, user_id="pm/1")

    response = toggle(owner, "pm/1", "1")

    assert response.status_code == 302 and response["Location"] == "/contacts/pm/1/"
    assert Contact.objects.get(user_id="pm/1").is_test is True
    page = owner.get("/contacts/pm/1/").content.decode()
    assert 'id="test-contact"' in page and "Count in results" in page

    toggle(owner, "pm/1", "0")
    assert Contact.objects.get(user_id="pm/1").is_test is False
    assert 'id="test-contact"' not in owner.get("/contacts/pm/1/").content.decode()


def test_an_editor_may_mark_a_test_contact(workspace):
    ContactFactory(workspace=workspace, user_id="pm")
    assert toggle(signed_in(workspace, "editor"), "pm", "1").status_code == 302
    assert Contact.objects.get(user_id="pm").is_test is True


def test_a_viewer_may_not(viewer, workspace):
    ContactFactory(workspace=workspace, user_id="pm")
    assert toggle(viewer, "pm", "1").status_code == 403
    assert Contact.objects.get(user_id="pm").is_test is False
    assert "Mark as test contact" not in viewer.get("/contacts/pm/").content.decode()


def test_an_outsider_gets_a_404_and_changes_nothing(outsider, workspace, other_workspace):
    ContactFactory(workspace=workspace, user_id="pm")
    assert toggle(outsider, "pm", "1").status_code == 404
    assert Contact.objects.get(user_id="pm").is_test is False


def test_an_anonymous_visitor_is_sent_to_sign_in(client, workspace):
    ContactFactory(workspace=workspace, user_id="pm")
    assert toggle(client, "pm", "1").status_code == 302
    assert Contact.objects.get(user_id="pm").is_test is False


def test_only_post_changes_the_flag(owner, workspace):
    ContactFactory(workspace=workspace, user_id="pm")
    assert owner.get("/test-contacts/", {"user_id": "pm", "is_test": "1"}).status_code == 405


def test_contacts_are_real_by_default(workspace):
    assert ContactFactory(workspace=workspace).is_test is False


# Results leave them out -----------------------------------------------------------------


def test_the_responses_page_leaves_test_contacts_out(owner, answered, survey):
    page = owner.get("/responses/", {"survey": survey.pk}).content.decode()

    assert "customer-1" in page
    assert "pm-trying-it" not in page
    assert "1 response<" in page
    assert 'class="score-value">100<' in page, "the NPS counts the customer only"


def test_include_test_shows_them_with_a_badge(owner, answered, survey):
    page = owner.get("/responses/", {"survey": survey.pk, "include_test": "1"}).content.decode()

    assert "pm-trying-it" in page and "customer-1" in page
    assert "2 responses<" in page
    assert 'class="score-value">0<' in page, "(1 promoter − 1 detractor) / 2"
    assert 'name="include_test" value="1" checked' in page


def test_the_chart_counts_real_answers_only(owner, answered, survey):
    response = owner.get("/responses/", {"survey": survey.pk})
    (summary,) = response.context["summaries"]
    assert summary.counts == {10: 1}


def export(client, **query) -> list[dict]:
    response = client.get("/responses/export.csv", query)
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_export_leaves_test_contacts_out_unless_asked(owner, answered):
    assert [row["user_id"] for row in export(owner)] == ["customer-1"]
    assert sorted(row["user_id"] for row in export(owner, include_test="1")) == [
        "customer-1",
        "pm-trying-it",
    ]


def test_the_export_link_keeps_the_choice(owner, answered):
    page = owner.get("/responses/", {"include_test": "1"}).content.decode()
    assert "/responses/export.csv?include_test=1" in page


def test_a_contact_loaded_without_the_flag_is_not_a_test_contact(workspace):
    """Bulk loads (bench/seed.py's COPY) and raw inserts name their columns, not this one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_contact (workspace_id, user_id, traits, first_seen_at, "
            "last_seen_at) VALUES (%s, 'loaded', '{}', %s, %s)",
            [workspace.pk, NOW, NOW],
        )

    assert Contact.objects.get(user_id="loaded").is_test is False

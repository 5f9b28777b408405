"""The merge of an anonymous visitor under racing requests: real threads on PostgreSQL, as
in test_concurrency.py (which says why SQLite is skipped)."""

import json

import pytest
from django.test import Client

from segments.models import Contact
from surveys.models import Display, Response
from tests.factories import SurveyFactory, WorkspaceFactory
from tests.workers import RACES, at_once

pytestmark = RACES

THREADS = 20
VISITOR = "0123456789abcdef0123456789abcdef"


def widget_post(path: str, body: dict) -> tuple[int, dict]:
    response = Client().post(f"/api/v1/widget/{path}", json.dumps(body),
                             content_type="application/json")  # fmt: skip
    return response.status_code, response.json()


@pytest.fixture
def every_time():
    workspace = WorkspaceFactory()
    return SurveyFactory(
        workspace=workspace, targeting={"audience": "anyone", "frequency": "every_trigger"}
    )


def visitor_answers(survey) -> int:
    key = survey.workspace.widget_key
    status, body = widget_post("displays", {"workspace": key, "anonymous_id": VISITOR,
                                            "survey": survey.pk})  # fmt: skip
    assert status == 201, body
    answer = {"workspace": key, "anonymous_id": VISITOR, "answers": {"nps": 7}, "completed": True}
    return widget_post(f"displays/{body['display']}/answers", answer)[0]


def identify(survey, user_id: str = "u-42") -> int:
    body = {"workspace": survey.workspace.widget_key, "user": {"id": user_id},
            "anonymous_id": VISITOR}  # fmt: skip
    return widget_post("identify", body)[0]


def test_racing_identifies_of_one_browser_merge_once_and_lose_nothing(every_time):
    for _ in range(5):
        assert visitor_answers(every_time) == 200

    results = at_once(THREADS, lambda i: identify(every_time))

    assert results == [200] * THREADS
    contact = Contact.objects.get(user_id="u-42")
    assert Display.objects.filter(contact=contact).count() == 5
    assert Response.objects.filter(contact=contact, completed=True).count() == 5
    assert not Display.objects.filter(contact__anonymous_id=VISITOR).exists()


def test_a_visitor_answering_while_it_is_merged_loses_no_display(every_time):
    def work(index: int) -> int:
        return visitor_answers(every_time) if index % 2 else identify(every_time)

    results = at_once(THREADS, work)

    assert results == [200] * THREADS, results
    # Displays recorded after a merge wait on the visitor's row for the next identify.
    assert identify(every_time) == 200
    contact = Contact.objects.get(user_id="u-42")
    assert Display.objects.filter(survey=every_time).count() == THREADS // 2
    assert Display.objects.filter(contact=contact).count() == THREADS // 2
    assert Response.objects.filter(contact=contact, completed=True).count() == THREADS // 2
    assert Contact.all_contacts.count() == 2


def test_two_users_racing_for_one_visitor_get_its_data_once(every_time):
    for _ in range(3):
        visitor_answers(every_time)

    results = at_once(2, lambda i: identify(every_time, user_id=f"u-{i}"))

    assert results == [200, 200]
    owners = set(Display.objects.values_list("contact__user_id", flat=True))
    assert len(owners) == 1 and owners <= {"u-0", "u-1"}, "all to one of them, none split"
    assert Display.objects.count() == 3

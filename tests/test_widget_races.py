"""A `once` survey gets one completed response per contact, even under racing requests.

Real threads and transactions on PostgreSQL, as in test_concurrency.py (which says
why SQLite is skipped).
"""

import json

import pytest
from django.test import Client

from surveys.models import Display, Response
from tests.factories import ContactFactory, SurveyFactory, WorkspaceFactory
from tests.workers import RACES, at_once

pytestmark = RACES

THREADS = 20


def widget_post(path: str, body: dict) -> tuple[int, dict]:
    response = Client().post(f"/api/v1/widget/{path}", json.dumps(body),
                             content_type="application/json")  # fmt: skip
    return response.status_code, response.json()


@pytest.fixture
def once():
    workspace = WorkspaceFactory()
    ContactFactory(workspace=workspace, user_id="racer")
    return SurveyFactory(workspace=workspace)


def show_and_complete(survey) -> tuple[int, int | None]:
    """What a widget does: record a display, then complete it (None: no display)."""
    key = survey.workspace.widget_key
    status, body = widget_post("displays", {"workspace": key, "user_id": "racer",
                                            "survey": survey.pk})  # fmt: skip
    if status != 201:
        return status, None
    answer = {"workspace": key, "answers": {"nps": 9}, "completed": True}
    return status, widget_post(f"displays/{body['display']}/answers", answer)[0]


def test_two_widgets_showing_and_completing_a_once_survey_give_one_response(once):
    results = at_once(2, lambda i: show_and_complete(once))

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Response.objects.filter(survey=once, completed=True).count() == 1
    # Each pair is (display, completion): 201 then 200 for the winner; the loser was
    # refused either its display or its completion.
    assert sorted(results).count((201, 200)) == 1
    assert set(results) <= {(201, 200), (201, 409), (409, None)}


def test_many_displays_of_a_once_survey_then_completions_give_one_response(once):
    key = once.workspace.widget_key
    body = {"workspace": key, "user_id": "racer", "survey": once.pk}

    shown = at_once(THREADS, lambda i: widget_post("displays", body))

    assert {status for status, _ in shown} == {201}
    ids = [answer["display"] for _, answer in shown]
    answer = {"workspace": key, "answers": {"nps": 9}, "completed": True}

    completed = at_once(len(ids), lambda i: widget_post(f"displays/{ids[i]}/answers", answer)[0])

    assert sorted(completed) == [200] + [409] * (len(ids) - 1)
    assert Response.objects.filter(survey=once, completed=True).count() == 1
    assert Display.objects.filter(survey=once, completed_at__isnull=False).count() == 1
    # And no display after that.
    assert widget_post("displays", body)[0] == 409


def test_racing_displays_respect_the_display_cap():
    workspace = WorkspaceFactory()
    ContactFactory(workspace=workspace, user_id="racer")
    survey = SurveyFactory(
        workspace=workspace, targeting={"frequency": "every_trigger", "max_displays_per_contact": 3}
    )
    body = {"workspace": workspace.widget_key, "user_id": "racer", "survey": survey.pk}

    statuses = at_once(THREADS, lambda i: widget_post("displays", body)[0])

    assert sorted(statuses) == [201] * 3 + [409] * (THREADS - 3)
    assert Display.objects.filter(survey=survey).count() == 3

"""Responses: how answers are saved (parsed rows, latest answers, concurrency) and listed."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from segments.memory import matches
from segments.models import Contact
from segments.services import rule_contacts, snapshot_of
from surveys.models import Answer, Response
from surveys.services import dismiss_display, record_answers, record_display
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory, record_response

QUESTIONS = [
    {"key": "nps", "type": "nps", "text": "Recommend us?"},
    {"key": "used", "type": "multiple_choice", "text": "Used?", "choices": ["A", "B", "C"]},
    {"key": "why", "type": "text", "text": "Why?"},
]


@pytest.fixture
def survey(workspace):
    return SurveyFactory(workspace=workspace, questions=QUESTIONS)


def rows(contact, key, *, latest=True) -> list:
    found = Answer.objects.filter(contact=contact, key=key, is_latest=latest)
    return sorted((a.text, a.num) for a in found)


@pytest.mark.django_db
def test_each_chosen_option_is_a_row(workspace, survey, now):
    contact = ContactFactory(workspace=workspace)
    record_response(survey, contact, {"used": ["A", "C"], "nps": 9}, now)
    assert rows(contact, "used") == [("A", None), ("C", None)]
    assert rows(contact, "nps") == [(None, 9.0)]


@pytest.mark.django_db
def test_an_empty_choice_is_one_row_without_values(workspace, survey, now):
    contact = ContactFactory(workspace=workspace)
    record_response(survey, contact, {"used": []}, now)
    [row] = Answer.objects.filter(contact=contact, key="used")
    assert (row.text, row.num, row.boolean, row.date) == (None, None, None, None)


@pytest.mark.django_db
def test_only_the_latest_answer_counts(workspace, survey, now):
    contact = ContactFactory(workspace=workspace)
    first = record_response(
        survey, contact, {"nps": 3, "why": "slow"}, now - timedelta(days=9), True
    )
    record_response(survey, contact, {"nps": 10}, now)
    assert rows(contact, "nps") == [(None, 10.0)]
    assert rows(contact, "nps", latest=False) == [(None, 3.0)]
    # A question the later response left alone keeps its earlier answer.
    assert rows(contact, "why") == [("slow", None)]
    # Changing an answer inside one response replaces its rows.
    record_answers(display=first.display, answers={}, completed=True, now=now)
    assert Answer.objects.filter(response=first, key="nps").count() == 1


@pytest.mark.django_db
def test_both_evaluators_see_the_latest_answer(workspace, survey, now):
    promoter, detractor = ContactFactory(workspace=workspace), ContactFactory(workspace=workspace)
    record_response(survey, promoter, {"nps": 2, "used": ["A"]}, now - timedelta(days=2))
    record_response(survey, promoter, {"nps": 9, "used": ["B", "C"]}, now - timedelta(days=1))
    record_response(survey, detractor, {"nps": 9}, now - timedelta(days=2))
    record_response(survey, detractor, {"nps": 1, "used": []}, now - timedelta(days=1))
    rule = {"type": "group", "match": "all", "conditions": [
        {"type": "answer", "survey": survey.pk, "question": "nps",
         "operator": "greater_than_or_equal", "value": 9},
        {"type": "answer", "survey": survey.pk, "question": "used", "operator": "in",
         "value": ["C"]},
    ]}  # fmt: skip
    in_sql = set(rule_contacts(workspace.pk, rule, now))
    in_memory = {c for c in Contact.objects.filter(workspace=workspace)
                 if matches(rule, snapshot_of(c), now)}  # fmt: skip
    assert in_sql == in_memory == {promoter}


@pytest.mark.django_db
def test_dismissal_keeps_a_completed_display_as_it_is(workspace, survey, now):
    response = record_response(survey, ContactFactory(workspace=workspace), {"nps": 5}, now, True)
    display = dismiss_display(display=response.display, now=now + timedelta(minutes=1))
    assert display.dismissed_at is None and display.completed_at == now


@pytest.mark.django_db(transaction=True)
def test_concurrent_answers_for_one_display_all_survive(workspace, survey, now):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers itself; the row locks matter on PostgreSQL")
    contact = ContactFactory(workspace=workspace)
    display = record_display(survey=survey, contact=contact, now=now)
    parts = [{"nps": 7}, {"used": ["A", "B"]}, {"why": "fast"}, {"used": ["C"]}, {"why": "ok"}]
    barrier = threading.Barrier(len(parts))
    errors = []

    def send(part):
        try:
            barrier.wait()
            record_answers(display=display, answers=part, completed=False, now=now)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    saved = Response.objects.get(display=display)
    assert set(saved.answers) == {"nps", "used", "why"}
    for key, value in saved.answers.items():
        expected = value if isinstance(value, list) else [value]
        found = Answer.objects.filter(response=saved, key=key, is_latest=True)
        assert sorted(a.text if a.text is not None else a.num for a in found) == sorted(expected)


# The REST list ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_lists_responses(api, workspace, survey, now):
    contact = ContactFactory(workspace=workspace, user_id="ada")
    saved = record_response(survey, contact, {"nps": 9}, now, completed=True)
    body = api.get("/api/v1/responses").json()
    assert body["count"] == 1 and body["next"] is None
    assert body["results"] == [
        {
            "id": saved.pk,
            "survey": survey.pk,
            "user_id": "ada",
            "anonymous": False,
            "display": str(saved.display_id),
            "answers": {"nps": 9},
            "extra": {},
            "completed": True,
            "created_at": "2026-06-15T12:00:00Z",
            "updated_at": "2026-06-15T12:00:00Z",
            "completed_at": "2026-06-15T12:00:00Z",
        }
    ]


@pytest.mark.django_db
def test_it_filters_responses_by_survey_and_segment(api, workspace, survey, now):
    other = SurveyFactory(workspace=workspace)
    pro = ContactFactory(workspace=workspace, user_id="pro", traits={"plan": "pro"})
    free = ContactFactory(workspace=workspace, user_id="free", traits={"plan": "free"})
    record_response(survey, pro, {"nps": 9}, now)
    record_response(survey, free, {"nps": 3}, now)
    record_response(other, pro, {"nps": 5}, now)
    segment = SegmentFactory(workspace=workspace, rules={"type": "group", "match": "all",
        "conditions": [{"type": "attribute", "attribute": "plan", "operator": "equals",
                        "value": "pro"}]})  # fmt: skip

    def listed(query) -> list:
        response = api.get("/api/v1/responses", query)
        assert response.status_code == 200, response.content
        return sorted((r["user_id"], r["survey"]) for r in response.json()["results"])

    assert listed({"survey": survey.pk}) == [("free", survey.pk), ("pro", survey.pk)]
    assert listed({"segment": segment.pk}) == sorted([("pro", other.pk), ("pro", survey.pk)])
    assert listed({"survey": survey.pk, "segment": segment.pk}) == [("pro", survey.pk)]


@pytest.mark.django_db
def test_filters_must_name_the_workspaces_own(api, workspace, other_workspace, survey):
    foreign_survey = SurveyFactory(workspace=other_workspace)
    foreign_segment = SegmentFactory(workspace=other_workspace)
    for query, field in (
        ({"survey": foreign_survey.pk}, "survey"),
        ({"segment": foreign_segment.pk}, "segment"),
        ({"survey": "x"}, "survey"),
    ):
        response = api.get("/api/v1/responses", query)
        assert response.status_code == 400
        assert field in response.json()["error"]["fields"]


@pytest.mark.django_db
def test_the_outsider_sees_no_response(outsider_api, workspace, survey, now):
    record_response(survey, ContactFactory(workspace=workspace), {"nps": 9}, now)
    body = outsider_api.get("/api/v1/responses").json()
    assert body == {"results": [], "next": None, "count": 0}


@pytest.mark.django_db
def test_responses_paginate(api, workspace, survey, now):
    for n in range(51):
        record_response(survey, ContactFactory(workspace=workspace), {"nps": n % 11}, now)
    first = api.get("/api/v1/responses").json()
    assert first["count"] == 51 and len(first["results"]) == 50
    assert first["next"].endswith("/api/v1/responses?page=2")
    second = api.get("/api/v1/responses", {"page": 2}).json()
    assert len(second["results"]) == 1 and second["next"] is None
    ids = {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]}
    assert len(ids) == 51

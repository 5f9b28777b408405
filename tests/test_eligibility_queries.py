"""Eligibility is the hot path (SPEC §8): a constant, small number of queries per check."""

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from targeting import eligibility, memo
from targeting.models import Targeting
from tests.factories import (
    AccountFactory,
    ContactFactory,
    DisplayFactory,
    EventFactory,
    ManualSegmentFactory,
    SegmentFactory,
    SurveyFactory,
    record_response,
)

pytestmark = pytest.mark.django_db


def cold_start():
    """As in a new process: nothing cached, nothing held in memory."""
    cache.clear()
    eligibility._in_process.clear()


def segment_rule(n: int, survey_id: int) -> dict:
    """Rules that need every part of a contact: traits, account, events, displays, answers."""
    return {"type": "group", "match": "any", "conditions": [
        {"type": "attribute", "attribute": "plan", "operator": "equals", "value": f"plan-{n}"},
        {"type": "attribute", "attribute": "account.size", "operator": "greater_than", "value": n},
        {"type": "event", "event": f"event-{n % 5}", "operator": "at_least", "value": 2,
         "within_days": 30},
        {"type": "survey", "survey": survey_id, "operator": "seen"},
        {"type": "answer", "survey": survey_id, "question": "nps", "operator": "less_than",
         "value": n % 11},
    ]}  # fmt: skip


def build(workspace, *, surveys: int, segments: int):
    now = timezone.now()
    workspace.recontact_days = 1
    workspace.save()
    account = AccountFactory(workspace=workspace, traits={"size": 20})
    contact = ContactFactory(workspace=workspace, user_id="u-1", account=account,
                             traits={"plan": "plan-3"})  # fmt: skip
    for n in range(5):
        EventFactory(contact=contact, name=f"event-{n}", occurred_at=now - timedelta(days=n))
    answered = SurveyFactory(workspace=workspace, status="paused")
    record_response(answered, contact, {"nps": 6}, now - timedelta(days=3), completed=True)
    manual = ManualSegmentFactory(workspace=workspace, members=[contact])
    never = {"type": "event", "event": "never", "operator": "at_least", "value": 1}
    nobody = SegmentFactory(
        workspace=workspace, rules={"type": "group", "match": "all", "conditions": [never]}
    )
    made = [manual] + [
        SegmentFactory(workspace=workspace, rules=segment_rule(n, answered.pk))
        for n in range(segments - 2)
    ]
    for n in range(surveys):
        survey = SurveyFactory(
            workspace=workspace,
            targeting={
                "audience": Targeting.SEGMENTS,
                "segment_match": Targeting.ALL if n % 2 else Targeting.ANY,
                "max_responses": 1000,
                "frequency": "recurring",
                "allowed_pages": [{"match": "pattern", "value": "https://*/app/*"}],
                "ignore_recontact": True,
            },
        )
        survey.targeting.segments.set([made[n % len(made)], made[(n * 7) % len(made)]])
        survey.targeting.excluded_segments.set([nobody])
        long_ago = now - timedelta(days=40)
        DisplayFactory(survey=survey, contact=contact, shown_at=long_ago, completed_at=long_ago)
    return contact


def check(workspace, **extra) -> list[int]:
    body = {"workspace": workspace.widget_key, "user_id": "u-1",
            "url": "https://app.example.com/app/home", **extra}  # fmt: skip
    response = Client().post(
        "/api/v1/widget/eligibility", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 200
    return [s["id"] for s in response.json()["surveys"]]


@pytest.mark.parametrize("surveys, segments", [(1, 2), (30, 50)])
def test_a_check_costs_three_queries(workspace, django_assert_num_queries, surveys, segments):
    build(workspace, surveys=surveys, segments=segments)
    offered = check(workspace)  # fills the definitions cache
    assert offered, "the check should offer something, or it proves little"
    memo.answers.clear()
    # The workspace with the contact, the contact's snapshot, the capped surveys' responses.
    with django_assert_num_queries(3):
        assert check(workspace) == offered
    # Asked again unchanged, PostgreSQL's caller statement carries the snapshot's
    # fingerprint, and the answer kept for it needs no snapshot (targeting.memo).
    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 3):
        assert check(workspace) == offered


def test_a_check_no_survey_can_pass_loads_no_snapshot(workspace, django_assert_num_queries):
    build(workspace, surveys=3, segments=4)
    Targeting.objects.filter(survey__workspace=workspace).update(
        trigger=Targeting.EVENT, trigger_event="exported_report"
    )
    eligibility.invalidate(workspace.pk)
    assert check(workspace) == []  # a page load, not the event: nothing to show
    with django_assert_num_queries(2):  # the workspace with the contact, the capped counts
        assert check(workspace) == []
    assert check(workspace, event="exported_report"), "with the event the surveys are offered"


def test_the_query_count_does_not_grow_with_surveys_and_segments(workspace, other_workspace):
    build(workspace, surveys=1, segments=2)
    build(other_workspace, surveys=30, segments=50)
    counts = []
    for each in (workspace, other_workspace):
        check(each)
        with CaptureQueriesContext(connection) as queries:
            check(each)
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_a_cold_cache_adds_a_constant_number_of_queries(workspace, other_workspace):
    build(workspace, surveys=1, segments=2)
    build(other_workspace, surveys=30, segments=50)
    counts = []
    for each in (workspace, other_workspace):
        cold_start()
        with CaptureQueriesContext(connection) as queries:
            check(each)
        counts.append(len(queries))
    assert counts[0] == counts[1] <= 12

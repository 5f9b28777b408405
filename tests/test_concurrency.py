"""Nothing lost under concurrency: 50 real threads, real transactions, PostgreSQL.

Skipped on SQLite: the test database there lives in memory with a shared cache,
whose table locks fail at once ("database table is locked") instead of waiting,
so the threads would test the test setup rather than the product. A file
database, as in production, queues writers behind BEGIN IMMEDIATE with a
20-second timeout.
"""

import json

from django.test import Client

from segments.models import Account, Contact, ContactValue, Event
from surveys.models import Answer, Response
from tests.factories import ContactFactory, DisplayFactory, SurveyFactory, WorkspaceFactory
from tests.workers import RACES, at_once

pytestmark = RACES

THREADS = 50


def post(path: str, body: dict, key: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = Client().post(path, json.dumps(body), content_type="application/json",
                             headers=headers)  # fmt: skip
    return response.status_code


def test_concurrent_identifies_of_one_new_user_make_one_contact_and_keep_every_trait():
    workspace = WorkspaceFactory()

    statuses = at_once(
        THREADS,
        lambda i: post(
            "/api/v1/widget/identify",
            {"workspace": workspace.widget_key, "user": {"id": "newcomer", f"trait_{i}": i}},
        ),
    )

    assert statuses == [200] * THREADS
    contact = Contact.objects.get(workspace=workspace)
    assert contact.user_id == "newcomer"
    assert contact.traits == {f"trait_{i}": i for i in range(THREADS)}
    # The parsed copies the SQL evaluator reads are in step with the traits.
    trait_rows = ContactValue.objects.filter(contact=contact, key__startswith="trait_")
    assert trait_rows.count() == THREADS


def test_concurrent_identifies_naming_one_new_account_make_one_account():
    workspace = WorkspaceFactory()

    statuses = at_once(
        THREADS,
        lambda i: post(
            "/api/v1/identify-user",
            {"id": f"member-{i}", "account": {"id": "acme", f"seat_{i}": True}},
            workspace.secret_key,
        ),
    )

    assert statuses == [200] * THREADS
    account = Account.objects.get(workspace=workspace)
    assert Contact.objects.filter(workspace=workspace, account=account).count() == THREADS
    assert account.traits == {f"seat_{i}": True for i in range(THREADS)}


def test_concurrent_track_calls_for_a_new_user_lose_no_event():
    workspace = WorkspaceFactory()
    per_thread = 4

    def track(i: int) -> list[int]:
        return [
            post(
                "/api/v1/track-event",
                {"user_id": "busy", "event": f"clicked_{i}_{n}"},
                workspace.secret_key,
            )
            for n in range(per_thread)
        ]

    results = at_once(THREADS, track)

    assert results == [[202] * per_thread] * THREADS
    assert Contact.objects.filter(workspace=workspace).count() == 1
    assert Event.objects.filter(workspace=workspace).count() == THREADS * per_thread
    assert Event.objects.filter(workspace=workspace).values("name").distinct().count() == (
        THREADS * per_thread
    )


def test_identify_and_track_racing_for_a_new_user_make_one_contact():
    workspace = WorkspaceFactory()

    def call(i: int) -> int:
        if i % 2:
            return post(
                "/api/v1/widget/track",
                {"workspace": workspace.widget_key, "user_id": "racer", "event": "opened"},
            )
        return post(
            "/api/v1/widget/identify",
            {"workspace": workspace.widget_key, "user": {"id": "racer", "plan": "pro"}},
        )

    statuses = at_once(THREADS, call)

    assert sorted(set(statuses)) == [200, 202]
    contact = Contact.objects.get(workspace=workspace)
    assert contact.traits == {"plan": "pro"}
    assert Event.objects.filter(contact=contact).count() == THREADS // 2


def test_concurrent_answers_to_one_display_merge_without_losing_any():
    workspace = WorkspaceFactory()
    count = min(THREADS, 20)
    questions = [{"key": f"q{i}", "type": "text", "text": f"Question {i}?"} for i in range(count)]
    survey = SurveyFactory(workspace=workspace, questions=questions)
    contact = ContactFactory(workspace=workspace)
    display = DisplayFactory(survey=survey, contact=contact)
    path = f"/api/v1/widget/displays/{display.pk}/answers"

    statuses = at_once(
        count,
        lambda i: post(
            path,
            {
                "workspace": workspace.widget_key,
                "answers": {f"q{i}": f"answer {i}"},
                "completed": False,
            },
        ),  # fmt: skip
    )

    assert statuses == [200] * count
    response = Response.objects.get(display=display)
    assert response.answers == {f"q{i}": f"answer {i}" for i in range(count)}
    latest = Answer.objects.filter(response=response, is_latest=True)
    assert sorted(latest.values_list("key", flat=True)) == sorted(f"q{i}" for i in range(count))

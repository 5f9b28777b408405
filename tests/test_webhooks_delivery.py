"""Webhook deliveries end to end: the domain events, the worker, a real receiver (docs/webhooks.md).

The worker is django-tasks' own `db_worker`; the receiver is a real HTTP server on
loopback, so these tests turn WEBHOOKS_ALLOW_PRIVATE on (test_webhooks_ssrf.py checks the
refusal with it off). Transactional tests: the signals are sent after commit.
"""

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from segments.signals import contact_entered_segment, contact_left_segment
from surveys.services import dismiss_display, record_answers, record_display
from tests.clients import ApiClient, Widget
from tests.factories import ContactFactory, EndpointFactory, SegmentFactory, SurveyFactory
from tests.rules import plan_is
from tests.webhook_receiver import (
    Receiver,
    doc_code,
    documented_python_verifier,
    run_worker_until_settled,
)
from webhooks.models import Delivery, Endpoint
from webhooks.tasks import enqueue

pytestmark = pytest.mark.django_db(transaction=True)

QUESTIONS = [
    {"key": "nps", "type": "nps", "text": "Recommend us?"},
    {"key": "why", "type": "text", "text": "Why?"},
]


@pytest.fixture(autouse=True)
def fast_webhooks(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_RETRY_SECONDS = 0.05
    settings.WEBHOOKS_TIMEOUT_SECONDS = 2


def bodies(receiver: Receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.requests]


def test_each_survey_event_reaches_the_receiver_once_with_a_signature_the_doc_verifies(
    workspace, receiver
):
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url)
    only_completions = EndpointFactory(
        workspace=workspace, url=receiver.url + "?only=completed", events=["survey.completed"]
    )
    survey = SurveyFactory(workspace=workspace, name="NPS", questions=QUESTIONS)
    contact = ContactFactory(workspace=workspace, user_id="u-42")
    now = timezone.now()

    answered = record_display(survey=survey, contact=contact, now=now)
    record_answers(display=answered, answers={"nps": 9}, completed=False, now=now)
    record_answers(display=answered, answers={"why": "Fast"}, completed=True, now=now)
    # A harmless repeat of the completion and a second dismissal are no new occurrences.
    record_answers(display=answered, answers={"why": "Fast"}, completed=True, now=now)
    closed = record_display(survey=survey, contact=contact, now=now)
    dismiss_display(display=closed, now=now)
    dismiss_display(display=closed, now=now)
    run_worker_until_settled()

    to_endpoint = [r for r in receiver.requests if "only=" not in r.path]
    types = sorted(json.loads(r.body)["type"] for r in to_endpoint)
    assert types == [
        "survey.completed",
        "survey.dismissed",
        "survey.displayed",
        "survey.displayed",
    ]
    assert len({json.loads(r.body)["id"] for r in to_endpoint}) == 4
    verify = documented_python_verifier()
    for request in to_endpoint:
        header = request.headers["X-Refiner-Signature"]
        assert verify(endpoint.secret, header, request.body)
        assert not verify(only_completions.secret, header, request.body)
        assert request.headers["X-Refiner-Event"] == json.loads(request.body)["type"]
    completed = next(b for b in bodies(receiver) if b["type"] == "survey.completed")
    assert completed["data"]["answers"] == {"nps": 9, "why": "Fast"}
    assert completed["data"]["user_id"] == "u-42"
    assert completed["data"]["survey"] == {"id": survey.pk, "name": "NPS"}
    assert completed["workspace"] == workspace.pk
    only = [json.loads(r.body)["type"] for r in receiver.requests if "only=" in r.path]
    assert only == ["survey.completed"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.SUCCEEDED}


def test_the_documented_check_refuses_a_changed_body_and_an_old_timestamp(workspace, receiver):
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)
    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()
    (request,) = receiver.requests
    header = request.headers["X-Refiner-Signature"]
    verify = documented_python_verifier()
    signed_at = int(header.split(",")[0].removeprefix("t="))

    assert verify(endpoint.secret, header, request.body)
    assert not verify(endpoint.secret, header, request.body.replace(b"u", b"v", 1))
    assert not verify(endpoint.secret, header, request.body, now=signed_at + 301)
    assert verify(endpoint.secret, header, request.body, now=signed_at + 299)
    assert not verify(endpoint.secret, "t=abc,v1=00", request.body)


def test_the_documented_nodejs_check_verifies_a_real_delivery(workspace, receiver, tmp_path):
    if shutil.which("node") is None:
        if os.environ.get("REFINER_REQUIRE_NODE") == "1":
            pytest.fail("node is required (REFINER_REQUIRE_NODE=1): not installed")
        pytest.skip("node is not installed")
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)
    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()
    (request,) = receiver.requests
    (tmp_path / "verify.js").write_text(doc_code("js", "verifyRefinerSignature"))
    (tmp_path / "body.bin").write_bytes(request.body)
    (tmp_path / "run.js").write_text(
        "const fs = require('fs');\n"
        "const { verifyRefinerSignature } = require('./verify.js');\n"
        "const [secret, header, now] = process.argv.slice(2);\n"
        "const body = fs.readFileSync(__dirname + '/body.bin');\n"
        "const at = now ? Number(now) : undefined;\n"
        "console.log(verifyRefinerSignature(secret, header, body, at));\n"
    )
    header = request.headers["X-Refiner-Signature"]
    signed_at = int(header.split(",")[0].removeprefix("t="))

    def node(secret: str, *extra: str) -> str:
        result = subprocess.run(
            ["node", str(tmp_path / "run.js"), secret, header, *extra],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert node(endpoint.secret) == "true"
    assert node(endpoint.secret + "x") == "false"
    assert node(endpoint.secret, str(signed_at + 301)) == "false"


def test_segment_events_reach_the_receiver_with_their_own_body(workspace, receiver):
    EndpointFactory(workspace=workspace, url=receiver.url)
    segment = SegmentFactory(workspace=workspace, name="Power users")
    contact = ContactFactory(workspace=workspace, user_id="u-7")
    at = timezone.now()

    with transaction.atomic():
        contact_entered_segment.send(sender=type(segment), contact=contact, segment=segment, at=at)
    with transaction.atomic():
        contact_left_segment.send(sender=type(segment), contact=contact, segment=segment, at=at)
    run_worker_until_settled()

    entered, left = sorted(bodies(receiver), key=lambda b: b["type"])
    assert entered["type"] == "contact.entered_segment"
    assert entered["data"]["segment"] == {"id": segment.pk, "name": "Power users"}
    assert entered["data"]["user_id"] == "u-7"
    assert "entered_at" in entered["data"]
    assert left["type"] == "contact.left_segment" and "left_at" in left["data"]


def test_an_event_nobody_subscribed_to_writes_no_delivery(workspace, other_workspace, receiver):
    EndpointFactory(workspace=workspace, url=receiver.url, events=["survey.completed"])
    EndpointFactory(workspace=workspace, url=receiver.url, is_active=False)
    EndpointFactory(workspace=other_workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)

    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())

    assert not Delivery.objects.exists()


def test_a_receiver_that_fails_three_times_gets_it_on_the_fourth_attempt(workspace, receiver):
    receiver.answers = [500, 503, 500]
    EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)

    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("succeeded", 4, 200)
    assert delivery.delivered_at is not None
    assert len({json.loads(r.body)["id"] for r in receiver.requests}) == 1
    assert len(receiver.requests) == 4
    # The waits double: 0.05 s, 0.1 s, 0.2 s at least.
    gaps = [b.at - a.at for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert [round(g, 2) >= 0.05 * 2**n for n, g in enumerate(gaps)] == [True, True, True]


def test_after_its_last_attempt_a_delivery_fails_and_says_why(workspace, receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 2
    receiver.answers = [500, 500, 500]
    EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)

    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("failed", 2, 500)
    assert delivery.error == "HTTP 500"
    assert len(receiver.requests) == 2


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(workspace, receiver, settings):
    settings.WEBHOOKS_MAX_ATTEMPTS = 1
    receiver.answers = [302]
    EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)

    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.response_code) == ("failed", 302)
    assert "redirects are not followed" in delivery.error
    assert [r.path for r in receiver.requests] == ["/hooks/refiner"]


def test_a_slack_endpoint_gets_a_signed_text_message(workspace, receiver):
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url, format=Endpoint.SLACK)
    survey = SurveyFactory(workspace=workspace, name="<!channel> NPS", questions=QUESTIONS)
    contact = ContactFactory(workspace=workspace, user_id="u-42")
    display = record_display(survey=survey, contact=contact, now=timezone.now())

    record_answers(display=display, answers={"nps": 10}, completed=True, now=timezone.now())
    run_worker_until_settled()

    messages = [b for b in bodies(receiver) if "completed" in b["text"]]
    assert messages == [{"text": "`u-42` completed the survey *&lt;!channel&gt; NPS*.\n• nps: 10"}]
    request = receiver.requests[-1]
    assert documented_python_verifier()(
        endpoint.secret, request.headers["X-Refiner-Signature"], request.body
    )


def test_pausing_an_endpoint_fails_its_pending_deliveries(workspace, receiver):
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)
    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=False)

    run_worker_until_settled()

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == ("failed", "The endpoint is disabled.")
    assert receiver.requests == []


def test_a_task_run_twice_sends_once(workspace, receiver):
    """The Delivery row, not the queue, decides: a duplicate task finds the work done."""
    EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)
    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    enqueue([Delivery.objects.get().pk])
    enqueue([Delivery.objects.get().pk])

    run_worker_until_settled()
    time.sleep(0.05)
    call_command("db_worker", batch=True, reload=False, startup_delay=False, verbosity=0)

    assert len(receiver.requests) == 1
    assert Delivery.objects.get().attempts == 1


def test_the_event_id_is_the_same_for_every_endpoint_and_in_the_header(workspace, receiver):
    EndpointFactory(workspace=workspace, url=receiver.url + "?a")
    EndpointFactory(workspace=workspace, url=receiver.url + "?b")
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)

    record_display(survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now())
    run_worker_until_settled()

    ids = {r.headers["X-Refiner-Event-Id"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(ids) == 1
    assert uuid.UUID(ids.pop()) == Delivery.objects.first().event_id


def test_the_widgets_own_calls_send_the_events(workspace, receiver):
    """The hook points on the real request path: display, answers, dismiss over HTTP."""
    EndpointFactory(workspace=workspace, url=receiver.url)
    answered = SurveyFactory(workspace=workspace, name="Answered", questions=QUESTIONS)
    closed = SurveyFactory(workspace=workspace, name="Closed", questions=QUESTIONS)
    ContactFactory(workspace=workspace, user_id="u-1")
    widget = Widget(workspace)

    first = widget.post("displays", {"user_id": "u-1", "survey": answered.pk}).json()["display"]
    widget.post(f"displays/{first}/answers", {"answers": {"nps": 3}, "completed": True})
    second = widget.post("displays", {"user_id": "u-1", "survey": closed.pk}).json()["display"]
    widget.post(f"displays/{second}/dismiss")
    run_worker_until_settled()

    seen = sorted((b["type"], b["data"]["survey"]["name"]) for b in bodies(receiver))
    assert seen == [
        ("survey.completed", "Answered"),
        ("survey.dismissed", "Closed"),
        ("survey.displayed", "Answered"),
        ("survey.displayed", "Closed"),
    ]


def test_erasing_a_contact_erases_the_events_about_them(workspace, receiver):
    """DELETE /api/v1/contacts/USER_ID must leave no answer of theirs waiting to be sent."""
    EndpointFactory(workspace=workspace, url=receiver.url)
    survey = SurveyFactory(workspace=workspace, questions=QUESTIONS)
    erased = ContactFactory(workspace=workspace, user_id="erase-me")
    kept = ContactFactory(workspace=workspace, user_id="keep-me")
    record_display(survey=survey, contact=erased, now=timezone.now())
    record_display(survey=survey, contact=kept, now=timezone.now())

    response = ApiClient(workspace.secret_key).delete("/api/v1/contacts/erase-me")

    assert response.status_code == 204
    (left,) = Delivery.objects.all()
    assert left.payload["data"]["user_id"] == "keep-me"


def test_a_contact_entering_and_leaving_a_segment_through_the_widget_sends_both_events(
    workspace, receiver
):
    """The membership hook (segments.membership) and the webhook listener, end to end."""
    EndpointFactory(
        workspace=workspace,
        url=receiver.url,
        events=["contact.entered_segment", "contact.left_segment"],
    )
    pro = SegmentFactory(workspace=workspace, name="Pro", rules=plan_is("pro"))
    widget = Widget(workspace)

    widget.post("identify", {"user": {"id": "u-9", "plan": "pro"}})
    widget.post("identify", {"user": {"id": "u-9", "plan": "free"}})
    run_worker_until_settled()

    seen = [(b["type"], b["data"]["user_id"], b["data"]["segment"]["id"]) for b in bodies(receiver)]
    assert sorted(seen) == [
        ("contact.entered_segment", "u-9", pro.pk),
        ("contact.left_segment", "u-9", pro.pk),
    ]


def test_a_contact_entering_many_segments_looks_the_endpoints_up_once(workspace, receiver):
    """One announcement, one lookup: a new contact entering 12 segments sent 12 queries
    for the workspace's endpoints after its commit, and a sweep one per contact moved."""
    EndpointFactory(workspace=workspace, url=receiver.url, events=["contact.entered_segment"])
    segments = [SegmentFactory(workspace=workspace, rules=plan_is("pro")) for _ in range(12)]
    lookups = []

    def note(execute, sql, params, many, context):
        if "webhooks_endpoint" in sql and sql.lstrip().startswith("SELECT"):
            lookups.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(note):
        assert Widget(workspace).post("identify", {"user": {"id": "u-9", "plan": "pro"}})

    assert len(lookups) == 1
    # Every segment's event was still recorded for the endpoint.
    deliveries = Delivery.objects.filter(event="contact.entered_segment")
    assert sorted(d.payload["data"]["segment"]["id"] for d in deliveries) == sorted(
        s.pk for s in segments
    )

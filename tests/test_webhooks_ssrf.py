"""Webhook requests never reach the inside unless allowed (docs/webhooks.md, "SSRF").

Each refusal happens before any connection: socket.create_connection is replaced by one
that fails the test if it is ever called.
"""

import json
import socket

import pytest
from django.utils import timezone

from surveys.services import record_display
from tests.factories import ContactFactory, EndpointFactory, SurveyFactory
from webhooks import outbound
from webhooks.models import Delivery
from webhooks.sending import attempt

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_connection(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a connection was opened to {args[0]}")

    monkeypatch.setattr(outbound.socket, "create_connection", refuse)


def delivery_to(workspace, url: str) -> Delivery:
    endpoint = EndpointFactory(workspace=workspace, url=url)
    return Delivery.objects.create(
        endpoint=endpoint,
        workspace=workspace,
        event="survey.displayed",
        payload={"id": "e", "type": "survey.displayed", "data": {}},
    )


def test_a_loopback_receiver_is_refused_without_the_setting(workspace, receiver, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    delivery = delivery_to(workspace, receiver.url)

    outcome, retry_at = attempt(delivery.pk)

    delivery.refresh_from_db()
    assert outcome == "retry" and retry_at is not None
    assert "127.0.0.1, which is not a public address" in delivery.error
    assert delivery.response_code is None
    assert receiver.requests == [] and not receiver.arrived.is_set()


def test_the_same_receiver_is_reached_with_the_setting_on(workspace, receiver, settings):
    """Guards the test above: with the setting on, the same delivery does arrive."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    delivery = delivery_to(workspace, receiver.url)

    assert attempt(delivery.pk) == ("succeeded", None)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://192.168.1.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "http://localhost/hook",
    ],
)
def test_inside_addresses_are_refused_before_connecting(url, settings, no_connection):
    settings.WEBHOOKS_ALLOW_PRIVATE = False

    with pytest.raises(outbound.Refused, match="not a public address"):
        outbound.post(url, b"{}", {})


def test_a_name_that_resolves_inside_is_refused_whatever_else_it_resolves_to(
    settings, no_connection, monkeypatch
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 80)) for ip in ("8.8.8.8", "10.0.0.1")
    ]
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *a, **k: answers)

    with pytest.raises(outbound.Refused, match="10.0.0.1"):
        outbound.post("http://rebind.example/hook", b"{}", {})


def test_the_request_goes_to_the_address_vetted_once(receiver, settings, monkeypatch):
    """No second DNS lookup: the connection is made to the address that was checked."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    lookups = []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(outbound.socket, "getaddrinfo", resolve)

    answer = outbound.post(f"http://hooks.example:{receiver.port}/in", b"{}", {})

    assert answer.status == 200
    # The only name looked up is the URL's; the connection resolves the vetted literal.
    assert lookups[0] == "hooks.example" and set(lookups[1:]) <= {"127.0.0.1"}
    assert receiver.requests[0].headers["Host"] == f"hooks.example:{receiver.port}"


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://127.0.0.1:6379/_x"]
)
def test_only_http_and_https_are_called(url, settings, no_connection):
    settings.WEBHOOKS_ALLOW_PRIVATE = True

    with pytest.raises(outbound.Refused, match="Only http and https"):
        outbound.post(url, b"{}", {})


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address, public):
    assert outbound.is_public(address) is public


def test_a_survey_event_to_a_private_address_is_never_sent(
    workspace, settings, no_connection, django_capture_on_commit_callbacks
):
    """From the domain event to the refusal, with the setting off as in production."""
    settings.WEBHOOKS_ALLOW_PRIVATE = False
    EndpointFactory(workspace=workspace, url="http://10.0.0.1/hook")
    survey = SurveyFactory(workspace=workspace)

    with django_capture_on_commit_callbacks(execute=True):
        record_display(
            survey=survey, contact=ContactFactory(workspace=workspace), now=timezone.now()
        )
    delivery = Delivery.objects.get()
    attempt(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "not a public address" in delivery.error
    assert json.dumps(delivery.payload)

"""Sending one attempt of a delivery: claim it, sign it, POST it, record the outcome."""

import json
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from webhooks import events, outbound, signing
from webhooks.models import Delivery, Endpoint

USER_AGENT = "Refiner-Webhooks/1"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: doubling from WEBHOOKS_RETRY_SECONDS."""
    return timedelta(seconds=settings.WEBHOOKS_RETRY_SECONDS * 2 ** (attempts - 1))


def lease() -> timedelta:
    """How long a worker holds a delivery while sending it: past it, the worker is dead.

    A request is a connection, a send and the answer's status line and headers, each
    within the timeout; six timeouts leave room, so two live workers never send one
    delivery twice (a receiver trickling its headers could outlast it: at least once).
    """
    return timedelta(seconds=6 * settings.WEBHOOKS_TIMEOUT_SECONDS)


def claim(delivery_id: int, now: datetime) -> Delivery | None:
    """Take the delivery for one attempt, or None when it is not due or another worker has it.

    One conditional UPDATE, so two workers running the same delivery cannot both win.
    """
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    taken = Delivery.objects.filter(
        free, pk=delivery_id, status=Delivery.PENDING, next_attempt_at__lte=now
    ).update(claimed_until=now + lease(), attempts=F("attempts") + 1)
    if not taken:
        return None
    return Delivery.objects.select_related("endpoint").get(pk=delivery_id)


def request_body(delivery: Delivery) -> bytes:
    payload = delivery.payload
    if delivery.endpoint.format == Endpoint.SLACK:
        payload = events.slack_message(payload)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(delivery: Delivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Refiner-Event": delivery.event,
        "X-Refiner-Event-Id": str(delivery.event_id),
        "X-Refiner-Delivery": str(delivery.pk),
        signing.SIGNATURE_HEADER: signing.signature_header(
            delivery.endpoint.secret, timestamp, body
        ),
    }


def send(delivery: Delivery) -> tuple[int | None, str]:
    """One request; (HTTP status or None, the problem or "")."""
    body = request_body(delivery)
    headers = request_headers(delivery, body, int(time.time()))
    try:
        answer = outbound.post(delivery.endpoint.url, body, headers)
    except outbound.Refused as e:
        return None, str(e)
    except (OSError, Exception) as e:  # noqa: BLE001 - any network failure is a failed attempt
        return None, f"{type(e).__name__}: {e}"[:500]
    if 200 <= answer.status < 300:
        return answer.status, ""
    if 300 <= answer.status < 400:
        return answer.status, f"HTTP {answer.status}: redirects are not followed."
    return answer.status, f"HTTP {answer.status}"


def attempt(delivery_id: int) -> tuple[str, datetime | None]:
    """Claim, send and record one attempt of a delivery.

    Returns the outcome ("succeeded", "failed", "retry" or "skipped" when not claimed)
    and, for "retry", when the next attempt is due.
    """
    delivery = claim(delivery_id, timezone.now())
    if delivery is None:
        return "skipped", None
    if not delivery.endpoint.is_active:
        code, problem = None, "The endpoint is disabled."
    else:
        code, problem = send(delivery)
    now = timezone.now()
    fields = {"claimed_until": None, "response_code": code, "error": problem[:500]}
    if not problem:
        fields |= {"status": Delivery.SUCCEEDED, "delivered_at": now}
    elif delivery.attempts >= settings.WEBHOOKS_MAX_ATTEMPTS or not delivery.endpoint.is_active:
        fields["status"] = Delivery.FAILED
    else:
        fields["next_attempt_at"] = now + retry_delay(delivery.attempts)
    Delivery.objects.filter(pk=delivery.pk).update(**fields)
    if "next_attempt_at" in fields:
        return "retry", fields["next_attempt_at"]
    return fields["status"], None


def stranded(now: datetime):
    """Pending deliveries due for a while that no live worker holds: their task was lost."""
    overdue = now - timedelta(seconds=settings.WEBHOOKS_SWEEP_SECONDS)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    return Delivery.objects.filter(free, status=Delivery.PENDING, next_attempt_at__lte=overdue)

"""Webhook workflows: record an event's deliveries, send one, retry, sweep, redeliver."""

from django.db import transaction

from webhooks.models import Delivery, Endpoint
from webhooks.tasks import enqueue


def subscribed_endpoints(workspace_id: int, event: str) -> list[Endpoint]:
    """The workspace's active endpoints that take `event`.

    Filtered in Python: which events an endpoint takes is a short JSON list, and
    SQLite and PostgreSQL query JSON lists differently.
    """
    endpoints = Endpoint.objects.filter(workspace_id=workspace_id, is_active=True)
    return [endpoint for endpoint in endpoints if event in endpoint.events]


def record_event(endpoints: list[Endpoint], payload: dict, contact_id: int) -> list[Delivery]:
    """One delivery per endpoint for this event about a contact, queued once committed."""
    with transaction.atomic():
        deliveries = Delivery.objects.bulk_create(
            Delivery(
                endpoint=endpoint,
                workspace_id=endpoint.workspace_id,
                contact_id=contact_id,
                event_id=payload["id"],
                event=payload["type"],
                payload=payload,
            )
            for endpoint in endpoints
        )
        ids = [delivery.pk for delivery in deliveries]
        transaction.on_commit(lambda: enqueue(ids), robust=True)
    return deliveries


def redeliver(delivery: Delivery) -> Delivery:
    """The same event to the same endpoint once more, as a new delivery in the log."""
    return record_event([delivery.endpoint], delivery.payload, delivery.contact_id)[0]

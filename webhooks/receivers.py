"""Turn the domain events of the lower apps into deliveries (connected in WebhooksConfig)."""

from segments.signals import contact_entered_segment, contact_left_segment
from surveys.signals import survey_completed, survey_dismissed, survey_displayed
from webhooks import events, models
from webhooks.services import record_event, subscribed_endpoints


def _record(workspace_id: int, contact_id: int, event: str, build, batch=None) -> None:
    # The endpoints first: most workspaces have none, and then no payload is built.
    endpoints = _subscribed(workspace_id, event, batch)
    if endpoints:
        record_event(endpoints, build(), contact_id)


def _subscribed(workspace_id: int, event: str, batch: dict | None) -> list:
    """`subscribed_endpoints`, looked up once per announcement of segment changes (a
    new contact entering twenty segments, a sweep moving thousands of contacts)."""
    if batch is None:
        return subscribed_endpoints(workspace_id, event)
    key = ("webhooks.endpoints", workspace_id, event)
    if key not in batch:
        batch[key] = subscribed_endpoints(workspace_id, event)
    return batch[key]


def on_survey_displayed(sender, display, **kwargs) -> None:
    _record(
        display.workspace_id,
        display.contact_id,
        models.SURVEY_DISPLAYED,
        lambda: events.survey_displayed(display),
    )


def on_survey_completed(sender, display, response, **kwargs) -> None:
    _record(
        display.workspace_id,
        display.contact_id,
        models.SURVEY_COMPLETED,
        lambda: events.survey_completed(display, response),
    )


def on_survey_dismissed(sender, display, **kwargs) -> None:
    _record(
        display.workspace_id,
        display.contact_id,
        models.SURVEY_DISMISSED,
        lambda: events.survey_dismissed(display),
    )


def on_contact_entered_segment(sender, contact, segment, at, batch=None, **kwargs) -> None:
    _record(
        segment.workspace_id,
        contact.pk,
        models.CONTACT_ENTERED_SEGMENT,
        lambda: events.contact_entered_segment(contact, segment, at),
        batch,
    )


def on_contact_left_segment(sender, contact, segment, at, batch=None, **kwargs) -> None:
    _record(
        segment.workspace_id,
        contact.pk,
        models.CONTACT_LEFT_SEGMENT,
        lambda: events.contact_left_segment(contact, segment, at),
        batch,
    )


def connect() -> None:
    for signal, receiver in (
        (survey_displayed, on_survey_displayed),
        (survey_completed, on_survey_completed),
        (survey_dismissed, on_survey_dismissed),
        (contact_entered_segment, on_contact_entered_segment),
        (contact_left_segment, on_contact_left_segment),
    ):
        signal.connect(receiver, dispatch_uid=f"webhooks-{receiver.__name__}")

import secrets
import uuid

from django.db import models
from django.utils import timezone

from refiner.models import Workspace
from segments.models import Contact

SURVEY_DISPLAYED = "survey.displayed"
SURVEY_COMPLETED = "survey.completed"
SURVEY_DISMISSED = "survey.dismissed"
CONTACT_ENTERED_SEGMENT = "contact.entered_segment"
CONTACT_LEFT_SEGMENT = "contact.left_segment"
EVENTS = [
    (SURVEY_DISPLAYED, "A survey was shown"),
    (SURVEY_COMPLETED, "A survey was completed"),
    (SURVEY_DISMISSED, "A survey was dismissed"),
    (CONTACT_ENTERED_SEGMENT, "A contact entered a segment"),
    (CONTACT_LEFT_SEGMENT, "A contact left a segment"),
]
EVENT_NAMES = tuple(name for name, _ in EVENTS)


def new_endpoint_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Endpoint(models.Model):
    """A URL of the customer's that receives the workspace's events it subscribes to."""

    JSON, SLACK = "json", "slack"
    FORMATS = [(JSON, "JSON event"), (SLACK, "Slack message")]

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="webhook_endpoints")
    # Checked by webhooks.cleaning (http or https, no literal private address), not by
    # URLField, whose admin form would guess a scheme for a URL without one.
    url = models.CharField(max_length=2000, help_text="An http or https URL that takes a POST.")
    events = models.JSONField(default=list, help_text="The event types sent to this URL.")
    format = models.CharField(max_length=10, choices=FORMATS, default=JSON)
    secret = models.CharField(
        max_length=100,
        default=new_endpoint_secret,
        help_text="Signs every request (the X-Refiner-Signature header).",
    )
    is_active = models.BooleanField(default=True, help_text="Only active endpoints get events.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return self.url

    def to_dict(self) -> dict:
        return {
            "id": self.pk,
            "url": self.url,
            "events": self.events,
            "format": self.format,
            "secret": self.secret,
            "is_active": self.is_active,
            "created_at": self.created_at.isoformat(),
        }


class Delivery(models.Model):
    """One event sent to one endpoint: the truth of what is still to send, whatever the queue.

    `claimed_until` is a worker's lease while it sends; a lease that ran out belongs to a
    worker that died, and the sweep queues the delivery again.
    """

    PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
    STATUSES = [(PENDING, "Pending"), (SUCCEEDED, "Delivered"), (FAILED, "Failed")]

    endpoint = models.ForeignKey(Endpoint, models.CASCADE, related_name="deliveries")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    # The person the event is about: erasing the contact erases what would be sent of them.
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="+", null=True, blank=True)
    event_id = models.UUIDField(default=uuid.uuid4, help_text="The same for every endpoint.")
    event = models.CharField(max_length=40, choices=EVENTS)
    payload = models.JSONField(help_text="The event's body; the request sends it as is.")
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="delivery_log"),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint}"

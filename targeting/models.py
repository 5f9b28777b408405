from django.db import models

from refiner.models import Workspace
from segments.models import Segment
from segments.values import iso
from surveys.models import Survey


class Targeting(models.Model):
    """Who sees a survey, when and how often (SPEC §4): the survey's Target Audience."""

    EVERYONE, SEGMENTS, ANYONE = "everyone", "segments", "anyone"
    AUDIENCES = [
        (EVERYONE, "Everyone"),
        (SEGMENTS, "Segments"),
        (ANYONE, "Everyone, signed in or not"),
    ]
    ANY, ALL = "any", "all"
    MATCHES = [(ANY, "At least one segment"), (ALL, "All segments")]
    PAGE_LOAD, EVENT, MANUAL = "page_load", "event", "manual"
    TRIGGERS = [(PAGE_LOAD, "Page load"), (EVENT, "Event"), (MANUAL, "Manual")]
    ONCE, RECURRING, EVERY_TRIGGER = "once", "recurring", "every_trigger"
    ONCE_PER_SESSION = "once_per_session"
    FREQUENCIES = [
        (ONCE, "Once"),
        (RECURRING, "Recurring"),
        (EVERY_TRIGGER, "Every trigger"),
        (ONCE_PER_SESSION, "Once per session"),
    ]
    # How a page rule compares the page's URL with its value (`allowed_pages`, `excluded_pages`).
    PAGE_MATCHES = [
        ("equals", "equals"),
        ("starts_with", "starts with"),
        ("contains", "contains"),
        ("pattern", "matches pattern (*)"),
    ]

    survey = models.OneToOneField(Survey, models.CASCADE, related_name="targeting")
    audience = models.CharField(max_length=10, choices=AUDIENCES, default=EVERYONE)
    segments = models.ManyToManyField(Segment, blank=True, related_name="targeted_by")
    segment_match = models.CharField(max_length=3, choices=MATCHES, default=ANY)
    excluded_segments = models.ManyToManyField(Segment, blank=True, related_name="excluded_by")
    trigger = models.CharField(max_length=10, choices=TRIGGERS, default=PAGE_LOAD)
    trigger_event = models.CharField(max_length=200, blank=True)
    allowed_pages = models.JSONField(default=list, blank=True)
    excluded_pages = models.JSONField(default=list, blank=True)
    delay_seconds = models.PositiveIntegerField(default=0)
    sample_percent = models.FloatField(default=100)
    frequency = models.CharField(max_length=20, choices=FREQUENCIES, default=ONCE)
    recurring_days = models.PositiveIntegerField(default=30)
    max_displays_per_contact = models.PositiveIntegerField(null=True, blank=True)
    max_responses = models.PositiveIntegerField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher is shown first.")
    ignore_recontact = models.BooleanField(
        default=False, help_text="Show even inside the workspace's recontact period."
    )

    class Meta:
        verbose_name = "targeting"
        verbose_name_plural = "targeting"

    def __str__(self) -> str:
        return f"Targeting of {self.survey}"

    def to_dict(self) -> dict:
        return {
            "audience": self.audience,
            "segments": sorted(s.pk for s in self.segments.all()),
            "segment_match": self.segment_match,
            "excluded_segments": sorted(s.pk for s in self.excluded_segments.all()),
            "trigger": self.trigger,
            "trigger_event": self.trigger_event,
            "allowed_pages": self.allowed_pages,
            "excluded_pages": self.excluded_pages,
            "delay_seconds": self.delay_seconds,
            "sample_percent": self.sample_percent,
            "frequency": self.frequency,
            "recurring_days": self.recurring_days,
            "max_displays_per_contact": self.max_displays_per_contact,
            "max_responses": self.max_responses,
            "starts_at": iso(self.starts_at) if self.starts_at else None,
            "ends_at": iso(self.ends_at) if self.ends_at else None,
            "priority": self.priority,
            "ignore_recontact": self.ignore_recontact,
        }


class AudienceCount(models.Model):
    """A live survey's audience size, or how many contacts two live surveys' audiences
    share, counted by the sweep from open memberships (`targeting.audiences`).

    Keyed by what the audience selects, not by survey: the Targeting tab reads it for any
    audience shown that is the same selection, while it still stands for it.
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    audience = models.TextField(help_text="The audience's segments (`Selection.key`).")
    other = models.TextField(
        blank=True, help_text="For an overlap, the other audience's segments; empty for a size."
    )
    contacts = models.PositiveIntegerField()
    as_of = models.DateTimeField(help_text="The start of the sweep that counted it.")

    class Meta:
        ordering = ["workspace", "audience", "other"]

    def __str__(self) -> str:
        shared = f" ∩ {self.other}" if self.other else ""
        return f"{self.audience}{shared}: {self.contacts}"

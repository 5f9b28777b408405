import uuid

from django.db import models
from django.utils import timezone

from refiner.models import Workspace
from segments.models import Contact, ParsedValueFields
from segments.values import iso
from surveys.parts import survey_parts


class SurveyQuerySet(models.QuerySet):
    def with_parts(self) -> "SurveyQuerySet":
        """Surveys with their parts owned above (targeting and its segments), in a fixed
        number of queries however many surveys there are."""
        parts = survey_parts()
        return self.select_related(*(n for p in parts for n in p.select_related)).prefetch_related(
            *(n for p in parts for n in p.prefetch_related)
        )

    def complete(self) -> "SurveyQuerySet":
        """`with_parts`, and the questions: all the REST API and the widget show."""
        return self.prefetch_related("questions").with_parts()


class Survey(models.Model):
    DRAFT, LIVE, PAUSED, ARCHIVED = "draft", "live", "paused", "archived"
    STATUSES = [(DRAFT, "Draft"), (LIVE, "Live"), (PAUSED, "Paused"), (ARCHIVED, "Archived")]

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="surveys")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=STATUSES, default=DRAFT)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SurveyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_live(self) -> bool:
        return self.status == self.LIVE

    def to_dict(self) -> dict:
        """The survey as the REST API shows it: questions and targeting included."""
        return {
            "id": self.pk,
            "name": self.name,
            "status": self.status,
            "questions": [q.to_dict() for q in self.questions.all()],
            **{part.key: part.to_dict(self) for part in survey_parts()},
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class Question(models.Model):
    NPS, RATING, SINGLE, MULTIPLE, TEXT = (
        "nps",
        "rating",
        "single_choice",
        "multiple_choice",
        "text",
    )
    TYPES = [
        (NPS, "NPS (0–10)"),
        (RATING, "Rating (1–5)"),
        (SINGLE, "Single choice"),
        (MULTIPLE, "Multiple choice"),
        (TEXT, "Free text"),
    ]

    survey = models.ForeignKey(Survey, models.CASCADE, related_name="questions")
    key = models.CharField(max_length=100, help_text="Stable key answers are saved under.")
    type = models.CharField(max_length=20, choices=TYPES)
    text = models.CharField(max_length=1000)
    choices = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["survey", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "key"], name="unique_question_key")
        ]

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        data = {"key": self.key, "type": self.type, "text": self.text}
        if self.type in (self.SINGLE, self.MULTIPLE):
            data["choices"] = self.choices
        return data


class Display(models.Model):
    """One showing of a survey to a contact. Its id is public and unguessable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="displays")
    survey = models.ForeignKey(Survey, models.CASCADE, related_name="displays")
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="displays")
    shown_at = models.DateTimeField(default=timezone.now)
    dismissed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    session = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="The widget's browser session it was shown in (for once-per-session surveys).",
    )

    class Meta:
        ordering = ["-shown_at"]
        indexes = [
            models.Index(fields=["contact", "survey", "shown_at"], name="display_contact"),
            models.Index(fields=["survey", "shown_at"], name="display_survey"),
        ]

    def __str__(self) -> str:
        return f"{self.survey} to {self.contact}"

    @property
    def closed(self) -> bool:
        return self.dismissed_at is not None or self.completed_at is not None


class Response(models.Model):
    """The answers given during a display, saved as they come."""

    display = models.OneToOneField(Display, models.CASCADE, related_name="response")
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="responses")
    survey = models.ForeignKey(Survey, models.CASCADE, related_name="responses")
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="responses")
    answers = models.JSONField(default=dict, blank=True)
    # The page's own fields (the widget's addToResponse): a small flat object, or NULL.
    extra = models.JSONField(null=True, blank=True)
    completed = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["survey", "completed", "created_at"], name="response_survey"),
            models.Index(fields=["workspace", "created_at"], name="response_workspace"),
        ]

    def __str__(self) -> str:
        return f"Response to {self.survey} by {self.contact}"

    def to_dict(self) -> dict:
        return {
            "id": self.pk,
            "survey": self.survey_id,
            "user_id": self.contact.user_id,
            "anonymous": self.contact.is_anonymous,
            "display": str(self.display_id),
            "answers": self.answers,
            "extra": self.extra or {},
            "completed": self.completed,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "completed_at": iso(self.completed_at) if self.completed_at else None,
        }


class Answer(ParsedValueFields):
    """One answer element (one chosen option of a multiple choice), parsed for SQL.

    `key` is the question key. Only the contact's latest answer to a question is
    `is_latest`; answer conditions (SPEC §3.4) read only those rows.
    """

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="answer_values")
    survey = models.ForeignKey(Survey, models.CASCADE, related_name="answer_values")
    response = models.ForeignKey(Response, models.CASCADE, related_name="answer_values")
    answered_at = models.DateTimeField(default=timezone.now)
    is_latest = models.BooleanField(default=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["contact", "survey", "key"],
                condition=models.Q(is_latest=True),
                name="answer_latest",
            ),
            models.Index(fields=["workspace", "survey", "key", "num"], name="answer_num"),
        ]

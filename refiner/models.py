import secrets

from django.conf import settings
from django.db import models


def new_widget_key() -> str:
    return "wk_" + secrets.token_urlsafe(18)


def new_secret_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def new_definitions_version() -> str:
    return secrets.token_hex(16)


class Workspace(models.Model):
    """A tenant: one product of one customer. Nothing crosses workspaces."""

    name = models.CharField(max_length=200)
    widget_key = models.CharField(
        max_length=64,
        unique=True,
        default=new_widget_key,
        help_text="Public key embedded in the widget snippet.",
    )
    secret_key = models.CharField(
        max_length=80,
        unique=True,
        default=new_secret_key,
        help_text="Server-side key for the REST API and identity verification.",
    )
    identity_verification = models.BooleanField(
        default=False,
        help_text="Require an HMAC-SHA256 signature of the user id on widget calls.",
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        help_text="Origins allowed to call the widget API; empty allows any.",
    )
    recontact_days = models.PositiveIntegerField(
        default=0,
        help_text="A contact shown any survey in the last N days is shown no other one.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Changes whenever a survey, targeting or segment of the workspace changes. The
    # widget reads it with the workspace on every call, so each process knows at once
    # whether its copy of the eligibility definitions is still current.
    definitions_version = models.CharField(
        max_length=32, default=new_definitions_version, editable=False
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        # Only `targeting.eligibility.invalidate` changes the definitions version, with
        # an UPDATE of its own: saving other settings must not write back an old one
        # read before a survey changed.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name != "definitions_version"
            ]
        super().save(*args, **kwargs)

    def rotate_keys(self, *, widget: bool = False, secret: bool = False) -> None:
        if widget:
            self.widget_key = new_widget_key()
        if secret:
            self.secret_key = new_secret_key()
        self.save()

    def settings_dict(self) -> dict:
        return {
            "name": self.name,
            "identity_verification": self.identity_verification,
            "allowed_origins": self.allowed_origins,
            "recontact_days": self.recontact_days,
        }


class Membership(models.Model):
    OWNER, EDITOR, VIEWER = "owner", "editor", "viewer"
    ROLES = [(OWNER, "Owner"), (EDITOR, "Editor"), (VIEWER, "Viewer")]

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=ROLES, default=EDITOR)

    class Meta:
        ordering = ["workspace", "user"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"

    @property
    def can_edit(self) -> bool:
        return self.role in (self.OWNER, self.EDITOR)

    @property
    def can_manage(self) -> bool:
        return self.role == self.OWNER

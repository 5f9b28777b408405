"""Staff admin for workspaces and their members; the readable-JSON helper the apps share."""

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html
from django.utils.safestring import SafeString

from refiner.models import Membership, Workspace


def pretty_json(value: Any) -> SafeString:
    """A JSON value indented inside <pre>, escaped: for read-only admin fields."""
    return format_html(
        '<pre style="margin:0;white-space:pre-wrap">{}</pre>',
        json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True),
    )


class IndentedJSONField(forms.JSONField):
    """JSON shown indented, one item a line, so rules, choices and page rules can be read."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


MONOSPACE = {"style": "font-family:monospace"}
# `formfield_overrides` for an admin whose model has JSON fields to edit.
READABLE_JSON = {
    models.JSONField: {
        "form_class": IndentedJSONField,
        "widget": forms.Textarea(attrs={"rows": 6, "cols": 60, **MONOSPACE}),
    }
}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ["name", "id", "identity_verification", "recontact_days", "created_at"]
    list_filter = ["identity_verification", "created_at"]
    search_fields = ["name", "=widget_key"]
    # Keys change only through rotate_keys, so that a new one is always random.
    readonly_fields = ["widget_key", "secret_key", "created_at"]
    fields = [
        "name",
        "widget_key",
        "secret_key",
        "identity_verification",
        "allowed_origins",
        "recontact_days",
        "created_at",
    ]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "workspace", "role"]
    list_filter = ["role", "workspace"]
    search_fields = ["user__email", "user__username", "workspace__name"]
    list_select_related = ["user", "workspace"]
    autocomplete_fields = ["workspace", "user"]

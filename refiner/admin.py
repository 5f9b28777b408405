"""Staff admin for workspaces and their members; the readable-JSON helper the apps share."""

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.shortcuts import redirect
from django.urls import reverse
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


class RecordedAdmin(admin.ModelAdmin):
    """Shown and deletable, never added or edited by hand: what the widget and API recorded."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class InUseAdmin(admin.ModelAdmin):
    """For a workspace's object that others use (a segment, a survey): refuses to delete it
    while something uses it, naming what does, and to move it to another workspace.

    `users_of(obj)` lists the users; add "used_by" to `readonly_fields` to show them.
    """

    def users_of(self, obj) -> list[str]:
        raise NotImplementedError

    def get_readonly_fields(self, request, obj=None):
        # Its users, displays and responses stay in its workspace: moving it would break them.
        return [*self.readonly_fields, "workspace"] if obj else self.readonly_fields

    @admin.display(description="used by")
    def used_by(self, obj):
        users = self.users_of(obj) if obj.pk else []
        if not users:
            return "Nothing: it can be deleted."
        return format_html(
            "{}<br><small>It cannot be deleted while these use it.</small>", ", ".join(users)
        )

    def get_actions(self, request):
        # The bulk delete would skip the "in use" check below.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and self.users_of(obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        # Django answers a refused deletion with a bare 403; say what holds the object instead.
        obj = self.get_object(request, object_id)
        users = self.users_of(obj) if obj is not None else []
        if users and super().has_delete_permission(request, obj):
            self.message_user(
                request,
                f"“{obj}” cannot be deleted: it is used by {', '.join(users)}. "
                "Remove those uses first.",
                messages.ERROR,
            )
            opts = self.opts
            return redirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            )
        return super().delete_view(request, object_id, extra_context)


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

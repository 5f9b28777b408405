"""Staff admin for accounts, contacts, events and segments.

Contacts, accounts and events are the customer's data, written by identify and
track together with the parsed value rows SQL compares; editing them here would
let the two drift apart, so they are read-only (deleting stays possible).
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from refiner.admin import MONOSPACE, IndentedJSONField, InUseAdmin, RecordedAdmin, pretty_json
from segments.models import (
    Account,
    AccountValue,
    Contact,
    ContactValue,
    Event,
    MembershipSweep,
    Segment,
    SegmentMember,
    SegmentMembership,
)
from segments.services import check_rule
from segments.uses import segment_users

RECENT_EVENTS = 20


@admin.register(Account)
class AccountAdmin(RecordedAdmin):
    list_display = ["external_id", "name", "workspace", "updated_at"]
    list_filter = ["workspace", "updated_at"]
    search_fields = ["external_id", "name"]
    list_select_related = ["workspace"]
    fields = ["workspace", "external_id", "name", "traits_json", "created_at", "updated_at"]
    readonly_fields = fields

    @admin.display(description="traits")
    def traits_json(self, account: Account):
        return pretty_json(account.traits)


@admin.register(Contact)
class ContactAdmin(RecordedAdmin):
    list_display = ["user_id", "email", "name", "workspace", "account", "last_seen_at"]
    list_filter = ["workspace", "first_seen_at", "last_seen_at"]
    search_fields = ["user_id", "email", "name", "account__external_id", "account__name"]
    list_select_related = ["workspace", "account"]
    fields = [
        "workspace",
        "user_id",
        "email",
        "name",
        "account",
        "traits_json",
        "first_seen_at",
        "last_seen_at",
        "recent_events",
    ]
    readonly_fields = fields

    @admin.display(description="traits")
    def traits_json(self, contact: Contact):
        return pretty_json(contact.traits)

    @admin.display(description=f"latest {RECENT_EVENTS} events")
    def recent_events(self, contact: Contact):
        # A plain list instead of an inline: a contact may have millions of events.
        events = contact.events.order_by("-occurred_at")[:RECENT_EVENTS]
        url = reverse("admin:segments_event_changelist") + f"?contact__id__exact={contact.pk}"
        items = format_html_join(
            "", "<li>{} <small>{}</small></li>", ((e.name, e.occurred_at) for e in events)
        )
        return format_html('<ul style="margin:0">{}</ul><a href="{}">All events</a>', items, url)


class ValueAdmin(RecordedAdmin):
    list_display = ["key", "text", "num", "date", "boolean"]
    list_filter = ["workspace"]
    search_fields = ["key", "text"]


@admin.register(ContactValue)
class ContactValueAdmin(ValueAdmin):
    list_display = ["contact", *ValueAdmin.list_display]
    list_select_related = ["contact"]
    search_fields = ["contact__user_id", *ValueAdmin.search_fields]


@admin.register(AccountValue)
class AccountValueAdmin(ValueAdmin):
    list_display = ["account", *ValueAdmin.list_display]
    list_select_related = ["account"]
    search_fields = ["account__external_id", *ValueAdmin.search_fields]


@admin.register(Event)
class EventAdmin(RecordedAdmin):
    list_display = ["name", "contact", "workspace", "occurred_at"]
    list_filter = ["workspace", "occurred_at"]
    search_fields = ["name", "contact__user_id"]
    list_select_related = ["contact", "workspace"]
    date_hierarchy = "occurred_at"


class SegmentForm(forms.ModelForm):
    rules = IndentedJSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 20, "cols": 80, **MONOSPACE}),
        help_text="The rule document (SPEC §3); leave empty for a manual segment.",
    )

    class Meta:
        model = Segment
        fields = ["workspace", "name", "description", "kind", "rules"]

    def clean_rules(self):
        rules = self.cleaned_data.get("rules")
        kind = self.cleaned_data.get("kind")
        workspace = self.cleaned_data.get("workspace") or getattr(self.instance, "workspace", None)
        if kind == Segment.MANUAL:
            if rules is not None:
                raise ValidationError("A manual segment has no rules.")
            return None
        if workspace is None:
            return rules  # The workspace field reports its own error.
        problems = check_rule(rules, workspace_id=workspace.pk, segment_id=self.instance.pk)
        if problems:
            raise ValidationError([f"{path}: {message}" for path, message in problems.items()])
        return rules


class SegmentMemberForm(forms.ModelForm):
    class Meta:
        model = SegmentMember
        fields = ["segment", "contact"]

    def clean(self):
        cleaned = super().clean()
        segment, contact = cleaned.get("segment"), cleaned.get("contact")
        if segment and contact and segment.workspace_id != contact.workspace_id:
            raise ValidationError("The contact and the segment belong to different workspaces.")
        if segment and not segment.is_manual:
            raise ValidationError("Only manual segments have members.")
        return cleaned


class SegmentMemberInline(admin.TabularInline):
    model = SegmentMember
    form = SegmentMemberForm
    extra = 0
    autocomplete_fields = ["contact"]
    readonly_fields = ["added_at"]


@admin.register(Segment)
class SegmentAdmin(InUseAdmin):
    form = SegmentForm
    list_display = ["name", "kind", "workspace", "updated_at"]
    list_filter = ["kind", "workspace", "updated_at"]
    search_fields = ["name", "description"]
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    readonly_fields = ["used_by", "created_at", "updated_at"]
    inlines = [SegmentMemberInline]

    def users_of(self, segment: Segment) -> list[str]:
        return segment_users(segment)


@admin.register(SegmentMember)
class SegmentMemberAdmin(admin.ModelAdmin):
    form = SegmentMemberForm
    list_display = ["contact", "segment", "added_at"]
    list_filter = ["segment__workspace", "added_at"]
    search_fields = ["contact__user_id", "contact__email", "segment__name"]
    list_select_related = ["contact", "segment"]
    autocomplete_fields = ["segment", "contact"]
    readonly_fields = ["added_at"]


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(RecordedAdmin):
    list_display = ["contact", "segment", "entered_at", "left_at"]
    list_filter = ["workspace", "entered_at", "left_at"]
    search_fields = ["contact__user_id", "contact__email", "segment__name"]
    list_select_related = ["contact", "segment"]
    fields = ["workspace", "contact", "segment", "entered_at", "left_at"]
    readonly_fields = fields


@admin.register(MembershipSweep)
class MembershipSweepAdmin(RecordedAdmin):
    list_display = ["started_at", "workspace", "finished_at", "segments", "entries", "exits"]
    list_filter = ["workspace", "started_at"]
    search_fields = ["workspace__name"]
    list_select_related = ["workspace"]
    fields = ["workspace", "started_at", "finished_at", "segments", "entries", "exits"]
    readonly_fields = fields

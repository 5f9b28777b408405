"""Staff admin for survey targeting (SPEC §4)."""

from django import forms
from django.contrib import admin

from refiner.admin import READABLE_JSON
from surveys.admin import SurveyAdmin
from targeting.models import Targeting
from targeting.services import FIELDS

SEGMENT_FIELDS = ("segments", "excluded_segments")


class TargetingForm(forms.ModelForm):
    class Meta:
        model = Targeting
        fields = ["survey", *FIELDS]

    def clean(self):
        cleaned = super().clean()
        survey = cleaned.get("survey") or getattr(self.instance, "survey", None)
        if survey is None:
            return cleaned
        for field in SEGMENT_FIELDS:
            strangers = [
                s.name for s in cleaned.get(field) or () if s.workspace_id != survey.workspace_id
            ]
            if strangers:
                self.add_error(field, f"Not in the survey's workspace: {', '.join(strangers)}.")
        return cleaned


class TargetingInline(admin.StackedInline):
    model = Targeting
    form = TargetingForm
    can_delete = False
    autocomplete_fields = list(SEGMENT_FIELDS)
    formfield_overrides = READABLE_JSON


# A survey's page shows its targeting too, edited in place.
SurveyAdmin.inlines = [*SurveyAdmin.inlines, TargetingInline]


@admin.register(Targeting)
class TargetingAdmin(admin.ModelAdmin):
    form = TargetingForm
    formfield_overrides = READABLE_JSON
    list_display = [
        "survey",
        "audience",
        "segment_match",
        "trigger",
        "frequency",
        "sample_percent",
        "priority",
    ]
    list_filter = ["audience", "trigger", "frequency", "survey__workspace"]
    search_fields = ["survey__name", "trigger_event"]
    list_select_related = ["survey"]
    autocomplete_fields = ["survey", *SEGMENT_FIELDS]

"""Staff admin for surveys, their questions, displays and responses.

Displays, responses and parsed answers are what the widget recorded: read-only.
"""

from django.contrib import admin

from refiner.admin import READABLE_JSON, InUseAdmin, RecordedAdmin, pretty_json
from surveys.editing import survey_users
from surveys.models import Answer, Display, Question, Response, Survey


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ["position", "key", "type", "text", "choices"]
    formfield_overrides = READABLE_JSON


@admin.register(Survey)
class SurveyAdmin(InUseAdmin):
    list_display = ["name", "status", "workspace", "created_at", "updated_at"]
    list_filter = ["status", "workspace", "created_at"]
    search_fields = ["name"]
    list_select_related = ["workspace"]
    autocomplete_fields = ["workspace"]
    readonly_fields = ["used_by", "updated_at"]
    # `targeting.admin` adds the Targeting inline: surveys may not import targeting.
    inlines = [QuestionInline]

    def users_of(self, survey: Survey) -> list[str]:
        return survey_users(survey)


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ["key", "type", "text", "survey", "position"]
    list_filter = ["type", "survey__workspace"]
    search_fields = ["key", "text", "survey__name"]
    list_select_related = ["survey"]
    autocomplete_fields = ["survey"]
    formfield_overrides = READABLE_JSON


@admin.register(Display)
class DisplayAdmin(RecordedAdmin):
    list_display = ["id", "survey", "contact", "shown_at", "dismissed_at", "completed_at"]
    list_filter = ["workspace", "shown_at", "completed_at", "dismissed_at"]
    search_fields = ["survey__name", "contact__user_id", "contact__email"]
    list_select_related = ["survey", "contact"]
    date_hierarchy = "shown_at"


@admin.register(Response)
class ResponseAdmin(RecordedAdmin):
    list_display = ["id", "survey", "contact", "completed", "created_at", "completed_at"]
    list_filter = ["completed", "workspace", "created_at"]
    search_fields = ["survey__name", "contact__user_id", "contact__email"]
    list_select_related = ["survey", "contact"]
    date_hierarchy = "created_at"
    fields = [
        "workspace",
        "survey",
        "contact",
        "display",
        "answers_json",
        "completed",
        "created_at",
        "updated_at",
        "completed_at",
    ]
    readonly_fields = fields

    @admin.display(description="answers")
    def answers_json(self, response: Response):
        return pretty_json(response.answers)


@admin.register(Answer)
class AnswerAdmin(RecordedAdmin):
    list_display = ["key", "text", "num", "contact", "survey", "is_latest", "answered_at"]
    list_filter = ["is_latest", "workspace", "answered_at"]
    search_fields = ["key", "text", "contact__user_id", "survey__name"]
    list_select_related = ["contact", "survey"]

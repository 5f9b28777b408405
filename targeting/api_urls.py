from django.urls import path

from targeting import api, widget_api

urlpatterns = [
    # The widget (SPEC §5.1): public widget key, CORS
    path("widget/identify", widget_api.identify, name="widget-identify"),
    path("widget/track", widget_api.track, name="widget-track"),
    path("widget/eligibility", widget_api.eligibility, name="widget-eligibility"),
    path("widget/displays", widget_api.displays, name="widget-displays"),
    path(
        "widget/displays/<uuid:display_id>/answers",
        widget_api.answers,
        name="widget-display-answers",
    ),
    path(
        "widget/displays/<uuid:display_id>/dismiss",
        widget_api.dismiss,
        name="widget-display-dismiss",
    ),
    path("widget/preview", widget_api.preview, name="widget-preview"),
    # REST (SPEC §5.2): secret key
    path(
        "surveys/<int:survey_id>/eligibility/<path:user_id>",
        api.survey_eligibility,
        name="api-survey-eligibility",
    ),
]

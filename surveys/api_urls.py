from django.urls import path

from surveys import api

urlpatterns = [
    # REST (SPEC §5.2): secret key
    path("surveys", api.surveys, name="api-surveys"),
    path("surveys/<int:survey_id>", api.survey, name="api-survey"),
    path("responses", api.responses, name="api-responses"),
]

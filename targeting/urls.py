from django.urls import path

from targeting import views

urlpatterns = [
    path("surveys/<int:survey_id>/targeting/", views.survey_targeting, name="survey-targeting"),
]

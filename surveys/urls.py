from django.urls import path

from surveys import views

urlpatterns = [
    path("surveys/", views.survey_list, name="survey-list"),
    path("surveys/new/", views.survey_create, name="survey-create"),
    path("surveys/<int:survey_id>/", views.survey_questions, name="survey-questions"),
    path("surveys/<int:survey_id>/questions/", views.question_add, name="question-add"),
    path(
        "surveys/<int:survey_id>/questions/<int:question_id>/",
        views.question_change,
        name="question-change",
    ),
    path("surveys/<int:survey_id>/status/", views.survey_status, name="survey-status"),
    path("surveys/<int:survey_id>/rename/", views.survey_rename, name="survey-rename"),
    path("surveys/<int:survey_id>/duplicate/", views.survey_duplicate, name="survey-duplicate"),
    path("surveys/<int:survey_id>/delete/", views.survey_delete, name="survey-delete"),
    path("surveys/<int:survey_id>/results/", views.survey_results, name="survey-results"),
    path("responses/", views.response_list, name="response-list"),
    path("responses/export.csv", views.response_export, name="response-export"),
]

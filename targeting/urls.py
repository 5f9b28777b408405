from django.urls import path

from targeting import contact_page, views

urlpatterns = [
    path("surveys/<int:survey_id>/targeting/", views.survey_targeting, name="survey-targeting"),
    # Last: the user id may hold slashes, so this path takes everything under contacts/.
    path("contacts/<path:user_id>/", contact_page.contact_detail, name="contact-detail"),
]

from django.urls import path

from segments import history, views

urlpatterns = [
    path("segments/", views.segment_list, name="segment-list"),
    path("segments/new/", views.segment_new, name="segment-new"),
    path("segments/preview/", views.segment_preview, name="segment-preview"),
    path("segments/<int:pk>/", views.segment_edit, name="segment-edit"),
    path("segments/<int:pk>/delete/", views.segment_delete, name="segment-delete"),
    path("segments/<int:pk>/size/", views.segment_size, name="segment-size"),
    path("segments/<int:pk>/history/", history.segment_history, name="segment-history"),
    path("segments/<int:pk>/members/add/", views.segment_members_add, name="segment-members-add"),
    path(
        "segments/<int:pk>/members/import/",
        views.segment_members_import,
        name="segment-members-import",
    ),
    path(
        "segments/<int:pk>/members/remove/",
        views.segment_members_remove,
        name="segment-members-remove",
    ),
    path("catalogue/", views.trait_catalogue, name="catalogue"),
    path("contacts/", views.contact_list, name="contact-list"),
    path("test-contacts/", views.contact_test, name="contact-test"),
]

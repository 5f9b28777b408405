from django.urls import path

from segments import api

urlpatterns = [
    path("identify-user", api.identify_user, name="api-identify-user"),
    path("track-event", api.track_event, name="api-track-event"),
    path("contacts", api.contacts, name="api-contacts"),
    path("contacts/<path:user_id>", api.contact, name="api-contact"),
    path("segments", api.segments, name="api-segments"),
    path("segments/preview", api.segment_preview, name="api-segment-preview"),
    path("segments/<int:segment_id>", api.segment, name="api-segment"),
    path("segments/<int:segment_id>/contacts", api.segment_members, name="api-segment-contacts"),
    path("segments/<int:segment_id>/members", api.manual_members, name="api-segment-members"),
]

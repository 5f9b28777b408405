from django.urls import path

from refiner import api

urlpatterns = [
    path("workspace", api.workspace_settings, name="api-workspace"),
    path("ping", api.ping, name="api-ping"),
]

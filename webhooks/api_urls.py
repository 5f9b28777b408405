from django.urls import path

from webhooks import api

urlpatterns = [
    path("webhooks", api.endpoints, name="api-webhooks"),
    path("webhooks/<int:endpoint_id>", api.endpoint, name="api-webhook"),
    path("webhooks/<int:endpoint_id>/secret", api.endpoint_secret, name="api-webhook-secret"),
    path("webhooks/<int:endpoint_id>/deliveries", api.deliveries, name="api-webhook-deliveries"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver",
        api.redeliver,
        name="api-webhook-redeliver",
    ),
]

from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks/", views.endpoint_list, name="webhook-list"),
    path("webhooks/new/", views.endpoint_new, name="webhook-new"),
    path("webhooks/<int:pk>/", views.endpoint_edit, name="webhook-edit"),
    path("webhooks/<int:pk>/secret/", views.endpoint_secret, name="webhook-secret"),
    path("webhooks/<int:pk>/delete/", views.endpoint_delete, name="webhook-delete"),
    path("webhooks/<int:pk>/deliveries/", views.delivery_log, name="webhook-deliveries"),
    path(
        "webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/",
        views.delivery_redeliver,
        name="webhook-redeliver",
    ),
]

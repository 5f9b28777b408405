from django.contrib import admin

from webhooks.models import Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["id", "url", "workspace", "format", "is_active", "created_at"]
    list_filter = ["is_active", "format", "workspace"]
    search_fields = ["url"]
    list_select_related = ["workspace"]
    exclude = ["secret"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "endpoint", "status", "attempts", "response_code", "created_at"]
    list_filter = ["status", "event", "workspace"]
    search_fields = ["event_id", "endpoint__url"]
    list_select_related = ["endpoint"]

    # A delivery is a record of what was sent: redeliver from the dashboard instead.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # JSON API (SPEC §5)
    path("api/v1/", include("segments.api_urls")),
    path("api/v1/", include("surveys.api_urls")),
    path("api/v1/", include("targeting.api_urls")),
    path("api/v1/", include("refiner.api_urls")),
    path("api/v1/", include("webhooks.api_urls")),
    # Dashboard (SPEC §6)
    path("", include("refiner.dashboard_urls")),
    path("", include("segments.urls")),
    path("", include("surveys.urls")),
    path("", include("targeting.urls")),
    path("", include("webhooks.urls")),
    # The widget's demo host page (SPEC §7), only when enabled
    path("", include("demo.urls")),
]

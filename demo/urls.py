from django.urls import path

from demo import views

urlpatterns = [
    # The widget's demo host page (SPEC §7); 404 unless DEMO_PAGE_ENABLED.
    path("demo/", views.demo_page, name="demo"),
]

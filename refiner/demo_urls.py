from django.urls import path

from refiner import demo

urlpatterns = [
    # The widget's demo host page (SPEC §7); 404 unless DEMO_PAGE_ENABLED.
    path("demo/", demo.demo_page, name="demo"),
]

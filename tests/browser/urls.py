"""The app's URLs plus customers' host pages, for the browser tests only."""

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from refiner.urls import urlpatterns as app_urlpatterns

# Filled by the tests; the live server runs in the same process.
HOST_PAGES: dict[str, str] = {}


def host_page(request: HttpRequest, name: str) -> HttpResponse:
    if name not in HOST_PAGES:
        raise Http404(name)
    response = HttpResponse(HOST_PAGES[name])
    # A customer's page is not ours: no policy of ours (Playwright's waits need eval, too).
    response["Content-Security-Policy"] = "default-src * 'unsafe-inline' 'unsafe-eval'"
    return response


urlpatterns = [
    path("host/<path:name>", host_page),
    *app_urlpatterns,
]

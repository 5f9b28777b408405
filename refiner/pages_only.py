"""Django's page middleware, gone around by the widget's calls.

The widget's endpoints answer a public key with JSON: they read no session, user
or message, and are exempt from CSRF. Yet each of these middleware costs something
on every call even when nothing reads what it sets up (a session store, a message
storage, the CSRF cookie), and the widget's calls are the app's hottest path
(issue 16). Each class here is Django's own, so the admin's checks
still find it; it only steps aside for a path under `WIDGET_PREFIX`.

The host check (CommonMiddleware), the security headers and htmx's (it only adds a
lazy attribute) stay on every path.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessages
from django.contrib.sessions.middleware import SessionMiddleware as DjangoSessions
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware as DjangoCsrf

from refiner.middleware import WIDGET_PREFIX


def is_widget_call(request: HttpRequest) -> bool:
    return request.path_info.startswith(WIDGET_PREFIX)


class PagesOnly:
    """Mixed in before a middleware class: widget calls go straight to the next one."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_widget_call(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(PagesOnly, DjangoSessions):
    pass


class CsrfViewMiddleware(PagesOnly, DjangoCsrf):
    # process_view still runs for every view: one under the widget's prefix that were
    # not exempt would still have its token checked, against the cookie itself.
    pass


class AuthenticationMiddleware(PagesOnly, DjangoAuthentication):
    pass


class MessageMiddleware(PagesOnly, DjangoMessages):
    pass

"""Django's page middleware, gone around by the widget's calls.

The widget's endpoints answer a public key with JSON: they read no user and no
message. Yet these middleware cost something on every call even when nothing reads
what they set up (a lazy user, a message storage of two backends), and the widget's
calls are the app's hottest path (issue 16). Each class here is Django's own, so the
admin's checks still find it; it only steps aside for a path under `WIDGET_PREFIX`.

Sessions and CSRF stay Django's own classes under their own names: `check --deploy`
looks for those exact paths before checking the session and CSRF cookie settings.
The host check (CommonMiddleware) and the security headers stay on every path too.
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthentication
from django.contrib.messages.middleware import MessageMiddleware as DjangoMessages
from django.http import HttpRequest, HttpResponse

from refiner.middleware import WIDGET_PREFIX


def is_widget_call(request: HttpRequest) -> bool:
    return request.path_info.startswith(WIDGET_PREFIX)


class PagesOnly:
    """Mixed in before a middleware class: widget calls go straight to the next one."""

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_widget_call(request):
            return self.get_response(request)
        return super().__call__(request)


class AuthenticationMiddleware(PagesOnly, DjangoAuthentication):
    pass


class MessageMiddleware(PagesOnly, DjangoMessages):
    pass

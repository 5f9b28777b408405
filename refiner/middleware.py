"""Cross-cutting protection: rate limits, security headers, errors that keep their shape.

Middleware rather than decorators so that no view has to remember them.
"""

import json
import logging
import unicodedata
from collections.abc import Callable

from django.conf import settings
from django.core import signals
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.urls import NoReverseMatch, reverse

from refiner import ratelimit
from refiner.budget import Budget, is_timeout
from refiner.http import TIMEOUT_MESSAGE, bearer_key, error

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
WIDGET_PREFIX = "/api/v1/widget/"

# What a non-JSON 4xx/5xx on an API path becomes (SPEC §5: always the error body).
STATUS_CODES = {
    400: ("bad_request", "The request is not valid."),
    401: ("unauthorized", "A valid key is required."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("body_too_large", "The request body is over 64 KiB."),
    429: ("rate_limited", "Too many requests; slow down."),
    500: ("internal_error", "Something went wrong on our side."),
    503: ("unavailable", "The service is unavailable; try again soon."),
}


def client_ip(request: HttpRequest) -> str:
    """The client's address; behind a proxy, the last hop the proxy itself added."""
    header = settings.RATE_LIMIT_CLIENT_IP_HEADER
    raw = request.META.get(header, "") if header else ""
    if raw:
        # The rightmost entry is the one our own proxy wrote; earlier ones are the client's word.
        return raw.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "")


def widget_key(request: HttpRequest) -> str:
    """The body's `"workspace"`, read only from small bodies (the view answers 413 otherwise)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return ""
    if not 0 < length <= settings.API_MAX_BODY_BYTES:
        return ""
    try:
        data = json.loads(request.body)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return ""
    key = data.get("workspace") if isinstance(data, dict) else None
    return key if isinstance(key, str) else ""


def too_many(retry_after: int) -> JsonResponse:
    response = error("rate_limited", f"Too many requests; retry in {retry_after} seconds.", 429)
    response["Retry-After"] = str(retry_after)
    return response


def login_name(raw: str) -> str:
    """The username as the login form reads it (stripped, NFKC), casefolded.

    The counter is keyed on this, so " user@x" or a full-width first letter is the
    same attempt as "user@x" and cannot start a fresh count.
    """
    name = unicodedata.normalize("NFKC", raw.strip()).strip()
    return name.casefold()[:200]


def login_paths() -> set[str]:
    paths = set()
    for name in (settings.LOGIN_URL, "admin:login"):
        try:
            paths.add(reverse(name))
        except NoReverseMatch:
            continue
    return paths


class RateLimitMiddleware:
    """429 past the per-minute limits: API calls per key, login attempts per IP and username,
    and wrong keys per client address.

    The widget key is public, so its counter is per key *and* client address: a
    stranger who copies the key from a web page cannot use up a customer's quota.
    Requests without any key are not counted here; they are refused at once.
    """

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = self.presented_key(request)
        wait = self.check(request, key)
        if wait is not None:
            return wait
        response = self.get_response(request)
        if response.status_code == 401 and key:
            limit = settings.RATE_LIMIT_INVALID_KEY_PER_MINUTE
            ratelimit.hit("invalid_key", client_ip(request), limit)
        return response

    def presented_key(self, request: HttpRequest) -> str:
        """The widget or secret key the request names, if any."""
        path = request.path_info
        if path.startswith(WIDGET_PREFIX):
            return widget_key(request) if request.method == "POST" else ""
        return bearer_key(request) if path.startswith(API_PREFIX) else ""

    def check(self, request: HttpRequest, key: str) -> HttpResponse | None:
        path = request.path_info
        if key:
            # Each unknown key costs a query to find out: past the limit of wrong keys,
            # the address is refused before any, whichever key it sends next.
            limit = settings.RATE_LIMIT_INVALID_KEY_PER_MINUTE
            wait = ratelimit.waiting("invalid_key", client_ip(request), limit)
            if wait:
                return too_many(wait)
        if path.startswith(WIDGET_PREFIX):
            limit = settings.RATE_LIMIT_WIDGET_PER_MINUTE
            wait = key and ratelimit.hit("widget", f"{key}|{client_ip(request)}", limit)
            return too_many(wait) if wait else None
        if path.startswith(API_PREFIX):
            wait = key and ratelimit.hit("rest", key, settings.RATE_LIMIT_REST_PER_MINUTE)
            return too_many(wait) if wait else None
        if request.method == "POST" and path in login_paths():
            username = login_name(str(request.POST.get("username", ""))[:1000])
            limit = settings.RATE_LIMIT_LOGIN_PER_MINUTE
            wait = ratelimit.hit("login", f"{client_ip(request)}|{username}", limit)
            if wait:
                response = HttpResponse(loader.render_to_string("429.html"), status=429)
                response["Retry-After"] = str(wait)
                return response
        return None


def refuse_nul(request: HttpRequest) -> HttpResponse | None:
    """400 for a NUL character in the path or the query string, before any view runs.

    No URL of ours means anything with a NUL in it, and PostgreSQL text cannot hold
    one: left to the views, each lookup or search with it would fail as a 5xx.
    """
    in_query = any(
        "\x00" in name or any("\x00" in value for value in values)
        for name, values in request.GET.lists()
    )
    if "\x00" not in request.path_info and not in_query:
        return None
    message = "The address must not contain NUL characters."
    if request.path_info.startswith(API_PREFIX):
        return error("bad_request", message, 400)
    return HttpResponse(loader.render_to_string("400.html"), status=400)


class TimeBudgetMiddleware:
    """Runs the request's queries within its budget: the widget's, or the REST and dashboard one.

    Past it, the query stops with an error that the API and the dashboard answer as
    503 `timeout`, and the transaction it ran in is rolled back with what it wrote.
    """

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(WIDGET_PREFIX):
            budget = Budget(settings.WIDGET_TIME_BUDGET_MS)
        else:
            budget = Budget(settings.REQUEST_TIME_BUDGET_MS)
        with budget.applied():
            return self.get_response(request)


class HardeningMiddleware:
    """CSP on pages; the SPEC §5 body for API errors; a 503 page when the DB is down."""

    def __init__(self, get_response: Callable):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = refuse_nul(request)
        if response is None:
            response = self.get_response(request)
        if request.path_info.startswith(API_PREFIX):
            return self.json_errors(response)
        if settings.CONTENT_SECURITY_POLICY and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response

    def json_errors(self, response: HttpResponse) -> HttpResponse:
        """Django's own 404/400/500 pages are HTML; API clients get the SPEC §5 body instead."""
        status = response.status_code
        if status < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        code, message = STATUS_CODES.get(status, ("error", "The request failed."))
        replacement = error(code, message, status)
        for header in ("Allow", "Retry-After"):
            if header in response:
                replacement[header] = response[header]
        return replacement

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        database_down = isinstance(exception, OperationalError | InterfaceError)
        is_api = request.path_info.startswith(API_PREFIX)
        if database_down and is_timeout(exception):
            log.warning("time budget spent: %s %s", request.method, request.path_info)
            if is_api:
                return error("timeout", TIMEOUT_MESSAGE, 503)
            page = loader.render_to_string("503.html", {"timeout": True})
            return HttpResponse(page, status=503)
        if not database_down and not is_api:
            return None  # Django's own handler logs it and renders 500.html
        if database_down:
            log.warning("database unavailable: %s", type(exception).__name__)
        else:
            log.exception("unhandled error in %s %s", request.method, request.path_info)
        # The test client re-raises what this signal reports, so bugs stay loud in tests.
        signals.got_request_exception.send(sender=None, request=request)
        if database_down and is_api:
            return error("unavailable", "The service is unavailable; try again soon.", 503)
        if is_api:
            return error("internal_error", "Something went wrong on our side.", 500)
        return HttpResponse(loader.render_to_string("503.html"), status=503)

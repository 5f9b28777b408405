"""Shared JSON API helpers: the SPEC §5 error body, body parsing, key auth, CORS."""

import functools
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.paginator import EmptyPage, Paginator
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt

from refiner.budget import is_timeout
from refiner.errors import Conflict, Invalid, Refused
from refiner.models import Workspace

log = logging.getLogger(__name__)

PAGE_SIZE = 50
TIMEOUT_MESSAGE = "The request took longer than its time budget and was stopped."


class ApiError(Exception):
    """Raised anywhere under an @api view; becomes the SPEC §5 error body.

    `details` are further keys of the error object, such as the eligibility
    engine's `reasons` for a refused display.
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        fields: dict | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.code, self.message, self.status, self.fields = code, message, status, fields
        self.details = details or {}


def error(
    code: str,
    message: str,
    status: int = 400,
    fields: dict | None = None,
    details: dict | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message, **(details or {})}
    if fields:
        body["fields"] = fields
    return JsonResponse({"error": body}, status=status)


def invalid(fields: dict, message: str = "The request has invalid fields.") -> Invalid:
    return Invalid(fields, message)


# The one place where what the product refuses (`refiner.errors`) becomes an HTTP status.
REFUSAL_STATUSES = ((Invalid, 400), (Conflict, 409))


def refusal_status(refusal: Refused) -> int:
    return next((status for kind, status in REFUSAL_STATUSES if isinstance(refusal, kind)), 400)


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


# Deeper JSON than this is refused: no real body nests so deep, and the database
# driver's own encoder would run out of stack on it (a 500 instead of a 400).
MAX_JSON_DEPTH = 64


def _check_strings(value: Any, depth: int = 0) -> None:
    """PostgreSQL text holds neither NUL nor lone surrogates: refuse them up front."""
    if depth > MAX_JSON_DEPTH:
        raise ApiError("invalid_json", f"The request body nests deeper than {MAX_JSON_DEPTH}.")
    if isinstance(value, str):
        if "\x00" in value:
            raise ApiError("invalid_json", "Strings must not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("invalid_json", "Strings must be valid Unicode.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


def json_body(request: HttpRequest) -> dict:
    """The request's JSON object; 413 over the size limit, 400 when not a JSON object."""
    body = request.body
    if len(body) > settings.API_MAX_BODY_BYTES:
        raise ApiError("body_too_large", "The request body is over 64 KiB.", 413)
    if not body:
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError("invalid_json", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    try:
        _check_strings(data)
    except RecursionError:
        raise ApiError("invalid_json", "The request body is nested too deeply.") from None
    return data


def _content_length_too_large(request: HttpRequest) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > settings.API_MAX_BODY_BYTES
    except ValueError:
        return False


def api(methods: list[str]) -> Callable:
    """A JSON endpoint: method check, SPEC §5 errors, 503 when the database is down."""

    def decorator(view: Callable) -> Callable:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in methods:
                response = error("method_not_allowed", f"Use {' or '.join(methods)}.", 405)
                response["Allow"] = ", ".join(methods)
                return response
            if _content_length_too_large(request):
                return error("body_too_large", "The request body is over 64 KiB.", 413)
            try:
                return view(request, *args, **kwargs)
            except ApiError as e:
                return error(e.code, e.message, e.status, e.fields, e.details)
            except Refused as e:
                return error(e.code, e.message, refusal_status(e), e.fields, e.details)
            except (OperationalError, InterfaceError) as e:
                if is_timeout(e):
                    raise  # HardeningMiddleware answers every spent budget, pages and API alike
                log.warning("database unavailable: %s", e)
                return error("unavailable", "The service is unavailable; try again soon.", 503)
            except DatabaseError as e:
                log.exception("database error")
                return error(
                    "unavailable", f"The database refused the request ({type(e).__name__}).", 503
                )

        return wrapper

    return decorator


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The form's `next` URL when it stays on this site, else `fallback` (no open redirect)."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return target
    return fallback


def bearer_key(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def authorize(view: Callable) -> Callable:
    """REST API: `Authorization: Bearer SECRET_KEY` selects request.workspace, else 401."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        key = bearer_key(request)
        if not key:
            raise ApiError(
                "unauthorized", "Send the secret key as `Authorization: Bearer KEY`.", 401
            )
        workspace = Workspace.objects.filter(secret_key=key).first()
        if workspace is None or not hmac.compare_digest(workspace.secret_key, key):
            raise ApiError("unauthorized", "The secret key is not valid.", 401)
        request.workspace = workspace
        return view(request, *args, **kwargs)

    return wrapper


LARGEST_ID = 2**63 - 1


def parse_id(raw: str) -> int | None:
    """A database id written in a path or query string, or None when it cannot be one.

    ASCII digits only ("²" is a digit to isdigit() but not to int()), and no larger than
    a 64-bit column holds (SQLite raises on a larger integer parameter).
    """
    if not (raw.isascii() and raw.isdigit()) or int(raw) > LARGEST_ID:
        return None
    return int(raw)


def page_number(request: HttpRequest) -> int:
    number = parse_id(request.GET.get("page", "1"))
    if not number:
        raise invalid({"page": "Must be a whole number from 1."})
    return number


def paginated(request: HttpRequest, queryset, to_dict: Callable) -> JsonResponse:
    """`{"results", "next", "count"}` for ?page=N (SPEC §5)."""
    number = page_number(request)
    paginator = Paginator(queryset, PAGE_SIZE)
    try:
        page = paginator.page(number)
    except EmptyPage:
        if number == 1:
            return JsonResponse({"results": [], "next": None, "count": 0})
        raise ApiError("not_found", "There is no such page.", 404) from None
    next_url = None
    if page.has_next():
        query = request.GET.copy()
        query["page"] = str(number + 1)
        next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return JsonResponse(
        {"results": [to_dict(item) for item in page], "next": next_url, "count": paginator.count}
    )

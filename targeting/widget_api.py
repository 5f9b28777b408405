"""The widget's endpoints (SPEC §5.1): public widget key, CORS, identity verification."""

import functools
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from refiner.http import ApiError, api, invalid, json_body
from refiner.models import Workspace
from refiner.raw_sql import ASYNCHRONOUS_COMMIT, Columns, fast_cursor
from segments import ingest, membership
from segments.models import Account, Contact
from segments.snapshot import EventReads, fingerprint_sql
from surveys import services
from surveys.extra import clean_extra
from surveys.models import Display, Survey
from targeting import anonymous
from targeting.eligibility import (
    Asked,
    Fingerprint,
    SurveyDefinition,
    display_decision,
    eligible_surveys,
    expected_event_reads,
    kept_answer,
)
from targeting.models import Targeting
from targeting.preview import MAX_TOKEN, PreviewRefused, previewed_survey_id

PREFLIGHT_MAX_AGE = 86_400
MAX_URL = 2000


def _origin_allowed(workspace: Workspace, origin: str) -> bool:
    return not workspace.allowed_origins or origin.rstrip("/") in workspace.allowed_origins


def cors(view: Callable) -> Callable:
    """CORS for the widget: preflights pass; answers carry the origin the workspace allows.

    A preflight carries no body, so no workspace: it is answered for any origin and
    the real request is checked against the workspace's allowed origins.
    """

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            if origin:
                response["Access-Control-Allow-Origin"] = origin
                response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
                response["Access-Control-Allow-Headers"] = "Content-Type"
                response["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
            response["Vary"] = "Origin"
            return response
        response = view(request, *args, **kwargs)
        workspace = getattr(request, "widget_workspace", None)
        if origin and workspace is not None and _origin_allowed(workspace, origin):
            response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
        return response

    return wrapper


def _widget_key(data: dict) -> str:
    key = data.get("workspace")
    if not isinstance(key, str) or not key:
        raise ApiError("unauthorized", 'Send the widget key as "workspace".', 401)
    return key


# Each widget key's workspace as this process last admitted it: a track of a known
# user is then checked before its one statement, which writes only while what the
# check read is still so (`_tracked_at_once`).
_admitted: dict[str, Workspace] = {}


def _admit(request: HttpRequest, workspace: Workspace | None) -> Workspace:
    """Refuse an unknown key (401) or an origin the workspace does not allow (403)."""
    if workspace is None:
        raise ApiError("unauthorized", "The widget key is not valid.", 401)
    request.widget_workspace = workspace
    _admitted[workspace.widget_key] = workspace
    origin = _refused_origin(request, workspace)
    if origin:
        raise ApiError("origin_not_allowed", f"The origin {origin} may not use this key.", 403)
    return workspace


def _refused_origin(request: HttpRequest, workspace: Workspace) -> str | None:
    """The request's Origin, when the workspace does not allow it."""
    origin = request.headers.get("Origin")
    return origin if origin and not _origin_allowed(workspace, origin) else None


WORKSPACE, CONTACT, ACCOUNT = Columns(Workspace, "w"), Columns(Contact, "c"), Columns(Account, "a")
ALLOWED_ORIGINS = Workspace._meta.get_field("allowed_origins")


def _caller_sql(column: str, more: str = "") -> str:
    """The widget key's workspace and, when the id is not NULL, its contact with the
    account, by `column` (a user id, or an anonymous visitor's id: never one for the
    other); `more` (", expression") goes after the three rows' columns."""
    return f"""
    SELECT {WORKSPACE.sql}, {CONTACT.sql}, {ACCOUNT.sql}{more}
    FROM refiner_workspace w
    LEFT JOIN segments_contact c ON c.workspace_id = w.id AND c.{column} = %s
    LEFT JOIN segments_account a ON a.id = c.account_id
    WHERE w.widget_key = %s
"""


CALLER_SQL, VISITOR_SQL = _caller_sql("user_id"), _caller_sql("anonymous_id")
# A digest of the contact's row and its account's (an eligibility answer's inputs).
CONTACT_ROW = "md5(c::text || '|' || coalesce(a::text, ''))"
# The workspace as this process admitted it is still so: what the checks before a
# one-statement path read of it, and what an eligibility answer reads (`_as_admitted`).
AS_ADMITTED = """w.widget_key = %s AND w.id = %s
            AND w.identity_verification = %s AND w.secret_key = %s
            AND w.allowed_origins = %s AND w.definitions_version = %s
            AND w.recontact_days = %s"""


def _as_admitted(workspace: Workspace) -> list:
    """The parameters of `AS_ADMITTED`."""
    return [
        workspace.widget_key,
        workspace.pk,
        workspace.identity_verification,
        workspace.secret_key,
        ALLOWED_ORIGINS.get_db_prep_value(workspace.allowed_origins, connection),
        workspace.definitions_version,
        workspace.recontact_days,
    ]


def caller(
    key: str, user_id: str | None, *, anonymous: bool = False
) -> tuple[Workspace | None, Contact | None]:
    """The workspace of a widget key and the contact of `user_id` in it, in one query.

    `anonymous`: `user_id` is an anonymous visitor's id. Every widget call starts
    here, so the query is written once rather than compiled by the ORM on each call.
    """
    with fast_cursor() as cursor:
        cursor.execute(VISITOR_SQL if anonymous else CALLER_SQL, [user_id, key])
        row = cursor.fetchone()
    return _caller_of(row)


def fingerprinted_caller(
    key: str, user_id: str | None, reads: EventReads, now: datetime
) -> tuple[Workspace | None, Contact | None, Fingerprint | None]:
    """`caller`, and in the same statement the fingerprint of the contact's snapshot
    with the events `reads` says at `now` (PostgreSQL; elsewhere None): the
    eligibility memo then needs no other query when nothing changed."""
    if connection.vendor != "postgresql":
        return *caller(key, user_id), None
    digest, params = fingerprint_sql(reads, now, 'c."id"')
    with fast_cursor() as cursor:
        sql = _caller_sql("user_id", f", {CONTACT_ROW}, {digest}")
        cursor.execute(sql, [*params, user_id, key])
        row = cursor.fetchone()
    workspace, contact = _caller_of(row and row[:-2])
    return workspace, contact, contact and Fingerprint(reads, row[-1], row[-2])


def _caller_of(row: tuple | None) -> tuple[Workspace | None, Contact | None]:
    if row is None:
        return None, None
    workspace = WORKSPACE.instance(row[: len(WORKSPACE)])
    return workspace, _contact_of(workspace, row[len(WORKSPACE) :])


def _contact_of(workspace: Workspace, row: tuple) -> Contact | None:
    """The contact, with its account, of a row's CONTACT and ACCOUNT columns."""
    contact = CONTACT.instance(row[: len(CONTACT)])
    if contact is not None:
        contact.workspace = workspace
        contact.account = ACCOUNT.instance(row[len(CONTACT) :])
    return contact


def _workspace(request: HttpRequest, data: dict) -> Workspace:
    return _admit(request, caller(_widget_key(data), None)[0])


def signature_of(workspace: Workspace, user_id: str) -> str:
    """Hex HMAC-SHA256 of the user id with the secret key: what the customer's server signs."""
    return hmac.new(workspace.secret_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _signed(workspace: Workspace, signature: Any, signed_id: Any) -> bool:
    """Is `signature` the secret key's signature of the id (a text, or a number as text)?"""
    return (
        isinstance(signature, str)
        and isinstance(signed_id, str | int)
        and not isinstance(signed_id, bool)
        # Bytes: compare_digest refuses non-ASCII str, and a signature may hold anything.
        and hmac.compare_digest(
            signature.lower().encode(), signature_of(workspace, str(signed_id)).encode()
        )
    )


def _unverified(workspace: Workspace, data: dict, user_id: Any) -> bool:
    """Does the workspace verify identities, and the body not sign this user id?"""
    return workspace.identity_verification and not _signed(
        workspace, data.get("signature"), user_id
    )


def _verify(workspace: Workspace, data: dict, user_id: Any) -> None:
    if _unverified(workspace, data, user_id):
        raise ApiError("bad_signature", "The signature of the user id is missing or wrong.", 403)


def _verify_account(workspace: Workspace, data: dict, account: dict | None) -> None:
    """With identity verification, an account needs its own signature.

    The user's signature says who the user is, not which account they belong to:
    without this, a signed user could name any account id and rename it or change
    its traits.
    """
    if (
        workspace.identity_verification
        and account is not None
        and not _signed(workspace, data.get("account_signature"), account["id"])
    ):
        raise ApiError("bad_signature", "The signature of the account id is missing or wrong.", 403)


def _user_id(data: dict) -> str:
    errors: dict[str, str] = {}
    user_id = ingest.check_id(data.get("user_id"), "user_id", errors)
    if errors:
        raise invalid(errors)
    return user_id


def _lookup_id(raw: Any) -> str | None:
    """The user id to look up, before it is validated (None: nothing to look up)."""
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        return str(raw) or None
    return None


def _verified_caller(
    request: HttpRequest, data: dict, raw: Any
) -> tuple[Workspace, Contact | None]:
    """The body's workspace and the contact of user id `raw`, admitted and verified."""
    workspace, contact = caller(_widget_key(data), _lookup_id(raw))
    _admit(request, workspace)
    _verify(workspace, data, raw)
    return workspace, contact


def _is_visitor(data: dict) -> bool:
    """Does the body name an anonymous visitor (no user id) rather than a user?"""
    return data.get("user_id") is None and data.get("anonymous_id") is not None


def _visitor(request: HttpRequest, data: dict) -> tuple[Workspace, Contact]:
    """Workspace and visitor of a body with "anonymous_id": its row, or an unsaved one.

    No signature: an anonymous id names no user, and reaches no user's data.
    """
    anonymous_id = anonymous.clean_anonymous_id(data.get("anonymous_id"))
    workspace, contact = caller(_widget_key(data), anonymous_id, anonymous=True)
    _admit(request, workspace)
    return workspace, contact or anonymous.unsaved_visitor(workspace, anonymous_id)


def _identified(request: HttpRequest, data: dict) -> tuple[Workspace, Contact | None, str]:
    """Workspace and contact of a body with "workspace" and "user_id", in one query.

    A body with "anonymous_id" instead names an anonymous visitor (the user id is then
    None, and the contact may be unsaved: see `targeting.anonymous`).
    """
    if _is_visitor(data):
        return *_visitor(request, data), None
    workspace, contact = _verified_caller(request, data, data.get("user_id"))
    return workspace, contact, _user_id(data)


def _optional_string(data: dict, key: str, size: int) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= size):
        raise invalid({key: f"Must be a text of 1 to {size} characters, or null."})
    return value


def _asynchronous_commit() -> bool:
    """Do a tracked event and a new user's contact commit without waiting for the WAL
    flush? A trade-off (WIDGET_ASYNC_COMMIT, docs/decisions.md): PostgreSQL only."""
    return settings.WIDGET_ASYNC_COMMIT and connection.vendor == "postgresql"


@cors
@api(["POST"])
def identify(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    user = data.get("user")
    raw = user.get("id") if isinstance(user, dict) else None
    workspace, current = _verified_caller(request, data, raw)
    cleaned = ingest.clean_user(user, "user.")
    _verify_account(workspace, data, cleaned["account"])
    visitor_id = data.get("anonymous_id")
    if visitor_id is not None:
        visitor_id = anonymous.clean_anonymous_id(visitor_id)
    contact = ingest.identify_known(
        workspace=workspace,
        user=cleaned,
        now=timezone.now(),
        current=current,
        asynchronous_commit=_asynchronous_commit(),
    )
    if visitor_id is not None:
        anonymous.merge_visitor(contact=contact, anonymous_id=visitor_id)
    # The widget key is public: the answer names the contact and nothing stored about it.
    return JsonResponse({"contact": {"user_id": contact.user_id}})


# A known user's event, written only while the workspace still has the settings its
# admission was checked against (key, identity verification, secret, origins, and
# the definitions its segments' watch comes from) and the contact's last_seen_at
# needs no move: otherwise nothing is written and the track takes the full path.
_KNOWN_USER_EVENT = """
    WITH written AS (
        INSERT INTO segments_event (workspace_id, contact_id, name, occurred_at)
        SELECT w.id, c.id, %s, %s
        FROM refiner_workspace w
        JOIN segments_contact c ON c.workspace_id = w.id AND c.user_id = %s
        WHERE {as_admitted}
            AND c.last_seen_at > %s
        RETURNING 1
    )
    SELECT count(*){more} FROM written"""
KNOWN_USER_EVENT = _KNOWN_USER_EVENT.format(as_admitted=AS_ADMITTED, more="")
KNOWN_USER_EVENT_ASYNCHRONOUSLY = _KNOWN_USER_EVENT.format(
    as_admitted=AS_ADMITTED, more=f", {ASYNCHRONOUS_COMMIT}"
)


def _tracked_at_once(request: HttpRequest, data: dict) -> bool:
    """Record the track of a known user seen within the minute in one statement, when
    this process admitted its key before (PostgreSQL): the checks run on the workspace
    as admitted, and the statement writes only if the database agrees. False: nothing
    was written, and the full path decides (and answers any error)."""
    key = data.get("workspace")
    workspace = _admitted.get(key) if isinstance(key, str) else None
    if workspace is None or connection.vendor != "postgresql" or _is_visitor(data):
        return False
    raw, errors = data.get("user_id"), {}
    user_id = ingest.check_id(raw, "user_id", errors)
    event = ingest.check_event_name(data.get("event"), "event", errors)
    if (
        errors
        or _refused_origin(request, workspace)
        or _unverified(workspace, data, raw)
        or event in membership.watch_of(workspace).by_event
    ):
        return False
    now = timezone.now()
    sql = KNOWN_USER_EVENT_ASYNCHRONOUSLY if _asynchronous_commit() else KNOWN_USER_EVENT
    params = [event, now, user_id, *_as_admitted(workspace), now - ingest.LAST_SEEN_STEP]
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            written = cursor.fetchone()[0]
    except IntegrityError:
        # The contact was deleted as this ran: the full path makes the user anew.
        return False
    if written:
        request.widget_workspace = workspace
    return bool(written)


@cors
@api(["POST"])
def track(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    if _tracked_at_once(request, data):
        return JsonResponse({"status": "accepted"}, status=202)
    workspace, contact, user_id = _identified(request, data)
    event = ingest.clean_event_name(data.get("event"))
    if user_id is None:
        anonymous.record_visitor_event(
            workspace=workspace, anonymous_id=contact.anonymous_id, event=event, now=timezone.now()
        )
    elif contact is None:
        ingest.track_event(
            workspace=workspace,
            user_id=user_id,
            event=event,
            now=timezone.now(),
            asynchronous_commit=_asynchronous_commit(),
        )
    else:
        ingest.record_event(
            contact=contact,
            event=event,
            now=timezone.now(),
            asynchronous_commit=_asynchronous_commit(),
        )
    return JsonResponse({"status": "accepted"}, status=202)


def _fingerprinted(
    request: HttpRequest, data: dict, now: datetime
) -> tuple[Workspace, Contact | None, str | None, Fingerprint | None]:
    """`_identified`, with the fingerprint of the user's snapshot when this process
    knows what the workspace's rules read (`expected_event_reads`)."""
    key = _widget_key(data)
    reads = None if _is_visitor(data) else expected_event_reads(key)
    if reads is None:
        return *_identified(request, data), None
    raw = data.get("user_id")
    workspace, contact, found = fingerprinted_caller(key, _lookup_id(raw), reads, now)
    _admit(request, workspace)
    _verify(workspace, data, raw)
    return workspace, contact, _user_id(data), found


def _asked(data: dict) -> Asked:
    """What the body asks about beside its caller: event, page, survey and session."""
    event = _optional_string(data, "event", 200)
    url = _optional_string(data, "url", MAX_URL)
    survey_id = data.get("survey")
    if survey_id is not None and (not isinstance(survey_id, int) or isinstance(survey_id, bool)):
        raise invalid({"survey": "Must be a survey id, or null."})
    session = anonymous.clean_session(data.get("session"))
    return Asked(event, url, survey_id, session)


def _offered(
    workspace: Workspace,
    contact: Contact | None,
    now: datetime,
    asked: Asked,
    fingerprint: Fingerprint | None,
    response_counts: dict[int, int] | None = None,
) -> list[SurveyDefinition]:
    """`eligible_surveys` for the widget's question, with the workspace just read."""
    return eligible_surveys(
        workspace=workspace,
        contact=contact,
        now=now,
        event=asked.event,
        url=asked.url,
        survey_id=asked.survey_id,
        version=workspace.definitions_version,
        session=asked.session,
        fingerprint=fingerprint,
        response_counts=response_counts,
    )


# A known user's id, row digest, snapshot fingerprint ({digest}, its SQL depends on the
# rules) and columns, if the workspace is as admitted.
KNOWN_USER_SQL = f"""
    SELECT c.id, {CONTACT_ROW}, {{digest}}, {CONTACT.sql}, {ACCOUNT.sql}
    FROM refiner_workspace w
    JOIN segments_contact c ON c.workspace_id = w.id AND c.user_id = %s
    LEFT JOIN segments_account a ON a.id = c.account_id
    WHERE {AS_ADMITTED}"""


def _answered_at_once(request: HttpRequest, data: dict, now: datetime) -> JsonResponse | None:
    """The answer for a known user in one statement when this process admitted the key
    before (PostgreSQL): the checks run on the workspace as admitted, and the statement
    finds the contact only if the database agrees. It carries the fingerprints an
    answer is kept under (`kept_answer`), and the contact's row for working one out.
    None: the full path decides (and answers any error)."""
    key = data.get("workspace")
    workspace = _admitted.get(key) if isinstance(key, str) else None
    if workspace is None or connection.vendor != "postgresql" or _is_visitor(data):
        return None
    reads = expected_event_reads(key)
    raw, errors = data.get("user_id"), {}
    user_id = ingest.check_id(raw, "user_id", errors)
    if (
        reads is None
        or errors
        or _refused_origin(request, workspace)
        or _unverified(workspace, data, raw)
    ):
        return None
    try:
        asked = _asked(data)
    except ApiError:
        return None
    digest, params = fingerprint_sql(reads, now, 'c."id"')
    with fast_cursor() as cursor:
        sql = KNOWN_USER_SQL.format(digest=digest)
        cursor.execute(sql, [*params, user_id, *_as_admitted(workspace)])
        row = cursor.fetchone()
    if row is None:
        return None
    contact_id, contact_row, snapshot, *columns = row
    fingerprint = Fingerprint(reads, snapshot, contact_row)
    surveys, response_counts = kept_answer(
        workspace=workspace, contact_id=contact_id, now=now, asked=asked, fingerprint=fingerprint
    )
    if surveys is None:
        contact = _contact_of(workspace, columns)
        surveys = _offered(workspace, contact, now, asked, fingerprint, response_counts)
    request.widget_workspace = workspace
    return JsonResponse({"surveys": [s.to_widget_dict() for s in surveys]})


@cors
@api(["POST"])
def eligibility(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    now = timezone.now()
    answered = _answered_at_once(request, data, now)
    if answered is not None:
        return answered
    workspace, contact, user_id, fingerprint = _fingerprinted(request, data, now)
    surveys = _offered(workspace, contact, now, _asked(data), fingerprint)
    found = {"surveys": [s.to_widget_dict() for s in surveys]}
    if user_id is None:
        # The widget stops asking for this visitor while no survey is for visitors.
        found["visitors"] = anonymous.welcomes_visitors(workspace)
    return JsonResponse(found)


def _record_if_eligible(
    *,
    workspace: Workspace,
    survey: Survey,
    contact: Contact,
    event: str | None,
    url: str | None,
    session: str | None = None,
) -> Display:
    """Record a display when §4 allows it now; 409 `not_eligible` with the reasons if not.

    The widget asked for eligibility a moment ago, but its word is not proof: the
    check runs again here. The contact's row is locked first, so racing displays and
    completions of one contact take turns and each check sees what the last one wrote.
    """
    now = timezone.now()
    with transaction.atomic():
        if contact.is_anonymous:
            contact = anonymous.locked_visitor(contact.workspace, contact.anonymous_id, now)
        else:
            locked = Contact.objects.select_for_update(of=("self",), no_key=True).select_related(
                "account"
            )
            contact = locked.get(pk=contact.pk)
        contact.workspace = workspace
        decision = display_decision(
            workspace=workspace,
            contact=contact,
            survey_id=survey.pk,
            now=now,
            event=event,
            url=url,
            session=session,
        )
        if decision is None:
            raise ApiError("not_found", f"There is no live survey {survey.pk}.", 404)
        if not decision.eligible:
            # Raised inside the transaction, so that a refused display writes nothing.
            raise ApiError(
                "not_eligible",
                "The survey is not eligible for this contact now.",
                409,
                details={"reasons": [reason.to_dict() for reason in decision.reasons]},
            )
        return services.record_display(survey=survey, contact=contact, now=now, session=session)


@cors
@api(["POST"])
def displays(request: HttpRequest) -> JsonResponse:
    data = json_body(request)
    workspace, contact, user_id = _identified(request, data)
    survey_id = data.get("survey")
    if not isinstance(survey_id, int) or isinstance(survey_id, bool):
        raise invalid({"survey": "Must be a survey id."})
    event = _optional_string(data, "event", 200)
    url = _optional_string(data, "url", MAX_URL)
    session = anonymous.clean_session(data.get("session"))
    if contact is None:
        raise ApiError("not_found", f"There is no contact {user_id!r}; identify it first.", 404)
    survey = Survey.objects.filter(workspace=workspace, pk=survey_id, status=Survey.LIVE).first()
    if survey is None:
        raise ApiError("not_found", f"There is no live survey {survey_id}.", 404)
    display = _record_if_eligible(
        workspace=workspace, survey=survey, contact=contact, event=event, url=url, session=session
    )
    return JsonResponse({"display": str(display.pk)}, status=201)


def _display(request: HttpRequest, data: dict, display_id: UUID) -> Display:
    """The display, if it belongs to the key's workspace (and to the user, when named)."""
    workspace = _workspace(request, data)
    display = (
        Display.objects.select_related("survey__targeting", "contact")
        .filter(workspace=workspace, pk=display_id)
        .first()
    )
    if display is None or not _named_contact(data, display.contact):
        raise ApiError("not_found", "There is no such display.", 404)
    return display


def _named_contact(data: dict, contact: Contact) -> bool:
    """Is `contact` the user or the visitor the body names, if it names one?"""
    if data.get("user_id") is not None:
        return str(data["user_id"]) == contact.user_id
    if data.get("anonymous_id") is not None:
        # Or the contact the visitor became since (another tab signed in): the display
        # id is the capability, the name only a consistency check.
        return contact.anonymous_id in (None, data["anonymous_id"])
    return True


@cors
@api(["POST"])
def answers(request: HttpRequest, display_id: UUID) -> JsonResponse:
    data = json_body(request)
    display = _display(request, data, display_id)
    completed = data.get("completed", False)
    if not isinstance(completed, bool):
        raise invalid({"completed": "Must be true or false."})
    cleaned = services.clean_answers(display.survey, data.get("answers", {}))
    extra = clean_extra(data.get("extra"))
    response = services.record_answers(
        display=display,
        answers=cleaned,
        completed=completed,
        now=timezone.now(),
        once=_once(display.survey),
        extra=extra,
    )
    # Stored answers are not echoed: anyone holding the display id could read them.
    return JsonResponse({"display": str(display.pk), "completed": response.completed})


def _once(survey: Survey) -> bool:
    """Does the survey take one completed response per contact? (No targeting: the default.)"""
    targeting = getattr(survey, "targeting", None)
    return targeting is None or targeting.frequency == Targeting.ONCE


@cors
@api(["POST"])
def dismiss(request: HttpRequest, display_id: UUID) -> JsonResponse:
    data = json_body(request)
    display = services.dismiss_display(
        display=_display(request, data, display_id), now=timezone.now()
    )
    return JsonResponse({"display": str(display.pk), "dismissed": display.dismissed_at is not None})


@cors
@api(["POST"])
def preview(request: HttpRequest) -> JsonResponse:
    """One survey, any status, for a preview token of this workspace: writes nothing.

    The token is the proof (signed, expiring, naming the workspace); no contact is
    named, so no display, response or pacing can follow from it.
    """
    data = json_body(request)
    workspace = _workspace(request, data)
    token = data.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN:
        raise invalid({"token": f"Must be a preview token of 1 to {MAX_TOKEN} characters."})
    try:
        survey_id = previewed_survey_id(token, workspace.pk)
    except PreviewRefused as refused:
        raise ApiError(refused.code, refused.message, 403) from None
    survey = Survey.objects.complete().filter(workspace=workspace, pk=survey_id).first()
    if survey is None:
        raise ApiError("not_found", "The previewed survey no longer exists.", 404)
    return JsonResponse({"survey": SurveyDefinition.of(survey).to_widget_dict()})

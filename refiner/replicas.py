"""Dashboard reads from a streaming replica (DATABASE_REPLICA_URL; docs/scaling.md).

What reads the replica: GET and HEAD dashboard pages and fragments (lists, counts,
previews, the contact page, the CSV export while it streams), for the models of
`segments`, `surveys` and `targeting`. Everything else reads the primary: the widget
and the REST API (their callers read back what they just wrote and cannot carry a
cookie for it), the admin, every request that writes, and the tables that decide who
may do what (users, sessions, workspaces, members), so that a lagging replica never
signs anyone out nor keeps a removed member in.

Reading your own writes: a browser that sends a POST (or any unsafe method) gets a
`refiner_primary_until` cookie, and until that moment, REPLICA_READ_YOUR_WRITES_SECONDS
later, its pages read the primary too, so the redirect after a write shows it. A
forged cookie can only send its holder's reads to the primary.
"""

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
PRIMARY = "default"
COOKIE = "refiner_primary_until"
SAFE_METHODS = frozenset({"GET", "HEAD"})
# The widget and REST API, and the admin, which writes as often as it reads.
PRIMARY_PATHS = ("/api/", "/admin/")
# The dashboard's data. Everything else (users, sessions, workspaces and members,
# which say who may do what) is always read from the primary.
REPLICA_APPS = frozenset({"segments", "surveys", "targeting"})

_reads_replica: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "refiner_reads_replica", default=False
)


@contextmanager
def reading_replica(allowed: bool) -> Iterator[None]:
    """Within it, reads of the dashboard's models go to the replica when `allowed`."""
    token = _reads_replica.set(allowed)
    try:
        yield
    finally:
        _reads_replica.reset(token)


def on_primary():
    """Reads inside it see the primary, even in a dashboard page: for what is shared
    with the widget, such as the definitions cache, which must never hold a stale copy."""
    return reading_replica(False)


def reads_of(model: type[Model]) -> BaseDatabaseWrapper:
    """The connection the router reads `model` from. Raw SQL over the dashboard's tables
    (set-based counts, membership counts, estimates) follows the ORM to the replica."""
    return connections[router.db_for_read(model)]


class ReplicaRouter:
    """Reads to the replica only inside `reading_replica(True)`; writes and migrations
    always to the primary, whatever database an instance was read from."""

    def db_for_read(self, model: type[Model], **hints) -> str:
        if _reads_replica.get() and model._meta.app_label in REPLICA_APPS:
            return REPLICA
        return PRIMARY

    def db_for_write(self, model: type[Model], **hints) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Model, obj2: Model, **hints) -> bool:
        # Both hold the same rows: a contact read from the replica may be linked to
        # a response written to the primary.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db != REPLICA


def wrote_recently(request: HttpRequest) -> bool:
    try:
        return float(request.COOKIES.get(COOKIE, "0")) > time.time()
    except ValueError:
        return False


def may_read_replica(request: HttpRequest) -> bool:
    """Whether this request's dashboard reads may go to the replica."""
    if request.method not in SAFE_METHODS or request.path_info.startswith(PRIMARY_PATHS):
        return False
    return not wrote_recently(request)


def _streamed_from_replica(content: Iterable[bytes]) -> Iterator[bytes]:
    # A streamed export runs its query after the view has returned, when the WSGI
    # server pulls the first chunk: each chunk is made inside the replica's context.
    context = contextvars.copy_context()
    context.run(_reads_replica.set, True)
    chunks = iter(content)
    while True:
        try:
            yield context.run(next, chunks)
        except StopIteration:
            return


class ReplicaReadsMiddleware:
    """Sends a request's dashboard reads to the replica, or to the primary after a write."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        replica = may_read_replica(request)
        with reading_replica(replica):
            response = self.get_response(request)
        if replica and response.streaming:
            response.streaming_content = _streamed_from_replica(response.streaming_content)
        if request.method not in SAFE_METHODS and not request.path_info.startswith("/api/"):
            seconds = settings.REPLICA_READ_YOUR_WRITES_SECONDS
            response.set_cookie(
                COOKIE,
                f"{time.time() + seconds:.3f}",
                max_age=seconds,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response

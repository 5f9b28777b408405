"""Time budgets (SPEC §5): no request's queries run past 1 s (widget) or 10 s (the rest).

PostgreSQL stops a statement itself with `statement_timeout`, set to what the
request has left. Connections open with the widget's budget (settings.py puts it
in the connection options), so a widget call on a fresh connection needs no `SET`;
a `SET` is sent only when a request of the other class uses the connection, or when
a request's earlier statements used up part of its budget, and the value is
remembered per connection. Connections opened outside a request (commands,
migrations) drop the limit at once. SQLite has no such setting: a progress handler,
called every few thousand virtual machine steps, interrupts the statement once the
request's deadline has passed. On both, a query started after the deadline is
refused before it reaches the database.
"""

import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq

from refiner.pooling import with_local_timeout

# How many SQLite virtual machine steps between two looks at the clock.
PROGRESS_STEPS = 5000
# A statement may run only as long as its request has left. A SET costs a round trip,
# so the connection's limit is moved only when it is this far from what is left.
TIMEOUT_SLACK_MS = 100
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for statement_timeout


class TimeBudgetExceeded(OperationalError):
    """A query of a request whose time budget is spent."""


def is_timeout(error: BaseException) -> bool:
    """Whether a database error is a request's budget running out, not a database fault."""
    if isinstance(error, TimeBudgetExceeded):
        return True
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == QUERY_CANCELED:
        return True
    return isinstance(cause, sqlite3.OperationalError) and str(cause) == "interrupted"


def opening_timeout_ms(wrapper: BaseDatabaseWrapper) -> int | None:
    """The statement_timeout a new PostgreSQL connection opens with, from its options."""
    options = wrapper.settings_dict.get("OPTIONS", {}).get("options", "")
    found = re.search(r"statement_timeout=(\d+)", options)
    return int(found.group(1)) if found else None


class Budget:
    """One request's budget on every connection (the primary, the read replica when
    there is one): `with budget.applied(): ...`."""

    def __init__(self, milliseconds: int):
        self.milliseconds = milliseconds
        self.deadline = time.monotonic() + milliseconds / 1000

    def past(self) -> bool:
        return time.monotonic() > self.deadline

    def remaining_ms(self) -> int:
        return max(1, round((self.deadline - time.monotonic()) * 1000))

    @contextmanager
    def applied(self):
        """Within it, queries run within this budget. Applied inside a request's (a part
        of the page with a budget of its own), it is the innermost wrapper, so it speaks
        last before each query; after it, the request's own wrapper speaks again."""
        wrappers = [connections[alias] for alias in connections]
        try:
            with ExitStack() as stack:
                for wrapper in wrappers:
                    wrapper.refiner_budget = self
                    stack.enter_context(wrapper.execute_wrapper(self.before_query))
                yield
        finally:
            # Not the outer budget put back: a live-server test shares one SQLite
            # connection between request threads, and a budget put back by a request
            # that ended after another began outlives both (its deadline then
            # interrupted every later query). Each query names its budget anyway.
            for wrapper in wrappers:
                wrapper.refiner_budget = None

    def before_query(self, execute: Callable, sql: str, params: Any, many: bool, context: dict):
        if self.past():
            raise TimeBudgetExceeded("The request's time budget is spent.")
        wrapper = context["connection"]
        if wrapper.vendor == "postgresql":
            if settings.DB_TRANSACTION_POOLING:
                return with_local_timeout(execute, sql, params, many, context, self.remaining_ms())
            _statement_timeout(wrapper, self.remaining_ms())
        elif wrapper.vendor == "sqlite":
            wrapper.refiner_budget = self  # what the progress handler reads
            _progress_handler(wrapper)
        return execute(sql, params, many, context)


def unlimited_outside_requests(sender, connection: BaseDatabaseWrapper, **kwargs) -> None:
    """Lift the widget's budget from connections opened outside a request.

    Migrations, commands and the shell have no budget; a connection a request
    opens keeps the one it opened with, at no round trip.
    """
    if connection.vendor != "postgresql" or getattr(connection, "refiner_budget", None):
        return
    if settings.DB_TRANSACTION_POOLING:
        # No limit came with the connection, and a SET would stay on PgBouncer's
        # server connection for whichever client gets it next.
        return
    connection.connection.execute("SET statement_timeout = 0")
    connection.refiner_timeout = (connection.connection, 0)


def _statement_timeout(wrapper: BaseDatabaseWrapper, remaining_ms: int) -> None:
    """Let the next statement run no longer than the request has left.

    A request's first queries find the limit it needs already set (a connection opens
    with the widget's budget; the last request of the same class left its own), so
    only a request of the other class, or one whose earlier statements used up a
    good part of its budget, sends a SET.
    """
    raw = wrapper.connection
    held = getattr(wrapper, "refiner_timeout", None)
    if held is None or held[0] is not raw:
        held = wrapper.refiner_timeout = (raw, opening_timeout_ms(wrapper))
    # 0 is no limit at all (a connection opened outside a request), never close enough.
    if held[1] and abs(held[1] - remaining_ms) <= TIMEOUT_SLACK_MS:
        return
    # After a failed statement only the rollback may run (to a savepoint, as an
    # IntegrityError retry does); a SET then would fail the request itself.
    if raw.info.transaction_status == pq.TransactionStatus.INERROR:
        return
    # Straight on the driver's connection: a setting, not one of the request's queries.
    raw.execute(f"SET statement_timeout = {int(remaining_ms)}")
    # Inside a transaction the SET goes away with a rollback: then trust nothing.
    wrapper.refiner_timeout = (raw, None if wrapper.in_atomic_block else remaining_ms)


def _progress_handler(wrapper: BaseDatabaseWrapper) -> None:
    raw = wrapper.connection
    if getattr(wrapper, "refiner_progress_for", None) is raw:
        return

    def interrupt() -> bool:
        budget = getattr(wrapper, "refiner_budget", None)
        return budget is not None and budget.past()

    raw.set_progress_handler(interrupt, PROGRESS_STEPS)
    wrapper.refiner_progress_for = raw

"""The time budget behind PgBouncer in transaction mode (DB_TRANSACTION_POOLING).

PgBouncer gives each transaction whichever server connection is free, so a session
`SET statement_timeout` would stay on that connection for other clients' statements,
and a connection cannot open with the limit either (PgBouncer refuses the `options`
startup parameter). Each statement of a request therefore carries its own limit,
`SET LOCAL statement_timeout = N; <statement>` in one query string: PostgreSQL runs
the two in one transaction, the same server connection, and forgets the limit at its
end. One round trip, as without PgBouncer; it needs the simple query protocol that
Django's default (client-side binding) cursors speak.
"""

from collections.abc import Callable
from typing import Any

from django.db import transaction
from psycopg import pq


def with_local_timeout(
    execute: Callable, sql: str, params: Any, many: bool, context: dict, milliseconds: int
) -> Any:
    """Run one statement of a request with `statement_timeout` set for it alone."""
    wrapper = context["connection"]
    raw = wrapper.connection
    # After a failed statement only the rollback may run; a SET would fail it.
    if raw.info.transaction_status == pq.TransactionStatus.INERROR:
        return execute(sql, params, many, context)
    setting = f"SET LOCAL statement_timeout = {int(milliseconds)}"
    if many:
        # executemany sends the statement once per row: one transaction holds the limit.
        with transaction.atomic(using=wrapper.alias):
            raw.execute(setting)
            return execute(sql, params, many, context)
    result = execute(f"{setting}; {sql}", params, many, context)
    # The cursor stands on the SET's empty result: move it to the statement's rows.
    context["cursor"].cursor.nextset()
    return result

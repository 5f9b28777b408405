"""Queries planned for the values they run with.

With prepared statements on (settings.POSTGRESQL), psycopg prepares a query the fifth
time it runs on a connection, and PostgreSQL may then plan it once for any value. A
search's best plan depends on its text: a rare text is found through the trigram
indexes in a millisecond, where the generic plan walks every contact by recency
hoping to meet 26 matches soon (10 s at a million contacts and no match). Inside
`planned_for_their_values`, each run is planned for its own values, for a
millisecond of planning.
"""

from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def planned_for_their_values(alias: str):
    """Queries on the connection `alias` inside the block get a plan of their own."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    # A setting made LOCAL ends with the transaction, so the pooled connection goes back
    # as it came. Inside a caller's transaction this block is a savepoint, which does not
    # end it: the setting is put back by hand then (a rollback to it puts it back itself).
    nested = connection.in_atomic_block
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # The select list runs in order: the old value is read before it is replaced.
        cursor.execute(
            "SELECT current_setting('plan_cache_mode'), "
            "set_config('plan_cache_mode', 'force_custom_plan', true)"
        )
        before, _ = cursor.fetchone()
        yield
        if nested:
            cursor.execute("SELECT set_config('plan_cache_mode', %s, true)", [before])

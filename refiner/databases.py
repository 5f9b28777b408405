"""How Refiner's processes connect to PostgreSQL: the primary, the optional read
replica, and a PgBouncer in transaction mode in front of either (docs/scaling.md).

Plain dictionaries, so that settings.py can build both connections the same way.
"""


class PoolingConflict(ValueError):
    """Settings that cannot work together behind a transaction-pooling PgBouncer."""


def postgresql(
    database: dict,
    *,
    conn_max_age: int,
    connect_timeout: int,
    widget_budget_ms: int,
    prepared_statements: bool,
    transaction_pooling: bool,
) -> dict:
    """One PostgreSQL entry of DATABASES, from the URL's and the environment's settings."""
    database.setdefault("CONN_MAX_AGE", conn_max_age)
    options = database.setdefault("OPTIONS", {})
    options["connect_timeout"] = connect_timeout
    if transaction_pooling:
        if prepared_statements:
            # The budget then rides in each statement's own query string
            # (refiner/pooling.py), which only the simple protocol carries.
            raise PoolingConflict("DB_TRANSACTION_POOLING=true needs DB_PREPARED_STATEMENTS=false")
        # A server-side cursor ends with the transaction that declared it, and
        # PgBouncer hands the next statement to any server connection.
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
        return database
    # Connections open with the widget's budget, so the hot path never sends a SET
    # (refiner/budget.py sets the other budget when a request needs it). PgBouncer
    # refuses this startup parameter, hence the branch above.
    options["options"] = (
        f"{options.get('options', '')} -c statement_timeout={widget_budget_ms}".strip()
    )
    if prepared_statements:
        # Parameters sent apart from the SQL, so psycopg prepares a statement the fifth
        # time it runs on a connection: the widget's queries then skip PostgreSQL's
        # planner, which cost more than running them (docs/benchmarks.md).
        options |= {"server_side_binding": True, "prepare_threshold": 5}
    return database

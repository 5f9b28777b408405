"""Distinct trait keys and event names of a workspace, one index probe per name.

`SELECT DISTINCT key … WHERE workspace_id = …` reads every row of the workspace
(14 million value rows, 10 million events at a million contacts: seconds), though
a workspace has only tens of keys and names. Walking the (workspace, key) or
(workspace, name) index from one name to the next, a recursive query costs one
probe per name found (a "loose index scan", which PostgreSQL does not do itself).
"""

from django.db import connection
from django.db.models import Model


def distinct_names(
    model: type[Model], column: str, workspace_id: int, limit: int, skipped=()
) -> list[str]:
    """The first `limit` distinct values of `column` in the workspace, in order,
    leaving out `skipped` (which do not count towards the limit)."""
    table = connection.ops.quote_name(model._meta.db_table)
    name = connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE found(name) AS ("  # noqa: S608
        f" SELECT min({name}) FROM {table} WHERE workspace_id = %s"
        f" UNION ALL"
        f" SELECT (SELECT min({name}) FROM {table} WHERE workspace_id = %s AND {name} > found.name)"
        f" FROM found WHERE found.name IS NOT NULL"
        f") SELECT name FROM found WHERE name IS NOT NULL LIMIT %s"
    )
    skipped = set(skipped)
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, workspace_id, limit + len(skipped)])
        names = [row[0] for row in cursor.fetchall()]
    return [found for found in names if found not in skipped][:limit]


def present_names(model: type[Model], column: str, workspace_id: int, names) -> set[str]:
    """Which of `names` the workspace has: one index probe (LIMIT 1) each."""
    rows = model.objects.filter(workspace_id=workspace_id)
    return {name for name in names if rows.filter(**{column: name}).exists()}

"""Event totals: how many events of each name each contact has (`EventTotal`).

A count over all time (`login at_least 3`) then reads one row per contact and name
instead of grouping every event of the workspace (segments.sets). The totals are kept
by database triggers on the event table, so every writer keeps them without knowing:
the ingest's hand-written INSERT, the ORM, the anonymous visitor's merge (an UPDATE of
contact_id), deletes and cascades, a backup's restore. On PostgreSQL one row trigger
on the partitioned table covers every partition, those attached later too.

What no row trigger sees is left to the code that does it: a bulk load with triggers
off (bench/seed.py) adds its totals after (`add_totals`), a month's partition is emptied
by DELETE in batches before it is dropped (segments.retention), and a partition that
takes rows out of DEFAULT (segments.partitions) adds back what the move took away.
A total that falls to 0 is deleted: a contact without a row has no such events.
"""

from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TOTALS_TABLE = "segments_eventtotal"

POSTGRESQL_TRIGGERS = [
    f"""
    CREATE OR REPLACE FUNCTION segments_event_total() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        remaining bigint;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            UPDATE {TOTALS_TABLE} SET count = count - 1
            WHERE contact_id = OLD.contact_id AND name = OLD.name
            RETURNING count INTO remaining;
            IF remaining <= 0 THEN
                DELETE FROM {TOTALS_TABLE}
                WHERE contact_id = OLD.contact_id AND name = OLD.name AND count <= 0;
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO {TOTALS_TABLE} (workspace_id, contact_id, name, count)
            VALUES (NEW.workspace_id, NEW.contact_id, NEW.name, 1)
            ON CONFLICT (contact_id, name) DO UPDATE SET count = {TOTALS_TABLE}.count + 1;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER segments_event_total AFTER INSERT OR DELETE ON segments_event "
    "FOR EACH ROW EXECUTE FUNCTION segments_event_total()",
    # Only a change of what is counted moves a count (a merge changes contact_id).
    "CREATE TRIGGER segments_event_total_moved "
    "AFTER UPDATE OF workspace_id, contact_id, name ON segments_event FOR EACH ROW "
    "WHEN (OLD.workspace_id IS DISTINCT FROM NEW.workspace_id "
    "OR OLD.contact_id IS DISTINCT FROM NEW.contact_id OR OLD.name IS DISTINCT FROM NEW.name) "
    "EXECUTE FUNCTION segments_event_total()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS segments_event_total_moved ON segments_event",
    "DROP TRIGGER IF EXISTS segments_event_total ON segments_event",
    "DROP FUNCTION IF EXISTS segments_event_total()",
]

_SQLITE_ADD = f"""
    INSERT INTO {TOTALS_TABLE} (workspace_id, contact_id, name, count)
    VALUES (NEW.workspace_id, NEW.contact_id, NEW.name, 1)
    ON CONFLICT (contact_id, name) DO UPDATE SET count = count + 1;
"""
_SQLITE_SUBTRACT = f"""
    UPDATE {TOTALS_TABLE} SET count = count - 1
    WHERE contact_id = OLD.contact_id AND name = OLD.name;
    DELETE FROM {TOTALS_TABLE}
    WHERE contact_id = OLD.contact_id AND name = OLD.name AND count <= 0;
"""
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER segments_event_total_added AFTER INSERT ON segments_event "
    f"BEGIN {_SQLITE_ADD} END",
    f"CREATE TRIGGER segments_event_total_deleted AFTER DELETE ON segments_event "
    f"BEGIN {_SQLITE_SUBTRACT} END",
    "CREATE TRIGGER segments_event_total_moved "
    "AFTER UPDATE OF workspace_id, contact_id, name ON segments_event "
    "WHEN OLD.workspace_id IS NOT NEW.workspace_id OR OLD.contact_id IS NOT NEW.contact_id "
    f"OR OLD.name IS NOT NEW.name BEGIN {_SQLITE_SUBTRACT} {_SQLITE_ADD} END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS segments_event_total_moved",
    "DROP TRIGGER IF EXISTS segments_event_total_deleted",
    "DROP TRIGGER IF EXISTS segments_event_total_added",
]


def create_triggers(schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in POSTGRESQL_TRIGGERS if vendor == "postgresql" else SQLITE_TRIGGERS:
        schema_editor.execute(statement)


def drop_triggers(schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for statement in POSTGRESQL_DROP if vendor == "postgresql" else SQLITE_DROP:
        schema_editor.execute(statement)


def add_totals(cursor, table: str = "segments_event", workspace_id: int | None = None) -> int:
    """Add the events of `table` (the event table, or one partition) to the totals, in
    one pass; only one workspace's with `workspace_id`. How many totals were written."""
    where, params = ("WHERE workspace_id = %s", [workspace_id]) if workspace_id else ("", [])
    cursor.execute(
        f"INSERT INTO {TOTALS_TABLE} (workspace_id, contact_id, name, count) "  # noqa: S608
        f"SELECT workspace_id, contact_id, name, count(*) FROM {table} {where} "
        "GROUP BY workspace_id, contact_id, name "
        "ON CONFLICT (contact_id, name) "
        f"DO UPDATE SET count = {TOTALS_TABLE}.count + excluded.count",
        params,
    )
    return cursor.rowcount

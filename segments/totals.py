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

On PostgreSQL each total also keeps `moments`: the latest MOMENTS moments of those
events, oldest first (a `timestamptz[]` beside the count, migration 0016). A windowed
count reads them instead of the events whenever they hold every event of the window
(segments.sets). The trigger keeps them as it keeps the count:

- an insert in time order appends its moment and drops the oldest; an older one is
  sorted in, or left out when older than every moment of a full array;
- a delete takes its moment out when the array holds every event; when it holds only
  the latest and the deleted event was one of them (a tie counts), the array is read
  again from the (contact, name, occurred_at) index (`segments_latest_moments`);
- an update that moves events, or changes when they occurred, reads both totals'
  moments again: each row's trigger runs after the whole statement moved its rows.

NULL moments mean "not known" (a total whose moments are not the latest); a count then
groups that contact's events, and the next delete or update reads them again. The
row lock taken by the count's UPDATE or upsert makes the re-reading see every event
committed before, and a concurrent track wait to add its own after.
"""

from django.db.backends.base.schema import BaseDatabaseSchemaEditor

TOTALS_TABLE = "segments_eventtotal"
# Moments kept per total on PostgreSQL: the latest MOMENTS of the contact's events of
# that name. A window of a rule reads them when they say all it needs (segments.sets).
MOMENTS = 16

# The latest MOMENTS moments of one contact's events of one name, oldest first: one
# backward range of the (contact, name, occurred_at) index of each partition.
POSTGRESQL_LATEST_MOMENTS = f"""
    CREATE OR REPLACE FUNCTION segments_latest_moments(contact bigint, event text)
    RETURNS timestamptz[] LANGUAGE sql STABLE AS $$
        SELECT coalesce(array_agg(occurred_at ORDER BY occurred_at), '{{}}') FROM (
            SELECT occurred_at FROM segments_event
            WHERE contact_id = contact AND name = event
            ORDER BY occurred_at DESC LIMIT {MOMENTS}
        ) AS latest
    $$
"""

POSTGRESQL_TRIGGERS = [
    POSTGRESQL_LATEST_MOMENTS,
    f"""
    CREATE OR REPLACE FUNCTION segments_event_total() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        remaining bigint;
        stale boolean;
    BEGIN
        IF TG_OP <> 'INSERT' THEN
            -- A total holding every event loses the moment; one holding only the latest
            -- keeps them when the event was older than all of them, and is read again
            -- from the events otherwise (NULL until then).
            UPDATE {TOTALS_TABLE} SET count = count - 1, moments = CASE
                WHEN cardinality(moments) = count THEN
                    moments[:array_position(moments, OLD.occurred_at) - 1]
                    || moments[array_position(moments, OLD.occurred_at) + 1:]
                WHEN OLD.occurred_at < moments[1] THEN moments
                END
            WHERE contact_id = OLD.contact_id AND name = OLD.name
            RETURNING count, moments IS NULL INTO remaining, stale;
            IF remaining <= 0 THEN
                DELETE FROM {TOTALS_TABLE}
                WHERE contact_id = OLD.contact_id AND name = OLD.name AND count <= 0;
            ELSIF stale OR TG_OP = 'UPDATE' THEN
                -- The row is locked since the UPDATE above: this reads every event
                -- committed before it, and a later one waits to add its own moment.
                UPDATE {TOTALS_TABLE}
                SET moments = segments_latest_moments(OLD.contact_id, OLD.name)
                WHERE contact_id = OLD.contact_id AND name = OLD.name;
            END IF;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            -- In time order (the common case) the moment goes last and the oldest
            -- drops off; an older one is sorted in, or left out when older than all of
            -- a full array. A total whose moments are not the latest stays NULL.
            INSERT INTO {TOTALS_TABLE} AS total (workspace_id, contact_id, name, count, moments)
            VALUES (NEW.workspace_id, NEW.contact_id, NEW.name, 1, ARRAY[NEW.occurred_at])
            ON CONFLICT (contact_id, name) DO UPDATE SET count = total.count + 1, moments = CASE
                WHEN cardinality(total.moments) IS DISTINCT FROM least(total.count, {MOMENTS})
                    THEN NULL
                WHEN NEW.occurred_at >= total.moments[cardinality(total.moments)] THEN
                    (total.moments || NEW.occurred_at)[cardinality(total.moments) + 2 - {MOMENTS}:]
                WHEN cardinality(total.moments) = {MOMENTS} AND NEW.occurred_at <= total.moments[1]
                    THEN total.moments
                ELSE (ARRAY(SELECT moment FROM unnest(total.moments || NEW.occurred_at) AS moment
                            ORDER BY moment))[cardinality(total.moments) + 2 - {MOMENTS}:]
                END;
            IF TG_OP = 'UPDATE' THEN
                -- An UPDATE may move several events of one total at once, and each
                -- row's trigger runs after all of them moved: read the moments again.
                UPDATE {TOTALS_TABLE}
                SET moments = segments_latest_moments(NEW.contact_id, NEW.name)
                WHERE contact_id = NEW.contact_id AND name = NEW.name;
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER segments_event_total AFTER INSERT OR DELETE ON segments_event "
    "FOR EACH ROW EXECUTE FUNCTION segments_event_total()",
    # Only a change of what is counted moves a count (a merge changes contact_id), and
    # of when, a moment.
    "CREATE TRIGGER segments_event_total_moved "
    "AFTER UPDATE OF workspace_id, contact_id, name, occurred_at ON segments_event "
    "FOR EACH ROW WHEN (OLD.workspace_id IS DISTINCT FROM NEW.workspace_id "
    "OR OLD.contact_id IS DISTINCT FROM NEW.contact_id OR OLD.name IS DISTINCT FROM NEW.name "
    "OR OLD.occurred_at IS DISTINCT FROM NEW.occurred_at) "
    "EXECUTE FUNCTION segments_event_total()",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS segments_event_total_moved ON segments_event",
    "DROP TRIGGER IF EXISTS segments_event_total ON segments_event",
    "DROP FUNCTION IF EXISTS segments_event_total()",
    "DROP FUNCTION IF EXISTS segments_latest_moments(bigint, text)",
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
    """Add the events of `table` (the event table, or one partition) to the totals and
    their moments, in one pass; only one workspace's with `workspace_id`. PostgreSQL only.
    How many totals were written.

    A total that was already there has its moments read again from the event table,
    which must by then hold `table`'s events (a partition attached first)."""
    where, params = ("WHERE workspace_id = %s", [workspace_id]) if workspace_id else ("", [])
    cursor.execute(
        f"INSERT INTO {TOTALS_TABLE} AS total (workspace_id, contact_id, name, count, moments) "  # noqa: S608
        "SELECT workspace_id, contact_id, name, count(*), "
        f"(array_agg(occurred_at ORDER BY occurred_at))[count(*) - {MOMENTS - 1}:] "
        f"FROM {table} {where} GROUP BY workspace_id, contact_id, name "
        "ON CONFLICT (contact_id, name) DO UPDATE SET count = total.count + excluded.count, "
        "moments = segments_latest_moments(total.contact_id, total.name)",
        params,
    )
    return cursor.rowcount

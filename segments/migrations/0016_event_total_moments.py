"""The latest moments of each event total, on PostgreSQL (segments.totals, MOMENTS).

A `timestamptz[]` column beside the count, kept by the totals' trigger function, and
filled for the totals already there in one pass over the events. The column is added
first: it locks the totals table until the migration commits, so no trigger writes a
total meanwhile and nothing is missed. SQLite keeps counts only (set-based counts are
PostgreSQL's), so the migration does nothing there.
"""

import importlib

from django.db import migrations

# What this migration creates, written here rather than imported from segments.totals:
# that module holds what the latest migration created, and changes with the next one
# (tests/test_event_totals.py holds the two equal).
TOTALS_TABLE = "segments_eventtotal"
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

# The counts-only triggers, as migration 0012 creates them: what going back restores.
counts_only = importlib.import_module("segments.migrations.0012_event_totals")


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    # NULL means "not known": a count then groups that contact's events (segments.sets).
    schema_editor.execute(f"ALTER TABLE {TOTALS_TABLE} ADD COLUMN moments timestamptz[]")
    for statement in POSTGRESQL_DROP:
        schema_editor.execute(statement)
    for statement in POSTGRESQL_TRIGGERS:
        schema_editor.execute(statement)
    schema_editor.execute(
        f"UPDATE {TOTALS_TABLE} AS total SET moments = latest.moments FROM ("  # noqa: S608
        "SELECT contact_id, name, "
        f"(array_agg(occurred_at ORDER BY occurred_at))[count(*) - {MOMENTS - 1}:] AS moments "
        "FROM segments_event GROUP BY contact_id, name) AS latest "
        "WHERE total.contact_id = latest.contact_id AND total.name = latest.name"
    )
    # Every total row was rewritten: fresh statistics (autovacuum may be off).
    schema_editor.execute(f"ANALYZE {TOTALS_TABLE}")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for statement in POSTGRESQL_DROP:
        schema_editor.execute(statement)
    counts_only.create_triggers(schema_editor)
    schema_editor.execute(f"ALTER TABLE {TOTALS_TABLE} DROP COLUMN moments")


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0015_contact_sample"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=False),
    ]

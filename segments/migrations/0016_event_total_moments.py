"""The latest moments of each event total, on PostgreSQL (segments.totals, MOMENTS).

A `timestamptz[]` column beside the count, kept by the totals' trigger function, and
filled for the totals already there in one pass over the events. The column is added
first: it locks the totals table until the migration commits, so no trigger writes a
total meanwhile and nothing is missed. SQLite keeps counts only (set-based counts are
PostgreSQL's), so the migration does nothing there.
"""

import importlib

from django.db import migrations

from segments.totals import MOMENTS, POSTGRESQL_DROP, POSTGRESQL_TRIGGERS, TOTALS_TABLE

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

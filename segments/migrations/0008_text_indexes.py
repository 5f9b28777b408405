"""Indexes for set-based counts (segments.sets), on PostgreSQL only.

- `contactvalue_text_digest`: text equality and `in` lists, through the md5 of the
  folded text (a value can hold 10,000 characters, past a btree entry's limit).
- `contactvalue_text_trigrams`: `contains`, `starts_with` and `ends_with`, through
  pg_trgm (a trusted extension: the database's owner may create it).

SQLite keeps its schema: segments.sets is not used there.
"""

from django.db import migrations

CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS contactvalue_text_digest ON segments_contactvalue "
    "(workspace_id, key, (md5(text_folded)::uuid))",
    "CREATE INDEX IF NOT EXISTS contactvalue_text_trigrams ON segments_contactvalue "
    "USING gin (text_folded gin_trgm_ops)",
    # The planner knows an expression's values only once ANALYZE has sampled them.
    "ANALYZE segments_contactvalue",
]
DROP = [
    "DROP INDEX IF EXISTS contactvalue_text_trigrams",
    "DROP INDEX IF EXISTS contactvalue_text_digest",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("segments", "0007_segment_membership")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]

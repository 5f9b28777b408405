"""Numbers and booleans that PostgreSQL answers from an index alone (segments.sets).

A test of a number (`seats` at least 5) found its rows through `contactvalue_num`, but
the contact is only in the table, and a key's rows are spread over all of it, one per
contact: 100,000 random pages for 145,000 matches at a million contacts. A boolean had
no index of its own and read every row of its key. These partial indexes hold each
number, and each boolean, with its contact, so such a set is an index-only scan, as
texts are since 0014. Only rows holding a number (a boolean) are in them.

Built CONCURRENTLY, as 0014's; SQLite keeps its schema.
"""

import importlib

from django.db import migrations

# Statements run on PostgreSQL only, as migration 0008 runs its own.
run = importlib.import_module("segments.migrations.0008_text_indexes").run

CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS contactvalue_num_members ON segments_contactvalue "
    "(workspace_id, key, num) INCLUDE (contact_id) WHERE num IS NOT NULL",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS contactvalue_boolean_members ON segments_contactvalue "
    "(workspace_id, key, boolean) INCLUDE (contact_id) WHERE boolean IS NOT NULL",
]
DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS contactvalue_boolean_members",
    "DROP INDEX CONCURRENTLY IF EXISTS contactvalue_num_members",
]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("segments", "0017_long_text_index")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]

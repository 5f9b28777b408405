"""Text equality that PostgreSQL answers from an index alone (segments.sets).

The digest index of 0008 finds the value rows of a text, but the text itself is only
in the table, so every match was read from it to compare texts: a trait value shared by
a hundred thousand contacts cost as many random reads of the table (0.5–1 s each at a
million contacts, a chain of segments naming twenty of them 10–20 s). These partial
indexes hold the text, folded and not, of every value of at most `SHORT_TEXT`
characters with its contact, so such a count is an index-only scan. A longer value
(up to 10,000 characters, past a btree entry's limit) keeps the digest index.

Built CONCURRENTLY, so event and trait writes go on while they build; SQLite keeps
its schema.
"""

import importlib

from django.db import migrations

# Statements run on PostgreSQL only, as migration 0008 runs its own.
run = importlib.import_module("segments.migrations.0008_text_indexes").run

SHORT_TEXT = 200  # segments.sets.SHORT_TEXT
CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS contactvalue_short_text ON segments_contactvalue "
    f"(workspace_id, key, text) INCLUDE (contact_id) WHERE length(text) <= {SHORT_TEXT}",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS contactvalue_short_folded ON segments_contactvalue "
    f"(workspace_id, key, text_folded) INCLUDE (contact_id) WHERE length(text_folded) <= {SHORT_TEXT}",
    "ANALYZE segments_contactvalue",
]
DROP = [
    "DROP INDEX CONCURRENTLY IF EXISTS contactvalue_short_folded",
    "DROP INDEX CONCURRENTLY IF EXISTS contactvalue_short_text",
]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("segments", "0013_sweep_contacts")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]

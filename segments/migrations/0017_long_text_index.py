"""The value rows of long texts, on their own (segments.sets, substring tests).

A substring test of one key reads every value of that key, and a key's values are
spread over the whole table, one row per contact: at a million contacts, 166,000 pages
for one test. The partial indexes of 0014 hold each text of at most `SHORT_TEXT`
characters with its contact, so those are tested there, index only; this one finds the
few longer texts, which the test then reads from the table.

Built CONCURRENTLY, as 0014's; SQLite keeps its schema.
"""

import importlib

from django.db import migrations

# Statements run on PostgreSQL only, as migration 0008 runs its own.
run = importlib.import_module("segments.migrations.0008_text_indexes").run

SHORT_TEXT = 200  # segments.sets.SHORT_TEXT
CREATE = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS contactvalue_long_text ON segments_contactvalue "
    f"(workspace_id, key) WHERE length(text_folded) > {SHORT_TEXT}",
]
DROP = ["DROP INDEX CONCURRENTLY IF EXISTS contactvalue_long_text"]


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("segments", "0016_event_total_moments")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]

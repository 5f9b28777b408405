"""The index the preview's sample is read from (PostgreSQL only, like 0008 and 0010).

A workspace's identified contacts in the order of a hash of their id
(segments/estimates.py): its first rows are a uniform sample of them, read without
touching the rest. The id is a key column too, so that ties of the hash are ordered
and the sample is read from the index alone.
"""

import importlib

from django.db import migrations

# Statements run on PostgreSQL only, as migration 0008 runs its own.
run = importlib.import_module("segments.migrations.0008_text_indexes").run

CREATE = [
    "CREATE INDEX IF NOT EXISTS contact_sample ON segments_contact "
    '(workspace_id, hashint8(id), id) WHERE user_id IS NOT NULL',
    "ANALYZE segments_contact",
]
DROP = ["DROP INDEX IF EXISTS contact_sample"]


class Migration(migrations.Migration):
    dependencies = [("segments", "0014_short_text_indexes")]

    operations = [migrations.RunPython(run(CREATE), run(DROP))]

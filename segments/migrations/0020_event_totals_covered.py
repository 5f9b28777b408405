"""The event totals' index answers a count from the index alone, on PostgreSQL.

`eventtotal_count` (workspace, name, count) finds the totals a count reads, but their
contacts and moments (0016) are only in the table, one row per contact and name,
spread over all of it: 73,000 random pages for "feature_used at least 5 in 30 days" at
a million contacts, whose exact preview took 298–305 ms. Built again with
INCLUDE (contact_id, moments), both the counts over all time and the windowed ones
read it alone (84–92 ms for that preview; docs/benchmarks.md).

A track changes a total's count, so it writes a new entry into this index either way;
the entry is larger (a moments array holds at most 16 moments), not one more.

Built CONCURRENTLY under another name, then swapped for the old one, so the table
takes writes throughout; the first statement clears what an interrupted run left.
SQLite keeps its schema (it has no moments).
"""

import importlib

from django.db import migrations

# Statements run on PostgreSQL only, as migration 0008 runs its own.
run = importlib.import_module("segments.migrations.0008_text_indexes").run


def swapped(definition: str) -> list[str]:
    """Build `eventtotal_count` again as `definition` (its columns and INCLUDE)."""
    return [
        "DROP INDEX CONCURRENTLY IF EXISTS eventtotal_count_next",
        f"CREATE INDEX CONCURRENTLY eventtotal_count_next ON segments_eventtotal {definition}",
        "DROP INDEX CONCURRENTLY IF EXISTS eventtotal_count",
        "ALTER INDEX eventtotal_count_next RENAME TO eventtotal_count",
    ]


COVERED = swapped("(workspace_id, name, count) INCLUDE (contact_id, moments)")
PLAIN = swapped("(workspace_id, name, count)")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [("segments", "0019_member_sets")]

    operations = [migrations.RunPython(run(COVERED), run(PLAIN))]

"""The event table becomes partitioned by month on PostgreSQL, keeping every row
(segments/partitions.py, docs/partitions.md). Nothing changes on SQLite, nor in
Django's model: the database's primary key becomes (id, occurred_at), while the
model keeps `id` as its key."""

from django.db import migrations
from django.utils import timezone

from segments.partitions import partition_events, unpartition_events


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        partition_events(schema_editor.connection, timezone.now())


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        unpartition_events(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0005_anonymous_visitors"),
    ]

    operations = [
        migrations.RunPython(forward, backward, elidable=False),
    ]

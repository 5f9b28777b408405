"""Indexes for the contact list and the results.

- `contact_test`: a workspace's test contacts, which results leave out.
- `contact_search_*` (PostgreSQL only, like 0008): the contact list's search, a
  case-insensitive `contains` on the user id, email and name, through pg_trgm.
  Each index is on the expression Django's `icontains` compares,
  `UPPER(column::text)`, or the planner cannot use it.
"""

from django.db import migrations, models

SEARCHED = ["user_id", "email", "name"]
CREATE = [
    f"CREATE INDEX IF NOT EXISTS contact_search_{column} ON segments_contact "
    f"USING gin ((UPPER({column}::text)) gin_trgm_ops)"
    for column in SEARCHED
] + ["ANALYZE segments_contact"]
DROP = [f"DROP INDEX IF EXISTS contact_search_{column}" for column in SEARCHED]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("refiner", "0002_workspace_definitions_version"),
        ("segments", "0009_accountvalue_key"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("is_test", True)), fields=["workspace"], name="contact_test"
            ),
        ),
        migrations.RunPython(run(CREATE), run(DROP)),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("segments", "0010_contact_test_and_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="segment",
            name="members_as_of",
            field=models.DateTimeField(
                blank=True,
                help_text="When a sweep last compared or confirmed the segment's open "
                "memberships; they are its members as of then unless a segment it uses "
                "changed after (segments.counts).",
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="segmentmembership",
            index=models.Index(
                condition=models.Q(("left_at__isnull", True)),
                fields=["segment", "contact"],
                name="open_members",
            ),
        ),
    ]

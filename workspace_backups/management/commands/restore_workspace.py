from django.core.management.base import BaseCommand, CommandError

from workspace_backups import backups


class Command(BaseCommand):
    help = (
        "Restore a workspace from backup_workspace's file, every row under its original key. "
        "Fails, writing nothing, if any of those keys is taken."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")

    def handle(self, *args, file: str, **options):
        try:
            with open(file, encoding="utf-8") as stream:
                workspace = backups.restore(stream)
        except (OSError, ValueError, backups.KeyTaken) as e:
            raise CommandError(str(e)) from None
        self.stdout.write(f"Workspace {workspace.pk} ({workspace.name}) restored from {file}.")

import sys

from django.core.management.base import BaseCommand, CommandError

from refiner.models import Workspace
from workspace_backups import backups


class Command(BaseCommand):
    help = "Write every row of one workspace to a JSON file (see workspace_backups/backups.py)."

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", type=int)
        parser.add_argument("file", help="Path of the JSON file to write; - for standard output.")

    def handle(self, *args, workspace_id: int, file: str, **options):
        try:
            if file == "-":
                backups.backup(workspace_id, sys.stdout)
                return
            with open(file, "w", encoding="utf-8") as stream:
                backups.backup(workspace_id, stream)
        except Workspace.DoesNotExist as e:
            raise CommandError(str(e)) from None
        self.stderr.write(f"Workspace {workspace_id} written to {file}.")

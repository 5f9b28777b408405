import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from refiner.models import Membership, Workspace


class Command(BaseCommand):
    help = "Create a workspace and print its id, name and keys as one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner", help="Email of a dashboard user to make its owner.")

    def handle(self, *args, name: str, owner: str | None, **options):
        if not name.strip():
            raise CommandError("The workspace needs a name.")
        if owner is not None:
            try:
                validate_email(owner)
            except ValidationError:
                raise CommandError(f"--owner must be an email address, not {owner!r}.") from None
        with transaction.atomic():
            workspace = Workspace.objects.create(name=name.strip())
            if owner:
                User = get_user_model()
                user = User.objects.filter(email__iexact=owner).first()
                if user is None:
                    user = User.objects.create_user(username=owner, email=owner)
                Membership.objects.create(workspace=workspace, user=user, role=Membership.OWNER)
        data = {
            "id": workspace.pk,
            "name": workspace.name,
            "widget_key": workspace.widget_key,
            "secret_key": workspace.secret_key,
        }
        self.stdout.write(json.dumps(data))

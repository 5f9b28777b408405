"""Deleting only what nothing uses (segments, surveys): one rule for the API and services."""

from collections.abc import Callable

from django.db import transaction
from django.db.models import Model

from refiner.errors import Conflict


def delete_unless_used(
    obj: Model, users_of: Callable[[Model], list[str]], *, name: str, code: str
) -> None:
    """Delete `obj`, or raise `Conflict` (`code`) naming what `users_of(obj)` says uses it.

    `name` is how the message calls the object ("Segment 12").
    """
    with transaction.atomic():
        users = users_of(obj)
        if users:
            raise Conflict(
                f"{name} is used by {', '.join(users)}; remove those uses first.", code=code
            )
        obj.delete()

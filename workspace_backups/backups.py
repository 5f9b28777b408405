"""One workspace's rows as a JSON file, and back (manage.py backup_workspace / restore_workspace).

The file is a Django fixture: a list of every row of every table of the workspace, parents
before children, each with its original primary key. Restoring puts the rows back under
those keys, so that ids customers hold (survey ids in their snippets, display ids in
flight, contact ids in the REST API) keep working. That works because the keys are free:
the workspace was deleted, or this is another database. If any key is taken, the restore
fails and writes nothing.

Dashboard users are shared between workspaces, so they are written by username: a restore
creates a member's user only when no user has that name, and never changes one.
The file holds the workspace's secret key and its members' password hashes: keep it as
safe as the database.
"""

import datetime
import json
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import IO

from django.contrib.auth import get_user_model
from django.core import serializers
from django.core.management.color import no_style
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Model, QuerySet

from refiner.models import Membership, Workspace
from segments import models as segments
from surveys.models import Answer, Display, Question, Response, Survey
from targeting.models import AudienceCount, Targeting
from webhooks.models import Delivery, Endpoint

# Each model with the lookup from it to its workspace, parents first. Targeting's two
# segment lists are written inside its rows.
TABLES: tuple[tuple[type[Model], str], ...] = (
    (Workspace, "pk"),
    (Membership, "workspace"),
    (segments.Account, "workspace"),
    (segments.Contact, "workspace"),
    (segments.AccountValue, "workspace"),
    (segments.ContactValue, "workspace"),
    (segments.Event, "workspace"),
    (segments.Segment, "workspace"),
    (segments.SegmentMember, "segment__workspace"),
    (segments.SegmentMembership, "workspace"),
    (segments.MembershipSweep, "workspace"),
    (Survey, "workspace"),
    (Question, "survey__workspace"),
    (Targeting, "survey__workspace"),
    (Display, "workspace"),
    (Response, "workspace"),
    (Answer, "workspace"),
    # Pending deliveries come back without their queued tasks: the worker's sweep queues them.
    (Endpoint, "workspace"),
    (Delivery, "workspace"),
)
# Not written: the database keeps the event totals from the events (segments.totals),
# and the next sweep stores the member sets and counts the audience figures again
# (segments.member_sets, targeting.audiences; until then counts read memberships).
DERIVED: tuple[type[Model], ...] = (segments.EventTotal, segments.MemberSet, AudienceCount)
CHUNK = 2000


def rows_of(workspace_id: int) -> Iterator[QuerySet]:
    """Every table's rows of the workspace, in key order."""
    for model, lookup in TABLES:
        # Base managers: every row, the anonymous visitors `Contact.objects` leaves out too.
        yield model._base_manager.filter(**{lookup: workspace_id}).order_by("pk")


def _members(workspace_id: int) -> QuerySet:
    return get_user_model().objects.filter(memberships__workspace=workspace_id).order_by("pk")


def batched(rows: Iterator[Model], size: int) -> Iterator[list[Model]]:
    """(itertools.batched arrives with Python 3.12.)"""
    while batch := list(islice(rows, size)):
        yield batch


class ExactJSONEncoder(DjangoJSONEncoder):
    """Django's JSON fixtures cut times to milliseconds; a backup keeps the microseconds."""

    def default(self, o):
        if isinstance(o, datetime.datetime | datetime.time):
            return o.isoformat()
        return super().default(o)


def backup(workspace_id: int, stream: IO[str]) -> None:
    """Write the workspace as a fixture, one row a line; users by username, with no key."""
    if not Workspace.objects.filter(pk=workspace_id).exists():
        raise Workspace.DoesNotExist(f"There is no workspace {workspace_id}.")
    # One transaction, so that the file is one moment of the workspace (PostgreSQL).
    with transaction.atomic():
        users = _members(workspace_id).iterator(chunk_size=CHUNK)
        tables: Iterable[Model] = chain.from_iterable(
            rows.iterator(chunk_size=CHUNK) for rows in rows_of(workspace_id)
        )
        separator = "[\n"
        for batch in batched(chain(users, tables), CHUNK):
            for row in serializers.serialize(
                "python", batch, use_natural_foreign_keys=True, use_natural_primary_keys=True
            ):
                stream.write(separator + json.dumps(row, cls=ExactJSONEncoder))
                separator = ",\n"
        stream.write("[]\n" if separator.startswith("[") else "\n]\n")


class KeyTaken(Exception):
    pass


def restore(stream: IO[str]) -> Workspace:
    """Put every row back under its own key, in one transaction; returns the workspace."""
    User = get_user_model()
    workspace = None
    restored_models: set[type[Model]] = set()
    with transaction.atomic():
        for item in serializers.deserialize("python", json.load(stream)):
            obj = item.object
            model = type(obj)
            if model is User:
                if not User.objects.filter(username=obj.username).exists():
                    obj.pk = None
                    obj.save()
                continue
            if model._base_manager.filter(pk=obj.pk).exists():
                raise KeyTaken(
                    f"{model._meta.label} {obj.pk} already exists: delete the workspace "
                    "first, or restore into another database."
                )
            # A raw save inserts under the row's own key; the m2m lists follow it.
            item.save()
            restored_models.add(model)
            if model is Workspace:
                workspace = obj
        if workspace is None:
            raise ValueError("The file holds no workspace.")
        _advance_key_sequences(restored_models)
    return workspace


def _advance_key_sequences(models: set[type[Model]]) -> None:
    """PostgreSQL: keys inserted by hand leave the sequences behind; move them past the
    largest key, as loaddata does, so that the next insert gets a free one."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)

"""What the property tests comparing the SQL and in-memory evaluators share."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction
from django.db.models import Q

from segments.memory import matches
from segments.models import Contact
from segments.sql import compile_rule
from tests.conftest import NOW


class _Rollback(Exception):
    pass


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run the block in a savepoint that is always undone, so a property test's examples
    do not see each other's data. A failing assertion still fails the example."""
    try:
        with transaction.atomic():
            yield
            raise _Rollback
    except _Rollback:
        pass


def members_both_ways(workspace, node: dict, snapshots: dict, definitions) -> tuple[set, set]:
    """The ids of the contacts `node` holds for, by SQL and in memory, at NOW."""
    query = Q(workspace=workspace) & compile_rule(node, NOW, definitions)
    in_sql = set(Contact.objects.filter(query).values_list("pk", flat=True))
    in_memory = {
        pk for pk, snapshot in snapshots.items() if matches(node, snapshot, NOW, definitions)
    }
    return in_sql, in_memory

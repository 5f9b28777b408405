"""Whole model instances from a hand-written query, for the widget's hot paths.

The ORM compiles a queryset to SQL on every call; for a query the widget runs on
every request that compiling costs more than the query. `Columns` writes a model's
column list once, and turns the matching slice of a row back into an instance
through the same converters the ORM applies (JSON, datetimes on SQLite).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from psycopg.types.datetime import TimestamptzLoader


@contextmanager
def fast_cursor() -> Iterator[Any]:
    """A cursor whose timestamps psycopg reads with its C loader (PostgreSQL).

    Django reads every `timestamptz` through a Python subclass of psycopg's loader,
    which gives the same aware UTC datetime as the C one but costs several times
    more; a snapshot holds dozens of them (docs/benchmarks.md).
    """
    with connection.cursor() as wrapper:
        if connection.vendor == "postgresql":
            wrapper.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        yield wrapper


class Columns:
    """All concrete columns of `model` under `alias`, as written in a SELECT."""

    def __init__(self, model: type[Model], alias: str):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.attnames = [field.attname for field in self.fields]
        self.sql = ", ".join(f'{alias}."{field.column}"' for field in self.fields)
        self._pk = self.attnames.index(model._meta.pk.attname)
        self._converters: dict[str, list] = {}

    def __len__(self) -> int:
        return len(self.fields)

    def converters(self, db) -> list[tuple[int, Any, list]]:
        """The ORM's converters for `db`'s database: (index, column, converters) of each
        field that has any."""
        found = self._converters.get(db.vendor)
        if found is None:
            found = []
            for index, field in enumerate(self.fields):
                column = field.get_col(field.model._meta.db_table)
                converters = db.ops.get_db_converters(column) + field.get_db_converters(db)
                if converters:
                    found.append((index, column, converters))
            self._converters[db.vendor] = found
        return found

    def instance(self, values: Sequence[Any]) -> Model | None:
        """The instance of a row's slice of these columns; None when the primary key is NULL."""
        if values[self._pk] is None:
            return None
        db = connections[DEFAULT_DB_ALIAS]
        converted = list(values)
        for index, column, converters in self.converters(db):
            for converter in converters:
                converted[index] = converter(converted[index], column, db)
        return self.model.from_db(db.alias, self.attnames, converted)


# In a statement's SELECT list: its transaction commits without waiting for the WAL flush.
ASYNCHRONOUS_COMMIT = "set_config('synchronous_commit', 'off', true)"


def committed_asynchronously(insert: str, returning: str) -> str:
    """`insert` made one statement that also turns synchronous_commit off (PostgreSQL).

    The transaction the INSERT is part of (its own, in autocommit) then commits without
    waiting for its WAL to reach the disk. `set_config(..., true)` lasts until that
    transaction ends, never for the session: a persistent connection, or a server
    connection PgBouncer hands to other clients, keeps synchronous commits. In one
    statement, so no round trip is added; the INSERT must write at least one row, since
    `set_config` runs once per row it returns.
    """
    return (
        f"WITH written AS ({insert} RETURNING {returning}) "
        f"SELECT {returning}, {ASYNCHRONOUS_COMMIT} FROM written"
    )


class Rows:
    """`model`'s INSERT written once, for rows the widget writes on its hot paths.

    The ORM builds an INSERT anew on every `create` and `bulk_create`, which costs
    more than running it. Each value still goes through its field's own `pre_save` and
    `get_db_prep_save`, as the ORM's would. No signal is sent: use it only for models
    that no receiver listens to.
    """

    def __init__(self, model: type[Model]):
        self.model = model
        self.fields = [field for field in model._meta.concrete_fields if not field.primary_key]
        columns = ", ".join(f'"{field.column}"' for field in self.fields)
        self.head = f'INSERT INTO "{model._meta.db_table}" ({columns}) VALUES '
        self.row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        pk = f'"{model._meta.pk.column}"'
        self.one = f"{self.head}{self.row} RETURNING {pk}"

    def _params(self, instances: Sequence[Model], db) -> list[Any]:
        return [
            field.get_db_prep_save(field.pre_save(instance, True), db)
            for instance in instances
            for field in self.fields
        ]

    def insert(self, instance: Model, *, sql: str | None = None, more: Sequence[Any] = ()) -> None:
        """Insert one row and give `instance` its primary key, as `save()` would.

        `sql`: a statement of one's own around `head` and `row` that returns the primary
        key first; `more` are the parameters it takes after the row's."""
        db = connections[DEFAULT_DB_ALIAS]
        with db.cursor() as cursor:
            cursor.execute(sql or self.one, [*self._params([instance], db), *more])
            instance.pk = cursor.fetchone()[0]
        instance._state.adding, instance._state.db = False, db.alias

    def insert_many(self, instances: Sequence[Model]) -> None:
        """Insert the rows in one statement (their primary keys are not read back)."""
        if not instances:
            return
        db = connections[DEFAULT_DB_ALIAS]
        with db.cursor() as cursor:
            cursor.execute(
                self.head + ", ".join([self.row] * len(instances)), self._params(instances, db)
            )

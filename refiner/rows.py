"""Whole model instances from a hand-written query, for the widget's hot paths.

The ORM compiles a queryset to SQL on every call; for a query the widget runs on
every request that compiling costs more than the query. `Columns` writes a model's
column list once, and turns the matching slice of a row back into an instance
through the same converters the ORM applies (JSON, datetimes on SQLite).
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model


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

    def converters(self) -> list[tuple[Any, list]]:
        """Per field, its column and the ORM's converters for this connection's database."""
        found = self._converters.get(connection.vendor)
        if found is None:
            found = []
            for field in self.fields:
                column = field.get_col(field.model._meta.db_table)
                converters = connection.ops.get_db_converters(column)
                found.append((column, converters + field.get_db_converters(connection)))
            self._converters[connection.vendor] = found
        return found

    def instance(self, values: Sequence[Any]) -> Model | None:
        """The instance of a row's slice of these columns; None when the primary key is NULL."""
        if values[self._pk] is None:
            return None
        converted = []
        for value, (column, converters) in zip(values, self.converters(), strict=True):
            for converter in converters:
                value = converter(value, column, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.attnames, converted)

"""A new user's identify writes its rows through `refiner.raw_sql.Rows`, as the ORM would."""

import re

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from refiner.raw_sql import Rows
from segments.ingest import sync_contact_values
from segments.models import Contact, ContactValue
from tests.conftest import NOW
from tests.factories import AccountFactory
from tests.test_ingest import assert_values_match_attributes

pytestmark = pytest.mark.django_db

TRAITS = {"plan": "pro", "seats": 12, "admin": True, "since": "2025-05-01T10:00:00Z", "x": None}


def test_a_row_written_by_rows_reads_back_as_the_orms_does(workspace):
    account = AccountFactory(workspace=workspace)
    fields = {"workspace": workspace, "account": account, "traits": TRAITS, "email": "a@x.io",
              "first_seen_at": NOW, "last_seen_at": NOW}  # fmt: skip
    by_orm = Contact.objects.create(user_id="orm", **fields)
    by_rows = Contact(user_id="rows", **fields)
    Rows(Contact).insert(by_rows)
    assert by_rows.pk is not None and by_rows.pk != by_orm.pk
    assert not by_rows._state.adding
    stored = {c.user_id: model_to_dict(c) for c in Contact.objects.filter(workspace=workspace)}
    del stored["orm"]["id"], stored["rows"]["id"], stored["orm"]["user_id"]
    del stored["rows"]["user_id"]
    assert stored["rows"] == stored["orm"]


def test_many_rows_go_in_one_statement(workspace):
    contact = Contact.objects.create(workspace=workspace, user_id="u-1", traits=TRAITS)
    rows = [
        ContactValue(workspace=workspace, contact=contact, key=key, text=str(raw))
        for key, raw in TRAITS.items()
    ]
    with CaptureQueriesContext(connection) as queries:
        Rows(ContactValue).insert_many(rows)
        Rows(ContactValue).insert_many([])
    assert len(queries) == 1
    assert ContactValue.objects.filter(contact=contact).count() == len(TRAITS)


def test_a_new_users_identify_writes_the_contact_then_its_values(workspace, client):
    user = {"id": "u-1", "email": "ada@example.com", **TRAITS}
    body = {"workspace": workspace.widget_key, "user": user}
    # Which segments there are is read once per definitions version in a process.
    warm_up = {"workspace": workspace.widget_key, "user": {"id": "u-0"}}
    client.post("/api/v1/widget/identify", warm_up, content_type="application/json")
    with CaptureQueriesContext(connection) as queries:
        response = client.post("/api/v1/widget/identify", body, content_type="application/json")
    assert response.status_code == 200
    # An INSERT alone, or inside the WITH that also makes it commit asynchronously.
    statements = [
        f"INSERT {table}" for q in queries for table in re.findall(r'INSERT INTO "?(\w+)', q["sql"])
    ]
    # Two INSERTs and nothing read back (the lookup before is the widget's caller query).
    assert statements == ["INSERT segments_contact", "INSERT segments_contactvalue"]
    reads = [q["sql"] for q in queries if q["sql"].lstrip().startswith("SELECT")]
    assert len(reads) == 1, reads
    assert_values_match_attributes(Contact.objects.get(workspace=workspace, user_id="u-1"))


# Values whose parsed forms must survive the trip through JSON exactly.
AWKWARD = {
    "ratio": 0.1,
    "huge": 1e300,
    "big": 2**53 + 1,
    "tiny": -5e-324,
    "when": "2025-05-01T10:00:00.123456+02:30",
    "day": "2025-05-01",
    "quote": 'He said "hi" \\ bye',
    "Ünï": "ÀÉ straße",
    "yes": False,
    "n": "-12.5e3",
}


def test_a_new_users_values_are_the_rows_the_orm_writes(workspace, widget):
    user = {"id": "new", "email": "Ada@Example.com", "name": "Ada", **AWKWARD}
    assert widget.post("identify", {"user": user}).status_code == 200
    new = Contact.objects.get(workspace=workspace, user_id="new")
    by_orm = Contact.objects.create(workspace=workspace, user_id="orm", email=new.email,
        name=new.name, traits=new.traits, first_seen_at=new.first_seen_at,
        last_seen_at=new.last_seen_at)  # fmt: skip
    sync_contact_values(by_orm)

    def rows(contact):
        return {
            v.key: (v.text, v.text_folded, v.num, v.date, v.boolean)
            for v in ContactValue.objects.filter(contact=contact)
            if v.key != "user_id"
        }

    assert rows(new) == rows(by_orm)
    assert len(rows(new)) == len(AWKWARD) + 4

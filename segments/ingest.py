"""Contact ingestion: identify and track (SPEC §5), with the parsed values rules compare."""

import functools
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction

from refiner.errors import Invalid
from refiner.models import Workspace
from refiner.raw_sql import (
    ASYNCHRONOUS_COMMIT,
    Columns,
    Rows,
    committed_asynchronously,
    fast_cursor,
)
from segments import membership
from segments.models import Account, AccountValue, Contact, ContactValue
from segments.rules import ACCOUNT_BUILTIN_FIELDS, is_trait_key
from segments.values import iso, parse_value

MAX_TRAITS = 100
MAX_TRAIT_VALUE = 10_000
MAX_ID = 200
# last_seen_at moves only when it is this far behind: rules compare it in days, and a
# track or identify that leaves it alone writes one event, or nothing.
LAST_SEEN_STEP = timedelta(seconds=60)


def _check_traits(traits: dict, prefix: str, reserved: Iterable[str]) -> dict[str, str]:
    errors = {}
    if len(traits) > MAX_TRAITS:
        errors[prefix.rstrip(".") or "traits"] = f"At most {MAX_TRAITS} traits per call."
    for key, value in traits.items():
        if key in reserved or not is_trait_key(key):
            errors[f"{prefix}{key}"[:200]] = (
                "Trait keys are 1–100 letters, digits, _, - or space, not starting with - or "
                "space, and not a built-in field."
            )
        elif isinstance(value, str) and len(value) > MAX_TRAIT_VALUE:
            errors[f"{prefix}{key}"] = f"Trait values are at most {MAX_TRAIT_VALUE} characters."
        elif len(str(value)) > MAX_TRAIT_VALUE:
            errors[f"{prefix}{key}"] = f"Trait values are at most {MAX_TRAIT_VALUE} characters."
    return errors


def check_id(value: Any, field: str, errors: dict) -> str | None:
    """A user or account id as stored (a number becomes text), or None with the problem
    added to `errors`."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID:
        errors[field] = f"Must be a non-empty string of at most {MAX_ID} characters."
        return None
    return value


def _check_optional_string(data: dict, key: str, field: str, errors: dict, size: int) -> None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > size):
        errors[field] = f"Must be a string of at most {size} characters, or null."


def clean_user(user: Any, prefix: str = "") -> dict:
    """Validate an identify payload's `user` object; raise `Invalid` on any problem.

    `prefix` ("user." in the widget's body) starts the field names of errors.
    """
    if not isinstance(user, dict):
        raise Invalid({prefix.rstrip(".") or "user": "Must be an object with at least an id."})
    errors: dict[str, str] = {}
    user_id = check_id(user.get("id"), f"{prefix}id", errors)
    _check_optional_string(user, "email", f"{prefix}email", errors, 320)
    _check_optional_string(user, "name", f"{prefix}name", errors, 200)
    traits = {k: v for k, v in user.items() if k not in ("id", "email", "name", "account")}
    errors |= _check_traits(traits, prefix, ("user_id", "first_seen_at", "last_seen_at"))
    account = user.get("account")
    cleaned_account = None
    if account is not None:
        if not isinstance(account, dict):
            errors[f"{prefix}account"] = "Must be an object with at least an id, or null."
        else:
            account_id = check_id(account.get("id"), f"{prefix}account.id", errors)
            _check_optional_string(account, "name", f"{prefix}account.name", errors, 200)
            account_traits = {k: v for k, v in account.items() if k not in ACCOUNT_BUILTIN_FIELDS}
            errors |= _check_traits(account_traits, f"{prefix}account.", ())
            cleaned_account = {"id": account_id, "traits": account_traits}
            if "name" in account:
                cleaned_account["name"] = account["name"]
    if errors:
        raise Invalid(errors)
    cleaned = {"id": user_id, "traits": traits, "account": cleaned_account}
    for key in ("email", "name"):
        if key in user:
            cleaned[key] = user[key]
    return cleaned


def merge_traits(current: dict, changes: dict) -> dict:
    """New keys added, existing keys overwritten, a null value removes the key."""
    merged = {**current, **changes}
    return {key: value for key, value in merged.items() if value is not None}


def _new_contact_values(contact: Contact) -> list[ContactValue]:
    """Parsed-value rows for every attribute of a contact that has none yet."""
    return [
        ContactValue(
            workspace_id=contact.workspace_id,
            contact=contact,
            key=key,
            **parse_value(raw).as_fields(),
        )
        for key, raw in contact.attributes().items()
    ]


def _sync_values(model, owner_field: str, owner, workspace_id: int, attributes: dict) -> None:
    """Make the parsed-value rows of a contact or account match its attributes."""
    if connection.vendor == "postgresql":
        _sync_values_at_once(model, owner_field, owner.pk, workspace_id, attributes)
        return
    existing = {row.key: row for row in model.objects.filter(**{owner_field: owner})}
    stale, fresh = [], []
    for key, raw in attributes.items():
        parsed = parse_value(raw).as_fields()
        row = existing.pop(key, None)
        if row is not None and all(getattr(row, f) == v for f, v in parsed.items()):
            continue
        if row is not None:
            stale.append(row.pk)
        fresh.append(model(workspace_id=workspace_id, key=key, **{owner_field: owner}, **parsed))
    stale.extend(row.pk for row in existing.values())
    if stale:
        model.objects.filter(pk__in=stale).delete()
    if fresh:
        model.objects.bulk_create(fresh)


# PostgreSQL syncs a contact's or an account's values in one statement, written once per
# table: the rows it should have go in as one JSON array (as a new contact's do), the
# keys it no longer has are deleted, and a value is rewritten only where it differs.
# The ORM's compare-then-write was three queries, each built anew (issue 16: a known
# user's identify that changes a trait).
VALUES_SYNC_SQL = """
    WITH wanted AS (SELECT * FROM json_populate_recordset(NULL::{table}, %s::json)),
    gone AS (
        DELETE FROM {table} v WHERE v.{owner} = %s AND v.key <> ALL (SELECT key FROM wanted)
    )
    INSERT INTO {table} AS v (workspace_id, {owner}, key, text, text_folded, num, date, boolean)
    SELECT %s, %s, key, text, text_folded, num, date, boolean FROM wanted
    ON CONFLICT ({owner}, key) DO UPDATE SET text = EXCLUDED.text,
        text_folded = EXCLUDED.text_folded, num = EXCLUDED.num, date = EXCLUDED.date,
        boolean = EXCLUDED.boolean
    WHERE (v.text, v.text_folded, v.num, v.date, v.boolean) IS DISTINCT FROM
        (EXCLUDED.text, EXCLUDED.text_folded, EXCLUDED.num, EXCLUDED.date, EXCLUDED.boolean)"""


def _values_json(attributes: dict) -> str:
    """The parsed-value rows of `attributes` as one JSON array, for json_populate_recordset.

    Exact both ways: a parsed date is UTC to the microsecond, a float's repr round-trips."""
    rows = [{"key": key, **parse_value(raw).as_fields()} for key, raw in attributes.items()]
    return json.dumps(rows, default=datetime.isoformat)


@functools.cache
def _values_sync_sql(model, owner_field: str) -> str:
    owner = model._meta.get_field(owner_field).column
    return VALUES_SYNC_SQL.format(table=model._meta.db_table, owner=owner)


def _sync_values_at_once(
    model, owner_field: str, owner_id: int, workspace_id: int, attributes: dict
) -> None:
    sql = _values_sync_sql(model, owner_field)
    with connection.cursor() as cursor:
        cursor.execute(sql, [_values_json(attributes), owner_id, workspace_id, owner_id])


def sync_contact_values(contact: Contact) -> None:
    _sync_values(ContactValue, "contact", contact, contact.workspace_id, contact.attributes())


def sync_account_values(account: Account) -> None:
    _sync_values(AccountValue, "account", account, account.workspace_id, account.attributes())


def _locked_contact(workspace: Workspace, user_id: str, now: datetime) -> tuple[Contact, bool]:
    """The contact, locked for update; created once even under concurrent calls.

    Every lock on a contact (and on an account or a workspace) is FOR NO KEY UPDATE:
    it still excludes the other lockers, but not the key-share lock that inserting an
    event (or any row naming the contact) takes at commit. A FOR UPDATE here made a
    track holding its event total wait on the contact while a track holding the
    contact waited on that total: a deadlock (tests/test_concurrency.py)."""
    contact = _lock_contact(workspace, user_id)
    if contact is not None:
        return contact, False
    try:
        with transaction.atomic():
            contact = Contact.objects.create(
                workspace=workspace, user_id=user_id, first_seen_at=now, last_seen_at=now
            )
            return contact, True
    except IntegrityError:
        # Only a concurrent create of the same user may end here; anything else re-raises.
        contact = _lock_contact(workspace, user_id)
        if contact is None:
            raise
        return contact, False


# Written out: the ORM built this query anew on each identify that changes something.
CONTACT = Columns(Contact, "c")
LOCK_CONTACT_SQL = (
    f"SELECT {CONTACT.sql} FROM segments_contact c WHERE c.workspace_id = %s AND c.user_id = %s"
)


def _lock_contact(workspace: Workspace, user_id: str) -> Contact | None:
    """The contact of `user_id`, its row locked FOR NO KEY UPDATE (see `_locked_contact`)."""
    lock = " FOR NO KEY UPDATE OF c" if connection.features.has_select_for_update else ""
    with fast_cursor() as cursor:
        cursor.execute(LOCK_CONTACT_SQL + lock, [workspace.pk, user_id])
        row = cursor.fetchone()
    contact = CONTACT.instance(row) if row is not None else None
    if contact is not None:
        contact.workspace = workspace
    return contact


def _upsert_account(workspace: Workspace, data: dict, now: datetime) -> Account:
    accounts = Account.objects.select_for_update(no_key=True)
    account = accounts.filter(workspace=workspace, external_id=data["id"]).first()
    if account is None:
        try:
            with transaction.atomic():
                account = Account.objects.create(workspace=workspace, external_id=data["id"])
        except IntegrityError:
            account = accounts.get(workspace=workspace, external_id=data["id"])
    if "name" in data:
        account.name = data["name"]
    account.traits = merge_traits(account.traits, data["traits"])
    account.updated_at = now
    account.save()
    sync_account_values(account)
    return account


def identify_contact(*, workspace: Workspace, user: dict, now: datetime) -> Contact:
    """Create or update a contact from a cleaned `user` (see `clean_user`)."""
    current = Contact.objects.select_related("account").filter(
        workspace=workspace, user_id=user["id"]
    )
    return identify_known(workspace=workspace, user=user, now=now, current=current.first())


def identify_known(
    *,
    workspace: Workspace,
    user: dict,
    now: datetime,
    current: Contact | None,
    asynchronous_commit: bool = False,
) -> Contact:
    """`identify_contact`, given the contact with its account as just read (None: none).

    The widget identifies on every page load, mostly changing nothing: then nothing
    is written. A new user is inserted straight away, without a locking lookup; with
    `asynchronous_commit` (PostgreSQL only) that transaction commits without waiting
    for the WAL flush (docs/decisions.md). Changes to a known user commit as usual.
    """
    if current is None:
        try:
            if _written_alone(workspace, user):
                return _create_contact(workspace, user, now, asynchronous_commit)
            with transaction.atomic():
                return _create_contact(workspace, user, now, asynchronous_commit)
        except IntegrityError:
            pass  # a concurrent identify created it first: update that one
    elif _changes_nothing(current, user, now):
        return current
    with transaction.atomic():
        return _update_contact(workspace, user, now)


def _same_json(first: Any, second: Any) -> bool:
    # Not ==: True == 1 == 1.0 in Python, but they are different traits to rules.
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def _changes_nothing(contact: Contact, user: dict, now: datetime) -> bool:
    """Would identifying `user` leave the contact and its account as they are?"""
    if now - contact.last_seen_at >= LAST_SEEN_STEP:
        return False
    if any(key in user and getattr(contact, key) != user[key] for key in ("email", "name")):
        return False
    if not _same_json(merge_traits(contact.traits, user["traits"]), contact.traits):
        return False
    wanted, account = user["account"], contact.account
    if wanted is None:
        return True
    return (
        account is not None
        and account.external_id == wanted["id"]
        and ("name" not in wanted or account.name == wanted["name"])
        and _same_json(merge_traits(account.traits, wanted["traits"]), account.traits)
    )


# Written out once: the ORM's INSERTs cost more to build than to run, and a new user's
# identify is one of the widget's hot paths (issue 16). No receiver listens to either.
CONTACT_ROWS, CONTACT_VALUE_ROWS = Rows(Contact), Rows(ContactValue)
# On PostgreSQL a new contact goes in with its values in one statement, the values as
# one JSON array of rows: the statement's text is the same whatever the number of
# values, so psycopg converts it once and PostgreSQL prepares it. A VALUES list's text
# changes with the number of values, and from 7 of them it has more parameters than
# psycopg caches: it was parsed on every call. (Arrays, one per column, cost more to
# adapt in Python than the JSON text.) The statement's last line also makes its
# transaction commit asynchronously, or not.
NEW_CONTACT_SQL = f"""
    WITH written AS ({CONTACT_ROWS.head}{CONTACT_ROWS.row} RETURNING "id", "workspace_id"),
    valued AS (
        INSERT INTO segments_contactvalue
            (workspace_id, contact_id, key, text, text_folded, num, date, boolean)
        SELECT written.workspace_id, written.id, v.key, v.text, v.text_folded, v.num,
            v.date, v.boolean
        FROM written, json_populate_recordset(NULL::segments_contactvalue, %s::json) AS v
    )
    SELECT id{{}} FROM written"""
NEW_CONTACT = NEW_CONTACT_SQL.format("")
NEW_CONTACT_ASYNCHRONOUSLY = NEW_CONTACT_SQL.format(f", {ASYNCHRONOUS_COMMIT}")


def _insert_new_contact(contact: Contact, asynchronous_commit: bool) -> None:
    """The contact and its parsed-value rows (it has none yet: nothing to compare)."""
    if connection.vendor != "postgresql":
        CONTACT_ROWS.insert(contact)
        CONTACT_VALUE_ROWS.insert_many(_new_contact_values(contact))
        return
    sql = NEW_CONTACT_ASYNCHRONOUSLY if asynchronous_commit else NEW_CONTACT
    CONTACT_ROWS.insert(contact, sql=sql, more=[_values_json(contact.attributes())])


def _create_contact(
    workspace: Workspace, user: dict, now: datetime, asynchronous_commit: bool
) -> Contact:
    account = None
    if user["account"] is not None:
        account = _upsert_account(workspace, user["account"], now)
    contact = Contact(
        workspace=workspace,
        user_id=user["id"],
        account=account,
        traits=merge_traits({}, user["traits"]),
        first_seen_at=now,
        last_seen_at=now,
        **{key: user[key] for key in ("email", "name") if key in user},
    )
    _insert_new_contact(contact, asynchronous_commit)
    membership.contact_changed(contact, now, new=True)
    return contact


def _written_alone(workspace: Workspace, user: dict) -> bool:
    """Is a new contact of `user` one statement on PostgreSQL, with no account to write
    and no segment to record it in? Then that statement is its own transaction."""
    return (
        connection.vendor == "postgresql"
        and user["account"] is None
        and not membership.watch_of(workspace).everything
    )


# What an identify may change of a known contact, its UPDATE written once: the ORM's
# `save()` built one of every column on each identify that changes something.
IDENTIFIED_FIELDS = [
    Contact._meta.get_field(name) for name in ("email", "name", "traits", "account", "last_seen_at")
]
IDENTIFIED_UPDATE = (
    'UPDATE "segments_contact" SET '
    + ", ".join(f'"{field.column}" = %s' for field in IDENTIFIED_FIELDS)
    + ' WHERE "id" = %s'
)


def _save_identified(contact: Contact) -> None:
    values = [
        field.get_db_prep_save(getattr(contact, field.attname), connection)
        for field in IDENTIFIED_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(IDENTIFIED_UPDATE, [*values, contact.pk])


def _changed_keys(before: dict, after: dict) -> set[str]:
    """The attribute keys whose values differ, as rules see them (1 and True differ)."""
    keys = before.keys() | after.keys()
    return {key for key in keys if not _same_json(before.get(key), after.get(key))}


def _update_contact(workspace: Workspace, user: dict, now: datetime) -> Contact:
    # The account is locked before the contact, by every identify alike.
    account = None
    if user["account"] is not None:
        account = _upsert_account(workspace, user["account"], now)
    contact, _ = _locked_contact(workspace, user["id"], now)
    before = contact.attributes()
    for key in ("email", "name"):
        if key in user:
            setattr(contact, key, user[key])
    contact.traits = merge_traits(contact.traits, user["traits"])
    if account is not None:
        contact.account = account
    contact.last_seen_at = max(contact.last_seen_at, now)
    _save_identified(contact)
    sync_contact_values(contact)
    if account is None:
        # Only the segments reading what changed can move.
        changed = _changed_keys(before, contact.attributes())
        membership.contact_changed(contact, now, attributes=changed, workspace=workspace)
    else:
        # The account's attributes may have changed too, and it may be another account.
        membership.contact_changed(contact, now, everything=True, workspace=workspace)
    return contact


def check_event_name(value: Any, field: str, errors: dict) -> str | None:
    """The event name, or None with the problem added to `errors`."""
    if not isinstance(value, str) or not 1 <= len(value) <= 200:
        errors[field] = "Must be an event name of 1 to 200 characters."
        return None
    return value


def clean_event_name(value: Any, field: str = "event") -> str:
    errors: dict[str, str] = {}
    name = check_event_name(value, field, errors)
    if name is None:
        raise Invalid(errors)
    return name


def track_event(
    *,
    workspace: Workspace,
    user_id: str,
    event: str,
    now: datetime,
    occurred_at=None,
    asynchronous_commit: bool = False,
) -> None:
    """Record an event; an unknown user becomes a contact.

    `asynchronous_commit` (PostgreSQL only): the write's transaction commits without
    waiting for the WAL flush (docs/decisions.md)."""
    contact = Contact.objects.filter(workspace=workspace, user_id=user_id).first()
    if contact is None:
        _track_first_event(workspace, user_id, event, now, occurred_at, asynchronous_commit)
    else:
        contact.workspace = workspace  # read by the membership hook, without a query
        record_event(
            contact=contact,
            event=event,
            now=now,
            occurred_at=occurred_at,
            asynchronous_commit=asynchronous_commit,
        )


def record_event(
    *,
    contact: Contact,
    event: str,
    now: datetime,
    occurred_at=None,
    asynchronous_commit: bool = False,
) -> None:
    """Record an event of a contact just read: one INSERT, unless last_seen_at moves too.

    `asynchronous_commit` as in `track_event`."""
    moment = occurred_at or now
    try:
        if now - contact.last_seen_at < LAST_SEEN_STEP and not membership.watches(contact, event):
            _insert_event(contact, event, moment, asynchronous_commit)
        else:
            with transaction.atomic():
                if now - contact.last_seen_at >= LAST_SEEN_STEP:
                    _advance_last_seen(contact, now)
                _insert_event(contact, event, moment, asynchronous_commit)
                # Only segments reading the event or last_seen_at can move with this.
                if membership.watches(contact, event) or membership.watches_last_seen(contact):
                    membership.event_recorded(contact, event, now)
    except IntegrityError:
        # The contact was deleted since it was read: the user is unknown again.
        _track_first_event(
            contact.workspace, contact.user_id, event, now, occurred_at, asynchronous_commit
        )


EVENT_INSERT = (
    "INSERT INTO segments_event (workspace_id, contact_id, name, occurred_at) "
    "VALUES (%s, %s, %s, %s)"
)
# Every track writes its event last, in whichever transaction it is in (its own, in
# autocommit): the one statement that also makes that transaction commit asynchronously.
EVENT_INSERT_ASYNCHRONOUSLY = committed_asynchronously(EVENT_INSERT, "1")


def _insert_event(
    contact: Contact, name: str, occurred_at: datetime, asynchronous_commit: bool = False
) -> None:
    # Written out: the ORM's INSERT cost more to build than to run on this hot path.
    moment = connection.ops.adapt_datetimefield_value(occurred_at)
    sql = EVENT_INSERT_ASYNCHRONOUSLY if asynchronous_commit else EVENT_INSERT
    with connection.cursor() as cursor:
        cursor.execute(sql, [contact.workspace_id, contact.pk, name, moment])


# A track a minute after the last one moves last_seen_at and its parsed value, in one
# statement written once (PostgreSQL): the ORM built two UPDATEs on each such track.
LAST_SEEN_SQL = """
    WITH moved AS (
        UPDATE segments_contact SET last_seen_at = %s WHERE id = %s AND last_seen_at < %s
        RETURNING id, workspace_id
    )
    INSERT INTO segments_contactvalue
        (workspace_id, contact_id, key, text, text_folded, num, date, boolean)
    SELECT workspace_id, id, 'last_seen_at', %s, %s, %s, %s, %s FROM moved
    ON CONFLICT (contact_id, key) DO UPDATE SET text = EXCLUDED.text,
        text_folded = EXCLUDED.text_folded, num = EXCLUDED.num, date = EXCLUDED.date,
        boolean = EXCLUDED.boolean"""


def _advance_last_seen(contact: Contact, now: datetime) -> None:
    """Move last_seen_at forward, with its parsed value, under the contact's row lock."""
    if connection.vendor == "postgresql":
        parsed = parse_value(iso(now)).as_fields()
        values = [parsed[field] for field in ("text", "text_folded", "num", "date", "boolean")]
        with connection.cursor() as cursor:
            cursor.execute(LAST_SEEN_SQL, [now, contact.pk, now, *values])
        return
    if Contact.objects.filter(pk=contact.pk, last_seen_at__lt=now).update(last_seen_at=now):
        parsed = parse_value(iso(now)).as_fields()
        rows = ContactValue.objects.filter(contact_id=contact.pk, key="last_seen_at")
        if not rows.update(**parsed):
            ContactValue.objects.create(
                workspace_id=contact.workspace_id, contact=contact, key="last_seen_at", **parsed
            )


def _track_first_event(
    workspace: Workspace,
    user_id: str,
    event: str,
    now: datetime,
    occurred_at: datetime | None,
    asynchronous_commit: bool,
) -> None:
    with transaction.atomic():
        contact, created = _locked_contact(workspace, user_id, now)
        if created or now > contact.last_seen_at:
            contact.last_seen_at = max(contact.last_seen_at, now)
            contact.save(update_fields=["last_seen_at"])
            sync_contact_values(contact)
        _insert_event(contact, event, occurred_at or now, asynchronous_commit)
        membership.contact_changed(contact, now, everything=True, workspace=workspace)

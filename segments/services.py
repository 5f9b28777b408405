"""Workflows over contacts, events and segments: identify, track, membership."""

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet

from refiner.http import invalid
from refiner.models import Workspace
from segments.memory import (
    ContactSnapshot,
    Evaluator,
    SegmentDefinition,
    SegmentDefinitions,
    usable_segment,
)
from segments.models import (
    ACCOUNT_BUILTIN_FIELDS,
    Account,
    AccountValue,
    Contact,
    ContactValue,
    Segment,
    SegmentMember,
)
from segments.rules import Problems, is_trait_key, validate_rule
from segments.sets import is_wide, set_count
from segments.snapshot import load_snapshot
from segments.sql import lone_attribute, matching_values, rule_members
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


def _check_id(value: Any, field: str, errors: dict) -> str | None:
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
    """Validate an identify payload's `user` object; raise ApiError 400 on any problem.

    `prefix` ("user." in the widget's body) starts the field names of errors.
    """
    if not isinstance(user, dict):
        raise invalid({prefix.rstrip(".") or "user": "Must be an object with at least an id."})
    errors: dict[str, str] = {}
    user_id = _check_id(user.get("id"), f"{prefix}id", errors)
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
            account_id = _check_id(account.get("id"), f"{prefix}account.id", errors)
            _check_optional_string(account, "name", f"{prefix}account.name", errors, 200)
            account_traits = {k: v for k, v in account.items() if k not in ACCOUNT_BUILTIN_FIELDS}
            errors |= _check_traits(account_traits, f"{prefix}account.", ())
            cleaned_account = {"id": account_id, "traits": account_traits}
            if "name" in account:
                cleaned_account["name"] = account["name"]
    if errors:
        raise invalid(errors)
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


def sync_contact_values(contact: Contact) -> None:
    _sync_values(ContactValue, "contact", contact, contact.workspace_id, contact.attributes())


def sync_account_values(account: Account) -> None:
    _sync_values(AccountValue, "account", account, account.workspace_id, account.attributes())


def _locked_contact(workspace: Workspace, user_id: str, now: datetime) -> tuple[Contact, bool]:
    """The contact, locked for update; created once even under concurrent calls."""
    contacts = Contact.objects.select_for_update()
    contact = contacts.filter(workspace=workspace, user_id=user_id).first()
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
        contact = contacts.filter(workspace=workspace, user_id=user_id).first()
        if contact is None:
            raise
        return contact, False


def _upsert_account(workspace: Workspace, data: dict, now: datetime) -> Account:
    accounts = Account.objects.select_for_update()
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
    *, workspace: Workspace, user: dict, now: datetime, current: Contact | None
) -> Contact:
    """`identify_contact`, given the contact with its account as just read (None: none).

    The widget identifies on every page load, mostly changing nothing: then nothing
    is written. A new user is inserted straight away, without a locking lookup.
    """
    if current is None:
        try:
            with transaction.atomic():
                return _create_contact(workspace, user, now)
        except IntegrityError:
            pass  # a concurrent identify created it first: update that one
    elif _changes_nothing(current, user, now):
        return current
    with transaction.atomic():
        return _update_contact(workspace, user, now)


def _same_json(first: dict, second: dict) -> bool:
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


def _create_contact(workspace: Workspace, user: dict, now: datetime) -> Contact:
    account = None
    if user["account"] is not None:
        account = _upsert_account(workspace, user["account"], now)
    contact = Contact.objects.create(
        workspace=workspace,
        user_id=user["id"],
        account=account,
        traits=merge_traits({}, user["traits"]),
        first_seen_at=now,
        last_seen_at=now,
        **{key: user[key] for key in ("email", "name") if key in user},
    )
    # A new contact has no parsed values yet: nothing to compare, only to add.
    ContactValue.objects.bulk_create(_new_contact_values(contact))
    return contact


def _update_contact(workspace: Workspace, user: dict, now: datetime) -> Contact:
    # The account is locked before the contact, by every identify alike.
    account = None
    if user["account"] is not None:
        account = _upsert_account(workspace, user["account"], now)
    contact, _ = _locked_contact(workspace, user["id"], now)
    for key in ("email", "name"):
        if key in user:
            setattr(contact, key, user[key])
    contact.traits = merge_traits(contact.traits, user["traits"])
    if account is not None:
        contact.account = account
    contact.last_seen_at = max(contact.last_seen_at, now)
    contact.save()
    sync_contact_values(contact)
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
        raise invalid(errors)
    return name


def track_event(
    *, workspace: Workspace, user_id: str, event: str, now: datetime, occurred_at=None
) -> None:
    """Record an event; an unknown user becomes a contact."""
    contact = Contact.objects.filter(workspace=workspace, user_id=user_id).first()
    if contact is None:
        _track_first_event(workspace, user_id, event, now, occurred_at)
    else:
        record_event(contact=contact, event=event, now=now, occurred_at=occurred_at)


def record_event(*, contact: Contact, event: str, now: datetime, occurred_at=None) -> None:
    """Record an event of a contact just read: one INSERT, unless last_seen_at moves too."""
    try:
        if now - contact.last_seen_at < LAST_SEEN_STEP:
            _insert_event(contact, event, occurred_at or now)
        else:
            with transaction.atomic():
                _advance_last_seen(contact, now)
                _insert_event(contact, event, occurred_at or now)
    except IntegrityError:
        # The contact was deleted since it was read: the user is unknown again.
        _track_first_event(contact.workspace, contact.user_id, event, now, occurred_at)


EVENT_INSERT = (
    "INSERT INTO segments_event (workspace_id, contact_id, name, occurred_at) "
    "VALUES (%s, %s, %s, %s)"
)


def _insert_event(contact: Contact, name: str, occurred_at: datetime) -> None:
    # Written out: the ORM's INSERT cost more to build than to run on this hot path.
    moment = connection.ops.adapt_datetimefield_value(occurred_at)
    with connection.cursor() as cursor:
        cursor.execute(EVENT_INSERT, [contact.workspace_id, contact.pk, name, moment])


def _advance_last_seen(contact: Contact, now: datetime) -> None:
    """Move last_seen_at forward, with its parsed value, under the contact's row lock."""
    if Contact.objects.filter(pk=contact.pk, last_seen_at__lt=now).update(last_seen_at=now):
        parsed = parse_value(iso(now)).as_fields()
        rows = ContactValue.objects.filter(contact_id=contact.pk, key="last_seen_at")
        if not rows.update(**parsed):
            ContactValue.objects.create(
                workspace_id=contact.workspace_id, contact=contact, key="last_seen_at", **parsed
            )


def _track_first_event(
    workspace: Workspace, user_id: str, event: str, now: datetime, occurred_at: datetime | None
) -> None:
    with transaction.atomic():
        contact, created = _locked_contact(workspace, user_id, now)
        if created or now > contact.last_seen_at:
            contact.last_seen_at = max(contact.last_seen_at, now)
            contact.save(update_fields=["last_seen_at"])
            sync_contact_values(contact)
        _insert_event(contact, event, occurred_at or now)


# Segments -------------------------------------------------------------------


def segment_definitions(workspace_id: int) -> SegmentDefinitions:
    rows = Segment.objects.filter(workspace_id=workspace_id).values_list("id", "kind", "rules")
    return SegmentDefinitions({pk: SegmentDefinition(pk, kind, rules) for pk, kind, rules in rows})


def lock_segments(workspace_id: int) -> None:
    """Serialise the saves of a workspace's segments, until the transaction ends.

    A save checks its rule against the other segments (cycles, the work bound); two
    saves checking at once would each miss the other's change and could together store
    a cycle. Holding the workspace's row, the second save waits, then reads the first.
    """
    list(Workspace.objects.select_for_update().filter(pk=workspace_id).values_list("pk"))


def check_rule(rule: Any, *, workspace_id: int, segment_id: int | None = None) -> Problems:
    """Errors of a rule in its workspace: references must stay inside it, without cycles,
    within the work bound. Call it after `lock_segments` when the rule is to be saved."""
    from surveys.models import Survey

    definitions = segment_definitions(workspace_id)
    segments = {pk: d.rules for pk, d in definitions.items()}
    surveys = Survey.objects.filter(workspace_id=workspace_id).values_list("id", flat=True)
    return validate_rule(rule, segments=segments, surveys=list(surveys), segment_id=segment_id)


def rule_contacts(
    workspace_id: int, rule: dict, now: datetime, definitions: SegmentDefinitions | None = None
) -> QuerySet[Contact]:
    if definitions is None:
        definitions = segment_definitions(workspace_id)
    return rule_members(workspace_id, rule, now, definitions)


def rule_count(
    workspace_id: int, rule: dict, now: datetime, definitions: SegmentDefinitions | None = None
) -> int:
    """How many contacts match `rule` now; a rule of one trait counts its value rows."""
    condition = lone_attribute(rule)
    if connection.vendor == "postgresql":
        if definitions is None:
            definitions = segment_definitions(workspace_id)
        if condition is not None or is_wide(rule, definitions):
            # Set-based: one pass per key or event window, not a probe per contact and
            # condition; a lone trait reads its value rows (text through its digest).
            return set_count(workspace_id, rule, now, definitions)
    if condition is not None:
        return matching_values(workspace_id, condition, now).count()
    return rule_contacts(workspace_id, rule, now, definitions).count()


def segment_count(segment: Segment, now: datetime) -> int:
    """How many contacts are in the segment now (none when it cannot be evaluated)."""
    if segment.is_manual:
        return segment_contacts(segment, now).count()
    definitions = segment_definitions(segment.workspace_id)
    if not usable_segment(definitions, segment.pk):
        return 0
    return rule_count(segment.workspace_id, segment.rules, now, definitions)


def segment_contacts(segment: Segment, now: datetime) -> QuerySet[Contact]:
    """The segment's members right now, as SQL (none when it cannot be evaluated)."""
    if segment.is_manual:
        return Contact.objects.filter(
            workspace_id=segment.workspace_id, segment_memberships__segment=segment
        )
    definitions = segment_definitions(segment.workspace_id)
    if not usable_segment(definitions, segment.pk):
        return Contact.objects.none()
    return rule_contacts(segment.workspace_id, segment.rules, now, definitions)


def snapshot_of(contact: Contact, event_names: Iterable[str] | None = None) -> ContactSnapshot:
    """Everything rules can ask about one contact (see `segments.snapshot`)."""
    return load_snapshot(contact, event_names)


def contact_segments(contact: Contact, now: datetime) -> list[Segment]:
    """The segments of its workspace the contact is in now (in-memory evaluation)."""
    segments = list(Segment.objects.filter(workspace_id=contact.workspace_id))
    definitions = SegmentDefinitions(
        {s.pk: SegmentDefinition(s.pk, s.kind, s.rules) for s in segments}
    )
    evaluator = Evaluator(snapshot_of(contact), now, definitions)
    return [s for s in segments if evaluator.in_segment(s.pk)]


def add_members(segment: Segment, user_ids: list[str]) -> int:
    contacts = Contact.objects.filter(workspace_id=segment.workspace_id, user_id__in=user_ids)
    rows = [SegmentMember(segment=segment, contact=c) for c in contacts]
    SegmentMember.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def remove_members(segment: Segment, user_ids: list[str]) -> int:
    deleted, _ = SegmentMember.objects.filter(
        segment=segment, contact__user_id__in=user_ids
    ).delete()
    return deleted

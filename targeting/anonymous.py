"""Anonymous visitors: the widget's contacts before a user is identified (docs/decisions.md).

A visitor is a `Contact` row with an `anonymous_id` and no `user_id`, so that its
displays, responses and events need no second home and a later identify can hand
them to the identified contact. The two ids live in separate columns: whatever text
a browser sends as its anonymous id, it is only ever compared with `anonymous_id`,
so it can neither reach nor take over an identified contact. The default manager
(`Contact.objects`) leaves visitors out: no rule, count or list sees them.
"""

import re
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from refiner.errors import Invalid
from refiner.models import Workspace
from refiner.retries import again_after_deadlock
from segments import membership
from segments.models import Contact, Event
from surveys.models import Answer, Display, Response
from targeting.eligibility import definitions
from targeting.models import Targeting

# The widget makes 32 hex digits; anything of this shape is taken, nothing longer.
ANONYMOUS_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
SESSION = re.compile(r"[A-Za-z0-9_-]{8,64}")


def clean_anonymous_id(value: Any) -> str:
    if not isinstance(value, str) or not ANONYMOUS_ID.fullmatch(value):
        raise Invalid({"anonymous_id": "Must be 16 to 64 letters, digits, _ or -."})
    return value


def clean_session(value: Any) -> str | None:
    """The widget's browser session id, or None when the body has none."""
    if value is None:
        return None
    if not isinstance(value, str) or not SESSION.fullmatch(value):
        raise Invalid({"session": "Must be 8 to 64 letters, digits, _ or -, or null."})
    return value


def unsaved_visitor(workspace: Workspace, anonymous_id: str) -> Contact:
    """A visitor not recorded yet: eligibility can be decided without writing a row."""
    return Contact(workspace=workspace, anonymous_id=anonymous_id, user_id=None)


def welcomes_visitors(workspace: Workspace) -> bool:
    """Does a live survey of the workspace show to visitors who are not signed in?

    Until one does, an anonymous visitor's events are not stored: nothing would read them.
    """
    found = definitions(workspace.pk, workspace.definitions_version)
    return any(survey.audience == Targeting.ANYONE for survey in found.surveys)


def locked_visitor(workspace: Workspace, anonymous_id: str, now: datetime) -> Contact:
    """The visitor's row, locked for update inside the caller's transaction; created if
    missing (and rolled back with the caller's transaction)."""
    # OF self: the model's ordering joins the workspace, whose row must stay unlocked.
    visitors = Contact.all_contacts.select_for_update(of=("self",), no_key=True).filter(
        workspace=workspace, anonymous_id=anonymous_id
    )
    visitor = visitors.first()
    if visitor is None:
        try:
            with transaction.atomic():
                Contact.all_contacts.create(
                    workspace=workspace,
                    anonymous_id=anonymous_id,
                    first_seen_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            pass  # created by a concurrent call: locked below
        visitor = visitors.get()
    visitor.workspace = workspace
    return visitor


def record_visitor_event(*, workspace: Workspace, anonymous_id: str, event: str, now) -> bool:
    """Store an event of a visitor when some survey is for visitors; True when stored."""
    if not welcomes_visitors(workspace):
        return False
    with transaction.atomic():  # the row, made once even by racing first events
        visitor = locked_visitor(workspace, anonymous_id, now)
        Event.objects.create(workspace=workspace, contact=visitor, name=event, occurred_at=now)
    return True


def _latest_answers_again(contact: Contact, moved: set[tuple[int, str]]) -> None:
    """After a merge, only the newest response's rows of each question stay the latest."""
    for survey_id, key in moved:
        rows = Answer.objects.filter(contact=contact, survey_id=survey_id, key=key)
        newest = rows.aggregate(at=Max("answered_at"))["at"]
        last = rows.filter(answered_at=newest).order_by("-response_id").first()
        rows.filter(is_latest=True).exclude(response_id=last.response_id).update(is_latest=False)
        rows.filter(response_id=last.response_id).update(is_latest=True)


@again_after_deadlock
def merge_visitor(*, contact: Contact, anonymous_id: str) -> int:
    """Give the visitor's displays, responses, answers and events to `contact`.

    One transaction, taking no lock on either contact's row: on PostgreSQL, an
    answer being saved checks its response's contact row when it commits, and
    queues there behind the displays waiting to lock the visitor, so a merge
    holding that row while it waits for the answer deadlocked. Row locks of the
    moved rows are enough: moving the displays first waits for the answers in
    flight (they hold their display), and a second merge of the same visitor waits
    on those rows, then finds them moved, so each row goes to one contact once. A
    display being recorded meanwhile is not seen and stays with the visitor. The
    visitor's row is left, empty: a repeat finds nothing to move. Returns the number
    of displays moved. An answer being saved meanwhile may lock the visitor's older
    answers in the other order; PostgreSQL then cancels one of the two, and it runs
    again (`again_after_deadlock`).
    """
    visitors = Contact.all_contacts.filter(
        workspace_id=contact.workspace_id, anonymous_id=anonymous_id
    )
    visitor = visitors.first()
    if visitor is None:
        return 0
    with transaction.atomic():
        displays = Display.objects.filter(contact=visitor).update(contact=contact)
        moved = set(
            Answer.objects.filter(contact=visitor).values_list("survey_id", "key").distinct()
        )
        Response.objects.filter(contact=visitor).update(contact=contact)
        Answer.objects.filter(contact=visitor).update(contact=contact)
        events = Event.objects.filter(contact=visitor).update(contact=contact)
        _latest_answers_again(contact, moved)
        if displays or events:
            # The contact's segments may move with what it was just given.
            membership.contact_changed(contact, timezone.now(), everything=True)
    return displays

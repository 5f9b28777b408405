"""The eligibility memo (targeting.memo): an answer is kept only while it still holds.

Every input of an answer is either in the key (the contact's data, the definitions,
what the widget sent) or bounds how long it is kept (the clock). Each test changes
one input and checks that the widget's next answer is the one a fresh check gives.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from segments.memory import ContactSnapshot, DisplayFacts, Evaluator, SegmentDefinition
from segments.services import add_members, remove_members
from segments.values import iso
from surveys.services import dismiss_display, record_answers, record_display
from targeting import memo
from targeting.eligibility import eligible_surveys
from targeting.models import Targeting
from targeting.widget_api import caller
from tests.conftest import NOW
from tests.factories import (
    AccountFactory,
    ContactFactory,
    EventFactory,
    ManualSegmentFactory,
    SegmentFactory,
    SurveyFactory,
    target,
    targeted,
)
from tests.rules import answer, attribute, event, group, survey

pytestmark = pytest.mark.django_db

PAGE = "https://app.example.com/app/reports"


def offered(widget, user_id: str = "u-1", **body) -> list[int]:
    """The survey ids the widget is offered now, through the real endpoint."""
    response = widget.post("eligibility", {"user_id": user_id, "url": PAGE, **body})
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["surveys"]]


def fresh(widget, settings, **body) -> list[int]:
    """The same question with the memo off: what the engine says from scratch."""
    settings.ELIGIBILITY_MEMO_SIZE = 0
    try:
        return offered(widget, **body)
    finally:
        settings.ELIGIBILITY_MEMO_SIZE = 20_000


def asked_as_the_widget(workspace, user_id: str, now, **options) -> list[int]:
    """`eligible_surveys` as the endpoint calls it, at a moment of the test's choosing."""
    workspace, contact = caller(workspace.widget_key, user_id)
    surveys = eligible_surveys(
        workspace=workspace,
        contact=contact,
        now=now,
        url=PAGE,
        version=workspace.definitions_version,
        **options,
    )
    return [s.id for s in surveys]


# Kept, and read back -----------------------------------------------------------


def test_an_unchanged_contact_is_answered_from_the_memo(workspace, widget):
    chosen = SegmentFactory(workspace=workspace, rules=group(attribute("plan", "equals", "pro")))
    wanted = targeted(SurveyFactory(workspace=workspace), [chosen])
    ContactFactory(workspace=workspace, user_id="u-1", traits={"plan": "pro"})
    assert offered(widget) == [wanted.pk]  # the definitions are read once per process
    memo.answers.clear()

    with CaptureQueriesContext(connection) as first:
        assert offered(widget) == [wanted.pk]
    with CaptureQueriesContext(connection) as second:
        assert offered(widget) == [wanted.pk]

    assert len(memo.answers) == 1
    if connection.vendor == "postgresql":
        # The caller's statement carries the snapshot's fingerprint: nothing else is read.
        assert [len(first), len(second)] == [2, 1]
        assert "md5" in second[0]["sql"]
    else:
        # SQLite sends the snapshot's rows to be fingerprinted; no rule is evaluated.
        assert [len(first), len(second)] == [2, 2]


def test_the_memo_off_keeps_nothing(workspace, widget, settings):
    settings.ELIGIBILITY_MEMO_SIZE = 0
    SurveyFactory(workspace=workspace)
    ContactFactory(workspace=workspace, user_id="u-1")

    assert len(offered(widget)) == 1
    assert len(memo.answers) == 0


def test_the_memo_keeps_at_most_its_size(workspace, widget, settings):
    settings.ELIGIBILITY_MEMO_SIZE = 3
    SurveyFactory(workspace=workspace)
    for n in range(5):
        ContactFactory(workspace=workspace, user_id=f"u-{n}")
        offered(widget, user_id=f"u-{n}")

    assert len(memo.answers) == 3


def test_two_contacts_with_the_same_data_keep_their_own_answers(workspace, widget):
    # A 50 % sample puts equal contacts on different sides: the contact is in the key.
    SurveyFactory(workspace=workspace, targeting={"sample_percent": 50})
    for n in range(12):
        ContactFactory(workspace=workspace, user_id=f"u-{n}")
    first = [offered(widget, user_id=f"u-{n}") for n in range(12)]
    again = [offered(widget, user_id=f"u-{n}") for n in range(12)]

    assert again == first
    assert [] in first and any(first)


def test_the_same_user_id_in_another_workspace_is_not_answered_from_this_one(
    workspace, other_workspace, widget
):
    SurveyFactory(workspace=workspace)
    ContactFactory(workspace=workspace, user_id="u-1")
    ContactFactory(workspace=other_workspace, user_id="u-1")
    assert len(offered(widget)) == 1

    from tests.clients import Widget

    assert offered(Widget(other_workspace)) == []


# Every input changes the answer at once ------------------------------------------
#
# Each case targets the survey so that the contact, as made, gets one answer, and
# returns the change that turns it.


def _segment_of(workspace, rule):
    return SegmentFactory(workspace=workspace, rules=group(rule))


def _answer(survey, contact, answers: dict, completed: bool = True) -> None:
    display = record_display(survey=survey, contact=contact, now=timezone.now())
    record_answers(display=display, answers=answers, completed=completed, now=timezone.now())


def _trait(workspace, contact, survey):
    targeted(survey, [_segment_of(workspace, attribute("plan", "equals", "pro"))])

    def change():
        contact.traits = {"plan": "pro"}
        contact.save()

    return change


def _account_trait(workspace, contact, survey):
    targeted(survey, [_segment_of(workspace, attribute("account.tier", "equals", "gold"))])

    def change():
        contact.account.traits = {"tier": "gold"}
        contact.account.save()

    return change


def _event(workspace, contact, survey):
    targeted(survey, [_segment_of(workspace, event("exported", "at_least", 1, within_days=7))])
    return lambda: EventFactory(contact=contact, name="exported", occurred_at=timezone.now())


def _display_dismissed(workspace, contact, survey):
    def change():
        display = record_display(survey=survey, contact=contact, now=timezone.now())
        dismiss_display(display=display, now=timezone.now())

    return change


def _answered(workspace, contact, survey):
    asked = SurveyFactory(workspace=workspace, status="paused")
    targeted(survey, [_segment_of(workspace, answer(asked.pk, "nps", "less_than", 5))])
    return lambda: _answer(asked, contact, {"nps": 2})


def _added_by_hand(workspace, contact, survey):
    listed = ManualSegmentFactory(workspace=workspace)
    targeted(survey, [listed])
    return lambda: add_members(listed, [contact.user_id])


def _removed_by_hand(workspace, contact, survey):
    listed = ManualSegmentFactory(workspace=workspace, members=[contact])
    targeted(survey, [listed])
    return lambda: remove_members(listed, [contact.user_id])


def _segment_edited(workspace, contact, survey):
    chosen = _segment_of(workspace, attribute("plan", "equals", "pro"))
    targeted(survey, [chosen])

    def change():
        chosen.rules = group(attribute("plan", "equals", "free"))
        chosen.save()

    return change


def _segment_edited_to_read_events(workspace, contact, survey):
    # The fingerprint read with the caller is of the events the old rules read: a check
    # after the change must not take it for the new rules' (expected_event_reads).
    chosen = _segment_of(workspace, attribute("plan", "equals", "pro"))
    targeted(survey, [chosen])
    EventFactory(contact=contact, name="exported", occurred_at=timezone.now())

    def change():
        chosen.rules = group(event("exported", "at_least", 1, within_days=7))
        chosen.save()

    return change


def _recontact_period(workspace, contact, survey):
    other = SurveyFactory(workspace=workspace, status="paused")
    record_display(survey=other, contact=contact, now=timezone.now() - timedelta(days=3))
    workspace.recontact_days = 0
    workspace.save()

    def change():
        workspace.recontact_days = 30
        workspace.save()

    return change


def _cap_reached_by_someone_else(workspace, contact, survey):
    target(survey, max_responses=1)
    other = ContactFactory(workspace=workspace, user_id="u-2")
    return lambda: _answer(survey, other, {"nps": 9})


CHANGES = {
    "trait": _trait,
    "account trait": _account_trait,
    "event": _event,
    "display dismissed": _display_dismissed,
    "answer": _answered,
    "added by hand": _added_by_hand,
    "removed by hand": _removed_by_hand,
    "segment edited": _segment_edited,
    "segment edited to read events": _segment_edited_to_read_events,
    "recontact period": _recontact_period,
    "cap reached by someone else": _cap_reached_by_someone_else,
}


@pytest.mark.parametrize("case", CHANGES)
def test_a_change_to_any_input_is_answered_afresh(workspace, widget, settings, case):
    account = AccountFactory(workspace=workspace, traits={"tier": "silver"})
    contact = ContactFactory(
        workspace=workspace, user_id="u-1", account=account, traits={"plan": "free"}
    )
    wanted = SurveyFactory(workspace=workspace)
    change = CHANGES[case](workspace, contact, wanted)
    before = offered(widget)  # a process's first check: it reads the definitions
    memo.answers.clear()
    assert offered(widget) == before
    assert len(memo.answers) == 1, "the answer was meant to be kept"

    change()

    after = offered(widget)
    assert after != before, "the change was meant to turn the answer"
    assert after == fresh(widget, settings)


# The clock --------------------------------------------------------------------


def _contact(workspace, **traits):
    return ContactFactory(workspace=workspace, user_id="u-1", traits=traits)


CLOCKS = {
    # name: (arrange(workspace, survey, now), how long until the answer turns)
    "signed up N days ago": (
        lambda ws, s, now: (
            _contact(ws, signed_up_at=iso(now - timedelta(days=30) + timedelta(hours=1))),
            targeted(s, [_segment_of(ws, attribute("signed_up_at", "more_than_days_ago", 30))]),
        ),
        timedelta(hours=1),
    ),
    "an event leaves its window": (
        lambda ws, s, now: (
            EventFactory(
                contact=_contact(ws),
                name="exported",
                occurred_at=now - timedelta(days=7) + timedelta(minutes=5),
            ),
            targeted(s, [_segment_of(ws, event("exported", "at_least", 1, within_days=7))]),
        ),
        timedelta(minutes=5),
    ),
    "a future event enters its window": (
        lambda ws, s, now: (
            EventFactory(
                contact=_contact(ws), name="exported", occurred_at=now + timedelta(hours=2)
            ),
            targeted(s, [_segment_of(ws, event("exported", "at_least", 1, within_days=7))]),
        ),
        timedelta(hours=2),
    ),
    "a display leaves the survey condition's window": (
        lambda ws, s, now: (
            record_display(
                survey=(seen := SurveyFactory(workspace=ws, status="paused")),
                contact=_contact(ws),
                now=now - timedelta(days=3) + timedelta(seconds=30),
            ),
            targeted(s, [_segment_of(ws, survey(seen.pk, "seen", within_days=3))]),
        ),
        timedelta(seconds=30),
    ),
    "the survey ends": (
        lambda ws, s, now: (_contact(ws), target(s, ends_at=now + timedelta(minutes=1))),
        timedelta(minutes=1),
    ),
    "the survey starts": (
        lambda ws, s, now: (_contact(ws), target(s, starts_at=now + timedelta(minutes=1))),
        timedelta(minutes=1),
    ),
    "a recurring survey may show again": (
        lambda ws, s, now: (
            target(s, frequency=Targeting.RECURRING, recurring_days=10),
            dismiss_display(
                display=record_display(
                    survey=s, contact=_contact(ws), now=now - timedelta(days=10, hours=-3)
                ),
                now=now - timedelta(days=10, hours=-3),
            ),
        ),
        timedelta(hours=3),
    ),
    "the recontact period ends": (
        lambda ws, s, now: (
            setattr(ws, "recontact_days", 14),
            ws.save(),
            record_display(
                survey=SurveyFactory(workspace=ws, status="paused"),
                contact=_contact(ws),
                now=now - timedelta(days=14) + timedelta(hours=6),
            ),
        ),
        timedelta(hours=6),
    ),
}


@pytest.mark.parametrize("clock", CLOCKS)
def test_an_answer_is_not_kept_past_the_moment_the_clock_turns_it(workspace, settings, clock):
    settings.ELIGIBILITY_MEMO_SECONDS = 30 * 86_400  # only the clock bounds it here
    arrange, turns_after = CLOCKS[clock]
    now = timezone.now()
    wanted = SurveyFactory(workspace=workspace)
    arrange(workspace, wanted, now)
    # Offered to everyone at any time: the check always reads the contact's data.
    SurveyFactory(workspace=workspace, targeting={"ignore_recontact": True})

    before = asked_as_the_widget(workspace, "u-1", now)
    assert asked_as_the_widget(workspace, "u-1", now + turns_after / 2) == before
    assert len(memo.answers) == 1

    after = asked_as_the_widget(workspace, "u-1", now + turns_after + timedelta(seconds=1))
    assert after != before, "the clock was meant to turn the answer"


def test_an_earlier_moment_is_not_answered_by_a_later_answer(workspace):
    rule = attribute("signed_up_at", "more_than_days_ago", 30)
    wanted = targeted(SurveyFactory(workspace=workspace), [_segment_of(workspace, rule)])
    signed_up = timezone.now() - timedelta(days=30)
    _contact(workspace, signed_up_at=iso(signed_up))

    assert asked_as_the_widget(workspace, "u-1", signed_up + timedelta(days=31)) == [wanted.pk]
    assert asked_as_the_widget(workspace, "u-1", signed_up + timedelta(days=29)) == []


def test_no_answer_is_kept_longer_than_the_limit(workspace, settings):
    settings.ELIGIBILITY_MEMO_SECONDS = 60
    SurveyFactory(workspace=workspace)
    _contact(workspace)
    now = timezone.now()
    asked_as_the_widget(workspace, "u-1", now)
    key = next(iter(memo.answers._kept))

    assert memo.answers.get(key, now + timedelta(seconds=59)) is not None
    assert memo.answers.get(key, now + timedelta(seconds=60)) is None


# The turning points, property-tested on the evaluator ----------------------------

DAYS = [0, 1, 3, 7, 30]
AGES = [timedelta(days=d, seconds=s) for d in (-2, 0, 1, 3, 7, 29, 30, 31) for s in (-1, 0, 1)]


def leaves():
    days_ago = st.builds(
        lambda op, days: attribute("since", op, days),
        st.sampled_from(["more_than_days_ago", "less_than_days_ago"]),
        st.sampled_from(DAYS),
    )
    negated = st.builds(
        lambda op: attribute("since", op), st.sampled_from(["is_set", "is_not_set"])
    )
    counted = st.builds(
        lambda op, n, days: event("exported", op, n, within_days=days),
        st.sampled_from(["at_least", "at_most", "exactly"]),
        st.integers(0, 3),
        st.sampled_from([*DAYS, None]),
    )
    shown = st.builds(
        lambda op, days: survey("any", op, **({} if days is None else {"within_days": days})),
        st.sampled_from(["seen", "not_seen", "dismissed", "completed", "not_completed"]),
        st.sampled_from([*DAYS, None]),
    )
    return st.one_of(days_ago, negated, counted, shown)


rules = st.recursive(
    leaves(),
    lambda inner: st.builds(
        lambda match, parts: group(*parts, match=match),
        st.sampled_from(["all", "any", "none"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def snapshots(draw):
    def moment():
        return NOW - draw(st.sampled_from(AGES))

    displays = [
        DisplayFacts(
            1, shown, draw(st.sampled_from([None, shown])), draw(st.none() | st.just(shown))
        )
        for shown in draw(st.lists(st.builds(moment), max_size=2))
    ]
    since = draw(st.none() | st.builds(lambda m: iso(m), st.builds(moment)))
    return ContactSnapshot(
        attributes={} if since is None else {"since": since},
        events={"exported": draw(st.lists(st.builds(moment), max_size=4))},
        displays=displays,
    )


def _moments_worth_trying(snapshot: ContactSnapshot) -> list[datetime]:
    """Later moments on and around every edge a rule over this snapshot could have."""
    known = [*snapshot.events["exported"]]
    for display in snapshot.displays:
        known += [m for m in (display.shown_at, display.dismissed_at, display.completed_at) if m]
    if "since" in snapshot.attributes:
        known.append(datetime.fromisoformat(snapshot.attributes["since"].replace("Z", "+00:00")))
    edges = [m + timedelta(days=d) for m in known for d in DAYS]
    return sorted(
        e + timedelta(microseconds=jitter) for e in edges for jitter in (-1, 0, 1) if e > NOW
    ) + [NOW + timedelta(days=400)]


@given(rule=rules, snapshot=snapshots())
def test_no_rule_turns_before_its_turning_point(rule, snapshot):
    evaluator = Evaluator(snapshot, NOW, {1: SegmentDefinition(1, "rules", rule)})
    answer = evaluator.in_segment(1)
    turns_at = evaluator.turns.at

    for later in _moments_worth_trying(snapshot):
        if turns_at is not None and later >= turns_at:
            break
        assert (
            Evaluator(snapshot, later, {1: SegmentDefinition(1, "rules", rule)}).in_segment(1)
            is answer
        ), f"turned at {later}, before {turns_at}"


def test_a_rule_that_reads_no_clock_has_no_turning_point():
    snapshot = ContactSnapshot(attributes={"plan": "pro"}, events={"exported": [NOW]})
    rule = group(attribute("plan", "equals", "pro"), event("exported", "at_least", 1))
    evaluator = Evaluator(snapshot, NOW, {1: SegmentDefinition(1, "rules", rule)})

    assert evaluator.in_segment(1) is True
    assert evaluator.turns.at is None


def test_a_window_turns_when_its_oldest_event_leaves():
    moments = [NOW - timedelta(days=2), NOW - timedelta(days=5)]
    snapshot = ContactSnapshot(events={"exported": moments})
    rule = group(event("exported", "at_least", 2, within_days=7))
    evaluator = Evaluator(snapshot, NOW, {1: SegmentDefinition(1, "rules", rule)})

    assert evaluator.in_segment(1) is True
    assert evaluator.turns.at == NOW + timedelta(days=2)
    assert datetime(2026, 6, 17, 12, tzinfo=UTC) == evaluator.turns.at

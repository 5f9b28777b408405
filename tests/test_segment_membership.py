"""Segment membership over time (issue 17): entries and exits match a full re-evaluation.

Hypothesis plays random sequences of identifies, tracks, displays, manual adds and
removals and time passing (each followed by the sweep) on a workspace with segments of
every kind of rule, and after every step compares the open memberships of each segment
with its members as the SQL evaluator counts them. Signals are counted on the way: one
per entry or exit, after commit.
"""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from refiner.models import Workspace
from segments import membership
from segments.ingest import (
    LAST_SEEN_STEP,
    clean_user,
    identify_contact,
    sync_contact_values,
    track_event,
)
from segments.models import Contact, MembershipSweep, Segment, SegmentMembership
from segments.services import add_members, remove_members, segment_contacts
from segments.signals import contact_entered_segment, contact_left_segment
from surveys.models import Display
from surveys.services import dismiss_display, record_answers, record_display
from tests.factories import SegmentFactory, SurveyFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

USERS = ["u0", "u1"]


def attribute(key, operator, value=None) -> dict:
    condition = {"type": "attribute", "attribute": key, "operator": operator}
    return condition if value is None else condition | {"value": value}


def group(match: str, *conditions) -> dict:
    return {"type": "group", "match": match, "conditions": list(conditions)}


def make_segments(workspace: Workspace) -> dict[str, Segment]:
    """One segment per way a contact's membership can move."""
    survey = SurveyFactory(workspace=workspace)
    made = {"vip": SegmentFactory(workspace=workspace, kind=Segment.MANUAL, rules=None)}

    def rules(name: str, rule: dict) -> None:
        made[name] = SegmentFactory(workspace=workspace, name=name, rules=rule)

    rules("pro", attribute("plan", "equals", "pro"))
    rules(
        "not pro", group("none", {"type": "segment", "segment": made["pro"].pk, "operator": "in"})
    )
    rules(
        "active",
        {"type": "event", "event": "login", "operator": "at_least", "value": 2, "within_days": 3},
    )
    rules(
        "big vip",
        group(
            "all",
            {"type": "segment", "segment": made["vip"].pk, "operator": "in"},
            attribute("seats", "greater_than", 5),
        ),
    )
    rules("dormant", attribute("last_seen_at", "more_than_days_ago", 2))
    rules(
        "active buyer",
        group(
            "all",
            {"type": "event", "event": "purchase", "operator": "at_least", "value": 1},
            {"type": "segment", "segment": made["active"].pk, "operator": "in"},
        ),
    )
    rules("answered", {"type": "survey", "survey": survey.pk, "operator": "completed"})
    rules("dismissed", {"type": "survey", "survey": "any", "operator": "dismissed"})
    rules(
        "promoter",
        {"type": "answer", "survey": survey.pk, "question": "nps",
         "operator": "greater_than_or_equal", "value": 9},
    )  # fmt: skip
    rules(
        "recently shown",
        {"type": "survey", "survey": "any", "operator": "seen", "within_days": 1},
    )
    made["survey"] = survey
    return made


tracks = st.tuples(
    st.just("track"), st.sampled_from(USERS), st.sampled_from(["login", "purchase", "x"])
)
# Tracks drawn three times as often: thresholds of event counts need a few in a row.
steps = st.one_of(
    st.tuples(
        st.just("identify"),
        st.sampled_from(USERS),
        st.sampled_from(["pro", "free", None]),
        st.sampled_from([0, 10, None]),
    ),
    tracks,
    tracks,
    tracks,
    st.tuples(st.just("add"), st.sampled_from(USERS)),
    st.tuples(st.just("remove"), st.sampled_from(USERS)),
    st.tuples(
        st.just("show"), st.sampled_from(USERS), st.sampled_from(["open", "3", "9", "dismiss"])
    ),
    st.tuples(st.just("wait"), st.sampled_from([0.01, 1, 30, 80])),
)


class Signals:
    """Counts what the membership signals announce."""

    def __init__(self):
        self.entered: list[tuple[int, int]] = []
        self.left: list[tuple[int, int]] = []

    def on_entry(self, sender, contact, segment, at, **kwargs) -> None:
        self.entered.append((contact.pk, segment.pk))

    def on_exit(self, sender, contact, segment, at, **kwargs) -> None:
        self.left.append((contact.pk, segment.pk))

    def __enter__(self):
        contact_entered_segment.connect(self.on_entry, dispatch_uid="test-entry")
        contact_left_segment.connect(self.on_exit, dispatch_uid="test-exit")
        return self

    def __exit__(self, *exc) -> None:
        contact_entered_segment.disconnect(dispatch_uid="test-entry")
        contact_left_segment.disconnect(dispatch_uid="test-exit")


def play(step: tuple, workspace: Workspace, made: dict, clock):
    kind = step[0]
    if kind == "identify":
        user = {"id": step[1], "plan": step[2], "seats": step[3]}
        identify_contact(workspace=workspace, user=clean_user(user), now=clock)
    elif kind == "track":
        track_event(workspace=workspace, user_id=step[1], event=step[2], now=clock)
    elif kind == "add":
        add_members(made["vip"], [step[1]], now=clock)
    elif kind == "remove":
        remove_members(made["vip"], [step[1]], now=clock)
    elif kind == "show":
        show(workspace, made["survey"], step[1], step[2], clock)
    else:
        clock += timedelta(hours=step[1])
        membership.sweep(clock)
    return clock


def show(workspace, survey, user_id: str, outcome: str, clock) -> None:
    contacts = Contact.objects.select_related("workspace", "account")
    contact = contacts.filter(workspace=workspace, user_id=user_id).first()
    if contact is None:
        return
    with transaction.atomic():
        display = record_display(survey=survey, contact=contact, now=clock)
    if outcome.isdigit():
        record_answers(display=display, answers={"nps": int(outcome)}, completed=True, now=clock)
    elif outcome == "dismiss":
        dismiss_display(display=display, now=clock)


def open_memberships(workspace) -> set[tuple[int, int]]:
    rows = SegmentMembership.objects.filter(workspace=workspace, left_at__isnull=True)
    return set(rows.values_list("contact_id", "segment_id"))


def members_now(workspace, clock) -> set[tuple[int, int]]:
    return {
        (contact_id, segment.pk)
        for segment in Segment.objects.filter(workspace=workspace)
        for contact_id in segment_contacts(segment, clock).values_list("pk", flat=True)
    }


class _Rollback(Exception):
    """Ends an example's savepoint, so examples do not see each other's data."""


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=1, max_size=25))
@example(sequence=[("track", "u0", "purchase"), ("track", "u0", "login"), ("track", "u0", "login")])
def test_open_memberships_match_a_full_evaluation_after_every_step(
    sequence, django_capture_on_commit_callbacks
):
    try:
        with transaction.atomic():
            workspace = WorkspaceFactory()
            made = make_segments(workspace)
            workspace.refresh_from_db()  # the definitions version the segments moved
            # After the segments were made, as after they shipped: the first sweep opens
            # what is already true (nothing yet), silently.
            clock = timezone.now() + timedelta(hours=1)
            membership.sweep(clock)
            with Signals() as heard:
                for step in sequence:
                    before = open_memberships(workspace)
                    entered, left = len(heard.entered), len(heard.left)
                    with django_capture_on_commit_callbacks(execute=True):
                        clock = play(step, workspace, made, clock)
                    after = open_memberships(workspace)
                    assert after == members_now(workspace, clock), step
                    # Each change is announced once: one signal per membership opened or
                    # closed (an entry and an exit of one pair in a step cannot happen).
                    assert sorted(heard.entered[entered:]) == sorted(after - before), step
                    assert sorted(heard.left[left:]) == sorted(before - after), step
            raise _Rollback
    except _Rollback:
        pass


# Behaviour one at a time -----------------------------------------------------------


@pytest.fixture
def pro(workspace):
    segment = SegmentFactory(workspace=workspace, rules=attribute("plan", "equals", "pro"))
    workspace.refresh_from_db()
    return segment


def identify(workspace, now, **user):
    return identify_contact(workspace=workspace, user=clean_user(user), now=now)


def test_repeated_identical_identifies_record_one_entry(workspace, pro, now):
    for minutes in (0, 1, 5, 60):  # some within LAST_SEEN_STEP, some moving last_seen_at
        identify(workspace, now + timedelta(minutes=minutes), id="ada", plan="pro")
    history = SegmentMembership.objects.filter(segment=pro)
    assert list(history.values_list("entered_at", "left_at")) == [(now, None)]


def test_a_contact_leaves_and_enters_again_as_two_stretches(workspace, pro, now):
    identify(workspace, now, id="ada", plan="pro")
    identify(workspace, now + timedelta(hours=1), id="ada", plan="free")
    identify(workspace, now + timedelta(hours=2), id="ada", plan="pro")
    stretches = SegmentMembership.objects.filter(segment=pro).order_by("entered_at")
    assert list(stretches.values_list("entered_at", "left_at")) == [
        (now, now + timedelta(hours=1)),
        (now + timedelta(hours=2), None),
    ]


def test_signals_fire_after_commit_once_per_change(
    workspace, pro, now, django_capture_on_commit_callbacks
):
    with Signals() as heard:
        with django_capture_on_commit_callbacks() as callbacks:
            contact = identify(workspace, now, id="ada", plan="pro")
            assert heard.entered == []  # not before commit
        for callback in callbacks:
            callback()
        assert heard.entered == [(contact.pk, pro.pk)]
        with django_capture_on_commit_callbacks(execute=True):
            identify(workspace, now + timedelta(hours=1), id="ada", plan="pro")
            identify(workspace, now + timedelta(hours=2), id="ada", plan="free")
        assert heard.entered == [(contact.pk, pro.pk)]
        assert heard.left == [(contact.pk, pro.pk)]


def test_a_sweep_moving_more_contacts_than_a_statement_takes_parameters_announces_them(
    workspace, pro, now, django_capture_on_commit_callbacks
):
    # PostgreSQL takes 65,535 parameters a statement: reading 70,000 contacts in one
    # `IN` failed the sweep after its commit. Ids of no contact stand in for the crowd.
    contact = identify(workspace, now, id="ada", plan="pro")
    crowd = [contact.pk, *range(10**9, 10**9 + 70_000)]
    with Signals() as heard, django_capture_on_commit_callbacks(execute=True):
        membership._announce_many(contact_entered_segment, pro.pk, crowd, now)
    assert heard.entered == [(contact.pk, pro.pk)]


def test_no_signal_and_no_record_when_the_change_rolls_back(
    workspace, pro, now, django_capture_on_commit_callbacks
):
    with Signals() as heard, django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            identify(workspace, now, id="ada", plan="pro")
            raise RuntimeError("the request failed after the identify")
    assert heard.entered == []
    assert not SegmentMembership.objects.exists()


def test_a_track_of_an_event_no_segment_names_evaluates_nothing(
    workspace, now, django_assert_num_queries
):
    SegmentFactory(workspace=workspace, rules={"type": "event", "event": "login",
                                               "operator": "at_least", "value": 1})  # fmt: skip
    workspace.refresh_from_db()
    track_event(workspace=workspace, user_id="ada", event="login", now=now)
    assert SegmentMembership.objects.filter(contact__user_id="ada").count() == 1
    soon = now + LAST_SEEN_STEP / 2
    with django_assert_num_queries(2):  # the lookup and the INSERT
        track_event(workspace=workspace, user_id="ada", event="page", now=soon)


def test_the_sweep_records_rules_that_change_with_time_alone(workspace, now):
    dormant = SegmentFactory(
        workspace=workspace, rules=attribute("last_seen_at", "more_than_days_ago", 2)
    )
    workspace.refresh_from_db()
    membership.sweep(now)  # the first sweep: nothing to open yet
    identify(workspace, now, id="ada")
    assert not SegmentMembership.objects.filter(segment=dormant).exists()
    later = now + timedelta(days=3)
    [run] = membership.sweep(later)
    assert (run.entries, run.exits) == (1, 0)
    assert SegmentMembership.objects.get(segment=dormant).entered_at == later
    identify(workspace, later + timedelta(hours=1), id="ada")  # seen again: leaves
    assert SegmentMembership.objects.get(segment=dormant).left_at == later + timedelta(hours=1)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL plan")
def test_a_sweep_reads_every_member_before_it_opens_a_membership(workspace, now, pro):
    """With the memberships table empty when planned, the INSERT used to probe it with a
    scan per member while writing to it: each scan met the rows written so far, and
    500,000 members of one segment at 1M contacts did not finish in 20 minutes. An
    aggregate below the INSERT reads every member first, whatever the plan."""
    for user_id in ("ada", "bob"):
        identify(workspace, now, id=user_id, plan="pro")
    SegmentMembership.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_segmentmembership")
    with CaptureQueriesContext(connection) as queries:
        membership.sweep_segment(pro.pk, now)
    [opening] = [q["sql"] for q in queries if "INSERT INTO segments_segmentmembership" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {opening}")
        plan = cursor.fetchone()[0][0]["Plan"]
    assert plan["Node Type"] == "ModifyTable"

    def barrier_below(node) -> bool:
        """Is every path from `node` to the memberships table's scans through an Aggregate?"""
        if node["Node Type"] == "Aggregate":
            return True
        if node.get("Relation Name") == "segments_segmentmembership":
            return False
        return all(barrier_below(child) for child in node.get("Plans", []))

    assert barrier_below(plan["Plans"][0])
    assert SegmentMembership.objects.filter(segment=pro, left_at=None).count() == 2


def test_the_first_sweep_opens_current_members_silently(workspace, now, pro):
    Contact.objects.create(workspace=workspace, user_id="old", traits={"plan": "pro"})
    contact = Contact.objects.get(user_id="old")
    sync_contact_values(contact)
    with Signals() as heard:
        [run] = membership.sweep(now)
    assert run.entries == 1 and heard.entered == []
    assert SegmentMembership.objects.get(segment=pro).entered_at == now
    assert MembershipSweep.objects.count() == 1


def test_an_edited_rule_is_caught_by_the_next_sweep(workspace, pro, now):
    membership.sweep(now)
    identify(workspace, now, id="ada", plan="free")
    pro.rules = attribute("plan", "equals", "free")
    pro.save()
    [run] = membership.sweep(timezone.now() + timedelta(minutes=1))
    assert run.entries == 1
    assert open_memberships(workspace) == {(Contact.objects.get().pk, pro.pk)}


def test_memberships_stay_in_their_workspace(workspace, other_workspace, pro, now):
    other = SegmentFactory(workspace=other_workspace, rules=attribute("plan", "equals", "pro"))
    other_workspace.refresh_from_db()
    identify(workspace, now, id="ada", plan="pro")
    identify(other_workspace, now, id="ada", plan="pro")
    mine = SegmentMembership.objects.filter(workspace=workspace)
    assert set(mine.values_list("segment_id", flat=True)) == {pro.pk}
    assert SegmentMembership.objects.get(segment=other).workspace_id == other_workspace.pk


def test_a_display_of_a_survey_enters_segments_about_surveys(workspace, now):
    survey = SurveyFactory(workspace=workspace)
    seen = SegmentFactory(
        workspace=workspace, rules={"type": "survey", "survey": survey.pk, "operator": "seen"}
    )
    workspace.refresh_from_db()
    contact = identify(workspace, now, id="ada")
    contact = Contact.objects.select_related("workspace", "account").get(pk=contact.pk)
    record_display(survey=survey, contact=contact, now=now)
    assert SegmentMembership.objects.get(segment=seen).contact_id == contact.pk
    assert Display.objects.count() == 1


def test_a_segment_naming_another_moves_with_it(workspace, now):
    made = make_segments(workspace)
    workspace.refresh_from_db()
    for event in ("purchase", "login", "login"):
        track_event(workspace=workspace, user_id="ada", event=event, now=now)
    assert open_memberships(workspace) == members_now(workspace, now)
    ada = Contact.objects.get(user_id="ada").pk
    assert (ada, made["active buyer"].pk) in open_memberships(workspace)


def test_a_new_contact_enters_by_its_accounts_traits(workspace, now):
    gold = SegmentFactory(workspace=workspace, rules=attribute("account.tier", "equals", "gold"))
    workspace.refresh_from_db()
    identify(workspace, now, id="ada", account={"id": "acme", "tier": "gold"})
    identify(workspace, now, id="bob", account={"id": "acme"})  # the same account
    identify(workspace, now, id="cy")
    entered = SegmentMembership.objects.filter(segment=gold)
    assert set(entered.values_list("contact__user_id", flat=True)) == {"ada", "bob"}


def test_the_widgets_identify_and_track_record_entries(client, workspace, now):
    pro = SegmentFactory(workspace=workspace, rules=attribute("plan", "equals", "pro"))
    active = SegmentFactory(
        workspace=workspace,
        rules={"type": "event", "event": "login", "operator": "at_least", "value": 2},
    )
    workspace.refresh_from_db()

    def post(path: str, body: dict) -> None:
        body = {"workspace": workspace.widget_key, **body}
        response = client.post(f"/api/v1/widget/{path}", body, content_type="application/json")
        assert response.status_code in (200, 202), response.content

    post("identify", {"user": {"id": "ada", "plan": "pro"}})
    post("track", {"user_id": "ada", "event": "login"})
    assert open_memberships(workspace) == {(Contact.objects.get().pk, pro.pk)}
    post("track", {"user_id": "ada", "event": "login"})
    ada = Contact.objects.get().pk
    assert open_memberships(workspace) == {(ada, pro.pk), (ada, active.pk)}


def test_a_track_of_a_watched_event_reads_the_contact_twice_more(workspace, now):
    SegmentFactory(
        workspace=workspace,
        rules={"type": "event", "event": "login", "operator": "at_least", "value": 5},
    )
    workspace.refresh_from_db()
    track_event(workspace=workspace, user_id="ada", event="login", now=now)
    with CaptureQueriesContext(connection) as queries:
        track_event(workspace=workspace, user_id="ada", event="login", now=now)
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # The lookup, the INSERT, the locked contact with its open memberships, the snapshot;
    # no membership changed, so nothing else is written.
    assert len(statements) == 4, statements


def test_a_track_moving_last_seen_evaluates_only_the_segments_reading_it(workspace, now, pro):
    # pro reads a trait, and login an event the track is not: neither can move.
    SegmentFactory(workspace=workspace, rules={"type": "event", "event": "login",
                                               "operator": "at_least", "value": 1})  # fmt: skip
    workspace.refresh_from_db()
    track_event(workspace=workspace, user_id="ada", event="page", now=now)
    later = now + LAST_SEEN_STEP * 2

    with CaptureQueriesContext(connection) as queries:
        track_event(workspace=workspace, user_id="ada", event="page", now=later)

    # The lookup, last_seen_at and its parsed value, the event: no lock, no snapshot.
    statements = [q["sql"].split()[0] for q in queries if "SAVEPOINT" not in q["sql"]]
    if connection.vendor == "postgresql":
        # last_seen_at and its value are one statement there (segments.ingest.LAST_SEEN_SQL).
        assert statements == ["SELECT", "WITH", "INSERT"]
    else:
        assert statements == ["SELECT", "UPDATE", "UPDATE", "INSERT"]
    assert Contact.objects.get(user_id="ada").last_seen_at == later


def test_an_identify_evaluates_only_the_segments_reading_what_changed(workspace, now, pro):
    identify(workspace, now, id="ada", plan="pro", seats=1)
    later = now + timedelta(seconds=1)  # last_seen_at stays: it moves once a minute

    # No segment reads seats: nothing to evaluate, so no snapshot and no memberships read.
    with CaptureQueriesContext(connection) as queries:
        identify(workspace, later, id="ada", plan="pro", seats=2)
    assert not [q for q in queries if "segmentmembership" in q["sql"]]

    identify(workspace, later, id="ada", plan="free", seats=2)
    assert not SegmentMembership.objects.filter(segment=pro, left_at=None).exists()


def test_a_track_moving_last_seen_records_the_segments_reading_it(workspace, now):
    seen_lately = SegmentFactory(
        workspace=workspace, rules=attribute("last_seen_at", "less_than_days_ago", 1)
    )
    workspace.refresh_from_db()
    track_event(workspace=workspace, user_id="ada", event="page", now=now)
    later = now + timedelta(days=3)
    [run] = membership.sweep(later)  # seen 3 days ago: the sweep takes ada out
    assert SegmentMembership.objects.get(segment=seen_lately).left_at == later

    track_event(workspace=workspace, user_id="ada", event="page", now=later + timedelta(hours=1))

    stretches = SegmentMembership.objects.filter(segment=seen_lately).order_by("entered_at")
    assert list(stretches.values_list("left_at", flat=True)) == [later, None]

"""The eligibility engine (SPEC §4): every rule and reason code, with a fixed clock."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from refiner.models import Workspace
from segments.memory import ContactSnapshot, SegmentDefinition
from segments.models import Contact, SegmentMember
from surveys.models import Display, Response, Survey
from targeting.eligibility import (
    Check,
    SurveyDefinition,
    eligible_surveys,
    explain,
    explain_all,
    may_show,
    reasons_against,
    sample_position,
)
from targeting.models import Targeting
from tests.conftest import NOW
from tests.factories import (
    ContactFactory,
    DisplayFactory,
    EventFactory,
    ManualSegmentFactory,
    ResponseFactory,
    SegmentFactory,
    SurveyFactory,
    record_response,
    target,
)
from tests.rules import attribute, group

pytestmark = pytest.mark.django_db

ALL = {"type": "group", "match": "all", "conditions": []}


def offered(workspace, contact, now, **check) -> list[int]:
    found = [s.id for s in eligible_surveys(workspace=workspace, contact=contact, now=now, **check)]
    if "survey_id" not in check:
        # The widget's check (cheap steps first, stops early) and the full §4 explanation
        # must always agree on what may be shown.
        decisions = explain_all(workspace=workspace, contact=contact, now=now, **check)
        assert set(found) == {d.survey.id for d in decisions if d.eligible}
    return found


def codes(workspace, survey, contact, now, **check) -> list[str]:
    decision = explain(workspace=workspace, survey_id=survey.pk, contact=contact, now=now, **check)
    assert decision.eligible == (not decision.reasons)
    return [reason.code for reason in decision.reasons]


def show(survey, contact, at, *, completed=None, dismissed=None) -> Display:
    return DisplayFactory(
        survey=survey, contact=contact, shown_at=at, completed_at=completed, dismissed_at=dismissed
    )


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, user_id="ada")


# Contacts and status ------------------------------------------------------------------


def test_it_offers_a_live_survey_to_everyone(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now) == [survey.pk]
    assert codes(workspace, survey, contact, now) == []


def test_unknown_contacts_are_eligible_for_nothing(workspace, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, None, now) == []
    assert codes(workspace, survey, None, now) == ["unknown_contact"]


def test_it_never_offers_another_workspaces_survey(workspace, other_workspace, contact, now):
    SurveyFactory(workspace=other_workspace)
    assert offered(workspace, contact, now) == []
    assert offered(workspace, contact, now, survey_id=other_workspace.surveys.get().pk) == []


def test_explain_refuses_a_survey_of_another_workspace(workspace, other_workspace, contact, now):
    survey = SurveyFactory(workspace=other_workspace)
    with pytest.raises(survey.DoesNotExist):
        explain(workspace=workspace, survey_id=survey.pk, contact=contact, now=now)


@pytest.mark.parametrize("status", ["draft", "paused", "archived"])
def test_only_live_surveys_are_offered(workspace, contact, now, status):
    survey = SurveyFactory(workspace=workspace, status=status)
    assert offered(workspace, contact, now) == []
    assert codes(workspace, survey, contact, now) == ["not_live"]


def test_it_respects_the_schedule(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)},
    )
    assert offered(workspace, contact, now) == [survey.pk]
    assert offered(workspace, contact, now - timedelta(days=2)) == []
    assert codes(workspace, survey, contact, now - timedelta(days=2)) == ["outside_schedule"]
    # ends_at is exclusive
    assert codes(workspace, survey, contact, now + timedelta(days=1)) == ["outside_schedule"]


def test_it_stops_at_the_response_cap(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace, targeting={"max_responses": 2})
    others = [ContactFactory(workspace=workspace) for _ in range(3)]
    for index, other in enumerate(others):
        display = show(survey, other, now - timedelta(hours=1))
        ResponseFactory(display=display, completed=index < 1)
    assert offered(workspace, contact, now) == [survey.pk]  # one completed, two open
    Response.objects.filter(contact=others[1]).update(completed=True)
    assert offered(workspace, contact, now) == []
    assert codes(workspace, survey, contact, now) == ["response_cap_reached"]


# Audiences (SPEC §1) ------------------------------------------------------------------


@pytest.fixture
def cohorts(workspace, now):
    """Contacts who signed up 30+ days ago, power users, both, and neither."""
    signed_up = SegmentFactory(
        workspace=workspace,
        name="Signed up 30 days ago",
        rules=group(attribute("signed_up_at", "more_than_days_ago", 30)),
    )
    power = SegmentFactory(
        workspace=workspace,
        name="Power users",
        rules=group(
            {
                "type": "event",
                "event": "report_exported",
                "operator": "at_least",
                "value": 5,
                "within_days": 30,
            }  # fmt: skip
        ),
    )
    old = (now - timedelta(days=45)).isoformat()
    new = (now - timedelta(days=3)).isoformat()
    people = {
        "both": ContactFactory(workspace=workspace, traits={"signed_up_at": old}),
        "old": ContactFactory(workspace=workspace, traits={"signed_up_at": old}),
        "power": ContactFactory(workspace=workspace, traits={"signed_up_at": new}),
        "neither": ContactFactory(workspace=workspace, traits={"signed_up_at": new}),
    }
    for name in ("both", "power"):
        for day in range(5):
            EventFactory(contact=people[name], occurred_at=now - timedelta(days=day))
    # Exports older than 30 days do not make a power user.
    for day in range(5):
        EventFactory(contact=people["old"], occurred_at=now - timedelta(days=40 + day))
    return signed_up, power, people


def audience_of(workspace, survey, people, now) -> set[str]:
    return {name for name, c in people.items() if offered(workspace, c, now) == [survey.pk]}


def test_signed_up_30_days_ago_and_power_users(workspace, now, cohorts):
    signed_up, power, people = cohorts
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[signed_up, power], segment_match=Targeting.ALL)
    assert audience_of(workspace, survey, people, now) == {"both"}
    assert codes(workspace, survey, people["old"], now) == ["not_in_audience"]


def test_at_least_one_of_the_segments(workspace, now, cohorts):
    signed_up, power, people = cohorts
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[signed_up, power], segment_match=Targeting.ANY)
    assert audience_of(workspace, survey, people, now) == {"both", "old", "power"}
    assert codes(workspace, survey, people["neither"], now) == ["not_in_audience"]


def test_segments_with_exclusions(workspace, now, cohorts):
    signed_up, power, people = cohorts
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[signed_up], excluded=[power])
    assert audience_of(workspace, survey, people, now) == {"old"}
    assert codes(workspace, survey, people["both"], now) == ["in_excluded_segment"]
    assert codes(workspace, survey, people["power"], now) == [
        "not_in_audience",
        "in_excluded_segment",
    ]


def test_the_audience_follows_the_clock(workspace, now, cohorts):
    signed_up, _, people = cohorts
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[signed_up])
    assert "neither" not in audience_of(workspace, survey, people, now)
    assert "neither" in audience_of(workspace, survey, people, now + timedelta(days=28))


def test_everyone_except_employees(workspace, now):
    employees = SegmentFactory(
        workspace=workspace, rules=group(attribute("email", "ends_with", "@refiner.io"))
    )
    survey = SurveyFactory(workspace=workspace)
    target(survey, excluded=[employees])
    customer = ContactFactory(workspace=workspace, email="ada@example.com")
    employee = ContactFactory(workspace=workspace, email="bob@refiner.io")
    no_email = ContactFactory(workspace=workspace, email=None)
    assert offered(workspace, customer, now) == [survey.pk]
    assert offered(workspace, no_email, now) == [survey.pk]
    assert offered(workspace, employee, now) == []
    assert codes(workspace, survey, employee, now) == ["in_excluded_segment"]


def test_customers_on_the_enterprise_plan(workspace, now):
    enterprise = SegmentFactory(
        workspace=workspace,
        rules=group(
            {
                "type": "attribute",
                "attribute": "plan",
                "operator": "equals",
                "value": "enterprise",
                "ignore_case": True,
            }  # fmt: skip
        ),
    )
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[enterprise])
    assert offered(workspace, ContactFactory(workspace=workspace, traits={"plan": "Enterprise"}),
                   now) == [survey.pk]  # fmt: skip
    assert offered(workspace, ContactFactory(workspace=workspace, traits={"plan": "free"}),
                   now) == []  # fmt: skip
    assert offered(workspace, ContactFactory(workspace=workspace), now) == []


def test_a_manual_segment_and_a_segment_reference(workspace, contact, now):
    beta = ManualSegmentFactory(workspace=workspace)
    beta_reference = SegmentFactory(
        workspace=workspace, rules=group({"type": "segment", "segment": beta.pk, "operator": "in"})
    )
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[beta_reference])
    assert offered(workspace, contact, now) == []
    SegmentMember.objects.create(segment=beta, contact=contact)
    assert offered(workspace, contact, now) == [survey.pk]


def test_an_answer_condition_in_the_audience(workspace, contact, now):

    nps = SurveyFactory(workspace=workspace, name="NPS")
    promoters = SegmentFactory(
        workspace=workspace,
        rules=group(
            {
                "type": "answer",
                "survey": nps.pk,
                "question": "nps",
                "operator": "greater_than_or_equal",
                "value": 9,
            }
        ),  # fmt: skip
    )
    follow_up = SurveyFactory(workspace=workspace, name="Follow-up")
    target(follow_up, segments=[promoters])
    record_response(nps, contact, {"nps": 10}, now - timedelta(days=1), completed=True)
    assert offered(workspace, contact, now) == [follow_up.pk]


# Trigger and pages ----------------------------------------------------------------------


def test_an_event_trigger_needs_that_event(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace, targeting={"trigger": "event", "trigger_event": "report_exported"}
    )
    assert offered(workspace, contact, now) == []
    assert codes(workspace, survey, contact, now) == ["trigger_mismatch"]
    assert offered(workspace, contact, now, event="signed_in") == []
    assert offered(workspace, contact, now, event="report_exported") == [survey.pk]


def test_a_page_load_survey_fits_any_check(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now, event="report_exported") == [survey.pk]
    assert offered(workspace, contact, now, url="https://app.example.com/") == [survey.pk]


def test_a_manual_survey_is_shown_only_when_asked_for(workspace, contact, now):
    manual = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    automatic = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now) == [automatic.pk]
    assert offered(workspace, contact, now, survey_id=manual.pk) == [manual.pk]
    assert codes(workspace, manual, contact, now) == ["trigger_mismatch"]


@pytest.mark.parametrize(
    "match, value, url, fits",
    [
        ("equals", "https://app.example.com/billing", "https://app.example.com/billing", True),
        ("equals", "https://app.example.com/billing", "https://app.example.com/billing/x", False),
        ("equals", "/billing", "https://app.example.com/billing?tab=1", True),
        ("starts_with", "/settings", "https://app.example.com/settings/team", True),
        ("starts_with", "/settings", "https://app.example.com/account/settings", False),
        ("contains", "report", "https://app.example.com/reports/42", True),
        ("contains", "Report", "https://app.example.com/reports/42", False),
        (
            "pattern",
            "https://*.example.com/projects/*/edit",
            "https://app.example.com/projects/7/edit",
            True,
        ),  # noqa: E501
        (
            "pattern",
            "https://*.example.com/projects/*/edit",
            "https://app.example.com/projects/7",
            False,
        ),  # noqa: E501
        ("pattern", "/a.b?c", "https://x.com/a.b?c", False),  # "?" is no wildcard; paths only
        ("pattern", "https://x.com/a.b?c", "https://x.com/a.b?c", True),
        ("pattern", "https://x.com/a.b", "https://x.com/aXb", False),  # "." is literal
    ],
)
def test_allowed_pages(workspace, contact, now, match, value, url, fits):
    survey = SurveyFactory(
        workspace=workspace, targeting={"allowed_pages": [{"match": match, "value": value}]}
    )
    assert (offered(workspace, contact, now, url=url) == [survey.pk]) is fits
    if not fits:
        assert codes(workspace, survey, contact, now, url=url) == ["page_mismatch"]


def test_allowed_pages_need_a_url(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace, targeting={"allowed_pages": [{"match": "contains", "value": "/"}]}
    )
    assert codes(workspace, survey, contact, now) == ["page_mismatch"]


def test_excluded_pages(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={
            "allowed_pages": [{"match": "starts_with", "value": "/app"}],
            "excluded_pages": [{"match": "starts_with", "value": "/app/checkout"}],
        },
    )
    assert offered(workspace, contact, now, url="https://x.com/app/home") == [survey.pk]
    assert offered(workspace, contact, now, url="https://x.com/app/checkout/pay") == []
    assert offered(workspace, contact, now) == []
    everywhere_but = SurveyFactory(
        workspace=workspace,
        targeting={"excluded_pages": [{"match": "contains", "value": "checkout"}]},
    )
    assert offered(workspace, contact, now) == [everywhere_but.pk]
    assert codes(workspace, everywhere_but, contact, now, url="https://x.com/checkout") == [
        "page_mismatch"
    ]


# Sampling ------------------------------------------------------------------------------


def test_sampling_is_stable_and_proportional(workspace, now):
    survey = SurveyFactory(workspace=workspace, targeting={"sample_percent": 30})
    Contact.objects.bulk_create(
        Contact(workspace=workspace, user_id=f"u{n}", first_seen_at=now, last_seen_at=now)
        for n in range(2000)
    )
    contacts = list(Contact.objects.filter(workspace=workspace))
    inside = [c for c in contacts if sample_position(survey.pk, c.pk) < 30]
    assert 0.26 < len(inside) / len(contacts) < 0.34
    # The engine agrees with the hash, and says the same thing every time.
    for contact in contacts[:60]:
        expected = [survey.pk] if contact in inside else []
        assert offered(workspace, contact, now) == expected
        assert offered(workspace, contact, now + timedelta(hours=1)) == expected
        if not expected:
            assert codes(workspace, survey, contact, now) == ["not_sampled"]


def test_sampling_differs_between_surveys(workspace, now):
    one, two = SurveyFactory(workspace=workspace), SurveyFactory(workspace=workspace)
    positions = [(sample_position(one.pk, n), sample_position(two.pk, n)) for n in range(500)]
    assert sum(1 for a, b in positions if (a < 50) != (b < 50)) > 150


@pytest.mark.parametrize("percent, expected", [(0, False), (100, True)])
def test_sample_edges(workspace, contact, now, percent, expected):
    survey = SurveyFactory(workspace=workspace, targeting={"sample_percent": percent})
    assert (offered(workspace, contact, now) == [survey.pk]) is expected


# Frequency, caps and recontact -----------------------------------------------------------


def test_once_means_never_after_completion(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    show(survey, contact, now - timedelta(days=400), completed=now - timedelta(days=400))
    assert offered(workspace, contact, now) == []
    assert codes(workspace, survey, contact, now) == ["already_completed"]


def test_once_means_never_after_dismissal(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    show(survey, contact, now - timedelta(days=1), dismissed=now - timedelta(days=1))
    assert codes(workspace, survey, contact, now) == ["already_completed"]


def test_a_display_left_open_may_be_shown_again(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    show(survey, contact, now - timedelta(minutes=5))
    assert offered(workspace, contact, now) == [survey.pk]


def test_a_recurring_survey_returns_after_its_days(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace, targeting={"frequency": "recurring", "recurring_days": 30}
    )
    closed = now - timedelta(days=10)
    show(survey, contact, closed, completed=closed)
    assert codes(workspace, survey, contact, now) == ["recently_shown"]
    assert offered(workspace, contact, closed + timedelta(days=30) - timedelta(seconds=1)) == []
    assert offered(workspace, contact, closed + timedelta(days=30)) == [survey.pk]
    # A later dismissal starts the wait again.
    show(survey, contact, closed + timedelta(days=31), dismissed=closed + timedelta(days=31))
    assert offered(workspace, contact, closed + timedelta(days=40)) == []
    assert offered(workspace, contact, closed + timedelta(days=61)) == [survey.pk]


def test_every_trigger_ignores_completion(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace, targeting={"frequency": "every_trigger"})
    show(survey, contact, now - timedelta(minutes=1), completed=now - timedelta(minutes=1))
    assert offered(workspace, contact, now) == [survey.pk]


def test_the_per_contact_display_cap(workspace, contact, now):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"frequency": "every_trigger", "max_displays_per_contact": 2},
    )
    show(survey, contact, now - timedelta(days=2))
    assert offered(workspace, contact, now) == [survey.pk]
    show(survey, contact, now - timedelta(days=1))
    assert codes(workspace, survey, contact, now) == ["display_cap_reached"]
    assert offered(workspace, ContactFactory(workspace=workspace), now) == [survey.pk]


def test_the_recontact_period(workspace, contact, now):
    workspace.recontact_days = 7
    workspace.save()
    seen = SurveyFactory(workspace=workspace, targeting={"frequency": "every_trigger"})
    other = SurveyFactory(workspace=workspace)
    show(seen, contact, now - timedelta(days=3))
    # The survey's own display does not hold it back; it holds back the others.
    assert offered(workspace, contact, now) == [seen.pk]
    assert codes(workspace, other, contact, now) == ["recontact_period"]
    assert sorted(offered(workspace, contact, now + timedelta(days=5))) == sorted(
        [seen.pk, other.pk]
    )


def test_a_survey_may_ignore_the_recontact_period(workspace, contact, now):
    workspace.recontact_days = 7
    workspace.save()
    seen = SurveyFactory(workspace=workspace)
    urgent = SurveyFactory(workspace=workspace, targeting={"ignore_recontact": True})
    show(seen, contact, now - timedelta(days=1), completed=now - timedelta(days=1))
    assert offered(workspace, contact, now) == [urgent.pk]


# Order and explanations ----------------------------------------------------------------


def test_surveys_come_by_priority_then_age(workspace, contact, now):
    newest = SurveyFactory(workspace=workspace, created_at=now - timedelta(days=1))
    oldest = SurveyFactory(workspace=workspace, created_at=now - timedelta(days=9))
    urgent = SurveyFactory(workspace=workspace, created_at=now, targeting={"priority": 5})
    assert offered(workspace, contact, now) == [urgent.pk, oldest.pk, newest.pk]


def test_explain_stops_at_not_live_and_lists_later_steps_otherwise(workspace, contact, now):
    employees = SegmentFactory(workspace=workspace, rules=ALL)
    paused = SurveyFactory(workspace=workspace, status="paused")
    target(paused, excluded=[employees])
    assert codes(workspace, paused, contact, now) == ["not_live"]
    ended = SurveyFactory(
        workspace=workspace,
        targeting={
            "ends_at": now - timedelta(days=1),
            "trigger": "event",
            "trigger_event": "x",
            "sample_percent": 0,
        },  # fmt: skip
    )
    target(ended, excluded=[employees])
    assert codes(workspace, ended, contact, now) == [
        "outside_schedule",
        "in_excluded_segment",
        "trigger_mismatch",
        "not_sampled",
    ]
    decision = explain(workspace=workspace, survey_id=ended.pk, contact=contact, now=now)
    assert decision.survey.id == ended.pk and not decision.eligible
    assert all(reason.message for reason in decision.reasons)


# The cache -------------------------------------------------------------------------------


def test_changes_reach_the_cached_definitions(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now) == [survey.pk]

    survey.status = "paused"
    survey.save()
    assert offered(workspace, contact, now) == []

    survey.status = "live"
    survey.save()
    vips = SegmentFactory(workspace=workspace, rules=group(attribute("vip", "is_true")))
    target(survey, segments=[vips])
    assert offered(workspace, contact, now) == []

    vips.rules = group(attribute("vip", "is_not_set"))
    vips.save()
    assert offered(workspace, contact, now) == [survey.pk]

    survey.targeting.segments.remove(vips)
    survey.targeting.excluded_segments.add(vips)
    assert offered(workspace, contact, now) == []

    target(survey, audience=Targeting.EVERYONE)
    assert offered(workspace, contact, now) == [survey.pk]
    question = survey.questions.get()
    question.text = "Would you recommend us?"
    question.save()
    [definition] = eligible_surveys(workspace=workspace, contact=contact, now=now)
    assert definition.questions[0]["text"] == "Would you recommend us?"

    survey.delete()
    assert offered(workspace, contact, now) == []


def test_a_change_made_by_another_process_is_seen_at_once(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now) == [survey.pk]  # now held in this process
    # Another process pauses it: the rows and the version change, this memory does not.
    Survey.objects.filter(pk=survey.pk).update(status="paused")
    Workspace.objects.filter(pk=workspace.pk).update(definitions_version="from-elsewhere")
    assert offered(workspace, contact, now) == []


def test_saving_workspace_settings_keeps_a_newer_definitions_version(workspace, contact, now):
    survey = SurveyFactory(workspace=workspace)
    assert offered(workspace, contact, now) == [survey.pk]
    settings_page = Workspace.objects.get(pk=workspace.pk)  # read before the change below
    survey.status = "paused"
    survey.save()
    settings_page.recontact_days = 3
    settings_page.save()
    assert offered(workspace, contact, now) == []
    assert Workspace.objects.get(pk=workspace.pk).recontact_days == 3


def test_explain_all_covers_every_survey_but_archived_ones(workspace, contact, now):
    live = SurveyFactory(workspace=workspace)
    draft = SurveyFactory(workspace=workspace, status="draft")
    SurveyFactory(workspace=workspace, status="archived")
    decisions = {d.survey.id: d for d in explain_all(workspace=workspace, contact=contact, now=now)}
    assert set(decisions) == {live.pk, draft.pk}
    assert decisions[live.pk].eligible is True
    assert [r.code for r in decisions[draft.pk].reasons] == ["not_live"]


def test_a_workspace_setting_applies_at_once(workspace, contact, now):
    seen, other = SurveyFactory(workspace=workspace), SurveyFactory(workspace=workspace)
    show(seen, contact, now - timedelta(days=2), completed=now - timedelta(days=2))
    assert offered(workspace, contact, now) == [other.pk]
    workspace.recontact_days = 3
    workspace.save()
    assert offered(workspace, contact, now) == []


# The widget's short answer and the full explanation agree ---------------------------


@given(
    members=st.sets(st.integers(1, 4)),
    chosen=st.lists(st.integers(1, 4), max_size=3, unique=True),
    excluded=st.lists(st.integers(1, 4), max_size=2, unique=True),
    match=st.sampled_from([Targeting.ANY, Targeting.ALL]),
    audience=st.sampled_from([Targeting.SEGMENTS, Targeting.EVERYONE]),
)
def test_the_widgets_audience_decision_is_the_explanations(
    members, chosen, excluded, match, audience
):
    """`may_show` decides the audience without the reasons' words; it must say yes
    exactly when `reasons_against` finds no reason, whatever the memberships."""
    segments = {pk: SegmentDefinition(pk, "manual", None) for pk in range(1, 5)}
    survey = SurveyDefinition(
        id=1, name="NPS", status=Survey.LIVE, created_at=NOW, questions=(), audience=audience,
        segments=tuple(chosen), segment_match=match, excluded_segments=tuple(excluded),
    )  # fmt: skip

    def check() -> Check:
        return Check(
            contact=Contact(pk=1, user_id="ada"), now=NOW, event=None, url=None,
            survey_id=None, recontact_days=0, segments=segments, response_counts={},
            loaded=ContactSnapshot(manual_segments=set(members)),
        )  # fmt: skip

    assert may_show(survey, check()) == (reasons_against(survey, check()) == [])

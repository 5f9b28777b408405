"""Each operator's edge cases (SPEC §3), checked by both evaluators at once.

`members` runs a rule in SQL and in memory, asserts they agree and returns the
user ids, so every example here is also an agreement test.
"""

from datetime import timedelta

import pytest
from django.db.models import Q

from segments.ingest import clean_user, identify_contact
from segments.memory import matches
from segments.models import Contact, Event
from segments.services import add_members, segment_definitions, snapshot_of
from segments.sql import compile_rule
from surveys.services import dismiss_display, record_answers, record_display
from tests.factories import ManualSegmentFactory, SegmentFactory, SurveyFactory, record_response
from tests.rules import answer, attribute, event, group, survey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def outsider(other_workspace, now):
    """Another workspace's contact that would match almost anything: never a member."""
    contact = person(
        other_workspace,
        "outsider",
        now,
        plan="Enterprise",
        n=12,
        since="2022-01-22T11:00:00Z",
        account={"id": "acme", "plan": "Enterprise"},
    )
    Event.objects.create(
        workspace=other_workspace, contact=contact, name="report_exported", occurred_at=now
    )
    return contact


def person(workspace, user_id: str, now, **traits) -> Contact:
    return identify_contact(
        workspace=workspace, user=clean_user({"id": user_id, **traits}), now=now
    )


def members(workspace, rule: dict, now) -> set[str]:
    """The user ids matching `rule`, after checking that SQL and memory agree."""
    definitions = segment_definitions(workspace.pk)
    condition = Q(workspace=workspace) & compile_rule(rule, now, definitions)
    in_sql = set(Contact.objects.filter(condition).values_list("user_id", flat=True))
    in_memory = {
        contact.user_id
        for contact in Contact.objects.filter(workspace=workspace)
        if matches(rule, snapshot_of(contact), now, definitions)
    }
    assert in_sql == in_memory
    return in_sql


def who(workspace, now, *conditions: dict, match: str = "all") -> set[str]:
    return members(workspace, group(*conditions, match=match), now)


# in / not_in and missing values -------------------------------------------------


def test_in_an_empty_list_matches_nobody(workspace, now):
    person(workspace, "a", now, plan="free")
    person(workspace, "b", now)
    assert who(workspace, now, attribute("plan", "in", [])) == set()


def test_not_in_an_empty_list_matches_everybody(workspace, now):
    person(workspace, "a", now, plan="free")
    person(workspace, "b", now)
    assert who(workspace, now, attribute("plan", "not_in", [])) == {"a", "b"}


def test_in_matches_strings_and_numbers(workspace, now):
    person(workspace, "text", now, plan="pro")
    person(workspace, "number", now, plan=12)
    person(workspace, "numeric-text", now, plan="12.0")
    person(workspace, "other", now, plan="free")
    assert who(workspace, now, attribute("plan", "in", ["pro", 12])) == {
        "text",
        "number",
        "numeric-text",
    }
    assert who(workspace, now, attribute("plan", "in", ["12"])) == set()
    assert who(workspace, now, attribute("plan", "not_in", ["pro", 12])) == {"other"}


def test_negative_operators_hold_for_missing_values(workspace, now):
    person(workspace, "absent", now)
    person(workspace, "nulled", now, plan="pro")
    person(workspace, "nulled", now, plan=None)  # null removes the trait
    person(workspace, "pro", now, plan="pro")
    for negative in (
        attribute("plan", "not_equals", "pro"),
        attribute("plan", "not_in", ["pro"]),
        attribute("plan", "not_contains", "r"),
        attribute("plan", "is_not_set"),
    ):
        assert who(workspace, now, negative) == {"absent", "nulled"}, negative


def test_positive_operators_never_hold_for_missing_values(workspace, now):
    person(workspace, "absent", now)
    for positive in (
        attribute("plan", "is_set"),
        attribute("plan", "equals", False),
        attribute("plan", "contains", ""),
        attribute("plan", "less_than", 1e308),
        attribute("plan", "after", "0001-01-01"),
        attribute("plan", "less_than_days_ago", 10**6),
        attribute("plan", "is_false"),
    ):
        assert who(workspace, now, positive) == set(), positive


def test_an_empty_string_counts_as_set(workspace, now):
    person(workspace, "empty", now, plan="")
    person(workspace, "absent", now)
    assert who(workspace, now, attribute("plan", "is_set")) == {"empty"}
    assert who(workspace, now, attribute("plan", "equals", "")) == {"empty"}
    assert who(workspace, now, attribute("plan", "contains", "")) == {"empty"}


# Numbers -------------------------------------------------------------------------


def test_numeric_strings_equal_numbers(workspace, now):
    person(workspace, "decimal", now, seats="12.0")
    person(workspace, "exponent", now, seats="1.2e1")
    person(workspace, "number", now, seats=12)
    person(workspace, "float", now, seats=12.0)
    person(workspace, "thirteen", now, seats="13")
    expected = {"decimal", "exponent", "number", "float"}
    assert who(workspace, now, attribute("seats", "equals", 12)) == expected
    assert who(workspace, now, attribute("seats", "in", [12.0])) == expected
    assert who(workspace, now, attribute("seats", "not_equals", 12)) == {"thirteen"}


def test_a_string_value_never_equals_a_number(workspace, now):
    person(workspace, "number", now, seats=12)
    person(workspace, "text", now, seats="12")
    assert who(workspace, now, attribute("seats", "equals", "12")) == {"text"}
    assert who(workspace, now, attribute("seats", "equals", "12.0")) == set()


def test_only_plain_decimal_strings_are_numeric(workspace, now):
    for user_id, value in {
        "negative": "-12", "exponent": "1e3", "leading-zero": "007",
        "space": " 1", "plus": "+1", "comma": "1,000", "nan": "NaN", "infinity": "Infinity",
        "hex": "0x10", "overflow": "1e400", "dot": ".5", "trailing-dot": "5.", "word": "ten",
        "arabic-digits": "١٢",
    }.items():  # fmt: skip
        person(workspace, user_id, now, score=value)
    numeric = who(workspace, now, attribute("score", "greater_than", -1e308))
    assert numeric == {"negative", "exponent", "leading-zero"}


def test_number_comparisons(workspace, now):
    person(workspace, "low", now, score=3)
    person(workspace, "twelve", now, score="12")
    person(workspace, "high", now, score=12.5)
    person(workspace, "text", now, score="many")
    assert who(workspace, now, attribute("score", "greater_than", 12)) == {"high"}
    assert who(workspace, now, attribute("score", "greater_than_or_equal", 12)) == {
        "twelve",
        "high",
    }
    assert who(workspace, now, attribute("score", "less_than", 12)) == {"low"}
    assert who(workspace, now, attribute("score", "less_than_or_equal", 12)) == {"low", "twelve"}


def test_numbers_compare_as_doubles(workspace, now):
    # 2**53 + 1 has no double of its own: it is the same number as 2**53.
    person(workspace, "big", now, n=2**53 + 1)
    person(workspace, "tenth", now, n="0.1")
    assert who(workspace, now, attribute("n", "equals", 2**53)) == {"big"}
    assert who(workspace, now, attribute("n", "equals", 0.1)) == {"tenth"}


# Booleans ------------------------------------------------------------------------


def test_booleans(workspace, now):
    person(workspace, "yes", now, beta=True)
    person(workspace, "no", now, beta=False)
    person(workspace, "one", now, beta=1)
    person(workspace, "text", now, beta="true")
    assert who(workspace, now, attribute("beta", "is_true")) == {"yes"}
    assert who(workspace, now, attribute("beta", "is_false")) == {"no"}
    assert who(workspace, now, attribute("beta", "equals", True)) == {"yes"}
    assert who(workspace, now, attribute("beta", "equals", 1)) == {"one"}
    assert who(workspace, now, attribute("beta", "equals", "true")) == {"text"}
    assert who(workspace, now, attribute("beta", "not_equals", False)) == {"yes", "one", "text"}


# Strings -------------------------------------------------------------------------


def test_string_operators_are_case_sensitive(workspace, now):
    # SQLite's LIKE would ignore ASCII case here.
    person(workspace, "upper", now, plan="Enterprise")
    person(workspace, "lower", now, plan="enterprise")
    assert who(workspace, now, attribute("plan", "contains", "Enter")) == {"upper"}
    assert who(workspace, now, attribute("plan", "starts_with", "enter")) == {"lower"}
    assert who(workspace, now, attribute("plan", "ends_with", "PRISE")) == set()
    assert who(workspace, now, attribute("plan", "not_contains", "Enter")) == {"lower"}


def test_string_operators_with_ignore_case(workspace, now):
    person(workspace, "upper", now, plan="Enterprise")
    person(workspace, "lower", now, plan="enterprise")
    person(workspace, "other", now, plan="free")
    both = {"upper", "lower"}
    assert who(workspace, now, attribute("plan", "contains", "TERP", ignore_case=True)) == both
    assert who(workspace, now, attribute("plan", "starts_with", "eNt", ignore_case=True)) == both
    assert who(workspace, now, attribute("plan", "ends_with", "ISE", ignore_case=True)) == both
    assert who(workspace, now, attribute("plan", "equals", "ENTERPRISE", ignore_case=True)) == both
    assert who(workspace, now, attribute("plan", "in", ["FREE"], ignore_case=True)) == {"other"}
    assert who(workspace, now, attribute("plan", "not_equals", "FREE", ignore_case=True)) == both


def test_ignore_case_folds_ascii_letters_only(workspace, now):
    person(workspace, "accented", now, name="Émile")
    person(workspace, "ascii", now, name="EMILE")
    person(workspace, "sharp-s", now, name="straße")
    person(workspace, "dotted-i", now, name="İ")
    assert who(workspace, now, attribute("name", "equals", "émile", ignore_case=True)) == set()
    assert who(workspace, now, attribute("name", "equals", "Émile", ignore_case=True)) == {
        "accented"
    }
    assert who(workspace, now, attribute("name", "equals", "emile", ignore_case=True)) == {"ascii"}
    assert who(workspace, now, attribute("name", "equals", "STRASSE", ignore_case=True)) == set()
    assert who(workspace, now, attribute("name", "equals", "i", ignore_case=True)) == set()
    assert who(workspace, now, attribute("name", "contains", "MILE", ignore_case=True)) == {
        "accented",
        "ascii",
    }


def test_string_operators_never_match_numbers_or_booleans(workspace, now):
    person(workspace, "number", now, code=12)
    person(workspace, "boolean", now, code=True)
    person(workspace, "text", now, code="12")
    assert who(workspace, now, attribute("code", "contains", "1")) == {"text"}
    assert who(workspace, now, attribute("code", "starts_with", "")) == {"text"}
    assert who(workspace, now, attribute("code", "equals", "True")) == set()


def test_list_and_object_traits_are_only_set_or_not(workspace, now):
    person(workspace, "list", now, tags=["a", "b"])
    person(workspace, "object", now, tags={"a": 1})
    person(workspace, "text", now, tags="a")
    assert who(workspace, now, attribute("tags", "is_set")) == {"list", "object", "text"}
    assert who(workspace, now, attribute("tags", "equals", "a")) == {"text"}
    assert who(workspace, now, attribute("tags", "in", ["a", "b"])) == {"text"}
    assert who(workspace, now, attribute("tags", "contains", "a")) == {"text"}
    assert who(workspace, now, attribute("tags", "not_equals", "a")) == {"list", "object"}


# Dates ---------------------------------------------------------------------------


def test_before_and_after_are_strict(workspace, now):
    person(workspace, "at", now, since="2024-01-31T09:00:00Z")
    person(workspace, "earlier", now, since="2024-01-31T08:59:59.999999Z")
    person(workspace, "later", now, since="2024-01-31T09:00:01Z")
    assert who(workspace, now, attribute("since", "before", "2024-01-31T09:00:00Z")) == {"earlier"}
    assert who(workspace, now, attribute("since", "after", "2024-01-31T09:00:00Z")) == {"later"}


def test_offsets_are_honoured(workspace, now):
    person(workspace, "paris", now, since="2022-01-22T13:00:00+02:00")  # 11:00 UTC
    person(workspace, "new-york", now, since="2022-01-22T08:00:00-05:00")  # 13:00 UTC
    assert who(workspace, now, attribute("since", "before", "2022-01-22T11:00:01Z")) == {"paris"}
    assert who(workspace, now, attribute("since", "after", "2022-01-22T10:59:59Z")) == {
        "paris",
        "new-york",
    }
    assert who(workspace, now, attribute("since", "before", "2022-01-22T11:00:00Z")) == set()
    assert who(workspace, now, attribute("since", "after", "2022-01-22T14:59:59+02:00")) == {
        "new-york"
    }


def test_no_offset_means_utc_and_a_bare_date_is_midnight(workspace, now):
    person(workspace, "naive", now, since="2024-03-01T00:00:00")
    person(workspace, "bare", now, since="2024-03-01")
    person(workspace, "zulu", now, since="2024-03-01T00:00Z")
    everyone = {"naive", "bare", "zulu"}
    assert who(workspace, now, attribute("since", "after", "2024-02-29T23:59:59Z")) == everyone
    assert who(workspace, now, attribute("since", "before", "2024-03-01T00:00:00.000001Z")) == (
        everyone
    )


def test_strings_that_are_not_dates_never_compare(workspace, now):
    for user_id, value in {
        "february-30": "2024-02-30", "hour-24": "2024-01-01T24:00:00Z", "space": "2024-01-01 10:00",
        "offset-hours": "2024-01-01T10:00+24:00", "short-year": "24-01-01", "word": "yesterday",
        "number": 20240101,
    }.items():  # fmt: skip
        person(workspace, user_id, now, since=value)
    person(workspace, "leap-day", now, since="2024-02-29")
    assert who(workspace, now, attribute("since", "after", "0001-01-01")) == {"leap-day"}
    assert who(workspace, now, attribute("since", "before", "9999-12-31")) == {"leap-day"}
    assert who(workspace, now, attribute("since", "more_than_days_ago", 0)) == {"leap-day"}


def test_days_ago_at_the_exact_boundary(workspace, now):
    boundary = now - timedelta(days=7)
    person(workspace, "boundary", now, since=boundary.isoformat())
    person(workspace, "just-before", now, since=(boundary - timedelta(microseconds=1)).isoformat())
    person(workspace, "just-after", now, since=(boundary + timedelta(microseconds=1)).isoformat())
    person(workspace, "future", now, since=(now + timedelta(seconds=1)).isoformat())
    person(workspace, "now", now, since=now.isoformat())
    assert who(workspace, now, attribute("since", "more_than_days_ago", 7)) == {"just-before"}
    assert who(workspace, now, attribute("since", "less_than_days_ago", 7)) == {
        "boundary",
        "just-after",
        "now",
    }
    assert who(workspace, now, attribute("since", "less_than_days_ago", 0)) == {"now"}


def test_huge_day_counts_reach_back_to_the_earliest_date(workspace, now):
    # Found by the property test: now − 10**6 days is before year 1 and used to crash.
    person(workspace, "ancient", now, since="0001-01-01")
    person(workspace, "recent", now, since="2026-01-01")
    assert who(workspace, now, attribute("since", "less_than_days_ago", 10**6)) == {
        "ancient",
        "recent",
    }
    assert who(workspace, now, attribute("since", "less_than_days_ago", 10**12)) == {
        "ancient",
        "recent",
    }
    assert who(workspace, now, attribute("since", "more_than_days_ago", 10**6)) == set()


def test_built_in_dates_are_dates(workspace, now):
    person(workspace, "new", now - timedelta(days=3))
    person(workspace, "old", now - timedelta(days=400))
    assert who(workspace, now, attribute("first_seen_at", "less_than_days_ago", 7)) == {"new"}
    assert who(workspace, now, attribute("first_seen_at", "more_than_days_ago", 365)) == {"old"}
    assert who(workspace, now, attribute("last_seen_at", "after", "2026-01-01")) == {"new"}


# Built-in fields and accounts ------------------------------------------------------


def test_built_in_fields(workspace, now):
    identify_contact(
        workspace=workspace,
        user=clean_user({"id": "ann", "email": "ann@example.com", "name": "Ann"}),
        now=now,
    )
    person(workspace, "bob", now)
    assert who(workspace, now, attribute("email", "ends_with", "@example.com")) == {"ann"}
    assert who(workspace, now, attribute("name", "is_not_set")) == {"bob"}
    assert who(workspace, now, attribute("user_id", "in", ["bob", "carl"])) == {"bob"}


def test_account_attributes(workspace, now):
    person(workspace, "big", now, account={"id": "acme", "name": "Acme", "plan": "Enterprise"})
    person(workspace, "colleague", now, account={"id": "acme"})
    person(workspace, "small", now, account={"id": "12", "name": "Tiny", "seats": "3"})
    person(workspace, "alone", now)
    assert who(workspace, now, attribute("account.plan", "equals", "Enterprise")) == {
        "big",
        "colleague",
    }
    assert who(workspace, now, attribute("account.id", "equals", 12)) == {"small"}
    assert who(workspace, now, attribute("account.name", "starts_with", "T")) == {"small"}
    assert who(workspace, now, attribute("account.seats", "less_than", 5)) == {"small"}
    assert who(workspace, now, attribute("account.plan", "not_equals", "Enterprise")) == {
        "small",
        "alone",
    }
    assert who(workspace, now, attribute("account.id", "is_not_set")) == {"alone"}


# Events --------------------------------------------------------------------------


def events(contact: Contact, name: str, *moments) -> None:
    Event.objects.bulk_create(
        Event(workspace_id=contact.workspace_id, contact=contact, name=name, occurred_at=moment)
        for moment in moments
    )


def test_event_counts_and_windows(workspace, now):
    boundary = now - timedelta(days=30)
    power = person(workspace, "power", now)
    events(power, "report_exported", *[now - timedelta(days=day) for day in range(5)])
    edge = person(workspace, "edge", now)
    events(edge, "report_exported", boundary, boundary, boundary, boundary, boundary)
    stale = person(workspace, "stale", now)
    events(stale, "report_exported", *[boundary - timedelta(microseconds=1)] * 5)
    future = person(workspace, "future", now)
    events(future, "report_exported", *[now + timedelta(seconds=1)] * 5)
    person(workspace, "never", now)
    exported = "report_exported"
    last_30 = {"within_days": 30}
    assert who(workspace, now, event(exported, "at_least", 5, **last_30)) == {"power", "edge"}
    assert who(workspace, now, event(exported, "at_least", 5)) == {
        "power",
        "edge",
        "stale",
        "future",
    }
    assert who(workspace, now, event(exported, "at_most", 4, **last_30)) == {
        "stale",
        "future",
        "never",
    }
    assert who(workspace, now, event(exported, "exactly", 5, within_days=0)) == set()
    assert who(workspace, now, event(exported, "exactly", 1, within_days=0)) == {"power"}


def test_never_did_it_is_exactly_zero(workspace, now):
    did = person(workspace, "did", now)
    events(did, "report_exported", now)
    other = person(workspace, "other-event", now)
    events(other, "login", now)
    person(workspace, "nothing", now)
    assert who(workspace, now, event("report_exported", "exactly", 0)) == {"other-event", "nothing"}
    assert who(workspace, now, event("report_exported", "at_least", 0)) == {
        "did",
        "other-event",
        "nothing",
    }


def test_huge_event_counts_and_windows(workspace, now):
    # Found by the property test: an OFFSET beyond 64 bits and a window before year 1.
    did = person(workspace, "did", now)
    events(did, "login", now - timedelta(days=365 * 100))
    person(workspace, "nothing", now)
    assert who(workspace, now, event("login", "at_least", 10**20)) == set()
    assert who(workspace, now, event("login", "at_most", 10**20)) == {"did", "nothing"}
    assert who(workspace, now, event("login", "exactly", 1, within_days=10**12)) == {"did"}


# Surveys and answers --------------------------------------------------------------


def test_survey_interactions(workspace, now):
    first, second = SurveyFactory(workspace=workspace), SurveyFactory(workspace=workspace)
    shown = person(workspace, "shown", now)
    record_display(survey=first, contact=shown, now=now - timedelta(days=10))
    dismissed = person(workspace, "dismissed", now)
    display = record_display(survey=first, contact=dismissed, now=now - timedelta(days=1))
    dismiss_display(display=display, now=now - timedelta(days=1))
    completed = person(workspace, "completed", now)
    display = record_display(survey=second, contact=completed, now=now - timedelta(days=2))
    record_answers(display=display, answers={"nps": 10}, completed=True, now=now)
    person(workspace, "untouched", now)
    assert who(workspace, now, survey(first.pk, "seen")) == {"shown", "dismissed"}
    assert who(workspace, now, survey("any", "seen")) == {"shown", "dismissed", "completed"}
    assert who(workspace, now, survey(first.pk, "seen", within_days=7)) == {"dismissed"}
    assert who(workspace, now, survey(first.pk, "not_seen")) == {"completed", "untouched"}
    assert who(workspace, now, survey("any", "dismissed")) == {"dismissed"}
    assert who(workspace, now, survey("any", "completed", within_days=0)) == {"completed"}
    assert who(workspace, now, survey(second.pk, "not_completed")) == {
        "shown",
        "dismissed",
        "untouched",
    }


@pytest.fixture
def poll(workspace):
    return SurveyFactory(
        workspace=workspace,
        questions=[
            {"key": "nps", "type": "nps", "text": "Recommend us?"},
            {
                "key": "features",
                "type": "multiple_choice",
                "text": "Which?",
                "choices": ["Reports", "Export", "Émile"],
            },
        ],
    )


def test_answer_conditions_read_the_latest_answer(workspace, now, poll):
    promoter = person(workspace, "promoter", now)
    record_response(poll, promoter, {"nps": 3}, now - timedelta(days=2), completed=True)
    # Not completed: still counts.
    record_response(poll, promoter, {"nps": 10}, now - timedelta(days=1))
    detractor = person(workspace, "detractor", now)
    record_response(poll, detractor, {"nps": 9}, now - timedelta(days=2), completed=True)
    record_response(poll, detractor, {"nps": 2}, now - timedelta(days=1), completed=True)
    person(workspace, "silent", now)
    nps = answer(poll.pk, "nps", "greater_than_or_equal", 9)
    assert who(workspace, now, nps) == {"promoter"}
    not_promoter = answer(poll.pk, "nps", "not_equals", 10)
    assert who(workspace, now, not_promoter) == {"detractor", "silent"}
    assert who(workspace, now, answer(poll.pk, "nps", "is_set")) == {"promoter", "detractor"}


def test_multiple_choice_answers_match_when_any_option_does(workspace, now, poll):
    both = person(workspace, "both", now)
    record_response(poll, both, {"features": ["Reports", "Export"]}, now)
    reports = person(workspace, "reports", now)
    record_response(poll, reports, {"features": ["Reports"]}, now)
    accented = person(workspace, "accented", now)
    record_response(poll, accented, {"features": ["Émile"]}, now)
    empty = person(workspace, "none-chosen", now)
    record_response(poll, empty, {"features": []}, now)
    person(workspace, "silent", now)

    def features(operator, *value, **options):
        return answer(poll.pk, "features", operator, *value, **options)

    assert who(workspace, now, features("equals", "Export")) == {"both"}
    assert who(workspace, now, features("in", ["Export", "Émile"])) == {"both", "accented"}
    assert who(workspace, now, features("not_equals", "Reports")) == {
        "accented",
        "none-chosen",
        "silent",
    }
    assert who(workspace, now, features("not_in", [])) == {
        "both",
        "reports",
        "accented",
        "none-chosen",
        "silent",
    }
    assert who(workspace, now, features("contains", "port")) == {"both", "reports"}
    assert who(workspace, now, features("equals", "émile", ignore_case=True)) == set()
    assert who(workspace, now, features("is_set")) == {"both", "reports", "accented", "none-chosen"}


# Segment references and groups ------------------------------------------------------


def test_segment_references(workspace, now):
    person(workspace, "enterprise", now, plan="Enterprise")
    person(workspace, "employee", now, plan="free", employee=True)
    person(workspace, "free", now, plan="free")
    customers = SegmentFactory(
        workspace=workspace, rules=group(attribute("plan", "equals", "Enterprise"))
    )
    staff = ManualSegmentFactory(workspace=workspace)
    add_members(staff, ["employee"])
    in_customers = {"type": "segment", "segment": customers.pk, "operator": "in"}
    not_staff = {"type": "segment", "segment": staff.pk, "operator": "not_in"}
    assert who(workspace, now, in_customers) == {"enterprise"}
    assert who(workspace, now, not_staff) == {"enterprise", "free"}
    assert who(workspace, now, in_customers | {"operator": "not_in"}, not_staff) == {"free"}


def test_empty_groups(workspace, now):
    person(workspace, "a", now)
    person(workspace, "b", now, plan="pro")
    assert members(workspace, group(match="all"), now) == {"a", "b"}
    assert members(workspace, group(match="none"), now) == {"a", "b"}
    assert members(workspace, group(match="any"), now) == set()
    nested = group(group(match="any"), match="none")
    assert members(workspace, nested, now) == {"a", "b"}


def test_a_segment_with_an_empty_top_group_matches_every_contact(workspace, now):
    person(workspace, "a", now)
    person(workspace, "b", now, plan="pro")
    everyone = SegmentFactory(workspace=workspace, rules=group())
    reference = {"type": "segment", "segment": everyone.pk, "operator": "in"}
    assert who(workspace, now, reference) == {"a", "b"}
    assert who(workspace, now, reference | {"operator": "not_in"}) == set()


def test_none_means_no_condition_holds(workspace, now):
    person(workspace, "employee", now, employee=True)
    person(workspace, "customer", now, employee=False)
    person(workspace, "unknown", now)
    employees = attribute("employee", "is_true")
    assert who(workspace, now, employees, match="none") == {"customer", "unknown"}
    assert who(workspace, now, employees, attribute("employee", "is_set"), match="any") == {
        "employee",
        "customer",
    }


# The audiences of SPEC §1, as docs/segments.md writes them ---------------------------


def test_the_audiences_product_managers_ask_for(workspace, now):
    veteran = person(
        workspace,
        "veteran",
        now - timedelta(days=400),
        signed_up_at=(now - timedelta(days=45)).isoformat(),
        account={"id": "acme", "plan": "ENTERPRISE"},
    )
    events(veteran, "report_exported", *[now - timedelta(days=day) for day in range(0, 25, 5)])
    person(workspace, "newcomer", now - timedelta(days=2), signed_up_at=now.isoformat())
    person(
        workspace,
        "employee",
        now - timedelta(days=30),
        email="eve@ourcompany.com",
        account={"id": "us", "plan": "free"},
    )
    signed_up = SegmentFactory(
        workspace=workspace, rules=group(attribute("signed_up_at", "more_than_days_ago", 30))
    )
    power = SegmentFactory(
        workspace=workspace,
        rules=group(event("report_exported", "at_least", 5, within_days=30)),
    )
    assert members(workspace, signed_up.rules, now) == {"veteran"}
    assert who(workspace, now, attribute("first_seen_at", "less_than_days_ago", 7)) == {"newcomer"}
    assert who(workspace, now, attribute("first_seen_at", "more_than_days_ago", 365)) == {"veteran"}
    enterprise = attribute("account.plan", "equals", "enterprise", ignore_case=True)
    assert who(workspace, now, enterprise) == {"veteran"}
    assert members(workspace, power.rules, now) == {"veteran"}
    both = [{"type": "segment", "segment": s.pk, "operator": "in"} for s in (signed_up, power)]
    assert who(workspace, now, *both) == {"veteran"}
    employees = attribute("email", "ends_with", "@ourcompany.com", ignore_case=True)
    assert who(workspace, now, employees, match="none") == {"veteran", "newcomer"}

"""Set-based counts (segments.sets, PostgreSQL): the worst legal shapes agree with memory.

Every rule here is counted by `rule_count` (set-based on PostgreSQL, contact by
contact on SQLite) and compared with the in-memory evaluator and the members SQL,
on contacts built so that each condition holds for some and fails for others.
The last tests check the shape on PostgreSQL: one query, one pass per key and per
event window, and the text indexes of migrations 0008 and 0014 in use.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from segments.ingest import clean_user, identify_contact
from segments.memory import matches
from segments.models import Contact, Event, Segment
from segments.partitions import ensure_months
from segments.retention import drop_old_events
from segments.services import add_members, rule_count, segment_definitions, snapshot_of
from segments.sets import SetCompiler, set_count
from segments.sql import compile_rule
from targeting.anonymous import merge_visitor
from tests.conftest import NOW
from tests.factories import SegmentFactory
from tests.rules import attribute, group, reference

pytestmark = pytest.mark.django_db

LONG = "x" * 9_990 + "Enterprise"
PEOPLE = {
    "u1": {"role": "Product Manager", "plan": "pro", "email": "ann@acme.io", "seats": 3},
    "u2": {"role": "Designer", "plan": "Pro", "email": "bob@EXAMPLE.com", "seats": 12},
    "u3": {"role": "50%_off\\sale", "plan": LONG, "email": "cy@acme.io"},
    "u4": {"role": "manager", "plan": "free", "seats": "12"},
    "u5": {"plan": "enterprise", "email": "dee@zz7q.org"},
    "u6": {},
}
# name: minutes ago of each event (counts 0 to 6, some outside a 7-day window)
EVENTS = {
    "u1": {"login": [5, 60, 600], "export": [10]},
    "u2": {"login": [5, 60 * 24 * 10, 60 * 24 * 20, 60 * 24 * 30, 1, 2]},
    "u3": {"export": [1, 2, 3]},
    "u4": {"login": [60 * 24 * 8]},
    "u5": {"invite": [1]},
}


def event(name: str, operator: str, value: int, within_days=None) -> dict:
    condition = {"type": "event", "event": name, "operator": operator, "value": value}
    if within_days is not None:
        condition["within_days"] = within_days
    return condition


@pytest.fixture
def people(workspace, other_workspace) -> dict[str, Contact]:
    outsider = identify_contact(
        workspace=other_workspace,
        user=clean_user({"id": "u1", "role": "Product Manager", "plan": "pro"}),
        now=NOW,
    )
    Event.objects.create(workspace=other_workspace, contact=outsider, name="login", occurred_at=NOW)
    contacts = {}
    for user_id, traits in PEOPLE.items():
        user = clean_user({"id": user_id, **traits})
        contacts[user_id] = identify_contact(workspace=workspace, user=user, now=NOW)
    for user_id, names in EVENTS.items():
        for name, minutes in names.items():
            for ago in minutes:
                Event.objects.create(
                    workspace=workspace,
                    contact=contacts[user_id],
                    name=name,
                    occurred_at=NOW - timedelta(minutes=ago),
                )
    return contacts


postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="set-based counts are PostgreSQL's"
)


def counted(workspace, rule: dict) -> set[str]:
    """The rule's members by memory, checked against the members SQL and the count."""
    definitions = segment_definitions(workspace.pk)
    in_memory = {
        contact.user_id
        for contact in Contact.objects.filter(workspace=workspace).select_related("account")
        if matches(rule, snapshot_of(contact), NOW, definitions)
    }
    condition = Q(workspace=workspace) & compile_rule(rule, NOW, definitions)
    in_sql = set(Contact.objects.filter(condition).values_list("user_id", flat=True))
    assert in_sql == in_memory, rule
    assert rule_count(workspace.pk, rule, NOW) == len(in_memory), rule
    if connection.vendor == "postgresql":  # narrow rules too, which rule_count counts otherwise
        assert set_count(workspace.pk, rule, NOW, definitions) == len(in_memory), rule
    return in_memory


@pytest.mark.parametrize("ignore_case", [True, False])
def test_two_hundred_substrings_on_one_key(workspace, people, ignore_case):
    missing = [attribute("email", "not_contains", f"ZZ{i}Q", ignore_case=ignore_case)
               for i in range(200)]  # fmt: skip
    expected = {"u1", "u2", "u3", "u4", "u6"} if ignore_case else set(PEOPLE)
    assert counted(workspace, group(*missing)) == expected
    found = [attribute("role", "contains", f"qq{i}", ignore_case=ignore_case) for i in range(199)]
    found.append(attribute("role", "contains", "MANAGER", ignore_case=ignore_case))
    expected = {"u1", "u4"} if ignore_case else set()
    assert counted(workspace, group(*found, match="any")) == expected
    assert counted(workspace, group(*found, match="none")) == set(PEOPLE) - expected


def test_like_wildcards_in_values_match_only_themselves(workspace, people):
    wildcards = [("50%", {"u3"}), ("%_", {"u3"}), ("_", {"u3"}), ("\\s", {"u3"}), ("%", {"u3"}),
                 ("0%_o", {"u3"}), ("5_%", set()), ("\\", {"u3"})]  # fmt: skip
    for value, expected in wildcards:
        for operator in ("contains", "starts_with", "ends_with"):
            rule = group(attribute("role", operator, value))
            found = counted(workspace, rule)
            if operator == "contains":
                assert found == expected, value
    assert counted(workspace, group(attribute("role", "starts_with", "50%_"))) == {"u3"}
    assert counted(workspace, group(attribute("role", "ends_with", "\\sale"))) == {"u3"}


def test_substrings_on_several_keys_in_every_kind_of_group(workspace, people):
    keys = ["role", "plan", "email", "seats", "nope"]
    conditions = [attribute(keys[i % 5], "contains", f"qq{i}") for i in range(195)]
    conditions += [attribute("plan", "contains", "PRO", ignore_case=True),
                   attribute("email", "ends_with", ".io"),
                   attribute("role", "not_contains", "er"),
                   attribute("seats", "is_set"),
                   attribute("plan", "not_contains", "x")]  # fmt: skip
    for match in ("all", "any", "none"):
        counted(workspace, group(*conditions, match=match))


def test_text_equality_and_lists_read_the_digest_and_decide_on_the_text(workspace, people):
    assert counted(workspace, group(attribute("plan", "equals", LONG))) == {"u3"}
    assert counted(workspace, group(attribute("plan", "equals", LONG.upper()))) == set()
    upper = attribute("plan", "equals", LONG.upper(), ignore_case=True)
    assert counted(workspace, group(upper)) == {"u3"}
    assert counted(workspace, group(attribute("plan", "equals", "pro"))) == {"u1"}
    assert counted(workspace, group(attribute("plan", "equals", "PRO", ignore_case=True))) == {
        "u1",
        "u2",
    }
    assert counted(workspace, group(attribute("seats", "equals", 12))) == {"u2", "u4"}
    values = [f"v{i}" for i in range(995)] + ["free", "Enterprise", 3, 12.0, LONG]
    assert counted(workspace, group(attribute("plan", "in", values))) == {"u3", "u4"}
    assert counted(workspace, group(attribute("seats", "in", values))) == {"u1", "u2", "u4"}
    lists = [attribute(key, "not_in", values, ignore_case=True)
             for key in ("plan", "seats", "role", "email", "nope")]  # fmt: skip
    for match in ("all", "any", "none"):
        counted(workspace, group(*lists, match=match))
    assert counted(workspace, group(attribute("plan", "in", []))) == set()
    assert counted(workspace, group(attribute("plan", "not_in", []))) == set(PEOPLE)


@pytest.mark.parametrize("match", ["all", "any", "none"])
def test_event_counts_of_many_names_and_windows(workspace, people, match):
    conditions = []
    for i in range(60):
        name = ["login", "export", "invite", "never"][i % 4]
        window = [None, 7, 1, 30, 10**6][i % 5]
        operator = ["at_least", "at_most", "exactly"][i % 3]
        conditions.append(event(name, operator, i % 7, window))
    conditions += [event("login", "at_least", 1000 + i) for i in range(60)]
    conditions += [event("login", "at_most", 2**62 + i) for i in range(3)]
    conditions += [event("export", "exactly", 2**63 + 5), event("login", "at_least", 0)]
    counted(workspace, group(*conditions, match=match))
    for condition in conditions[:12]:
        counted(workspace, group(condition, match=match))


def test_event_counts_beside_other_conditions_and_nested_groups(workspace, people):
    rule = group(
        event("login", "at_least", 2),
        group(event("export", "at_most", 0), attribute("plan", "equals", "free"), match="any"),
        group(event("login", "exactly", 0, 7), event("invite", "at_least", 1), match="none"),
    )
    assert counted(workspace, rule) == {"u2"}
    assert counted(workspace, group(*rule["conditions"], match="any")) == set(PEOPLE) - {"u3"}


def test_referenced_segments_manual_lists_and_missing_ones(workspace, people):
    pro = SegmentFactory(
        workspace=workspace, rules=group(attribute("plan", "equals", "pro", ignore_case=True))
    )
    manual = SegmentFactory(workspace=workspace, kind=Segment.MANUAL, rules=None)
    add_members(manual, ["u2", "u5"])
    below = pro
    for _ in range(5):  # each level names the one below twice: 2**5 within the bound
        rules = group(reference(below.pk), reference(below.pk, "not_in"), reference(manual.pk),
                      match="any")  # fmt: skip
        below = SegmentFactory(workspace=workspace, rules=rules)
    top = group(reference(below.pk), attribute("seats", "less_than", 10))
    assert counted(workspace, top) == {"u1"}
    assert counted(workspace, group(reference(pro.pk, "not_in"), reference(manual.pk))) == {"u5"}
    assert counted(workspace, group(reference(10**9))) == set()
    assert counted(workspace, group(reference(10**9, "not_in"))) == set(PEOPLE)
    everyone_but = group(reference(manual.pk, "not_in"), reference(pro.pk, "not_in"))
    assert counted(workspace, everyone_but) == {"u3", "u4", "u6"}
    assert counted(workspace, group(everyone_but, match="none")) == {"u1", "u2", "u5"}


@postgresql
def test_a_set_and_its_complement_collapse_before_any_sql(workspace, people):
    pro = SegmentFactory(workspace=workspace, rules=group(attribute("plan", "equals", "pro")))
    below = pro
    for _ in range(8):  # 2**8 references expanded: in it or not in it, at every level
        rules = group(reference(below.pk), reference(below.pk, "not_in"), match="any")
        below = SegmentFactory(workspace=workspace, rules=rules)
    seats = [attribute("seats", "less_than", 10 + i) for i in range(10)]
    definitions = segment_definitions(workspace.pk)

    sql, _ = SetCompiler(workspace.pk, NOW, definitions).count_query(
        group(reference(below.pk), *seats)
    )
    assert "WITH" not in sql and "segment_" not in sql
    assert counted(workspace, group(reference(below.pk), *seats)) == {"u1"}
    nobody = group(reference(pro.pk), reference(pro.pk, "not_in"), *seats)
    assert SetCompiler(workspace.pk, NOW, definitions).count_query(nobody) == 0
    assert counted(workspace, nobody) == set()
    twice = group(reference(pro.pk), reference(pro.pk), *seats)
    sql, _ = SetCompiler(workspace.pk, NOW, definitions).count_query(twice)
    assert sql.count('FROM "segment_') == 1
    assert counted(workspace, twice) == {"u1"}


def test_a_contact_in_several_parts_of_an_any_group_is_counted_once(workspace, people):
    # u1 meets all three; the parts are read as one UNION ALL, deduplicated by the count.
    parts = (
        attribute("plan", "equals", "pro"),
        attribute("role", "equals", "Product Manager"),
        attribute("email", "contains", "acme"),
    )
    assert counted(workspace, group(*parts, match="any")) == {"u1", "u3"}
    either = SegmentFactory(workspace=workspace, rules=group(*parts, match="any"))
    nested = group(reference(either.pk), attribute("seats", "greater_than", 1))
    assert counted(workspace, nested) == {"u1"}
    assert counted(workspace, group(reference(either.pk), match="none")) == {"u2", "u4", "u5", "u6"}
    if connection.vendor == "postgresql":
        compiler = SetCompiler(workspace.pk, NOW, segment_definitions(workspace.pk))
        sql, _ = compiler.count_query(group(*parts, match="any"))
        assert "UNION ALL" in sql and "DISTINCT" in sql


def test_empty_groups_and_constant_answers(workspace, people):
    assert counted(workspace, group()) == set(PEOPLE)
    assert counted(workspace, group(match="any")) == set()
    assert counted(workspace, group(match="none")) == set(PEOPLE)
    assert counted(workspace, group(event("login", "at_least", 0))) == set(PEOPLE)
    assert counted(workspace, group(attribute("nope", "is_not_set"))) == set(PEOPLE)


def test_an_anonymous_visitor_is_in_no_count(workspace, people):
    # A visitor (docs/decisions.md) has events but no user id: no set may hold it, and
    # "everyone but" counts start from the identified contacts.
    visitor = Contact.all_contacts.create(workspace=workspace, anonymous_id="v" * 32)
    for name in ["login", "login", "export", "invite"]:
        Event.objects.create(workspace=workspace, contact=visitor, name=name, occurred_at=NOW)
    wide = [event("login", "at_least", 1000 + i) for i in range(10)]

    assert counted(workspace, group(event("login", "at_least", 1))) == {"u1", "u2", "u4"}
    assert counted(workspace, group(event("invite", "at_least", 1), *wide, match="any")) == {"u5"}
    assert counted(workspace, group(event("login", "at_least", 2), match="none")) == {
        "u3", "u4", "u5", "u6"}  # fmt: skip
    assert counted(workspace, group(attribute("plan", "equals", "pro"), *wide, match="none")) == {
        "u2", "u3", "u4", "u5", "u6"}  # fmt: skip


def test_counts_agree_after_events_are_deleted_merged_and_dropped(workspace, people):
    old = [("u4", "export", 1), ("u4", "export", 2), ("u4", "export", 2), ("u1", "login", 2)]
    for user_id, name, month in old:  # months past the retention asked for below
        moment = datetime(2026, month, 10, tzinfo=UTC)
        Event.objects.create(
            workspace=workspace, contact=people[user_id], name=name, occurred_at=moment
        )
    over_all_time = [
        event(name, operator, n)
        for name in ("login", "export", "invite")
        for operator in ("at_least", "at_most", "exactly")
        for n in range(4)
    ]
    windowed = [
        event("login", "at_least", 2, 7),
        event("login", "exactly", 1, 30),
        event("export", "at_least", 1, 7),
        event("invite", "at_least", 1, 30),
    ]
    mixed = [*windowed, event("export", "at_most", 1, 7)]

    def agree() -> None:
        for conditions in (over_all_time, windowed, mixed, over_all_time + windowed):
            for match in ("all", "any", "none"):
                counted(workspace, group(*conditions, match=match))
        for condition in over_all_time + windowed:
            counted(workspace, group(condition))

    agree()
    logins = Event.objects.filter(contact=people["u2"], name="login").order_by("occurred_at")
    Event.objects.filter(pk__in=[e.pk for e in logins[:3]]).delete()
    agree()
    visitor = Contact.all_contacts.create(workspace=workspace, anonymous_id="v" * 32)
    for name in ["login", "login", "invite"]:
        Event.objects.create(workspace=workspace, contact=visitor, name=name, occurred_at=NOW)
    agree()
    merge_visitor(contact=people["u6"], anonymous_id="v" * 32)
    assert counted(workspace, group(event("login", "exactly", 2))) == {"u6"}
    agree()
    if connection.vendor == "postgresql":
        ensure_months(
            connection, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
        )
        with connection.cursor() as cursor:  # a partition with pending checks cannot be dropped
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert counted(workspace, group(event("export", "at_least", 3))) == {"u3", "u4"}
    drop_old_events(now=NOW, months=2)
    assert counted(workspace, group(event("export", "at_least", 3))) == {"u3"}
    agree()


@postgresql
def test_a_wide_rule_is_one_query_reading_each_key_and_event_window_once(workspace, people):
    keys = ["role", "plan", "email", "seats", "country"]
    rule = group(
        *[attribute(keys[i % 5], "contains", f"qq{i}") for i in range(100)],
        *[event(["login", "export"][i % 2], "at_least", 1000 + i) for i in range(100)],
        *[event(["login", "export"][i % 2], "at_least", 1000 + i, 7) for i in range(100)],
        match="any",
    )
    with CaptureQueriesContext(connection) as queries:
        assert rule_count(workspace.pk, rule, NOW) == 0
    counts = [q["sql"] for q in queries if "count(" in q["sql"].lower()]
    assert len(counts) == 1
    assert counts[0].count('FROM "segments_contactvalue"') == 5
    # Counts over all time read the totals once for every name, the window once more
    # (their moments), and names the events once: those of a contact with more events
    # in the window than moments.
    assert counts[0].count('FROM "segments_eventtotal"') == 2
    assert counts[0].count('FROM "segments_event"') == 1
    assert "EXISTS" not in counts[0]


# The indexes that lead with (workspace, key) but do not hold the contact. On tables of
# six contacts whose rows are not yet all-visible, an index-only scan costs what a plain
# scan of one of these does, and the planner may take either; forbidding plain index
# scans instead (enable_indexscan) also penalizes index-only ones, and then a sequential
# scan can win. Dropped inside the test's transaction, which puts them back.
COVERING_RIVALS = ["contactvalue_text_digest", "contactvalue_num", "contactvalue_date"]


def plan_without(sql: str, params, rivals: list[str] = ()) -> str:
    """EXPLAIN's plan of the query with sequential and bitmap scans off (six contacts make
    them cheapest) and the `rivals` indexes dropped: the plan shows which index can be used."""
    with transaction.atomic(), connection.cursor() as cursor:
        for method in ("seqscan", "bitmapscan"):
            cursor.execute(f"SET LOCAL enable_{method} = off")
        for index in rivals:
            cursor.execute(f"DROP INDEX {index}")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
        return plan


@postgresql
@pytest.mark.parametrize(
    ("condition", "index"),
    [
        (
            attribute("plan", "equals", "enterprise"),
            "Index Only Scan using contactvalue_short_text",
        ),
        (
            attribute("plan", "in", ["pro", "free"], ignore_case=True),
            "Index Only Scan using contactvalue_short_folded",
        ),
        (attribute("plan", "equals", LONG), "contactvalue_text_digest"),
        (attribute("plan", "equals", "y" * 201, ignore_case=True), "contactvalue_text_digest"),
    ],
)
def test_text_equality_reads_the_short_text_index_alone_or_the_digest(
    workspace, people, condition, index
):
    sql, params = SetCompiler(workspace.pk, NOW, segment_definitions(workspace.pk)).count_query(
        group(condition)
    )
    covering = index.startswith("Index Only Scan")
    plan = plan_without(sql, params, COVERING_RIVALS if covering else [])
    assert index in plan, plan


def test_texts_either_side_of_the_short_index_length(workspace, people):
    # 200 characters are in the short-text index, 201 are not: equality finds both.
    edge = {"u1": "a" * 199 + "B", "u2": "a" * 200 + "B", "u4": "A" * 199 + "b"}
    for user_id, plan in edge.items():
        identify_contact(
            workspace=workspace, user=clean_user({"id": user_id, "plan": plan}), now=NOW
        )
    assert counted(workspace, group(attribute("plan", "equals", edge["u1"]))) == {"u1"}
    assert counted(workspace, group(attribute("plan", "equals", edge["u2"]))) == {"u2"}
    folded = attribute("plan", "equals", edge["u1"].upper(), ignore_case=True)
    assert counted(workspace, group(folded)) == {"u1", "u4"}
    longer = attribute("plan", "equals", edge["u2"].lower(), ignore_case=True)
    assert counted(workspace, group(longer)) == {"u2"}
    mixed = attribute("plan", "in", [edge["u1"], edge["u2"], "free"])
    assert counted(workspace, group(mixed)) == {"u1", "u2"}
    assert counted(workspace, group(attribute("plan", "not_in", [edge["u2"], "x"]))) == {
        "u1", "u3", "u4", "u5", "u6"
    }  # fmt: skip


@postgresql
def test_a_rule_of_few_conditions_is_counted_with_sets_too(workspace, people):
    # Since the short-text indexes and the moments, sets beat probing each contact for
    # the dashboard's typical rules too (docs/benchmarks.md): no EXISTS per contact.
    rule = group(attribute("plan", "equals", "pro"), event("login", "at_least", 2, within_days=7))
    with CaptureQueriesContext(connection) as queries:
        assert rule_count(workspace.pk, rule, NOW) == 1
    counts = [q["sql"] for q in queries if "count(" in q["sql"].lower()]
    assert counts and all("EXISTS" not in sql for sql in counts), counts


# Windowed counts from the totals' moments (segments.totals.MOMENTS): the exact and
# the fallback side of every boundary. Minutes from NOW of each contact's events.
DAY = 24 * 60
BURSTS = {
    "b1": {"login": [10 * i for i in range(20)]},  # more events in the window than moments
    "b2": {"login": [10 * i for i in range(16)]},  # as many as moments
    "b3": {"login": [10 * i for i in range(16)] + [8 * DAY]},  # one more, before 7 days
    "b4": {"login": [-10 * i - 10 for i in range(16)] + [5, 6, 7]},  # future, then the window
    "b5": {"login": [7 * DAY] * 18, "export": [7 * DAY + 1] * 3},  # ties at the window's start
    "b6": {"login": [0] * 3 + [-1] * 14},  # ties at now, and just after it
    "b7": {"login": [40 * DAY] * 5 + [1, 2], "export": [30 * DAY] * 17},
}


@pytest.fixture
def bursts(workspace) -> dict[str, Contact]:
    contacts = {}
    for user_id, names in BURSTS.items():
        contact = identify_contact(workspace=workspace, user=clean_user({"id": user_id}), now=NOW)
        contacts[user_id] = contact
        Event.objects.bulk_create(
            Event(workspace=workspace, contact=contact, name=name,
                  occurred_at=NOW - timedelta(minutes=ago))
            for name, minutes in names.items() for ago in minutes
        )  # fmt: skip
    identify_contact(workspace=workspace, user=clean_user({"id": "none"}), now=NOW)
    return contacts


def _windowed_rules() -> list[dict]:
    rules = []
    for window in (0, 7, 30):
        conditions = [
            event(name, operator, value, window)
            for name in ("login", "export")
            for operator in ("at_least", "at_most", "exactly")
            for value in (0, 1, 3, 15, 16, 17, 18, 20)
        ]
        rules += [group(condition) for condition in conditions[::3]]
        rules += [group(*conditions, match=match) for match in ("all", "any", "none")]
        # Two names each asked twice: merged per name, and not.
        pairs = [
            event("login", "at_least", 16, window),
            event("login", "at_most", 17, window),
            event("export", "exactly", 3, window),
            event("export", "at_most", 0, window),
        ]
        rules += [group(*pairs, match=match) for match in ("all", "any", "none")]
    return rules


def test_windowed_counts_agree_across_the_moments_boundary(workspace, bursts):
    def agree() -> None:
        for rule in _windowed_rules():
            counted(workspace, rule)

    agree()
    assert counted(workspace, group(event("login", "at_least", 17, 7))) == {"b1", "b5"}
    assert counted(workspace, group(event("login", "exactly", 16, 7))) == {"b2", "b3"}
    assert counted(workspace, group(event("login", "exactly", 3, 7))) == {"b4", "b6"}
    assert counted(workspace, group(event("login", "exactly", 18, 7))) == {"b5"}
    # Deleting events (the contacts' newest, and a whole contact), merging a visitor's,
    # and dropping old months change which side of the boundary each count is on.
    Event.objects.filter(
        contact=bursts["b1"], occurred_at__gte=NOW - timedelta(minutes=30)
    ).delete()
    Event.objects.filter(contact=bursts["b3"]).order_by("-occurred_at")[:1].get().delete()
    bursts["b6"].delete()
    agree()
    visitor = Contact.all_contacts.create(workspace=workspace, anonymous_id="v" * 32)
    Event.objects.bulk_create(
        Event(workspace=workspace, contact=visitor, name="login", occurred_at=NOW) for _ in range(5)
    )
    merge_visitor(contact=bursts["b7"], anonymous_id="v" * 32)
    assert counted(workspace, group(event("login", "exactly", 7, 7))) == {"b7"}
    agree()
    drop_old_events(now=NOW, months=1)
    agree()


def test_substring_tests_find_texts_either_side_of_the_short_index_length(workspace, people):
    # 200 characters are in the short-text indexes, 201 are not: a substring test of one
    # key reads the two apart, and finds both.
    edge = {"u1": "a" * 195 + "Lead", "u2": "a" * 197 + "Lead", "u4": "Lead" + "A" * 9_000}
    for user_id, role in edge.items():
        identify_contact(
            workspace=workspace, user=clean_user({"id": user_id, "role": role}), now=NOW
        )
    for ignore_case, expected in ((False, {"u1", "u2", "u4"}), (True, {"u1", "u2", "u4"})):
        found = attribute(
            "role", "contains", "Lead" if not ignore_case else "lEAD", ignore_case=ignore_case
        )
        assert counted(workspace, group(found)) == expected
        missing = attribute("role", "not_contains", "Lead", ignore_case=ignore_case)
        assert counted(workspace, group(missing)) == set(PEOPLE) - expected
    assert counted(workspace, group(attribute("role", "starts_with", "Lead"))) == {"u4"}
    assert counted(workspace, group(attribute("role", "ends_with", "Lead"))) == {"u1", "u2"}
    either = [attribute("role", "contains", "Lead"), attribute("role", "ends_with", "sale")]
    assert counted(workspace, group(*either, match="any")) == {"u1", "u2", "u3", "u4"}


@postgresql
@pytest.mark.parametrize(
    ("ignore_case", "index"),
    [(True, "contactvalue_short_folded"), (False, "contactvalue_short_text")],
)
def test_a_substring_test_reads_short_texts_from_the_index_alone(
    workspace, people, ignore_case, index
):
    rule = group(attribute("role", "contains", "MANAGER", ignore_case=ignore_case))
    sql, params = SetCompiler(workspace.pk, NOW, segment_definitions(workspace.pk)).count_query(
        rule
    )
    plan = plan_without(sql, params, COVERING_RIVALS)
    assert f"Index Only Scan using {index}" in plan, plan


def test_booleans_and_numbers_are_counted_as_memory_says(workspace, people):
    admins = {"u1": True, "u2": False, "u5": "yes"}
    for user_id, value in admins.items():
        user = clean_user({"id": user_id, **PEOPLE[user_id], "is_admin": value})
        identify_contact(workspace=workspace, user=user, now=NOW)
    assert counted(workspace, group(attribute("is_admin", "is_true"))) == {"u1"}
    assert counted(workspace, group(attribute("is_admin", "is_false"))) == {"u2"}
    either = [attribute("is_admin", "is_true"), attribute("seats", "greater_than_or_equal", 5)]
    assert counted(workspace, group(*either, match="any")) == {"u1", "u2", "u4"}
    assert counted(workspace, group(*either, match="none")) == {"u3", "u5", "u6"}


@postgresql
@pytest.mark.parametrize(
    ("condition", "index"),
    [
        (attribute("seats", "greater_than_or_equal", 5), "contactvalue_num_members"),
        (attribute("is_admin", "is_true"), "contactvalue_boolean_members"),
        (attribute("is_admin", "is_false"), "contactvalue_boolean_members"),
    ],
)
def test_a_number_or_boolean_test_reads_its_index_alone(workspace, people, condition, index):
    other = attribute("plan", "equals", "pro")  # not a lone trait: counted as a set
    compiler = SetCompiler(workspace.pk, NOW, segment_definitions(workspace.pk))
    sql, params = compiler.count_query(group(condition, other))
    plan = plan_without(sql, params, COVERING_RIVALS)
    assert f"Index Only Scan using {index}" in plan, plan


@postgresql
@pytest.mark.parametrize(
    "condition",
    [event("login", "at_least", 2), event("login", "at_least", 2, within_days=7)],
    ids=["over all time", "in a window"],
)
def test_an_event_count_reads_the_totals_from_their_index_alone(workspace, people, condition):
    other = attribute("plan", "equals", "pro")  # not a lone condition: counted as a set
    compiler = SetCompiler(workspace.pk, NOW, segment_definitions(workspace.pk))
    sql, params = compiler.count_query(group(condition, other))
    plan = plan_without(sql, params)
    assert "Index Only Scan using eventtotal_count" in plan, plan

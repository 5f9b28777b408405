"""The segment editor's preview of a large workspace: an estimate from a sample first,
then the exact count, loaded by the estimate itself (docs/segments.md, "The editor's
preview")."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from segments.estimates import estimate_of
from segments.models import Contact, ContactValue
from segments.values import parse_value
from tests.factories import ContactFactory, SegmentFactory
from tests.rules import attribute, group, plan_is

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the sample's index: PostgreSQL only"
)

HX = {"HX-Request": "true"}
ENTERPRISE = plan_is("enterprise")
NOBODY = plan_is("nobody has this plan")


def preview_count(html: str) -> str:
    return re.search(r'data-testid="preview-count">([^<]*)<', html).group(1).strip()


def exact_follow_up(html: str) -> dict | None:
    """What the estimate's follow-up element posts when it loads, or None without one."""
    found = re.search(r'<div[^>]*data-testid="preview-exact"[^>]*>', html)
    if found is None:
        return None
    element = found.group(0)
    assert 'hx-trigger="load"' in element
    assert 'hx-post="/segments/preview/"' in element
    vals = re.search(r'hx-vals="([^"]*)"', element).group(1)
    return json.loads(vals.replace("&quot;", '"').replace("&#x27;", "'"))


@pytest.fixture
def large(settings):
    """A workspace counts as large from 20 identified contacts; 12 of them are sampled."""
    settings.PREVIEW_ESTIMATE_ABOVE = 20
    settings.PREVIEW_SAMPLE_SIZE = 12


@pytest.fixture
def contacts(workspace):
    """40 identified contacts, a quarter on Enterprise, and anonymous visitors."""
    made = [
        ContactFactory(
            workspace=workspace,
            user_id=f"u-{n:02d}",
            traits={"plan": "enterprise" if n % 4 == 0 else "free"},
        )
        for n in range(40)
    ]
    for n in range(30):
        Contact.all_contacts.create(workspace=workspace, user_id=None, anonymous_id=f"anon-{n}")
    return made


# The statistics -------------------------------------------------------------------


def test_an_estimate_scales_the_sampled_share_with_a_computed_margin():
    estimate = estimate_of(matched=1650, sampled=4000, total=1_000_000)
    assert estimate.count == 412_500
    assert estimate.shown == "about 413,000"
    # 1.96 * sqrt(0.4125 * 0.5875 / 4000) * sqrt(996,000 / 999,999) = 1.52 percentage
    # points, shown rounded up.
    assert estimate.margin_percent == "1.6"
    assert (estimate.low, estimate.high) == (412_500 - 15_226, 412_500 + 15_226)
    narrower = estimate_of(matched=40, sampled=4000, total=1_000_000)
    assert narrower.margin_percent == "0.4"


def test_no_sampled_match_is_an_upper_bound_never_zero():
    estimate = estimate_of(matched=0, sampled=4000, total=1_000_000)
    assert estimate.none_matched
    # At 95 %: 1 - 0.05 ** (1 / 4000) of a million, about 749, rounded up.
    assert estimate.shown == "fewer than about 750"
    assert (estimate.low, estimate.high) == (0, 749)


def test_every_sampled_contact_matching_is_a_lower_bound_not_everyone():
    estimate = estimate_of(matched=4000, sampled=4000, total=1_000_000)
    assert estimate.shown == "more than about 999,250"


def test_a_sample_of_the_whole_workspace_is_the_exact_count():
    estimate = estimate_of(matched=7, sampled=30, total=30)
    assert estimate.shown == "7" and estimate.margin_percent == "0.0"


# The fragment ---------------------------------------------------------------------


@on_postgresql
def test_a_large_workspace_answers_with_an_estimate_and_loads_the_exact_count(
    owner, workspace, contacts, large
):
    response = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert preview_count(html).startswith(("about ", "fewer than about "))
    assert "of 40 contacts" in html
    assert "estimated from 12 sampled contacts" in html
    follow_up = exact_follow_up(html)
    assert follow_up == {"rules": json.dumps(ENTERPRISE), "segment_id": "", "exact": "1"}

    exact = owner.post("/segments/preview/", follow_up, headers=HX)
    assert exact.status_code == 200
    assert preview_count(exact.content.decode()) == "10"
    assert exact_follow_up(exact.content.decode()) is None
    assert "sampled contacts" not in exact.content.decode()


@on_postgresql
def test_a_rule_no_sampled_contact_matches_says_fewer_than(owner, workspace, contacts, large):
    response = owner.post("/segments/preview/", {"rules": json.dumps(NOBODY)}, headers=HX)
    count = preview_count(response.content.decode())
    assert count.startswith("fewer than about ")
    assert count != "0"
    assert exact_follow_up(response.content.decode()) is not None


@on_postgresql
def test_the_editor_page_of_a_large_workspace_starts_with_the_estimate(
    owner, workspace, contacts, large
):
    response = owner.get("/segments/new/")
    assert response.status_code == 200
    assert exact_follow_up(response.content.decode()) is not None


@on_postgresql
def test_a_segment_named_twice_is_listed_for_the_sampled_contacts_only(
    owner, workspace, contacts, large
):
    """A segment a rule names twice is computed once, as a list of its members: for an
    estimate, a list of the sampled ones, not of the whole workspace."""
    enterprise = SegmentFactory(workspace=workspace, rules=ENTERPRISE)
    named = {"type": "segment", "segment": enterprise.pk, "operator": "in"}
    twice = {"type": "group", "match": "any", "conditions": [named, named]}
    with CaptureQueriesContext(connection) as queries:
        response = owner.post("/segments/preview/", {"rules": json.dumps(twice)}, headers=HX)
    listed = [q["sql"] for q in queries if "_members" in q["sql"] and "WITH" in q["sql"]]
    assert listed
    assert all(q.count("hashint8") >= 2 for q in listed)  # in the list and in the count
    once = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert preview_count(response.content.decode()) == preview_count(once.content.decode())


def test_a_small_workspace_counts_exactly_at_once(owner, workspace, contacts):
    response = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert preview_count(response.content.decode()) == "10"
    assert exact_follow_up(response.content.decode()) is None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite keeps the exact count")
def test_sqlite_counts_exactly_above_the_threshold(owner, workspace, contacts, large):
    response = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert preview_count(response.content.decode()) == "10"
    assert exact_follow_up(response.content.decode()) is None


@on_postgresql
def test_a_saved_current_segment_shows_its_memberships_not_an_estimate(
    owner, workspace, contacts, large
):
    from segments.membership import sweep_workspace

    segment = SegmentFactory(workspace=workspace, rules=ENTERPRISE)
    sweep_workspace(workspace.pk, timezone.now())
    fields = {"rules": json.dumps(ENTERPRISE), "segment_id": segment.pk}
    response = owner.post("/segments/preview/", fields, headers=HX)
    assert preview_count(response.content.decode()) == "10"
    assert exact_follow_up(response.content.decode()) is None


@on_postgresql
def test_the_of_n_figure_comes_from_the_last_sweep_when_there_is_one(
    owner, workspace, contacts, large
):
    from segments.membership import sweep_workspace

    sweep_workspace(workspace.pk, timezone.now())
    ContactFactory(workspace=workspace, user_id="after-the-sweep")
    response = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert "of 40 contacts" in response.content.decode()


# Who may ask, and what they see -----------------------------------------------------


@on_postgresql
def test_a_viewer_may_preview_the_estimate_and_the_exact_count(viewer, workspace, contacts, large):
    response = viewer.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    assert response.status_code == 200
    follow_up = exact_follow_up(response.content.decode())
    exact = viewer.post("/segments/preview/", follow_up, headers=HX)
    assert preview_count(exact.content.decode()) == "10"


@on_postgresql
def test_an_outsider_estimates_and_counts_only_their_own_workspace(
    outsider, other_workspace, workspace, contacts, large
):
    for n in range(30):
        ContactFactory(workspace=other_workspace, user_id=f"o-{n}", traits={"plan": "free"})
    response = outsider.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)}, headers=HX)
    html = response.content.decode()
    assert preview_count(html).startswith("fewer than about ")
    assert "of 30 contacts" in html
    exact = outsider.post("/segments/preview/", exact_follow_up(html), headers=HX)
    assert preview_count(exact.content.decode()) == "0"


def test_an_outsider_cannot_count_exactly_with_another_workspaces_segment(
    outsider, workspace, contacts, large
):
    segment = SegmentFactory(workspace=workspace, rules=ENTERPRISE)
    fields = {"rules": json.dumps(ENTERPRISE), "segment_id": segment.pk, "exact": "1"}
    assert outsider.post("/segments/preview/", fields, headers=HX).status_code == 404


def test_the_exact_count_is_not_for_anonymous_visitors(client, workspace, contacts, large):
    fields = {"rules": json.dumps(ENTERPRISE), "exact": "1"}
    response = client.post("/segments/preview/", fields, headers=HX)
    assert response.status_code == 302


def test_the_exact_count_reports_a_bad_rule_as_the_preview_does(owner, workspace, contacts, large):
    for rules in ["{not json", json.dumps({"type": "group", "match": "most", "conditions": []})]:
        response = owner.post("/segments/preview/", {"rules": rules, "exact": "1"}, headers=HX)
        assert response.status_code == 200
        assert preview_count(response.content.decode()) == "–"
        assert exact_follow_up(response.content.decode()) is None


def test_the_exact_count_is_posted_not_fetched(owner, workspace, contacts, large):
    response = owner.get("/segments/preview/", {"rules": json.dumps(ENTERPRISE), "exact": "1"})
    assert response.status_code == 405


# The sample is uniform ---------------------------------------------------------------

PROS = 900
SAMPLED_FROM = 3000


def _contacts_with_a_known_share(workspace) -> None:
    """3,000 contacts whose first 30 % (by id, first seen and last seen) are on Pro:
    a sample of the first or the latest contacts would find all or none of them."""
    now = timezone.now()
    first_id = 5_000_000  # fixed ids: the sample, a hash of them, is the same every run
    contacts = [
        Contact(
            pk=first_id + n,
            workspace=workspace,
            user_id=f"k-{n:04d}",
            traits={"plan": "pro" if n < PROS else "free"},
            first_seen_at=now - timezone.timedelta(minutes=SAMPLED_FROM - n),
            last_seen_at=now - timezone.timedelta(minutes=SAMPLED_FROM - n),
        )
        for n in range(SAMPLED_FROM)
    ]
    Contact.objects.bulk_create(contacts)
    ContactValue.objects.bulk_create(
        ContactValue(
            workspace=workspace,
            contact=contact,
            key="plan",
            **parse_value(contact.traits["plan"]).as_fields(),
        )  # fmt: skip
        for contact in contacts
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE segments_contact")


@on_postgresql
def test_the_sample_finds_a_known_share_within_its_stated_margin(owner, workspace, settings):
    settings.PREVIEW_ESTIMATE_ABOVE = 1000
    settings.PREVIEW_SAMPLE_SIZE = 1000
    _contacts_with_a_known_share(workspace)
    response = owner.post("/segments/preview/", {"rules": json.dumps(plan_is("pro"))}, headers=HX)
    html = response.content.decode()
    assert "estimated from 1,000 sampled contacts" in html
    low, high = (
        int(n.replace(",", "")) for n in re.search(r"Between ([\d,]+) and ([\d,]+)", html).groups()
    )
    assert low <= PROS <= high
    # 1.96 * sqrt(0.3 * 0.7 / 1000) * sqrt(2000 / 2999): about 2.3 points of 3,000.
    assert "(± 2.3 %)" in html or "(± 2.4 %)" in html
    assert 120 <= high - low <= 160


# The exact count's sample ----------------------------------------------------------

PRO_WITH_SEATS = group(
    attribute("plan", "equals", "pro"), attribute("seats", "greater_than_or_equal", 5)
)


@pytest.fixture
def seen(workspace):
    """30 contacts seen an hour apart, c-00 last; every third (10) on Pro with 5+ seats."""
    now = timezone.now()
    return [
        ContactFactory(
            workspace=workspace,
            user_id=f"c-{n:02d}",
            last_seen_at=now - timezone.timedelta(hours=n),
            traits={"plan": "pro" if n % 3 == 0 else "free", "seats": 5 + n % 2},
        )
        for n in range(30)
    ]


def listed(html: str) -> list[str]:
    return re.findall(r'href="/contacts/([^/"]+)/"', html)


def exact_preview(owner, rule):
    with CaptureQueriesContext(connection) as queries:
        response = owner.post(
            "/segments/preview/", {"rules": json.dumps(rule), "exact": "1"}, headers=HX
        )
    assert response.status_code == 200
    return response.content.decode(), [q["sql"] for q in queries]


@on_postgresql
def test_the_exact_count_lists_its_members_from_the_set_it_counted(owner, seen, large):
    html, queries = exact_preview(owner, PRO_WITH_SEATS)
    assert preview_count(html) == "10"
    assert listed(html) == ["c-00", "c-03", "c-06", "c-09", "c-12", "c-15", "c-18", "c-21"]
    # Both traits are read once, by the count: the sample does not compute the set again.
    assert len([sql for sql in queries if "'plan'" in sql and "'seats'" in sql]) == 1


@on_postgresql
def test_more_members_than_the_count_returns_are_sampled_as_before(owner, seen, large, monkeypatch):
    monkeypatch.setattr("segments.previews.MEMBER_IDS", 9)
    html, _ = exact_preview(owner, PRO_WITH_SEATS)
    assert preview_count(html) == "10"
    assert listed(html) == ["c-00", "c-03", "c-06", "c-09", "c-12", "c-15", "c-18", "c-21"]


def test_the_exact_count_lists_the_most_recently_seen_members_on_any_database(owner, seen):
    html, _ = exact_preview(owner, PRO_WITH_SEATS)
    assert preview_count(html) == "10"
    assert listed(html) == ["c-00", "c-03", "c-06", "c-09", "c-12", "c-15", "c-18", "c-21"]


FIRST_EIGHT = ["c-00", "c-03", "c-06", "c-09", "c-12", "c-15", "c-18", "c-21"]


@on_postgresql
@pytest.mark.parametrize(
    "walk, reads_every_member",
    [
        (24, False),  # c-00 to c-23 hold the first eight members: the walk finds them all
        (12, True),  # c-00 to c-11 hold four: the other four are found by reading the ids
    ],
)
def test_the_sample_looks_among_the_most_recently_seen_first(
    owner, seen, large, monkeypatch, walk, reads_every_member
):
    monkeypatch.setattr("segments.previews.RECENT_WALK", walk)
    html, queries = exact_preview(owner, PRO_WITH_SEATS)
    assert listed(html) == FIRST_EIGHT
    assert len([sql for sql in queries if "OFFSET 0" in sql]) == int(reads_every_member)

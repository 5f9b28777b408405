"""Cached counts (segments.counts): segment sizes and Targeting estimates read from open
memberships while they are current, counted live while they are stale, and a save
queues the re-sweep that makes them current again."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from segments import membership, previews, services
from segments.counts import current_segments
from segments.models import Contact, Segment
from segments.tasks import sweep_saved_segment
from surveys.models import Survey
from targeting.models import Targeting
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory
from tests.rules import attribute, group, plan_is

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
AS_OF = re.compile(r"as of \d\d:\d\d")


def in_segment(segment: Segment, operator: str = "in") -> dict:
    return {"type": "segment", "segment": segment.pk, "operator": operator}


@pytest.fixture
def segments(workspace) -> dict[str, Segment]:
    """Enterprise (3 contacts), power users (3), employees (1), and enterprise
    power users (a segment naming enterprise)."""
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("enterprise"))
    power = SegmentFactory(
        workspace=workspace, name="Power users", rules=group(attribute("power", "is_set"))
    )
    staff = SegmentFactory(
        workspace=workspace, name="Employees", rules=group(attribute("staff", "is_set"))
    )
    both = SegmentFactory(
        workspace=workspace,
        name="Enterprise power users",
        rules=group(in_segment(enterprise), attribute("power", "is_set")),
    )
    for traits in (
        {"plan": "enterprise", "power": True},
        {"plan": "enterprise", "power": True, "staff": True},
        {"plan": "enterprise"},
        {"plan": "free", "power": True},
        {"plan": "free"},
    ):
        ContactFactory(workspace=workspace, traits=traits)
    return {"enterprise": enterprise, "power": power, "staff": staff, "both": both}


def sweep() -> None:
    membership.sweep(timezone.now())


def size_page(client, segment: Segment) -> str:
    response = client.get(f"/segments/{segment.pk}/size/", headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def size_in(page: str) -> int:
    return int(re.search(r'class="count"[^>]*>(\d+)<', page).group(1))


def estimate_page(client, survey: Survey, **audience) -> str:
    response = client.get(f"/surveys/{survey.pk}/targeting/", audience, headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def estimate_in(page: str) -> int:
    return int(re.search(r'class="preview-count">([\d,]+)<', page).group(1).replace(",", ""))


# Segment sizes ----------------------------------------------------------------


def test_a_size_is_counted_live_until_the_first_sweep(owner, segments):
    page = size_page(owner, segments["enterprise"])

    assert size_in(page) == 3
    assert not AS_OF.search(page)


def test_after_the_sweep_a_size_comes_from_memberships_and_equals_the_live_count(owner, segments):
    live = {name: size_in(size_page(owner, s)) for name, s in segments.items()}
    sweep()

    for name, segment in segments.items():
        page = size_page(owner, segment)
        assert size_in(page) == live[name], name
        assert AS_OF.search(page), name


def test_a_cached_size_is_what_the_memberships_hold(owner, workspace, segments):
    sweep()
    # Written without identify, so no membership records it: the cached size cannot see it.
    ContactFactory(workspace=workspace, traits={"plan": "enterprise"})

    assert size_in(size_page(owner, segments["enterprise"])) == 3


def test_a_rule_edit_makes_the_size_stale_until_its_re_sweep(
    owner, segments, django_capture_on_commit_callbacks
):
    sweep()
    enterprise = segments["enterprise"]
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(
            f"/segments/{enterprise.pk}/",
            {"name": "Free", "rules": json.dumps(plan_is("free"))},
        )
    assert response.status_code == 302

    stale = size_page(owner, enterprise)
    assert size_in(stale) == 2 and not AS_OF.search(stale)
    queued = DBTaskResult.objects.filter(task_path=sweep_saved_segment.module_path)
    assert [task.args_kwargs["args"] for task in queued] == [[enterprise.pk]]

    sweep_saved_segment.call(enterprise.pk)

    fresh = size_page(owner, enterprise)
    assert size_in(fresh) == 2 and AS_OF.search(fresh)


def test_an_edit_of_a_named_segment_makes_the_naming_one_stale(workspace, segments):
    sweep()
    assert segments["both"].pk in current_segments(workspace)
    enterprise = segments["enterprise"]
    enterprise.rules = plan_is("free")
    enterprise.save()

    current = current_segments(workspace)

    assert enterprise.pk not in current and segments["both"].pk not in current
    assert segments["power"].pk in current


def test_the_re_sweep_compares_the_segments_naming_the_saved_one(owner, workspace, segments):
    sweep()
    enterprise = segments["enterprise"]
    enterprise.rules = plan_is("free")
    enterprise.save()

    sweep_saved_segment.call(enterprise.pk)

    assert {enterprise.pk, segments["both"].pk} <= set(current_segments(workspace))
    assert size_in(size_page(owner, segments["both"])) == 1  # the free power user


def test_a_segment_changed_after_the_sweep_began_is_not_stamped(workspace, segments):
    started = timezone.now() - timedelta(minutes=1)
    membership.sweep(started)  # the segments were all saved after `started`

    assert current_segments(workspace) == {}
    assert not Segment.objects.filter(members_as_of__isnull=False).exists()


def test_the_next_sweep_confirms_segments_it_did_not_need_to_compare(workspace, segments):
    sweep()
    later = timezone.now()
    runs = membership.sweep(later)

    assert runs[0].segments == 0  # nothing changes with time, nothing edited
    assert set(current_segments(workspace).values()) == {later}


def test_a_viewer_sees_the_cached_size(viewer, segments):
    sweep()

    assert AS_OF.search(size_page(viewer, segments["power"]))


def test_an_outsider_gets_no_size(outsider, segments):
    sweep()

    assert outsider.get(f"/segments/{segments['power'].pk}/size/").status_code == 404


# Targeting estimates ---------------------------------------------------------


AUDIENCES = [
    {"audience": "everyone", "excluded_segments": ["staff"]},
    {"audience": "segments", "segments": ["enterprise", "power"], "segment_match": "any"},
    {"audience": "segments", "segments": ["enterprise", "power"], "segment_match": "all"},
    {
        "audience": "segments",
        "segments": ["enterprise", "power"],
        "segment_match": "all",
        "excluded_segments": ["staff"],
    },
    {"audience": "segments", "segments": ["both", "staff"], "segment_match": "any"},
]


def form_of(audience: dict, segments: dict[str, Segment]) -> dict:
    form = dict(audience)
    for key in ("segments", "excluded_segments"):
        if key in form:
            form[key] = [segments[name].pk for name in form[key]]
    return form


@pytest.fixture
def survey(workspace) -> Survey:
    return SurveyFactory(workspace=workspace, name="Feature survey", status=Survey.DRAFT)


@pytest.mark.parametrize("audience", AUDIENCES)
def test_a_cached_estimate_equals_the_live_one(owner, survey, segments, audience):
    form = form_of(audience, segments)
    live = estimate_page(owner, survey, **form)
    assert not AS_OF.search(live)
    sweep()

    cached = estimate_page(owner, survey, **form)

    assert estimate_in(cached) == estimate_in(live)
    assert AS_OF.search(cached)


def rival(workspace, name: str, segments: list[Segment], excluded=()) -> Survey:
    survey = SurveyFactory(workspace=workspace, name=name)
    survey.targeting.audience = Targeting.SEGMENTS
    survey.targeting.save()
    survey.targeting.segments.set(segments)
    survey.targeting.excluded_segments.set(excluded)
    return survey


@pytest.mark.parametrize("audience", AUDIENCES)
def test_a_cached_overlap_equals_the_live_one(owner, workspace, survey, segments, audience):
    rival(workspace, "Enterprise pulse", [segments["enterprise"]], [segments["staff"]])
    both = rival(workspace, "Power pulse", [segments["power"], segments["both"]])
    both.targeting.segment_match = Targeting.ALL
    both.targeting.save()
    form = form_of(audience, segments)
    live = estimate_page(owner, survey, **form)
    sweep()

    cached = estimate_page(owner, survey, **form)

    shared = r"(\w+) pulse</a>: shares (\d+) contact"
    assert re.findall(shared, cached) == re.findall(shared, live)
    assert len(re.findall(r"shares \d+ contacts? as of \d\d:\d\d", cached)) == len(
        re.findall(shared, cached)
    )


def test_a_cached_estimate_is_of_the_contacts_the_sweep_found(owner, workspace, survey, segments):
    form = form_of(AUDIENCES[1], segments)
    sweep()
    identified = Contact.objects.filter(workspace=workspace).count()
    ContactFactory(workspace=workspace, user_id="after-the-sweep")

    cached = estimate_page(owner, survey, **form)
    assert AS_OF.search(cached)
    assert f"of {identified} identified contacts" in cached
    segments["power"].save()  # stale: counted live, of the contacts there are now
    live = estimate_page(owner, survey, **form)
    assert not AS_OF.search(live)
    assert f"of {identified + 1} identified contacts" in live


def test_an_estimate_with_a_stale_segment_is_counted_live(owner, survey, segments):
    sweep()
    power = segments["power"]
    power.rules = group(attribute("staff", "is_set"))
    power.save()

    page = estimate_page(owner, survey, **form_of(AUDIENCES[1], segments))

    assert estimate_in(page) == 3  # enterprise (3) or staff (already enterprise)
    assert not AS_OF.search(page)


def test_a_cached_estimate_ignores_another_workspaces_segment(
    owner, other_workspace, survey, segments
):
    theirs = SegmentFactory(workspace=other_workspace, rules=plan_is("free"))
    ContactFactory(workspace=other_workspace, traits={"plan": "free"})
    sweep()
    form = form_of(AUDIENCES[1], segments)
    form["segments"] = [*form["segments"], theirs.pk]

    page = estimate_page(owner, survey, **form)

    assert estimate_in(page) == 4 and AS_OF.search(page)


def test_an_outsider_gets_no_cached_estimate(outsider, survey, segments):
    sweep()
    form = form_of(AUDIENCES[1], segments)

    response = outsider.get(f"/surveys/{survey.pk}/targeting/", form, headers=HTMX)

    assert response.status_code == 404


# The editor's preview ---------------------------------------------------------


postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the set-based ids are PostgreSQL's"
)


def preview_page(client, rule: dict, segment: Segment | None = None) -> str:
    fields = {"rules": json.dumps(rule)}
    if segment is not None:
        fields["segment_id"] = segment.pk
    response = client.post("/segments/preview/", fields, headers=HTMX)
    assert response.status_code == 200
    return response.content.decode()


def preview_count(page: str) -> str:
    return re.search(r'data-testid="preview-count">([^<]*)<', page).group(1)


def test_the_preview_of_a_current_segments_saved_rule_reads_its_memberships(
    owner, workspace, segments
):
    enterprise = segments["enterprise"]
    sweep()
    ContactFactory(workspace=workspace, traits={"plan": "enterprise"})  # not recorded

    cached = preview_page(owner, enterprise.rules, enterprise)
    edited = preview_page(owner, plan_is("free"), enterprise)

    assert preview_count(cached) == "3" and AS_OF.search(cached)
    assert preview_count(edited) == "2" and not AS_OF.search(edited)
    assert preview_count(preview_page(owner, enterprise.rules)) == "4"  # live: the new one too


def test_a_preview_past_its_budget_says_so_instead_of_failing(owner, segments, settings):
    settings.PREVIEW_TIME_BUDGET_MS = 0

    page = preview_page(owner, plan_is("enterprise"))

    assert preview_count(page) == "–"
    assert 'data-testid="preview-too-long"' in page


def test_a_preview_within_its_budget_counts_and_samples(owner, segments):
    page = preview_page(owner, plan_is("enterprise"))

    assert preview_count(page) == "3"
    assert page.count("/contacts/user-") == 3


@postgresql
@pytest.mark.parametrize(
    "rule",
    [
        plan_is("enterprise"),
        group(attribute("plan", "not_equals", "free")),
        group(attribute("power", "is_set"), attribute("staff", "is_not_set")),
        group(attribute("plan", "equals", "free"), attribute("staff", "is_set"), match="any"),
        group(attribute("plan", "equals", "nobody")),
        {"type": "group", "match": "none", "conditions": [attribute("power", "is_set")]},
    ],
)
def test_a_sample_from_the_set_of_ids_is_the_walks_sample(workspace, segments, rule):
    now = timezone.now()
    definitions = services.segment_definitions(workspace.pk)
    walked = previews._recent(services.rule_contacts(workspace.pk, rule, now, definitions))

    from_ids = previews._sample_from_ids(workspace.pk, rule, now, definitions)

    assert from_ids == walked


@postgresql
def test_a_sample_naming_segments_from_the_set_of_ids_is_the_walks_sample(workspace, segments):
    rule = group(in_segment(segments["both"]), in_segment(segments["staff"], "not_in"))
    now = timezone.now()
    definitions = services.segment_definitions(workspace.pk)
    walked = previews._recent(services.rule_contacts(workspace.pk, rule, now, definitions))

    assert previews._sample_from_ids(workspace.pk, rule, now, definitions) == walked
    assert len(walked) == 1


def test_the_cached_preview_of_a_rare_segment_samples_its_few_members(owner, workspace):
    for _ in range(previews.RARE + 10):
        ContactFactory(workspace=workspace, traits={"plan": "free"})
    rare = ContactFactory(workspace=workspace, user_id="the-rare-one", traits={"plan": "rare"})
    segment = SegmentFactory(workspace=workspace, rules=plan_is("rare"))
    sweep()

    page = preview_page(owner, segment.rules, segment)

    assert preview_count(page) == "1" and AS_OF.search(page)
    assert f"/contacts/{rare.user_id}/" in page
    assert page.count("/contacts/user-") == 0

"""The Targeting tab of a large workspace, for an audience with no stored figure (edited,
or a draft's): an estimate of its size and overlaps from the sample first, then the exact
figures, loaded by the estimate itself (docs/segments.md, "The Targeting tab's estimate").

The estimate is made only while a segment involved has no member set (a workspace not
swept since the upgrade): with every set, the exact figures are as cheap and come at
once. So these tests sweep, then drop the sets; the last test keeps them."""

import re
from html import unescape

import pytest
from django.db import connection
from django.utils import timezone

from segments import membership
from segments.models import MemberSet, Segment
from segments.services import rule_count
from surveys.models import Survey
from targeting.audiences import audience_rule, overlap_count, saved_audience
from targeting.models import AudienceCount, Targeting
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory, targeted
from tests.rules import attribute, group, plan_is

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the sample's index: PostgreSQL only"
)

HTMX = {"HX-Request": "true"}
ESTIMATED = re.compile(r"^(about|fewer than about|more than about) [\d,]+$")


@pytest.fixture
def large(settings):
    """A workspace counts as large from 20 identified contacts; 12 of them are sampled."""
    settings.PREVIEW_ESTIMATE_ABOVE = 20
    settings.PREVIEW_SAMPLE_SIZE = 12


@pytest.fixture
def segments(workspace) -> dict[str, Segment]:
    """40 contacts: every 2nd on Enterprise, every 3rd a power user, every 5th staff."""
    made = {
        "enterprise": SegmentFactory(
            workspace=workspace, name="Enterprise", rules=plan_is("enterprise")
        ),
        "power": SegmentFactory(
            workspace=workspace, name="Power users", rules=group(attribute("power", "is_set"))
        ),
        "staff": SegmentFactory(
            workspace=workspace, name="Employees", rules=group(attribute("staff", "is_set"))
        ),
    }
    for n in range(40):
        traits = {"plan": "enterprise" if n % 2 == 0 else "free"}
        if n % 3 == 0:
            traits["power"] = True
        if n % 5 == 0:
            traits["staff"] = True
        ContactFactory(workspace=workspace, user_id=f"user-{n:02d}", traits=traits)
    return made


@pytest.fixture
def surveys(workspace, segments) -> dict[str, Survey]:
    """A live Enterprise survey (staff excluded), and a draft for power users."""
    return {
        "pulse": targeted(
            SurveyFactory(workspace=workspace, name="Enterprise pulse"),
            [segments["enterprise"]],
            [segments["staff"]],
        ),
        "draft": targeted(
            SurveyFactory(workspace=workspace, name="Draft one", status=Survey.DRAFT),
            [segments["power"]],
        ),
    }


def sweep() -> None:
    """A sweep from before member sets: the segments current, none with a set."""
    membership.sweep(timezone.now())
    MemberSet.objects.all().delete()


@pytest.fixture
def uncounted(monkeypatch):
    """Drafts with no stored figure: as a draft past the sweep's most recent ones is."""
    monkeypatch.setattr("targeting.audiences.DRAFTS_COUNTED", 0)


def tab(client, survey: Survey, **fields):
    headers = HTMX if fields else {}
    return client.get(f"/surveys/{survey.pk}/targeting/", fields, headers=headers)


def page_of(client, survey: Survey, **fields) -> str:
    response = tab(client, survey, **fields)
    assert response.status_code == 200
    return response.content.decode()


def size_in(page: str) -> str:
    return re.search(r'class="preview-count"[^>]*>([^<]*)<', page).group(1).strip()


def shared_in(page: str) -> dict[str, str]:
    found = re.findall(r"(\w+ \w+)</a>: shares ([^<]*?) contact", page)
    return dict(found)


def follow_up(page: str) -> str | None:
    """The element that loads the exact figures, or None without one."""
    found = re.search(r'<div[^>]*data-testid="preview-exact"[^>]*>', page)
    return None if found is None else unescape(found.group(0))


def exact_page(client, survey: Survey, page: str, fields: dict) -> str:
    """What the follow-up asks: the same GET with the form's fields and `exact`."""
    element = follow_up(page)
    assert element is not None
    assert f'hx-get="/surveys/{survey.pk}/targeting/"' in element
    assert 'hx-trigger="load"' in element and 'hx-include="closest form"' in element
    assert 'hx-vals=\'{"exact": "1"}\'' in element or 'hx-vals="{"exact": "1"}"' in element
    return page_of(client, survey, **fields, exact="1")


def edited(surveys, segments) -> dict:
    """The pulse survey's audience with power users excluded as well (not saved)."""
    return saved_audience(surveys["pulse"].targeting) | {
        "excluded_segments": [segments["staff"].pk, segments["power"].pk]
    }


def recount(workspace, fields: dict) -> int:
    known = set(Segment.objects.filter(workspace=workspace).values_list("pk", flat=True))
    return rule_count(workspace.pk, audience_rule(known, **fields), timezone.now())


# The estimate, then the exact figures ---------------------------------------------


@on_postgresql
def test_an_edited_audience_is_estimated_then_counted_exactly(
    owner, workspace, surveys, segments, large
):
    sweep()
    fields = edited(surveys, segments)

    page = page_of(owner, surveys["pulse"], **fields)

    assert ESTIMATED.match(size_in(page)), size_in(page)
    assert "estimated from 12 sampled contacts" in page
    assert "of 40 identified contacts match the audience" in page
    exact = exact_page(owner, surveys["pulse"], page, fields)
    assert size_in(exact) == str(recount(workspace, fields))
    assert follow_up(exact) is None and "sampled contacts" not in exact


@on_postgresql
def test_a_drafts_tab_is_estimated_with_its_overlaps_then_counted_exactly(
    owner, workspace, surveys, segments, large, uncounted
):
    sweep()
    draft = saved_audience(surveys["draft"].targeting)

    page = page_of(owner, surveys["draft"])  # the whole page, as opened

    assert ESTIMATED.match(size_in(page)), size_in(page)
    assert all(ESTIMATED.match(shared) for shared in shared_in(page).values())
    exact = exact_page(owner, surveys["draft"], page, draft)
    assert size_in(exact) == str(recount(workspace, draft))
    rule = audience_rule({s.pk for s in segments.values()}, **draft)
    pulse = audience_rule(
        {s.pk for s in segments.values()}, **saved_audience(surveys["pulse"].targeting)
    )
    both = overlap_count(workspace.pk, rule, pulse, timezone.now())
    assert both > 0 and shared_in(exact) == {"Enterprise pulse": str(both)}


@on_postgresql
@pytest.mark.parametrize(
    "shape",
    [
        {"targets": ["enterprise", "power"], "match": "any", "excludes": ["staff"]},
        {"targets": ["enterprise", "power"], "match": "all", "excludes": []},
        {"targets": ["power"], "match": "all", "excludes": ["enterprise", "staff"]},
    ],
)
def test_the_exact_follow_up_agrees_with_a_recount(
    owner, workspace, surveys, segments, large, shape
):
    sweep()
    fields = {
        "audience": Targeting.SEGMENTS,
        "segments": [segments[name].pk for name in shape["targets"]],
        "segment_match": shape["match"],
        "excluded_segments": [segments[name].pk for name in shape["excludes"]],
    }

    page = page_of(owner, surveys["draft"], **fields)
    exact = exact_page(owner, surveys["draft"], page, fields)

    assert size_in(exact) == str(recount(workspace, fields))


@on_postgresql
def test_a_sample_of_the_whole_workspace_estimates_the_exact_figures(
    owner, workspace, surveys, segments, large, settings
):
    """Every contact sampled: the estimate's counting of memberships is the count."""
    settings.PREVIEW_SAMPLE_SIZE = 100
    sweep()
    fields = edited(surveys, segments)

    page = page_of(owner, surveys["pulse"], **fields)

    assert size_in(page) == str(recount(workspace, fields))
    assert "estimated from 40 sampled contacts" in page
    draft = page_of(owner, surveys["draft"])
    exact = page_of(
        owner, surveys["draft"], **saved_audience(surveys["draft"].targeting), exact="1"
    )
    assert shared_in(draft) == {"Enterprise pulse": shared_in(exact)["Enterprise pulse"]}


@on_postgresql
def test_the_stored_figures_are_read_at_once_with_no_estimate(owner, surveys, large):
    sweep()
    AudienceCount.objects.filter(other="").update(contacts=9999)

    page = page_of(owner, surveys["pulse"])

    assert size_in(page) == "9,999" and follow_up(page) is None


@on_postgresql
def test_stale_segments_are_counted_as_before_with_no_estimate(
    owner, workspace, surveys, segments, large
):
    sweep()
    segments["power"].rules = group(attribute("power", "is_set"), attribute("plan", "is_set"))
    segments["power"].save()
    fields = edited(surveys, segments)

    page = page_of(owner, surveys["pulse"], **fields)

    assert size_in(page) == str(recount(workspace, fields)) and follow_up(page) is None


def test_a_small_workspace_or_sqlite_answers_exactly_at_once(owner, workspace, surveys, segments):
    sweep()
    fields = edited(surveys, segments)

    page = page_of(owner, surveys["pulse"], **fields)

    assert size_in(page) == str(recount(workspace, fields)) and follow_up(page) is None


# Who may see it, and bad input --------------------------------------------------------


@on_postgresql
def test_a_viewer_sees_the_estimate_and_the_exact_figures(
    viewer, workspace, surveys, large, uncounted
):
    sweep()
    draft = saved_audience(surveys["draft"].targeting)

    page = page_of(viewer, surveys["draft"], **draft)
    exact = exact_page(viewer, surveys["draft"], page, draft)

    assert ESTIMATED.match(size_in(page))
    assert size_in(exact) == str(recount(workspace, draft))


@on_postgresql
def test_an_outsider_gets_404_for_the_estimate_and_the_exact_figures(outsider, surveys, large):
    sweep()
    draft = saved_audience(surveys["draft"].targeting)

    assert tab(outsider, surveys["draft"], **draft).status_code == 404
    assert tab(outsider, surveys["draft"], **draft, exact="1").status_code == 404


@on_postgresql
def test_bad_input_is_read_leniently_or_refused_as_usual(
    owner, workspace, surveys, large, uncounted
):
    sweep()
    odd = {
        "audience": "segments",
        "segments": ["abc", "99999999", str(surveys["draft"].targeting.segments.get().pk)],
        "segment_match": "neither",
        "excluded_segments": ["-1"],
        "sample_percent": "NaN",
    }

    page = page_of(owner, surveys["draft"], **odd)
    exact = page_of(owner, surveys["draft"], **odd, exact="yes")  # not "1": an estimate

    assert ESTIMATED.match(size_in(page)) and ESTIMATED.match(size_in(exact))
    missing = owner.get("/surveys/99999999/targeting/", {"exact": "1"}, headers=HTMX)
    assert missing.status_code == 404
    wrong_verb = owner.put(f"/surveys/{surveys['draft'].pk}/targeting/?exact=1")
    assert wrong_verb.status_code == 405


@on_postgresql
def test_with_member_sets_an_edited_audience_is_exact_at_once(
    owner, workspace, surveys, segments, large
):
    membership.sweep(timezone.now())
    fields = edited(surveys, segments)

    page = page_of(owner, surveys["pulse"], **fields)

    assert size_in(page) == str(recount(workspace, fields))
    assert follow_up(page) is None and "sampled contacts" not in page
    MemberSet.objects.filter(segment=segments["power"]).delete()
    assert ESTIMATED.match(size_in(page_of(owner, surveys["pulse"], **fields)))

"""The sweep's audience figures (targeting.audiences): each live survey's estimate and its
overlaps with the other live surveys, counted from open memberships when the sweep ends,
read by the Targeting tab while they still stand for the audience shown, and not once
the audience, a segment's rule or a segment's memberships changed since."""

import re

import pytest
from django.utils import timezone

from segments import counts, membership
from segments.ingest import clean_user, identify_contact
from segments.models import Segment
from segments.services import add_members
from surveys.models import Survey
from targeting.audiences import selection
from targeting.models import AudienceCount, Targeting
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory, targeted
from tests.rules import attribute, group, plan_is

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
AS_OF = re.compile(r"as of \d\d:\d\d")
PLANTED = 9999  # a figure no recount gives: seen on the page only when the stored one is read


@pytest.fixture
def segments(workspace) -> dict[str, Segment]:
    """Enterprise (3 contacts), power users (3), employees (1) and a manual beta list (1)."""
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("enterprise"))
    power = SegmentFactory(
        workspace=workspace, name="Power users", rules=group(attribute("power", "is_set"))
    )
    staff = SegmentFactory(
        workspace=workspace, name="Employees", rules=group(attribute("staff", "is_set"))
    )
    beta = SegmentFactory(workspace=workspace, name="Beta", kind=Segment.MANUAL, rules=None)
    for n, traits in enumerate(
        (
            {"plan": "enterprise", "power": True},
            {"plan": "enterprise", "power": True, "staff": True},
            {"plan": "enterprise"},
            {"plan": "free", "power": True},
            {"plan": "free"},
        )
    ):
        ContactFactory(workspace=workspace, user_id=f"user-{n}", traits=traits)
    add_members(beta, ["user-4"])
    return {"enterprise": enterprise, "power": power, "staff": staff, "beta": beta}


@pytest.fixture
def surveys(workspace, segments) -> dict[str, Survey]:
    """Two live surveys whose audiences share enterprise power users, and a draft."""
    return {
        "pulse": targeted(
            SurveyFactory(workspace=workspace, name="Enterprise pulse"),
            [segments["enterprise"]],
            [segments["staff"]],
        ),
        "power": targeted(
            SurveyFactory(workspace=workspace, name="Power NPS"),
            [segments["power"], segments["beta"]],
        ),
        "draft": targeted(
            SurveyFactory(workspace=workspace, name="Draft one", status=Survey.DRAFT),
            [segments["staff"]],
        ),
    }


def sweep() -> None:
    membership.sweep(timezone.now())


def saved(survey: Survey) -> dict:
    targeting = Targeting.objects.get(survey=survey)
    return {
        "audience": targeting.audience,
        "segments": [s.pk for s in targeting.segments.all()],
        "segment_match": targeting.segment_match,
        "excluded_segments": [s.pk for s in targeting.excluded_segments.all()],
    }


def chosen(survey: Survey) -> counts.Selection:
    known = Segment.objects.filter(workspace_id=survey.workspace_id).values_list("pk", flat=True)
    return selection(set(known), **saved(survey))


def plant(survey: Survey, other: Survey | None = None) -> None:
    """Replace the stored estimate (or overlap) of the survey's saved audience."""
    keys = sorted([chosen(survey).key, chosen(other).key]) if other else [chosen(survey).key, ""]
    assert AudienceCount.objects.filter(audience=keys[0], other=keys[1]).update(contacts=PLANTED)


def tab(client, survey: Survey, **audience) -> str:
    headers = HTMX if audience else {}
    response = client.get(f"/surveys/{survey.pk}/targeting/", audience, headers=headers)
    assert response.status_code == 200
    return response.content.decode()


def estimate_in(page: str) -> int:
    return int(re.search(r'class="preview-count">([\d,]+)<', page).group(1).replace(",", ""))


def shared_in(page: str) -> dict[str, int]:
    found = re.findall(r"(\w+ \w+)</a>: shares ([\d,]+) contact", page)
    return {name: int(number.replace(",", "")) for name, number in found}


# Recording ------------------------------------------------------------------------


def test_the_sweep_records_each_live_audience_and_each_pairs_overlap(workspace, surveys):
    sweep()

    stored = {(f.audience, f.other): f.contacts for f in AudienceCount.objects.all()}
    pulse, power = chosen(surveys["pulse"]), chosen(surveys["power"])
    draft = chosen(surveys["draft"])
    assert stored == {
        (pulse.key, ""): counts.selection_count(workspace.pk, pulse),
        (power.key, ""): counts.selection_count(workspace.pk, power),
        tuple(sorted([pulse.key, power.key])): counts.overlap_count(workspace.pk, pulse, power),
        (draft.key, ""): counts.selection_count(workspace.pk, draft),
        tuple(sorted([draft.key, pulse.key])): counts.overlap_count(workspace.pk, draft, pulse),
        tuple(sorted([draft.key, power.key])): counts.overlap_count(workspace.pk, draft, power),
    }
    assert sorted(stored.values()) == [0, 1, 1, 1, 2, 4]
    as_of = {f.as_of for f in AudienceCount.objects.all()}
    assert as_of == set(counts.current_segments(workspace).values())


def test_the_tab_of_a_draft_reads_its_stored_figures(owner, workspace, surveys):
    sweep()
    plant(surveys["draft"])
    plant(surveys["draft"], surveys["power"])

    page = tab(owner, surveys["draft"], **saved(surveys["draft"]))

    assert estimate_in(page) == PLANTED and AS_OF.search(page)
    assert shared_in(page) == {"Power NPS": PLANTED}


def test_two_drafts_overlap_is_not_counted(workspace, surveys, segments):
    other = targeted(
        SurveyFactory(workspace=workspace, name="Draft two", status=Survey.DRAFT),
        [segments["enterprise"]],
    )
    sweep()

    stored = {(f.audience, f.other) for f in AudienceCount.objects.all()}
    assert (chosen(other).key, "") in stored
    assert tuple(sorted([chosen(other).key, chosen(surveys["draft"]).key])) not in stored


def test_only_the_most_recently_changed_drafts_are_counted(
    workspace, surveys, segments, monkeypatch
):
    older = targeted(
        SurveyFactory(workspace=workspace, name="Old draft", status=Survey.DRAFT),
        [segments["power"]],
        [segments["staff"]],
    )
    Survey.objects.filter(pk=older.pk).update(
        updated_at=timezone.now() - timezone.timedelta(days=9)
    )
    monkeypatch.setattr("targeting.audiences.DRAFTS_COUNTED", 1)

    sweep()

    audiences = {f.audience for f in AudienceCount.objects.all()}
    assert chosen(surveys["draft"]).key in audiences
    assert chosen(older).key not in audiences


def test_each_sweep_replaces_the_figures_and_leaves_out_surveys_no_longer_live(surveys):
    sweep()
    Survey.objects.filter(pk=surveys["pulse"].pk).update(status=Survey.PAUSED)

    sweep()

    power, draft = chosen(surveys["power"]).key, chosen(surveys["draft"]).key
    assert {(f.audience, f.other) for f in AudienceCount.objects.all()} == {
        (power, ""),
        (draft, ""),
        tuple(sorted([power, draft])),
    }


def test_figures_are_of_their_own_workspace(workspace, other_workspace, surveys):
    theirs = SegmentFactory(workspace=other_workspace, rules=plan_is("enterprise"))
    ContactFactory(workspace=other_workspace, traits={"plan": "enterprise"})
    targeted(SurveyFactory(workspace=other_workspace), [theirs])

    sweep()

    assert AudienceCount.objects.filter(workspace=other_workspace).count() == 1
    assert AudienceCount.objects.filter(workspace=workspace).count() == 6  # 3 sizes, 3 overlaps


# Reading --------------------------------------------------------------------------


def test_the_tab_shows_the_recount_of_the_saved_audience_after_the_sweep(owner, surveys):
    sweep()

    page = tab(owner, surveys["power"])

    assert estimate_in(page) == 4 and AS_OF.search(page)
    assert shared_in(page) == {"Enterprise pulse": 1}
    assert re.search(r"shares 1 contact as of \d\d:\d\d", page)


def test_the_tab_and_its_fragment_read_the_stored_figures(owner, surveys):
    sweep()
    plant(surveys["power"])
    plant(surveys["power"], surveys["pulse"])

    page = tab(owner, surveys["power"])
    fragment = tab(owner, surveys["power"], **saved(surveys["power"]))

    for shown in (page, fragment):
        assert estimate_in(shown) == PLANTED and AS_OF.search(shown)
        assert shared_in(shown) == {"Enterprise pulse": PLANTED}


def test_a_viewer_reads_the_stored_figures(viewer, surveys):
    sweep()
    plant(surveys["power"])

    assert estimate_in(tab(viewer, surveys["power"])) == PLANTED


def test_an_outsider_gets_no_stored_figures(outsider, surveys):
    sweep()

    response = outsider.get(f"/surveys/{surveys['power'].pk}/targeting/", headers=HTMX)

    assert response.status_code == 404


def test_a_draft_shown_with_a_live_surveys_audience_reads_its_figures(owner, surveys):
    sweep()
    plant(surveys["power"])

    page = tab(owner, surveys["draft"], **saved(surveys["power"]))

    assert estimate_in(page) == PLANTED


# What makes them stand for nothing -------------------------------------------------


def test_an_edited_audience_is_counted_from_memberships(owner, surveys, segments):
    sweep()
    plant(surveys["power"])
    plant(surveys["power"], surveys["pulse"])
    edited = saved(surveys["power"]) | {"segments": [segments["power"].pk]}

    page = tab(owner, surveys["power"], **edited)

    assert estimate_in(page) == 3 and AS_OF.search(page)
    assert shared_in(page) == {"Enterprise pulse": 1}


def test_an_overlap_with_a_survey_whose_audience_changed_is_counted_again(owner, surveys, segments):
    sweep()
    plant(surveys["power"], surveys["pulse"])
    surveys["pulse"].targeting.excluded_segments.set([])

    page = tab(owner, surveys["power"])

    assert shared_in(page) == {"Enterprise pulse": 2}


def test_a_segments_rule_edit_counts_live(owner, surveys, segments):
    sweep()
    plant(surveys["power"])
    power = segments["power"]
    power.rules = group(attribute("staff", "is_set"))
    power.save()

    page = tab(owner, surveys["power"])

    assert estimate_in(page) == 2 and not AS_OF.search(page)  # staff (1) or beta (1)


def test_a_segment_compared_again_since_is_counted_from_its_memberships(owner, surveys, segments):
    sweep()
    plant(surveys["power"])
    power = segments["power"]
    power.rules = group(attribute("staff", "is_set"))
    power.save()
    membership.sweep_segment(power.pk, timezone.now())

    page = tab(owner, surveys["power"])

    assert estimate_in(page) == 2 and AS_OF.search(page)


def test_a_manual_list_changed_since_is_counted_from_its_memberships(owner, surveys, segments):
    sweep()
    plant(surveys["power"])
    plant(surveys["power"], surveys["pulse"])
    add_members(segments["beta"], ["user-2"])

    page = tab(owner, surveys["power"])

    assert estimate_in(page) == 5 and AS_OF.search(page)
    assert shared_in(page) == {"Enterprise pulse": 2}


def test_a_segment_naming_a_changed_manual_list_is_counted_from_memberships(
    owner, workspace, surveys, segments
):
    beta_power = SegmentFactory(
        workspace=workspace,
        name="Beta power",
        rules=group({"type": "segment", "segment": segments["beta"].pk, "operator": "in"}),
    )
    targeted(surveys["power"], [beta_power])
    sweep()
    plant(surveys["power"])
    add_members(segments["beta"], ["user-0"])

    page = tab(owner, surveys["power"])

    assert estimate_in(page) == 2 and AS_OF.search(page)


def test_writes_after_the_sweep_wait_for_the_next_one(owner, workspace, surveys):
    """A contact entering a segment between sweeps moves memberships, not the stored
    figure: the tab says "as of" the sweep, as docs/segments.md explains."""
    sweep()
    before = estimate_in(tab(owner, surveys["power"]))
    user = clean_user({"id": "after-the-sweep", "power": True})
    identify_contact(workspace=workspace, user=user, now=timezone.now())

    assert estimate_in(tab(owner, surveys["power"])) == before
    sweep()
    assert estimate_in(tab(owner, surveys["power"])) == before + 1


def test_the_overlap_with_an_everyone_survey_is_the_stored_estimate(owner, workspace, surveys):
    everyone = SurveyFactory(workspace=workspace, name="Everyone NPS")
    sweep()
    plant(surveys["power"])

    page = tab(owner, surveys["power"])

    assert everyone.targeting.audience == Targeting.EVERYONE
    assert shared_in(page) == {"Enterprise pulse": 1, "Everyone NPS": PLANTED}

"""Dashboard: the survey editor's Targeting tab (SPEC §4) and its live audience estimate."""

import re
from datetime import UTC, datetime

import pytest

from segments.models import Segment
from surveys.models import Survey
from targeting.models import Targeting
from tests.factories import (
    ContactFactory,
    EventFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import plan_is

HTMX = {"HX-Request": "true"}


def trait_set(trait: str) -> dict:
    return {
        "type": "group",
        "match": "all",
        "conditions": [{"type": "attribute", "attribute": trait, "operator": "is_set"}],
    }


@pytest.fixture
def segments(workspace) -> dict[str, Segment]:
    """Enterprise (3 contacts), power users (2 of them plus 1 more), employees (1)."""
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("enterprise"))
    power = SegmentFactory(workspace=workspace, name="Power users", rules=trait_set("power"))
    staff = SegmentFactory(workspace=workspace, name="Employees", rules=trait_set("staff"))
    for traits in (
        {"plan": "enterprise", "power": True},
        {"plan": "enterprise", "power": True, "staff": True},
        {"plan": "enterprise"},
        {"plan": "free", "power": True},
        {"plan": "free"},
    ):
        ContactFactory(workspace=workspace, traits=traits)
    return {"enterprise": enterprise, "power": power, "staff": staff}


@pytest.fixture
def survey(workspace) -> Survey:
    return SurveyFactory(workspace=workspace, name="Feature survey", status=Survey.DRAFT)


def tab(survey: Survey) -> str:
    return f"/surveys/{survey.pk}/targeting/"


def full_form(segments: dict[str, Segment], /, **changes) -> dict:
    form = {
        "audience": "segments",
        "segments": [segments["enterprise"].pk, segments["power"].pk],
        "segment_match": "all",
        "excluded_segments": [segments["staff"].pk],
        "trigger": "event",
        "trigger_event": "report_exported",
        "allowed_pages-match": ["starts_with", "pattern"],
        "allowed_pages-value": ["/app", "/reports/*/view"],
        "excluded_pages-match": ["equals"],
        "excluded_pages-value": ["/app/billing"],
        "delay_seconds": "5",
        "sample_percent": "50",
        "frequency": "recurring",
        "recurring_days": "90",
        "max_displays_per_contact": "3",
        "max_responses": "500",
        "starts_at": "2026-07-01T09:00",
        "ends_at": "2026-08-01T18:30",
        "priority": "7",
        "ignore_recontact": "on",
        "action": "save",
    }
    form.update(changes)
    return form


def saved(survey: Survey) -> dict:
    return Targeting.objects.get(survey=survey).to_dict()


def estimate_of(page: str) -> int:
    match = re.search(r'class="preview-count">([\d,]+)<', page)
    assert match, page
    return int(match.group(1).replace(",", ""))


# Reading --------------------------------------------------------------------


def test_tab_shows_every_setting_of_the_saved_targeting(owner, survey, segments):
    owner.post(tab(survey), full_form(segments))

    response = owner.get(tab(survey))

    page = response.content.decode()
    assert response.status_code == 200
    assert f'name="segments" value="{segments["enterprise"].pk}" checked' in page
    assert f'name="excluded_segments" value="{segments["staff"].pk}" checked' in page
    assert '<option value="all" selected>' in page
    assert 'value="report_exported"' in page
    assert 'value="/reports/*/view"' in page and 'value="/app/billing"' in page
    assert 'value="2026-07-01T09:00"' in page and 'value="2026-08-01T18:30"' in page
    assert 'name="ignore_recontact" checked' in page
    assert (
        'id="sample_percent" name="sample_percent" min="0" max="100" step="any" value="50"' in page
    )


def test_tab_offers_known_event_names(owner, workspace, survey):
    EventFactory(contact=ContactFactory(workspace=workspace), name="report_exported")
    EventFactory(contact=ContactFactory(workspace=workspace), name="invited_teammate")

    page = owner.get(tab(survey)).content.decode()

    assert '<datalist id="event-names">' in page
    assert '<option value="invited_teammate">' in page
    assert '<option value="report_exported">' in page


def test_event_names_of_other_workspaces_are_not_offered(owner, other_workspace, survey):
    EventFactory(contact=ContactFactory(workspace=other_workspace), name="secret_launch")

    assert "secret_launch" not in owner.get(tab(survey)).content.decode()


def test_viewer_reads_the_tab_without_save_buttons(viewer, survey, segments):
    page = viewer.get(tab(survey)).content.decode()

    assert "Enterprise" in page
    assert '<fieldset class="plain" disabled>' in page
    assert "Save targeting" not in page


def test_outsider_gets_404(outsider, survey, segments):
    before = saved(survey)

    assert outsider.get(tab(survey)).status_code == 404
    assert outsider.post(tab(survey), full_form(segments)).status_code == 404
    assert saved(survey) == before


def test_anonymous_is_sent_to_login(client, survey, segments):
    before = saved(survey)

    assert client.get(tab(survey)).status_code == 302
    assert client.post(tab(survey), full_form(segments)).status_code == 302
    assert saved(survey) == before


# Saving ---------------------------------------------------------------------


def test_owner_saves_every_setting_of_spec_section_4(owner, survey, segments):
    response = owner.post(tab(survey), full_form(segments))

    assert response.status_code == 302
    assert response["Location"] == tab(survey)
    assert saved(survey) == {
        "audience": "segments",
        "segments": sorted([segments["enterprise"].pk, segments["power"].pk]),
        "segment_match": "all",
        "excluded_segments": [segments["staff"].pk],
        "trigger": "event",
        "trigger_event": "report_exported",
        "allowed_pages": [
            {"match": "starts_with", "value": "/app"},
            {"match": "pattern", "value": "/reports/*/view"},
        ],
        "excluded_pages": [{"match": "equals", "value": "/app/billing"}],
        "delay_seconds": 5,
        "sample_percent": 50,
        "frequency": "recurring",
        "recurring_days": 90,
        "max_displays_per_contact": 3,
        "max_responses": 500,
        "starts_at": "2026-07-01T09:00:00Z",
        "ends_at": "2026-08-01T18:30:00Z",
        "priority": 7,
        "ignore_recontact": True,
    }


def test_saving_everyone_with_blank_limits_clears_them(owner, survey, segments):
    owner.post(tab(survey), full_form(segments))

    owner.post(
        tab(survey),
        full_form(
            segments,
            audience="everyone",
            excluded_segments=[],
            trigger="page_load",
            max_displays_per_contact="",
            max_responses="",
            starts_at="",
            ends_at="",
            ignore_recontact="",
            **{"allowed_pages-match": [], "allowed_pages-value": []},
        ),
    )

    targeting = saved(survey)
    assert targeting["audience"] == "everyone" and targeting["segments"] == []
    assert targeting["max_displays_per_contact"] is None and targeting["max_responses"] is None
    assert targeting["starts_at"] is None and targeting["ignore_recontact"] is False
    assert targeting["allowed_pages"] == []


def test_blank_page_rows_are_skipped(owner, survey, segments):
    form = full_form(
        segments,
        **{"allowed_pages-match": ["equals", "contains"], "allowed_pages-value": ["", "/docs"]},
    )

    owner.post(tab(survey), form)

    assert saved(survey)["allowed_pages"] == [{"match": "contains", "value": "/docs"}]


def test_saving_through_htmx_returns_the_form_with_a_saved_note(owner, survey, segments):
    response = owner.post(tab(survey), full_form(segments), headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page and page.lstrip().startswith('<form id="targeting-form"')
    assert "Saved" in page
    assert saved(survey)["trigger_event"] == "report_exported"


@pytest.mark.parametrize(
    "changes, field_message",
    [
        ({"segments": []}, "Choose at least one segment, or target everyone."),
        ({"trigger_event": ""}, "An event trigger needs the event&#x27;s name."),
        ({"ends_at": "2026-06-01T00:00"}, "Must be after the start."),
        ({"starts_at": "next tuesday"}, "Must be a date, or a date and time, or left empty."),
        ({"delay_seconds": "soon"}, "Enter a whole number."),
        ({"delay_seconds": "-1"}, "Must be a whole number from 0 to 86400."),
        ({"sample_percent": "150"}, "Must be a number from 0 to 100."),
        ({"sample_percent": "nan"}, "Enter a number from 0 to 100."),
        ({"recurring_days": "0"}, "Must be a whole number from 1 to 3650."),
        ({"priority": "5000"}, "Must be a whole number from -1000 to 1000."),
        ({"frequency": "hourly"}, "Must be one of"),
        ({"audience": "vips"}, "Must be one of"),
        ({"segments": ["abc"]}, "Must be a list of segment ids."),
        (
            {"allowed_pages-match": ["regex", "equals"]},
            "Must be one of equals, starts with, contains",
        ),
    ],
)
def test_invalid_targeting_shows_the_error_and_saves_nothing(
    owner, survey, segments, changes, field_message
):
    before = saved(survey)

    response = owner.post(tab(survey), full_form(segments, **changes), headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved" in page
    assert field_message in page
    assert saved(survey) == before


def test_a_segment_both_targeted_and_excluded_is_refused(owner, survey, segments):
    before = saved(survey)
    form = full_form(segments, excluded_segments=[segments["power"].pk])

    page = owner.post(tab(survey), form).content.decode()

    assert "A segment cannot be both targeted and excluded." in page
    assert saved(survey) == before


def test_a_segment_of_another_workspace_is_refused(owner, other_workspace, survey, segments):
    foreign = SegmentFactory(workspace=other_workspace)
    before = saved(survey)

    page = owner.post(tab(survey), full_form(segments, segments=[foreign.pk])).content.decode()

    assert f"There is no segment {foreign.pk} in this workspace." in page
    assert saved(survey) == before
    assert not Targeting.objects.get(survey=survey).segments.filter(pk=foreign.pk).exists()


def test_a_bad_page_row_is_marked_on_the_row_shown(owner, survey, segments):
    form = full_form(
        segments,
        **{
            "allowed_pages-match": ["equals", "regex"],
            "allowed_pages-value": ["", "/x"],
        },
    )

    page = owner.post(tab(survey), form, headers=HTMX).content.decode()

    rows = re.findall(r'<div class="page-row( has-error)?">', page)
    assert rows[:2] == ["", " has-error"]


def test_add_and_remove_page_rows_keep_the_form_and_save_nothing(owner, survey, segments):
    before = saved(survey)

    added = owner.post(tab(survey), full_form(segments, action="add:excluded_pages"), headers=HTMX)
    removed = owner.post(
        tab(survey), full_form(segments, action="remove:allowed_pages:0"), headers=HTMX
    )

    added_page, removed_page = added.content.decode(), removed.content.decode()
    assert added_page.count('name="excluded_pages-value"') == 2
    assert 'value="report_exported"' in added_page
    assert removed_page.count('name="allowed_pages-value"') == 1
    assert 'value="/app"' not in removed_page and 'value="/reports/*/view"' in removed_page
    assert saved(survey) == before


def test_viewer_cannot_save(viewer, survey, segments):
    before = saved(survey)

    response = viewer.post(tab(survey), full_form(segments))

    assert response.status_code == 403
    assert saved(survey) == before


def test_a_survey_without_targeting_gets_the_defaults(owner, workspace):
    bare = SurveyFactory(workspace=workspace)
    Targeting.objects.filter(survey=bare).delete()

    response = owner.get(tab(bare))

    assert response.status_code == 200
    assert Targeting.objects.get(survey=bare).audience == Targeting.EVERYONE


# The live estimate ----------------------------------------------------------


def test_the_page_shows_the_saved_audience_size(owner, survey, segments):
    owner.post(tab(survey), full_form(segments))

    page = owner.get(tab(survey)).content.decode()

    # Enterprise AND power users, minus employees: only the first contact.
    assert estimate_of(page) == 1
    assert "of 5 identified contacts" in page


@pytest.mark.parametrize(
    "audience, expected",
    [
        ({"audience": "everyone"}, 5),
        ({"audience": "everyone", "excluded_segments": "staff"}, 4),
        ({"audience": "segments", "segments": ["enterprise", "power"], "segment_match": "any"}, 4),
        ({"audience": "segments", "segments": ["enterprise", "power"], "segment_match": "all"}, 2),
        (
            {
                "audience": "segments",
                "segments": ["enterprise", "power"],
                "segment_match": "all",
                "excluded_segments": "staff",
            },
            1,
        ),
        ({"audience": "segments", "segments": []}, 0),
    ],
)
def test_htmx_get_estimates_the_unsaved_audience(owner, survey, segments, audience, expected):
    params = dict(audience)
    params["segments"] = [segments[name].pk for name in audience.get("segments", [])]
    if "excluded_segments" in audience:
        params["excluded_segments"] = [segments[audience["excluded_segments"]].pk]

    response = owner.get(tab(survey), params, headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="estimate"')
    assert estimate_of(page) == expected
    assert saved(survey)["audience"] == "everyone"


def test_the_estimate_mentions_the_sample(owner, survey, segments):
    page = owner.get(
        tab(survey), {"audience": "everyone", "sample_percent": "40"}, headers=HTMX
    ).content.decode()

    assert "with a 40% sample, about 2" in page


def test_the_estimate_counts_only_this_workspace(owner, other_workspace, survey, segments):
    ContactFactory(workspace=other_workspace, traits={"plan": "enterprise"})

    page = owner.get(tab(survey), {"audience": "everyone"}, headers=HTMX).content.decode()

    assert estimate_of(page) == 5


def test_competing_live_surveys_are_listed_with_shared_contacts(owner, workspace, survey, segments):
    rival = SurveyFactory(workspace=workspace, name="Enterprise pulse")
    rival.targeting.audience = Targeting.SEGMENTS
    rival.targeting.priority = 3
    rival.targeting.save()
    rival.targeting.segments.set([segments["enterprise"]])
    everyone = SurveyFactory(workspace=workspace, name="Everyone NPS")
    SurveyFactory(workspace=workspace, name="Paused one", status=Survey.PAUSED)
    SurveyFactory(workspace=workspace, name="Draft one", status=Survey.DRAFT)
    params = {"audience": "segments", "segments": [segments["power"].pk]}

    page = owner.get(tab(survey), params, headers=HTMX).content.decode()

    # Power users are contacts 1, 2 and 4; enterprise holds 1 and 2 of them.
    assert "Competes with 2 live surveys" in page
    assert re.search(r"Enterprise pulse</a>: shares 2 contacts\s*<span[^>]*>\(priority 3\)", page)
    assert re.search(r"Everyone NPS</a>: shares 3 contacts", page)
    assert f"/surveys/{everyone.pk}/targeting/" in page
    assert "Paused one" not in page and "Draft one" not in page


def test_no_competition_when_audiences_do_not_overlap(owner, workspace, survey, segments):
    rival = SurveyFactory(workspace=workspace, name="Free plan survey")
    free = SegmentFactory(workspace=workspace, name="Free", rules=plan_is("free"))
    rival.targeting.audience = Targeting.SEGMENTS
    rival.targeting.save()
    rival.targeting.segments.set([free])
    params = {"audience": "segments", "segments": [segments["enterprise"].pk]}

    page = owner.get(tab(survey), params, headers=HTMX).content.decode()

    assert "Competes with" not in page
    assert "No other live survey reaches these contacts." in page


def test_the_survey_does_not_compete_with_itself(owner, workspace, segments):
    live = SurveyFactory(workspace=workspace, name="Only live")

    page = owner.get(tab(live), {"audience": "everyone"}, headers=HTMX).content.decode()

    assert "Competes with" not in page


def test_outsider_gets_no_estimate(outsider, survey, segments):
    response = outsider.get(tab(survey), {"audience": "everyone"}, headers=HTMX)

    assert response.status_code == 404


def test_times_are_shown_in_utc(owner, survey):
    targeting = survey.targeting
    targeting.starts_at = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    targeting.save()

    assert 'value="2026-07-01T09:00"' in owner.get(tab(survey)).content.decode()

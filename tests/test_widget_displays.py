"""The widget's display endpoint enforces targeting (SPEC §4, §5.1): it is no back door."""

from datetime import timedelta

import pytest
from django.utils import timezone

from surveys.models import Display, Response
from tests.clients import error_code
from tests.factories import (
    ContactFactory,
    DisplayFactory,
    ManualSegmentFactory,
    ResponseFactory,
    SurveyFactory,
    target,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(workspace):
    return ContactFactory(workspace=workspace, user_id="u-1")


def show(widget, survey, **check):
    return widget.post("displays", {"user_id": "u-1", "survey": survey.pk, **check})


def refused_for(response) -> list[str]:
    """The reason codes of a 409 `not_eligible` (fails on any other answer)."""
    assert response.status_code == 409, response.content
    assert error_code(response) == "not_eligible"
    error = response.json()["error"]
    assert error["message"]
    assert all(reason["message"] for reason in error["reasons"])
    return [reason["code"] for reason in error["reasons"]]


def test_an_eligible_survey_is_recorded(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace)
    response = show(widget, survey)
    assert response.status_code == 201
    assert Display.objects.get().pk.hex == response.json()["display"].replace("-", "")


def test_a_contact_outside_the_audience_is_refused(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace)
    target(survey, segments=[ManualSegmentFactory(workspace=workspace)])
    assert refused_for(show(widget, survey)) == ["not_in_audience"]
    assert not Display.objects.exists()


def test_a_contact_in_an_excluded_segment_is_refused(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace)
    target(survey, excluded=[ManualSegmentFactory(workspace=workspace, members=[contact])])
    assert refused_for(show(widget, survey)) == ["in_excluded_segment"]
    assert not Display.objects.exists()


def test_an_event_survey_needs_its_event(widget, workspace, contact):
    survey = SurveyFactory(
        workspace=workspace, targeting={"trigger": "event", "trigger_event": "exported"}
    )
    assert refused_for(show(widget, survey)) == ["trigger_mismatch"]
    assert refused_for(show(widget, survey, event="signed_up")) == ["trigger_mismatch"]
    assert not Display.objects.exists()
    assert show(widget, survey, event="exported").status_code == 201


def test_a_page_survey_needs_its_page(widget, workspace, contact):
    pages = {"allowed_pages": [{"match": "starts_with", "value": "/reports"}],
             "excluded_pages": [{"match": "contains", "value": "draft"}]}  # fmt: skip
    survey = SurveyFactory(workspace=workspace, targeting={"frequency": "every_trigger", **pages})
    assert refused_for(show(widget, survey)) == ["page_mismatch"]
    assert refused_for(show(widget, survey, url="https://app.example/settings")) == [
        "page_mismatch"
    ]
    assert refused_for(show(widget, survey, url="https://app.example/reports/draft")) == [
        "page_mismatch"
    ]
    assert not Display.objects.exists()
    assert show(widget, survey, url="https://app.example/reports/q3").status_code == 201


def test_a_survey_outside_its_schedule_is_refused(widget, workspace, contact):
    now = timezone.now()
    later = SurveyFactory(workspace=workspace, targeting={"starts_at": now + timedelta(days=1)})
    ended = SurveyFactory(workspace=workspace, targeting={"ends_at": now - timedelta(days=1)})
    assert refused_for(show(widget, later)) == ["outside_schedule"]
    assert refused_for(show(widget, ended)) == ["outside_schedule"]
    assert not Display.objects.exists()


def test_a_survey_with_its_responses_is_refused(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace, targeting={"max_responses": 1})
    someone = ContactFactory(workspace=workspace)
    ResponseFactory(display=DisplayFactory(survey=survey, contact=someone), completed=True)
    assert refused_for(show(widget, survey)) == ["response_cap_reached"]
    assert Display.objects.count() == 1


def test_a_contact_shown_a_survey_its_maximum_times_is_refused(widget, workspace, contact):
    survey = SurveyFactory(
        workspace=workspace, targeting={"frequency": "every_trigger", "max_displays_per_contact": 2}
    )
    assert show(widget, survey).status_code == 201
    assert show(widget, survey).status_code == 201
    assert refused_for(show(widget, survey)) == ["display_cap_reached"]
    assert Display.objects.count() == 2


def test_a_completed_once_survey_is_refused(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace)
    display_id = show(widget, survey).json()["display"]
    done = widget.post(f"displays/{display_id}/answers", {"answers": {"nps": 9}, "completed": True})
    assert done.status_code == 200
    assert refused_for(show(widget, survey)) == ["already_completed"]
    assert Display.objects.count() == 1


def test_a_contact_outside_the_sample_is_refused(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace, targeting={"sample_percent": 0})
    assert refused_for(show(widget, survey)) == ["not_sampled"]
    assert not Display.objects.exists()


def test_every_reason_against_is_given(widget, workspace, contact):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"trigger": "event", "trigger_event": "x", "sample_percent": 0},
    )
    target(survey, segments=[ManualSegmentFactory(workspace=workspace)])
    assert refused_for(show(widget, survey)) == ["not_in_audience", "trigger_mismatch",
                                                 "not_sampled"]  # fmt: skip


def test_a_manual_survey_is_recorded_as_when_asked_for_by_id(widget, workspace, contact):
    manual = SurveyFactory(workspace=workspace, targeting={"trigger": "manual"})
    assert show(widget, manual).status_code == 201


def test_the_event_and_url_are_checked_like_eligibility(widget, workspace, contact):
    survey = SurveyFactory(
        workspace=workspace,
        targeting={"trigger": "event", "trigger_event": "e", "frequency": "every_trigger"},
    )
    for field, value in (("event", 5), ("url", ""), ("event", "x" * 201)):
        response = show(widget, survey, **{field: value})
        assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not Display.objects.exists()


def test_a_display_of_a_once_survey_opened_twice_takes_one_completion(widget, workspace, contact):
    # Two tabs asked at the same time: both were eligible, only one may complete.
    survey = SurveyFactory(workspace=workspace)
    first, second = (show(widget, survey).json()["display"] for _ in range(2))
    answer = {"answers": {"nps": 9}, "completed": True}
    assert widget.post(f"displays/{first}/answers", answer).status_code == 200
    response = widget.post(f"displays/{second}/answers", answer)
    assert response.status_code == 409 and error_code(response) == "display_closed"
    assert Response.objects.filter(completed=True).count() == 1
    assert Response.objects.count() == 1
    # The completed display repeats harmlessly, even with the other one still open.
    assert widget.post(f"displays/{first}/answers", answer).status_code == 200


def test_a_recurring_survey_takes_a_completion_per_display(widget, workspace, contact):
    survey = SurveyFactory(workspace=workspace, targeting={"frequency": "every_trigger"})
    first, second = (show(widget, survey).json()["display"] for _ in range(2))
    answer = {"answers": {"nps": 9}, "completed": True}
    assert widget.post(f"displays/{first}/answers", answer).status_code == 200
    assert widget.post(f"displays/{second}/answers", answer).status_code == 200
    assert Response.objects.filter(completed=True).count() == 2

"""Event bodies: what the builders make is what docs/webhooks.md shows, and Slack's text."""

import json
import re
from datetime import UTC, datetime

import pytest

from surveys.models import Display, Response
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory
from tests.webhook_receiver import DOC
from webhooks import events

pytestmark = pytest.mark.django_db

AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def documented_bodies() -> dict[str, dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    found = [json.loads(block) for block in blocks]
    return {body["type"]: body for body in found}


def keys(body: dict) -> dict:
    """The shape of a body: its keys, nested, without the values."""
    return {k: keys(v) if isinstance(v, dict) and k != "answers" else None for k, v in body.items()}


@pytest.fixture
def made(workspace) -> dict[str, dict]:
    survey = SurveyFactory(workspace=workspace, name="NPS")
    contact = ContactFactory(workspace=workspace, user_id="u-42")
    segment = SegmentFactory(workspace=workspace, name="Power users")
    display = Display.objects.create(
        workspace=workspace, survey=survey, contact=contact, shown_at=AT, dismissed_at=AT
    )
    response = Response.objects.create(
        display=display,
        workspace=workspace,
        survey=survey,
        contact=contact,
        answers={"nps": 9},
        completed=True,
        completed_at=AT,
    )
    return {
        body["type"]: body
        for body in (
            events.survey_displayed(display),
            events.survey_completed(display, response),
            events.survey_dismissed(display),
            events.contact_entered_segment(contact, segment, AT),
            events.contact_left_segment(contact, segment, AT),
        )
    }


def test_every_documented_body_has_the_shape_the_builders_make(made):
    documented = documented_bodies()

    assert set(documented) == set(made) - {"contact.left_segment"}  # documented in words
    for event, body in documented.items():
        assert keys(body) == keys(made[event]), event


def test_the_left_segment_body_has_left_at_instead_of_entered_at(made):
    entered, left = made["contact.entered_segment"]["data"], made["contact.left_segment"]["data"]

    assert set(left) == set(entered) - {"entered_at"} | {"left_at"}


@pytest.mark.parametrize(
    ("event", "text"),
    [
        ("survey.displayed", "Survey *NPS* was shown to `u-42`."),
        ("survey.completed", "`u-42` completed the survey *NPS*.\n• nps: 9"),
        ("survey.dismissed", "`u-42` dismissed the survey *NPS*."),
        ("contact.entered_segment", "`u-42` entered the segment *Power users*."),
        ("contact.left_segment", "`u-42` left the segment *Power users*."),
    ],
)
def test_each_event_has_its_slack_text(made, event, text):
    assert events.slack_message(made[event]) == {"text": text}

"""What each event says: the JSON body of every event type, and its Slack message.

Bodies are built once, when the event happens, and stored on each delivery: a retry
sends the same bytes, and the body tells what was true then.
"""

import uuid
from datetime import datetime

from segments.models import Contact, Segment
from segments.values import iso
from surveys.models import Display, Response
from webhooks import models


def envelope(event: str, workspace_id: int, data: dict, at: datetime) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": event,
        "created_at": iso(at),
        "workspace": workspace_id,
        "data": data,
    }


def _survey_part(display: Display) -> dict:
    return {
        "survey": {"id": display.survey_id, "name": display.survey.name},
        "display": str(display.pk),
        "user_id": display.contact.user_id,
    }


def survey_displayed(display: Display) -> dict:
    data = _survey_part(display) | {"shown_at": iso(display.shown_at)}
    return envelope(models.SURVEY_DISPLAYED, display.workspace_id, data, display.shown_at)


def survey_completed(display: Display, response: Response) -> dict:
    data = _survey_part(display) | {
        "completed_at": iso(response.completed_at),
        "answers": response.answers,
    }
    return envelope(models.SURVEY_COMPLETED, display.workspace_id, data, response.completed_at)


def survey_dismissed(display: Display) -> dict:
    data = _survey_part(display) | {"dismissed_at": iso(display.dismissed_at)}
    return envelope(models.SURVEY_DISMISSED, display.workspace_id, data, display.dismissed_at)


def _segment_part(contact: Contact, segment: Segment) -> dict:
    return {"segment": {"id": segment.pk, "name": segment.name}, "user_id": contact.user_id}


def contact_entered_segment(contact: Contact, segment: Segment, at: datetime) -> dict:
    data = _segment_part(contact, segment) | {"entered_at": iso(at)}
    return envelope(models.CONTACT_ENTERED_SEGMENT, segment.workspace_id, data, at)


def contact_left_segment(contact: Contact, segment: Segment, at: datetime) -> dict:
    data = _segment_part(contact, segment) | {"left_at": iso(at)}
    return envelope(models.CONTACT_LEFT_SEGMENT, segment.workspace_id, data, at)


def _slack_escape(text) -> str:
    """Slack reads <...> as links and mentions: a survey named "<!channel>" must not ping."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: dict) -> dict:
    """The event as a Slack incoming-webhook message: `{"text": ...}` and nothing else."""
    data = payload["data"]
    user = f"`{_slack_escape(data['user_id'])}`"
    if payload["type"].startswith("survey."):
        survey = f"*{_slack_escape(data['survey']['name'])}*"
        text = {
            models.SURVEY_DISPLAYED: f"Survey {survey} was shown to {user}.",
            models.SURVEY_COMPLETED: f"{user} completed the survey {survey}.",
            models.SURVEY_DISMISSED: f"{user} dismissed the survey {survey}.",
        }[payload["type"]]
        if payload["type"] == models.SURVEY_COMPLETED:
            text += "".join(
                f"\n• {_slack_escape(key)}: {_slack_escape(value)}"
                for key, value in data["answers"].items()
            )
    else:
        segment = f"*{_slack_escape(data['segment']['name'])}*"
        verb = "entered" if payload["type"] == models.CONTACT_ENTERED_SEGMENT else "left"
        text = f"{user} {verb} the segment {segment}."
    return {"text": text}

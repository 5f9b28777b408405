"""The server side of the widget's Refiner-style calls: once-per-session surveys and the
page's extra fields of `addToResponse`, stored with the answers and shown everywhere
responses are."""

import csv
import io
import json

import pytest

from surveys.models import Display, Response
from targeting.models import Targeting
from tests.clients import Widget, error_code
from tests.factories import ContactFactory, SurveyFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

MORNING, AFTERNOON = "session-morning-1", "session-afternoon-2"


@pytest.fixture(autouse=True)
def known(workspace):
    return ContactFactory(workspace=workspace, user_id="u-42")


@pytest.fixture
def per_session(workspace):
    return SurveyFactory(workspace=workspace, targeting={"frequency": "once_per_session"})


def survey_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["surveys"]]


def show(widget, survey, **body) -> str:
    response = widget.post("displays", {"user_id": "u-42", "survey": survey.pk, **body})
    assert response.status_code == 201, response.content
    return response.json()["display"]


# Once per session ----------------------------------------------------------------------------


def test_a_once_per_session_survey_shows_once_in_a_session_and_again_in_the_next(
    widget, per_session
):
    morning = {"user_id": "u-42", "session": MORNING}
    assert survey_ids(widget.post("eligibility", morning)) == [per_session.pk]

    display_id = show(widget, per_session, session=MORNING)

    assert Display.objects.get(pk=display_id).session == MORNING
    assert survey_ids(widget.post("eligibility", morning)) == [], "shown, even if not answered"
    refused = widget.post("displays", {**morning, "survey": per_session.pk})
    assert refused.status_code == 409
    assert refused.json()["error"]["reasons"][0]["code"] == "shown_this_session"
    afternoon = {"user_id": "u-42", "session": AFTERNOON}
    assert survey_ids(widget.post("eligibility", afternoon)) == [per_session.pk]


def test_other_frequencies_ignore_the_session(widget, workspace):
    once = SurveyFactory(workspace=workspace)
    display_id = show(widget, once, session=MORNING)
    widget.post(f"displays/{display_id}/dismiss", {})

    assert survey_ids(widget.post("eligibility", {"user_id": "u-42", "session": AFTERNOON})) == []


@pytest.mark.parametrize("session", ["short", "x" * 65, "no spaces here", 12345678, ["a" * 10]])
def test_a_malformed_session_is_refused_and_writes_nothing(widget, per_session, session):
    for path in ("eligibility", "displays"):
        body = {"user_id": "u-42", "survey": per_session.pk, "session": session}
        response = widget.post(path, body)
        assert response.status_code == 400 and error_code(response) == "invalid", path
    assert not Display.objects.exists()


def test_the_rest_api_takes_once_per_session_and_refuses_other_words(api, per_session):
    url = f"/api/v1/surveys/{per_session.pk}"
    saved = api.put(url, {"targeting": {"frequency": "once_per_session"}})
    assert saved.status_code == 200, saved.content
    assert saved.json()["targeting"]["frequency"] == "once_per_session"

    refused = api.put(url, {"targeting": {"frequency": "once_per_visit"}})
    assert refused.status_code == 400
    assert "targeting.frequency" in refused.json()["error"]["fields"]


def test_the_targeting_tab_offers_once_per_session_and_the_audience_for_anyone(owner, per_session):
    page = owner.get(f"/surveys/{per_session.pk}/targeting/").content.decode()

    assert 'value="once_per_session" selected' in page
    assert 'value="anyone"' in page and "Everyone, signed in or not" in page


def test_the_audience_for_anyone_drops_targeted_segments(api, per_session):
    url = f"/api/v1/surveys/{per_session.pk}"
    saved = api.put(url, {"targeting": {"audience": "anyone"}})
    assert saved.status_code == 200, saved.content
    assert saved.json()["targeting"]["audience"] == "anyone"
    assert Targeting.objects.get(survey=per_session).audience == Targeting.ANYONE


# Extra fields (addToResponse) ----------------------------------------------------------------


def test_extra_fields_are_stored_with_the_answers_and_listed_everywhere(
    widget, api, owner, per_session
):
    display_id = show(widget, per_session)
    extra = {"plan": "pro", "seats": 12, "beta": True, "page.section": "billing"}

    response = widget.post(f"displays/{display_id}/answers",
                           {"answers": {"nps": 8}, "completed": True, "extra": extra})  # fmt: skip

    assert response.status_code == 200
    assert "plan" not in response.content.decode(), "nothing stored is echoed"
    assert Response.objects.get(display_id=display_id).extra == extra
    assert api.get("/api/v1/responses").json()["results"][0]["extra"] == extra
    export = owner.get("/responses/export.csv")
    text = b"".join(export.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][-1] == "extra"
    assert json.loads(rows[1][-1]) == extra
    page = owner.get("/responses/").content.decode()
    assert "page.section" in page and "billing" in page


def test_a_later_answer_replaces_the_extra_fields_and_none_keeps_them(widget, per_session):
    display_id = show(widget, per_session)
    url = f"displays/{display_id}/answers"
    widget.post(url, {"answers": {"nps": 8}, "extra": {"plan": "pro", "step": "one"}})
    widget.post(url, {"answers": {"nps": 9}})
    assert Response.objects.get(display_id=display_id).extra == {"plan": "pro", "step": "one"}

    widget.post(url, {"answers": {"nps": 9}, "extra": {"plan": "team"}, "completed": True})

    assert Response.objects.get(display_id=display_id).extra == {"plan": "team"}


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"nested": {"a": 1}}, "extra.nested"),
        ({"list": [1, 2]}, "extra.list"),
        ({"long": "x" * 501}, "extra.long"),
        ({"huge": 10**16}, "extra.huge"),
        ({" space first": 1}, "extra. space first"),
        ({"a/b": 1}, "extra.a/b"),
        ({f"k{i}": i for i in range(21)}, "extra"),
        ("plan=pro", "extra"),
    ],
)
def test_bad_extra_fields_are_refused_and_nothing_is_written(widget, per_session, extra, field):
    display_id = show(widget, per_session)

    response = widget.post(f"displays/{display_id}/answers",
                           {"answers": {"nps": 8}, "extra": extra})  # fmt: skip

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Response.objects.exists(), "the answers are not written either"


def test_another_workspaces_key_cannot_add_fields_to_a_response(widget, per_session):
    display_id = show(widget, per_session)
    outsider = Widget(WorkspaceFactory())

    response = outsider.post(f"displays/{display_id}/answers",
                             {"answers": {"nps": 1}, "extra": {"plan": "free"}})  # fmt: skip

    assert response.status_code == 404
    assert not Response.objects.exists()

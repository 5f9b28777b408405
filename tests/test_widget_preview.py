"""Preview on my site: signed, expiring tokens and POST /api/v1/widget/preview (no writes)."""

import json
import re
import time

import pytest
from django.core import signing

from segments.models import Contact
from surveys.models import Display, Response, Survey
from targeting.preview import (
    SALT,
    PreviewRefused,
    preview_link,
    preview_token,
    previewed_survey_id,
)
from tests.clients import Widget, error_code, signed_in
from tests.factories import NPS_QUESTION, SurveyFactory

pytestmark = pytest.mark.django_db

QUESTIONS = [
    NPS_QUESTION,
    {"key": "why", "type": "text", "text": "Why?"},
]


@pytest.fixture
def draft(workspace):
    return SurveyFactory(
        workspace=workspace,
        name="Draft NPS",
        status=Survey.DRAFT,
        questions=QUESTIONS,
        targeting={"delay_seconds": 30, "trigger": "event", "trigger_event": "never"},
    )


def rows() -> tuple[int, int, int]:
    return Contact.objects.count(), Display.objects.count(), Response.objects.count()


def test_a_token_shows_its_survey_even_as_a_draft(workspace, draft):
    response = Widget(workspace).post("preview", {"token": preview_token(draft)})

    assert response.status_code == 200
    assert response.json() == {
        "survey": {"id": draft.pk, "name": "Draft NPS", "delay_seconds": 30, "questions": QUESTIONS}
    }
    assert rows() == (0, 0, 0)


@pytest.mark.parametrize("status", [Survey.LIVE, Survey.PAUSED, Survey.ARCHIVED])
def test_every_status_can_be_previewed(workspace, status):
    survey = SurveyFactory(workspace=workspace, status=status)
    response = Widget(workspace).post("preview", {"token": preview_token(survey)})
    assert response.status_code == 200
    assert response.json()["survey"]["id"] == survey.pk


def test_an_expired_token_is_refused(workspace, draft, monkeypatch):
    made = time.time() - 24 * 3600 - 60
    with monkeypatch.context() as clock:
        clock.setattr(signing.time, "time", lambda: made)  # signed 24 h and a minute ago
        token = preview_token(draft)

    response = Widget(workspace).post("preview", {"token": token})

    assert response.status_code == 403
    assert error_code(response) == "preview_expired"
    assert set(response.json()["error"]) == {"code", "message"}


def test_a_token_is_good_within_its_max_age_only():
    token = signing.dumps({"workspace": 1, "survey": 2}, salt=SALT)
    assert previewed_survey_id(token, 1, max_age=60) == 2
    with pytest.raises(PreviewRefused) as refused:
        previewed_survey_id(token, 1, max_age=-1)
    assert refused.value.code == "preview_expired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        lambda token: signing.dumps({"workspace": 1, "survey": 1}, salt="another-salt"),
        lambda token: "not-a-token",
    ],
    ids=["changed-signature", "other-salt", "garbage"],
)
def test_a_tampered_token_is_refused(workspace, draft, tamper):
    response = Widget(workspace).post("preview", {"token": tamper(preview_token(draft))})
    assert response.status_code == 403
    assert error_code(response) == "bad_preview_token"


def test_a_token_cannot_be_rewritten_to_name_another_survey(workspace, draft):
    other = SurveyFactory(workspace=workspace)
    token = preview_token(draft)
    payload, rest = token.split(":", 1)
    forged = signing.b64_encode(
        json.dumps({"workspace": workspace.pk, "survey": other.pk}, separators=(",", ":")).encode()
    ).decode()
    response = Widget(workspace).post("preview", {"token": f"{forged}:{rest}"})
    assert response.status_code == 403
    assert error_code(response) == "bad_preview_token"


def test_another_workspaces_key_gets_nothing(workspace, other_workspace, draft):
    response = Widget(other_workspace).post("preview", {"token": preview_token(draft)})

    assert response.status_code == 403
    assert error_code(response) == "bad_preview_token"
    assert "Draft NPS" not in response.content.decode()


def test_a_token_of_another_workspace_is_refused_with_this_key(workspace, other_workspace):
    theirs = SurveyFactory(workspace=other_workspace, name="Theirs")
    response = Widget(workspace).post("preview", {"token": preview_token(theirs)})
    assert response.status_code == 403
    assert "Theirs" not in response.content.decode()


def test_a_deleted_survey_is_not_found(workspace, draft):
    token = preview_token(draft)
    draft.delete()
    response = Widget(workspace).post("preview", {"token": token})
    assert response.status_code == 404
    assert error_code(response) == "not_found"


@pytest.mark.parametrize("token", [None, "", 7, ["t"], "x" * 501])
def test_a_missing_or_malformed_token_is_a_400(workspace, token):
    response = Widget(workspace).post("preview", {"token": token})
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "token": "Must be a preview token of 1 to 500 characters."
    }


def test_a_bad_widget_key_is_a_401(workspace, draft):
    response = Widget(workspace).post("preview", {"token": preview_token(draft)}, key="wk_nope")
    assert response.status_code == 401


def test_the_origin_must_be_allowed(workspace, draft):
    workspace.allowed_origins = ["https://app.example.com"]
    workspace.save()
    token = preview_token(draft)
    assert (
        Widget(workspace, "https://evil.example").post("preview", {"token": token}).status_code
        == 403
    )
    allowed = Widget(workspace, "https://app.example.com").post("preview", {"token": token})
    assert allowed.status_code == 200
    assert allowed["Access-Control-Allow-Origin"] == "https://app.example.com"


# The link builder -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "page, expected",
    [
        ("https://app.example.com/reports", "https://app.example.com/reports?refiner_preview=T"),
        (
            "https://app.example.com/r?tab=2#top",
            "https://app.example.com/r?tab=2&refiner_preview=T#top",
        ),
        ("http://localhost:8000/?refiner_preview=old", "http://localhost:8000/?refiner_preview=T"),
        ("  https://app.example.com  ", "https://app.example.com?refiner_preview=T"),
    ],
)
def test_the_link_is_the_page_with_the_token(page, expected):
    assert preview_link(page, "T") == expected


@pytest.mark.parametrize(
    "page", ["app.example.com", "javascript:alert(1)", "ftp://x.example", "https://", "http://[::1"]
)
def test_only_web_addresses_get_a_link(page):
    assert preview_link(page, "T") is None


def editor_page(client, survey, **query):
    return client.get(f"/surveys/{survey.pk}/", query).content.decode()


def test_the_editor_offers_a_link_and_a_snippet(owner, workspace, draft):
    page = editor_page(owner, draft, preview_url="https://app.example.com/reports?x=1")

    assert "Preview on my site" in page
    link = re.search(r'id="preview-link"[^>]* value="([^"]*)"', page).group(1)
    assert link.startswith("https://app.example.com/reports?x=1&amp;refiner_preview=")
    token = link.split("refiner_preview=")[1].replace("%3A", ":")
    assert previewed_survey_id(token, workspace.pk) == draft.pk
    assert f"_refiner(&#x27;previewForm&#x27;, &#x27;{token}&#x27;);" in page


def test_the_editor_says_when_the_address_is_no_web_page(owner, draft):
    page = editor_page(owner, draft, preview_url="app.example.com")
    assert "Enter a page address (http or https)." in page
    assert 'id="preview-link"' not in page


def test_an_editor_gets_the_block_on_the_targeting_tab_too(workspace, draft):
    page = signed_in(workspace, "editor").get(f"/surveys/{draft.pk}/targeting/").content.decode()
    assert "Preview on my site" in page and "previewForm" in page


def test_a_viewer_gets_no_preview_token(viewer, draft):
    page = editor_page(viewer, draft, preview_url="https://app.example.com/")
    assert "Preview on my site" not in page
    assert "refiner_preview" not in page and "previewForm" not in page


def test_an_outsider_gets_no_editor(outsider, draft):
    response = outsider.get(f"/surveys/{draft.pk}/", {"preview_url": "https://x.example/"})
    assert response.status_code == 404

"""Dashboard: the survey list, creating surveys, the Questions tab and publishing."""

import pytest

from surveys.models import Question, Survey
from targeting.models import Targeting
from tests.factories import NPS_QUESTION, SegmentFactory, SurveyFactory

HTMX = {"HX-Request": "true"}


@pytest.fixture
def survey(workspace) -> Survey:
    return SurveyFactory(
        workspace=workspace,
        name="Onboarding NPS",
        status=Survey.DRAFT,
        questions=[
            NPS_QUESTION,
            {"key": "why", "type": "text", "text": "Why?"},
            {"key": "plan", "type": "single_choice", "text": "Plan?", "choices": ["Free", "Pro"]},
        ],
    )


def questions_of(survey: Survey) -> list[dict]:
    return [q.to_dict() for q in Question.objects.filter(survey=survey).order_by("position")]


def url(survey: Survey, suffix: str = "") -> str:
    return f"/surveys/{survey.pk}/{suffix}"


# The list -------------------------------------------------------------------


def test_list_shows_status_audience_and_completed_responses(owner, workspace, survey):
    power = SegmentFactory(workspace=workspace, name="Power users")
    staff = SegmentFactory(workspace=workspace, name="Employees")
    targeted = SurveyFactory(workspace=workspace, name="Power survey")
    targeted.targeting.audience = Targeting.SEGMENTS
    targeted.targeting.save()
    targeted.targeting.segments.set([power])
    targeted.targeting.excluded_segments.set([staff])

    response = owner.get("/surveys/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Onboarding NPS" in page and "Power survey" in page
    assert "Draft" in page and "Live" in page
    assert "Power users" in page and "Employees" in page and "except" in page
    assert 'action="/surveys/new/"' in page


def test_list_filters_by_status_as_an_htmx_fragment(owner, workspace, survey):
    SurveyFactory(workspace=workspace, name="Live one", status=Survey.LIVE)

    response = owner.get("/surveys/", {"status": "live"}, headers=HTMX)

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page and 'id="survey-table"' in page
    assert "Live one" in page and "Onboarding NPS" not in page


def test_viewer_sees_the_list_without_the_create_form(viewer, survey):
    page = viewer.get("/surveys/").content.decode()

    assert "Onboarding NPS" in page
    assert 'action="/surveys/new/"' not in page


def test_outsider_does_not_see_our_surveys(outsider, survey):
    response = outsider.get("/surveys/")

    assert response.status_code == 200
    assert "Onboarding NPS" not in response.content.decode()


def test_anonymous_is_sent_to_login(client, survey):
    for path in ("/surveys/", url(survey), url(survey, "status/")):
        response = client.get(path)
        assert response.status_code == 302
        assert "/login/" in response["Location"]


# Creating -------------------------------------------------------------------


def test_owner_creates_a_draft_survey_with_default_targeting(owner, workspace):
    response = owner.post("/surveys/new/", {"name": "  Churn check  "})

    survey = Survey.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == url(survey)
    assert survey.name == "Churn check" and survey.status == Survey.DRAFT
    assert survey.targeting.audience == Targeting.EVERYONE


def test_creating_without_a_name_shows_the_error_and_saves_nothing(owner, workspace):
    response = owner.post("/surveys/new/", {"name": "   "})

    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not Survey.objects.filter(workspace=workspace).exists()


def test_viewer_cannot_create(viewer, workspace):
    response = viewer.post("/surveys/new/", {"name": "Sneaky"})

    assert response.status_code == 403
    assert not Survey.objects.filter(workspace=workspace).exists()


def test_anonymous_cannot_create(client, workspace):
    response = client.post("/surveys/new/", {"name": "Sneaky"})

    assert response.status_code == 302
    assert not Survey.objects.exists()


# The Questions tab ----------------------------------------------------------


def test_questions_tab_shows_every_question_and_the_tabs(owner, survey):
    response = owner.get(url(survey))

    page = response.content.decode()
    assert response.status_code == 200
    assert "How likely are you to recommend us?" in page and "Why?" in page
    assert "Free\nPro" in page
    assert f'href="{url(survey, "targeting/")}"' in page
    assert "Add a question" in page


def test_viewer_reads_the_questions_but_gets_no_buttons(viewer, survey):
    page = viewer.get(url(survey)).content.decode()

    assert "How likely are you to recommend us?" in page
    assert "disabled" in page
    assert "Add a question" not in page and 'value="remove"' not in page
    assert "Publish" not in page


def test_outsider_gets_404_for_our_survey(outsider, survey):
    assert outsider.get(url(survey)).status_code == 404
    assert outsider.get(url(survey, "targeting/")).status_code == 404


def test_user_without_any_workspace_gets_404(client, survey):
    from tests.factories import UserFactory

    client.force_login(UserFactory())

    assert client.get("/surveys/").status_code == 404
    assert client.get(url(survey)).status_code == 404


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"type": "nps", "text": "Recommend?"}, {"key": "nps_2", "type": "nps"}),
        ({"type": "rating", "text": "Rate it"}, {"key": "rating", "type": "rating"}),
        (
            {"type": "single_choice", "text": "Role?", "choices": "Dev\n\n PM \n"},
            {"key": "single_choice", "type": "single_choice", "choices": ["Dev", "PM"]},
        ),
        (
            {"type": "multiple_choice", "text": "Uses?", "choices": "A\nB\nC", "key": "uses"},
            {"key": "uses", "type": "multiple_choice", "choices": ["A", "B", "C"]},
        ),
        ({"type": "text", "text": "Anything else?"}, {"key": "text", "type": "text"}),
    ],
)
def test_owner_adds_a_question_of_every_type(owner, survey, fields, expected):
    response = owner.post(url(survey, "questions/"), {"key": "", "choices": "", **fields})

    assert response.status_code == 302
    added = questions_of(survey)[-1]
    assert len(questions_of(survey)) == 4
    assert {k: added.get(k) for k in expected} == expected
    assert added["text"] == fields["text"]


def test_choices_typed_for_a_non_choice_question_are_dropped(owner, survey):
    owner.post(url(survey, "questions/"), {"type": "rating", "text": "Rate", "choices": "x\ny"})

    assert questions_of(survey)[-1] == {"key": "rating", "type": "rating", "text": "Rate"}


def test_adding_through_htmx_returns_the_questions_fragment(owner, survey):
    response = owner.post(
        url(survey, "questions/"), {"type": "rating", "text": "Rate us"}, headers=HTMX
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in page and 'id="questions"' in page
    assert "Rate us" in page


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"type": "single_choice", "text": "Role?", "choices": ""}, "Must be a list of 1 to"),
        ({"type": "multiple_choice", "text": "Role?", "choices": "A\nA"}, "Choices must be"),
        ({"type": "nps", "text": "Again?", "key": "why"}, "Another question already"),
        ({"type": "nps", "text": ""}, "This field is required."),
        ({"type": "poll", "text": "Hm?"}, "Select a valid choice."),
    ],
)
def test_an_invalid_new_question_shows_the_error_and_saves_nothing(owner, survey, fields, message):
    before = questions_of(survey)

    response = owner.post(url(survey, "questions/"), fields, headers=HTMX)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert questions_of(survey) == before


def test_owner_edits_a_question_text_type_and_choices(owner, survey):
    plan = survey.questions.get(key="plan")

    response = owner.post(
        url(survey, f"questions/{plan.pk}/"),
        {"action": "save", "type": "multiple_choice", "text": "Plans?", "choices": "Free\nTeam"},
    )

    assert response.status_code == 302
    assert questions_of(survey)[2] == {
        "key": "plan",
        "type": "multiple_choice",
        "text": "Plans?",
        "choices": ["Free", "Team"],
    }
    assert survey.questions.get(key="plan").pk == plan.pk


def test_an_invalid_edit_shows_the_error_and_changes_nothing(owner, survey):
    plan = survey.questions.get(key="plan")
    before = questions_of(survey)

    response = owner.post(
        url(survey, f"questions/{plan.pk}/"),
        {"action": "save", "type": "single_choice", "text": "Plan?", "choices": "   "},
        headers=HTMX,
    )

    assert response.status_code == 200
    assert "Must be a list of 1 to" in response.content.decode()
    assert questions_of(survey) == before


def test_owner_moves_questions_up_and_down(owner, survey):
    why = survey.questions.get(key="why")

    owner.post(url(survey, f"questions/{why.pk}/"), {"action": "up"})
    assert [q["key"] for q in questions_of(survey)] == ["why", "nps", "plan"]

    owner.post(url(survey, f"questions/{why.pk}/"), {"action": "down"})
    owner.post(url(survey, f"questions/{why.pk}/"), {"action": "down"})
    assert [q["key"] for q in questions_of(survey)] == ["nps", "plan", "why"]

    owner.post(url(survey, f"questions/{why.pk}/"), {"action": "down"})
    assert [q["key"] for q in questions_of(survey)] == ["nps", "plan", "why"]


def test_owner_removes_a_question(owner, survey):
    why = survey.questions.get(key="why")

    response = owner.post(url(survey, f"questions/{why.pk}/"), {"action": "remove"}, headers=HTMX)

    assert response.status_code == 200
    assert [q["key"] for q in questions_of(survey)] == ["nps", "plan"]
    assert "Why?" not in response.content.decode()


def test_the_last_question_of_a_live_survey_cannot_be_removed(owner, workspace):
    live = SurveyFactory(workspace=workspace, status=Survey.LIVE)
    only = live.questions.get()

    response = owner.post(url(live, f"questions/{only.pk}/"), {"action": "remove"}, headers=HTMX)

    assert "A live survey needs at least one question." in response.content.decode()
    assert live.questions.count() == 1


def test_viewer_cannot_change_questions(viewer, survey):
    before = questions_of(survey)
    why = survey.questions.get(key="why")

    added = viewer.post(url(survey, "questions/"), {"type": "nps", "text": "Hacked?"})
    removed = viewer.post(url(survey, f"questions/{why.pk}/"), {"action": "remove"})
    edited = viewer.post(
        url(survey, f"questions/{why.pk}/"), {"action": "save", "type": "text", "text": "X"}
    )

    assert [added.status_code, removed.status_code, edited.status_code] == [403, 403, 403]
    assert questions_of(survey) == before


def test_outsider_cannot_change_our_questions(outsider, survey):
    before = questions_of(survey)
    why = survey.questions.get(key="why")

    added = outsider.post(url(survey, "questions/"), {"type": "nps", "text": "Hacked?"})
    removed = outsider.post(url(survey, f"questions/{why.pk}/"), {"action": "remove"})

    assert [added.status_code, removed.status_code] == [404, 404]
    assert questions_of(survey) == before


def test_a_question_of_another_survey_is_not_found(owner, workspace, survey):
    other = SurveyFactory(workspace=workspace)
    foreign = other.questions.get()

    response = owner.post(url(survey, f"questions/{foreign.pk}/"), {"action": "remove"})

    assert response.status_code == 404
    assert other.questions.count() == 1


def test_anonymous_cannot_change_questions(client, survey):
    before = questions_of(survey)

    response = client.post(url(survey, "questions/"), {"type": "nps", "text": "Hacked?"})

    assert response.status_code == 302
    assert questions_of(survey) == before


# Publishing -----------------------------------------------------------------


@pytest.mark.parametrize("status", [Survey.LIVE, Survey.PAUSED, Survey.ARCHIVED])
def test_owner_publishes_pauses_and_archives(owner, survey, status):
    response = owner.post(url(survey, "status/"), {"status": status})

    assert response.status_code == 302
    assert response["Location"] == url(survey)
    survey.refresh_from_db()
    assert survey.status == status


def test_status_change_returns_to_the_tab_it_came_from(owner, survey):
    back = url(survey, "targeting/")

    response = owner.post(url(survey, "status/"), {"status": "live", "next": back})

    assert response["Location"] == back


def test_status_change_never_redirects_off_site(owner, survey):
    response = owner.post(url(survey, "status/"), {"status": "live", "next": "https://evil.test/"})

    assert response["Location"] == url(survey)


def test_a_survey_without_questions_cannot_be_published(owner, workspace):
    empty = SurveyFactory(workspace=workspace, status=Survey.DRAFT, questions=[])

    response = owner.post(url(empty, "status/"), {"status": "live"}, follow=True)

    assert "A live survey needs at least one question." in response.content.decode()
    empty.refresh_from_db()
    assert empty.status == Survey.DRAFT


def test_an_unknown_status_is_refused(owner, survey):
    response = owner.post(url(survey, "status/"), {"status": "deleted"}, follow=True)

    assert "Must be one of" in response.content.decode()
    survey.refresh_from_db()
    assert survey.status == Survey.DRAFT


def test_publish_is_post_only(owner, survey):
    assert owner.get(url(survey, "status/")).status_code == 405


def test_viewer_cannot_publish(viewer, survey):
    response = viewer.post(url(survey, "status/"), {"status": "live"})

    assert response.status_code == 403
    survey.refresh_from_db()
    assert survey.status == Survey.DRAFT


def test_outsider_cannot_publish(outsider, survey):
    response = outsider.post(url(survey, "status/"), {"status": "live"})

    assert response.status_code == 404
    survey.refresh_from_db()
    assert survey.status == Survey.DRAFT


def test_anonymous_cannot_publish(client, survey):
    response = client.post(url(survey, "status/"), {"status": "live"})

    assert response.status_code == 302
    survey.refresh_from_db()
    assert survey.status == Survey.DRAFT

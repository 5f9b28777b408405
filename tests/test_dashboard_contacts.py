import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    AccountFactory,
    ContactFactory,
    DisplayFactory,
    EventFactory,
    ManualSegmentFactory,
    ResponseFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import plan_is

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
ENTERPRISE = plan_is("enterprise")


@pytest.fixture
def people(workspace):
    acme = AccountFactory(
        workspace=workspace, external_id="acme", name="Acme", traits={"seats": 40}
    )
    return {
        "ada": ContactFactory(
            workspace=workspace, user_id="ada", name="Ada Lovelace", account=acme,
            traits={"plan": "enterprise", "role": "admin"},
        ),
        "bob": ContactFactory(workspace=workspace, user_id="bob", email="bob@corp.test",
                              traits={"plan": "free"}),
    }  # fmt: skip


def test_list_shows_the_workspaces_contacts(owner, workspace, people, other_workspace):
    ContactFactory(workspace=other_workspace, user_id="stranger")
    response = owner.get("/contacts/")
    assert response.status_code == 200
    assert [c.user_id for c in response.context["page"]] != []
    assert {c.user_id for c in response.context["page"]} == {"ada", "bob"}


@pytest.mark.parametrize(
    ("query", "found"),
    [("ADA", {"ada"}), ("corp.test", {"bob"}), ("lovelace", {"ada"}), ("nobody", set())],
)
def test_list_searches_user_id_email_and_name(owner, workspace, people, query, found):
    response = owner.get("/contacts/", {"q": query})
    assert {c.user_id for c in response.context["page"]} == found


def test_list_filters_by_segment_as_a_fragment(owner, workspace, people):
    segment = SegmentFactory(workspace=workspace, rules=ENTERPRISE)
    response = owner.get("/contacts/", {"segment": segment.pk}, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html
    assert "/contacts/ada/" in html and "/contacts/bob/" not in html


def test_list_ignores_another_workspaces_segment(owner, workspace, other_workspace, people):
    foreign = SegmentFactory(workspace=other_workspace, rules=ENTERPRISE)
    response = owner.get("/contacts/", {"segment": foreign.pk})
    assert response.context["segment"] is None
    assert {c.user_id for c in response.context["page"]} == {"ada", "bob"}


def test_list_paginates_with_real_links(owner, workspace):
    for n in range(30):
        ContactFactory(workspace=workspace, user_id=f"u-{n:02}")
    first = owner.get("/contacts/", {"q": "u-"})
    assert len(first.context["page"]) == 25
    html = first.content.decode()
    older = first.context["page"].older
    assert f'href="?q=u-&amp;after={older}"' in html
    second = owner.get("/contacts/", {"q": "u-", "after": older}, headers=HX)
    assert second.content.decode().count("/contacts/u-") == 5


def test_contact_page_shows_traits_account_events_segments(owner, workspace, people):
    EventFactory(contact=people["ada"], name="report_exported")
    SegmentFactory(workspace=workspace, name="Enterprise customers", rules=ENTERPRISE)
    response = owner.get("/contacts/ada/")
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Ada Lovelace", "admin", "Acme", "seats", "report_exported",
                 "Enterprise customers"):  # fmt: skip
        assert text in html
    assert [s.name for s in response.context["segments"]] == ["Enterprise customers"]


def test_contact_page_explains_which_surveys_they_would_see(owner, workspace, people):
    segment = SegmentFactory(workspace=workspace, rules=ENTERPRISE)
    open_to_all = SurveyFactory(workspace=workspace, name="Open to all")
    targeted = SurveyFactory(
        workspace=workspace, name="Enterprise only", targeting={"audience": "segments"}
    )
    targeted.targeting.segments.add(segment)
    response = owner.get("/contacts/bob/")
    explained = {e.survey.name: e for e in response.context["explanations"]}
    assert explained["Open to all"].verdict == "now"
    assert explained["Enterprise only"].verdict == "not"
    html = response.content.decode()
    assert f"The contact is in none of its segments: “{segment.name}”." in html
    assert "not_in_audience" not in html  # codes are for the API; people read words
    assert open_to_all.pk


def test_contact_page_lists_displays_and_answers(owner, workspace, people):
    survey = SurveyFactory(workspace=workspace, name="NPS")
    display = DisplayFactory(survey=survey, contact=people["ada"], completed_at=timezone.now())
    ResponseFactory(display=display, answers={"nps": 9}, completed=True)
    html = owner.get("/contacts/ada/").content.decode()
    assert "completed" in html and "<code>nps</code> = 9" in html


def test_contact_page_offers_manual_segments(owner, viewer, workspace, people):
    ManualSegmentFactory(workspace=workspace, name="Beta testers")
    html = owner.get("/contacts/ada/").content.decode()
    assert "Add to “Beta testers”" in html
    viewer_html = viewer.get("/contacts/ada/")
    assert "Add to" not in viewer_html.content.decode()


def test_contact_ids_with_slashes_and_spaces_work(owner, workspace):
    ContactFactory(workspace=workspace, user_id="team/a b")
    url = reverse("contact-detail", args=["team/a b"])
    assert owner.get(url).status_code == 200


def test_viewer_reads_contacts(viewer, workspace, people):
    assert viewer.get("/contacts/").status_code == 200
    assert viewer.get("/contacts/ada/").status_code == 200


def test_outsider_cannot_see_a_contact(outsider, workspace, people):
    assert outsider.get("/contacts/ada/").status_code == 404
    assert b"ada" not in outsider.get("/contacts/").content


def test_anonymous_is_sent_to_login(client, people):
    response = client.get("/contacts/ada/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")

"""Anonymous visitors through the widget API: the audience "everyone, signed in or not",
the visitor's own pacing, and the merge into the contact a later identify names."""

import pytest

from segments.models import Contact, Event, SegmentMembership
from segments.services import segment_count
from surveys.models import Answer, Display, Response
from targeting.anonymous import merge_visitor
from tests.clients import Widget, error_code
from tests.factories import (
    ContactFactory,
    SegmentFactory,
    SurveyFactory,
    WorkspaceFactory,
)
from tests.rules import attribute, event, group

pytestmark = pytest.mark.django_db

VISITOR = "0123456789abcdef0123456789abcdef"
OTHER_VISITOR = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def for_anyone(workspace):
    return SurveyFactory(
        workspace=workspace,
        name="Homepage poll",
        questions=[
            {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"},
            {"key": "why", "type": "text", "text": "Why?"},
        ],
        targeting={"audience": "anyone"},
    )


def survey_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["surveys"]]


def visitors():
    return Contact.all_contacts.filter(user_id__isnull=True)


def show(widget, survey, **who) -> str:
    response = widget.post("displays", {"survey": survey.pk, **who})
    assert response.status_code == 201, response.content
    return response.json()["display"]


def complete(widget, display_id, answers, **who) -> None:
    body = {"answers": answers, "completed": True, **who}
    response = widget.post(f"displays/{display_id}/answers", body)
    assert response.status_code == 200, response.content


# Eligibility ---------------------------------------------------------------------------------


def test_a_visitor_sees_a_survey_for_everyone_signed_in_or_not(widget, for_anyone):
    response = widget.post("eligibility", {"anonymous_id": VISITOR})

    assert survey_ids(response) == [for_anyone.pk]
    assert response.json()["visitors"] is True
    assert not visitors().exists(), "asking writes nothing"


def test_a_visitor_does_not_see_a_survey_for_contacts(widget, workspace):
    SurveyFactory(workspace=workspace, targeting={"audience": "everyone"})

    response = widget.post("eligibility", {"anonymous_id": VISITOR})

    assert survey_ids(response) == []
    assert response.json()["visitors"] is False, "the widget may stop asking"


def test_a_visitor_never_sees_a_survey_with_segments(widget, workspace):
    everyone = SegmentFactory(workspace=workspace)  # no condition: every contact is in it
    targeted = SurveyFactory(workspace=workspace, targeting={"audience": "segments"})
    targeted.targeting.segments.add(everyone)
    excluding = SurveyFactory(workspace=workspace, targeting={"audience": "anyone"})
    excluding.targeting.excluded_segments.add(SegmentFactory(workspace=workspace))
    ContactFactory(workspace=workspace, user_id="u-1")

    assert survey_ids(widget.post("eligibility", {"anonymous_id": VISITOR})) == []
    for survey in (targeted, excluding):
        response = widget.post("displays", {"anonymous_id": VISITOR, "survey": survey.pk})
        assert response.status_code == 409
        assert response.json()["error"]["reasons"][0]["code"] == "not_in_audience"
    # A signed-in contact is checked against the segments as before.
    assert survey_ids(widget.post("eligibility", {"user_id": "u-1"})) == [targeted.pk]
    assert not visitors().exists() and not Display.objects.exists()


def test_pages_triggers_sampling_and_pacing_apply_to_a_visitor(widget, workspace):
    pricing = [{"match": "starts_with", "value": "/pricing"}]
    on_pricing = SurveyFactory(
        workspace=workspace, targeting={"audience": "anyone", "allowed_pages": pricing}
    )
    on_event = SurveyFactory(workspace=workspace, targeting={
        "audience": "anyone", "trigger": "event", "trigger_event": "signup_clicked"})  # fmt: skip
    SurveyFactory(workspace=workspace, targeting={"audience": "anyone", "sample_percent": 0})
    check = {"anonymous_id": VISITOR, "url": "https://example.com/pricing/pro"}

    assert survey_ids(widget.post("eligibility", check)) == [on_pricing.pk]
    assert survey_ids(widget.post("eligibility", {**check, "url": "https://example.com/"})) == []
    with_event = {**check, "event": "signup_clicked"}
    assert survey_ids(widget.post("eligibility", with_event)) == [on_pricing.pk, on_event.pk]

    display_id = show(widget, on_pricing, **check)
    complete(widget, display_id, {"nps": 10}, anonymous_id=VISITOR)

    # `once`: that visitor is done with it; another visitor is not.
    assert survey_ids(widget.post("eligibility", check)) == []
    other = {**check, "anonymous_id": OTHER_VISITOR}
    assert survey_ids(widget.post("eligibility", other)) == [on_pricing.pk]


def test_a_visitors_first_display_records_it_and_a_refused_one_writes_nothing(
    widget, workspace, for_anyone
):
    for_contacts = SurveyFactory(workspace=workspace)
    refused = widget.post("displays", {"anonymous_id": VISITOR, "survey": for_contacts.pk})
    assert refused.status_code == 409
    assert not visitors().exists()

    display_id = show(widget, for_anyone, anonymous_id=VISITOR)

    visitor = visitors().get()
    assert visitor.anonymous_id == VISITOR and visitor.user_id is None
    assert Display.objects.get(pk=display_id).contact == visitor


# What the anonymous id can reach -------------------------------------------------------------


@pytest.mark.parametrize(
    "anonymous_id",
    ["short", "x" * 65, "0123456789abcdef/..", "0123456789abcdef 1", 12345678901234567890, True],
)
def test_a_malformed_anonymous_id_is_refused_and_writes_nothing(widget, for_anyone, anonymous_id):
    for path, body in [
        ("eligibility", {}),
        ("displays", {"survey": for_anyone.pk}),
        ("track", {"event": "clicked"}),
        ("identify", {"user": {"id": "u-1"}}),
    ]:
        response = widget.post(path, {**body, "anonymous_id": anonymous_id})
        assert response.status_code == 400, path
        assert error_code(response) == "invalid"
    assert not Contact.all_contacts.exists() and not Display.objects.exists()


def test_an_anonymous_id_equal_to_a_user_id_reaches_no_user(widget, workspace, for_anyone):
    victim = ContactFactory(workspace=workspace, user_id=VISITOR)
    victims_display = show(widget, for_anyone, user_id=VISITOR)
    complete(widget, victims_display, {"nps": 3}, user_id=VISITOR)

    # Posing as a visitor with the victim's user id: the victim's pacing is not the visitor's...
    assert survey_ids(widget.post("eligibility", {"anonymous_id": VISITOR})) == [for_anyone.pk]
    # ...and identifying as someone else with that "anonymous id" moves none of its data.
    widget.post("identify", {"user": {"id": "attacker"}, "anonymous_id": VISITOR})
    assert Display.objects.get(pk=victims_display).contact == victim
    assert Response.objects.get(display_id=victims_display).contact == victim
    assert Contact.objects.filter(user_id=VISITOR).exists()


def test_another_visitor_or_workspace_cannot_answer_a_visitors_display(widget, for_anyone):
    display_id = show(widget, for_anyone, anonymous_id=VISITOR)
    outsider = Widget(WorkspaceFactory())
    body = {"answers": {"nps": 1}, "anonymous_id": VISITOR}

    assert outsider.post(f"displays/{display_id}/answers", body).status_code == 404
    other = {**body, "anonymous_id": OTHER_VISITOR}
    assert widget.post(f"displays/{display_id}/answers", other).status_code == 404
    assert not Response.objects.exists()
    # Another workspace's widget key knows no visitor of this one.
    assert survey_ids(outsider.post("eligibility", {"anonymous_id": VISITOR})) == []


def test_a_visitors_events_are_kept_only_while_a_survey_is_for_visitors(widget, workspace):
    response = widget.post("track", {"anonymous_id": VISITOR, "event": "pricing_viewed"})
    assert response.status_code == 202
    assert not Event.objects.exists() and not visitors().exists()

    SurveyFactory(workspace=workspace, targeting={"audience": "anyone"})
    widget.post("track", {"anonymous_id": VISITOR, "event": "pricing_viewed"})

    assert Event.objects.get().contact == visitors().get()


def test_visitors_are_in_no_segment_count_list_or_rule(widget, api, workspace, for_anyone, now):
    ContactFactory(workspace=workspace, user_id="u-1")
    show(widget, for_anyone, anonymous_id=VISITOR)
    missing = {"type": "attribute", "attribute": "email", "operator": "is_not_set"}
    no_email = SegmentFactory(
        workspace=workspace, rules={"type": "group", "match": "all", "conditions": [missing]}
    )
    everyone = SegmentFactory(workspace=workspace)

    assert segment_count(no_email, now) == 0
    assert segment_count(everyone, now) == 1
    assert [c["user_id"] for c in api.get("/api/v1/contacts").json()["results"]] == ["u-1"]
    assert Contact.objects.filter(workspace=workspace).count() == 1
    assert Contact.all_contacts.filter(workspace=workspace).count() == 2


def test_a_visitor_enters_no_segment_and_its_merge_moves_the_contacts_segments(
    widget, workspace, for_anyone
):
    missing = attribute("email", "is_not_set")
    no_email = SegmentFactory(workspace=workspace, rules=group(missing))
    viewed = SegmentFactory(
        workspace=workspace, rules=group(event("pricing_viewed", "at_least", 1))
    )
    widget.post("track", {"anonymous_id": VISITOR, "event": "pricing_viewed"})
    display_id = show(widget, for_anyone, anonymous_id=VISITOR)
    complete(widget, display_id, {"nps": 9}, anonymous_id=VISITOR)
    assert not SegmentMembership.objects.exists(), "a visitor is in no segment"

    widget.post("identify", {"user": {"id": "u-42"}, "anonymous_id": VISITOR})

    contact = Contact.objects.get(user_id="u-42")
    opened = SegmentMembership.objects.filter(contact=contact, left_at__isnull=True)
    assert set(opened.values_list("segment_id", flat=True)) == {no_email.pk, viewed.pk}


# The merge -----------------------------------------------------------------------------------


def test_identify_gives_the_visitors_displays_responses_and_events_to_the_contact(
    widget, api, owner, workspace, for_anyone
):
    widget.post("track", {"anonymous_id": VISITOR, "event": "pricing_viewed"})
    display_id = show(widget, for_anyone, anonymous_id=VISITOR)
    complete(widget, display_id, {"nps": 9, "why": "Clear pricing"}, anonymous_id=VISITOR)
    listed = api.get("/api/v1/responses").json()["results"]
    assert [(r["user_id"], r["anonymous"]) for r in listed] == [(None, True)]
    assert "Anonymous visitor" in owner.get("/responses/").content.decode()

    response = widget.post("identify", {"user": {"id": "u-42"}, "anonymous_id": VISITOR})

    assert response.json() == {"contact": {"user_id": "u-42"}}, "nothing about the visitor"
    contact = Contact.objects.get(user_id="u-42")
    assert Display.objects.get(pk=display_id).contact == contact
    assert Response.objects.get(display_id=display_id).contact == contact
    assert set(Answer.objects.values_list("contact_id", flat=True)) == {contact.pk}
    assert Event.objects.get(name="pricing_viewed").contact == contact
    emptied = visitors().get()
    assert not emptied.displays.exists() and not emptied.events.exists()
    listed = api.get("/api/v1/responses").json()["results"]
    assert [(r["user_id"], r["anonymous"]) for r in listed] == [("u-42", False)]
    # `once` now holds for the contact: the visitor's completion was its own.
    assert survey_ids(widget.post("eligibility", {"user_id": "u-42"})) == []


def test_merging_again_changes_nothing(widget, workspace, for_anyone):
    display_id = show(widget, for_anyone, anonymous_id=VISITOR)
    body = {"user": {"id": "u-42"}, "anonymous_id": VISITOR}
    assert widget.post("identify", body).status_code == 200

    assert widget.post("identify", body).status_code == 200
    contact = Contact.objects.get(user_id="u-42")
    assert merge_visitor(contact=contact, anonymous_id=VISITOR) == 0
    assert Display.objects.get(pk=display_id).contact == contact
    assert Contact.all_contacts.count() == 2, "the visitor's row stays, empty"


def test_only_the_newest_answer_to_a_question_stays_the_latest_after_a_merge(
    widget, workspace, now
):
    every_time = SurveyFactory(workspace=workspace, targeting={
        "audience": "anyone", "frequency": "every_trigger"})  # fmt: skip
    widget.post("identify", {"user": {"id": "u-42"}})
    older = show(widget, every_time, user_id="u-42")
    complete(widget, older, {"nps": 2}, user_id="u-42")
    newer = show(widget, every_time, anonymous_id=VISITOR)
    complete(widget, newer, {"nps": 10}, anonymous_id=VISITOR)

    widget.post("identify", {"user": {"id": "u-42"}, "anonymous_id": VISITOR})

    latest = Answer.objects.filter(survey=every_time, key="nps", is_latest=True)
    assert [(str(a.response.display_id), a.num) for a in latest] == [(newer, 10)]
    answered = SegmentFactory(workspace=workspace, rules={
        "type": "group", "match": "all", "conditions": [{
            "type": "answer", "survey": every_time.pk, "question": "nps",
            "operator": "equals", "value": 10}]})  # fmt: skip
    assert segment_count(answered, now) == 1


def test_identify_with_a_refused_signature_merges_nothing(widget, workspace, for_anyone):
    workspace.identity_verification = True
    workspace.save()
    display_id = show(widget, for_anyone, anonymous_id=VISITOR)

    body = {"user": {"id": "u-42"}, "anonymous_id": VISITOR, "signature": "00" * 32}
    assert widget.post("identify", body).status_code == 403

    assert Display.objects.get(pk=display_id).contact.anonymous_id == VISITOR
    assert not Contact.objects.exists()


def test_a_new_visitors_check_costs_one_query_and_a_known_ones_two(
    widget, for_anyone, django_assert_num_queries
):
    widget.post("eligibility", {"anonymous_id": VISITOR})  # a warm definitions cache

    with django_assert_num_queries(1):  # the key's workspace, no visitor row to read
        assert survey_ids(widget.post("eligibility", {"anonymous_id": VISITOR})) == [for_anyone.pk]
    widget.post("track", {"anonymous_id": VISITOR, "event": "pricing_viewed"})
    with django_assert_num_queries(2):  # and the visitor's snapshot
        assert survey_ids(widget.post("eligibility", {"anonymous_id": VISITOR})) == [for_anyone.pk]

"""Django admin (SPEC §6): every model listed, searchable, filterable and readable."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from refiner.models import Membership
from segments import membership
from segments.models import Account, Contact, ContactValue, Event, Segment, SegmentMember
from surveys.models import Answer, Display, Question, Response, Survey
from targeting.models import Targeting
from tests.factories import (
    AccountFactory,
    AnswerFactory,
    ContactFactory,
    DisplayFactory,
    EndpointFactory,
    EventFactory,
    ManualSegmentFactory,
    MembershipFactory,
    ResponseFactory,
    SegmentFactory,
    SurveyFactory,
)
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def world(workspace):
    """One of everything, with JSON worth reading."""
    account = AccountFactory(workspace=workspace, external_id="acme", traits={"tier": "gold"})
    contact = ContactFactory(
        workspace=workspace,
        user_id="ada",
        account=account,
        traits={"plan": "Entreprise <b>", "city": "Zürich"},
    )
    EventFactory(contact=contact, name="report_exported")
    manual = ManualSegmentFactory(workspace=workspace, name="Beta", members=[contact])
    SegmentFactory(workspace=workspace, name="Pro")
    survey = SurveyFactory(workspace=workspace, name="NPS")
    survey.targeting.segments.add(manual)
    display = DisplayFactory(survey=survey, contact=contact)
    AnswerFactory(response=ResponseFactory(display=display, answers={"nps": 9}), key="nps", num=9)
    MembershipFactory(workspace=workspace)
    endpoint = EndpointFactory(workspace=workspace, url="https://hooks.example.com/admin")
    Delivery.objects.create(
        endpoint=endpoint,
        workspace=workspace,
        event="survey.completed",
        payload={"type": "survey.completed"},
        status=Delivery.FAILED,
    )
    membership.sweep(timezone.now())  # opens the contact's memberships (Pro has no rule)
    return workspace


MODELS = {
    "refiner.workspace": ("q=Workspace", "identity_verification__exact=0"),
    "refiner.membership": ("q=example", "role__exact=owner"),
    "segments.account": ("q=acme", "workspace__id__exact={workspace}"),
    "segments.contact": ("q=ada", "workspace__id__exact={workspace}"),
    "segments.contactvalue": ("q=plan", "workspace__id__exact={workspace}"),
    "segments.accountvalue": ("q=tier", "workspace__id__exact={workspace}"),
    "segments.event": ("q=report", "workspace__id__exact={workspace}"),
    "segments.segment": ("q=Beta", "kind__exact=manual"),
    "segments.segmentmember": ("q=ada", "segment__workspace__id__exact={workspace}"),
    "segments.segmentmembership": ("q=ada", "workspace__id__exact={workspace}"),
    "segments.membershipsweep": ("q=Workspace", "workspace__id__exact={workspace}"),
    "surveys.survey": ("q=NPS", "status__exact=live"),
    "surveys.question": ("q=recommend", "type__exact=nps"),
    "surveys.display": ("q=ada", "workspace__id__exact={workspace}"),
    "surveys.response": ("q=ada", "completed__exact=0"),
    "surveys.answer": ("q=nps", "is_latest__exact=1"),
    "targeting.targeting": ("q=NPS", "audience__exact=everyone"),
    "webhooks.endpoint": ("q=hooks.example", "is_active__exact=1"),
    "webhooks.delivery": ("q=hooks.example", "status__exact=failed"),
}


def admin_url(label: str, view: str, *args) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_{view}", args=args)


@pytest.mark.parametrize("label", MODELS)
def test_each_changelist_lists_searches_and_filters(staff, world, label):
    url = admin_url(label, "changelist")
    response = staff.get(url)
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    search, filter_ = MODELS[label]
    response = staff.get(f"{url}?{search}&{filter_.format(workspace=world.pk)}")
    assert response.status_code == 200
    # An unknown filter would redirect with ?e=1; a broken search would raise.
    assert response.context["cl"].result_count >= 1, label
    response = staff.get(f"{url}?q=nothing-matches-this")
    assert response.status_code == 200 and response.context["cl"].result_count == 0


@pytest.mark.parametrize("label", MODELS)
def test_each_change_page_opens(staff, world, label):
    app, model = label.split(".")
    from django.apps import apps

    obj = apps.get_model(app, model).objects.first()
    response = staff.get(admin_url(label, "change", obj.pk))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "label",
    ["refiner.workspace", "refiner.membership", "segments.segment", "surveys.survey",
     "surveys.question", "segments.segmentmember", "targeting.targeting",
     "webhooks.endpoint"],
)  # fmt: skip
def test_editable_models_can_be_added(staff, world, label):
    assert staff.get(admin_url(label, "add")).status_code == 200


@pytest.mark.parametrize(
    "label",
    ["segments.contact", "segments.account", "segments.event", "segments.contactvalue",
     "segments.segmentmembership", "segments.membershipsweep",
     "surveys.display", "surveys.response", "surveys.answer", "webhooks.delivery"],
)  # fmt: skip
def test_recorded_data_cannot_be_added_or_edited(staff, world, label):
    assert staff.get(admin_url(label, "add")).status_code == 403
    app, model = label.split(".")
    from django.apps import apps

    obj = apps.get_model(app, model).objects.first()
    response = staff.post(admin_url(label, "change", obj.pk), {})
    assert response.status_code == 403


def test_contact_traits_are_shown_readably_and_escaped(staff, world):
    contact = Contact.objects.get(user_id="ada")
    page = staff.get(admin_url("segments.contact", "change", contact.pk)).content.decode()
    assert "<pre" in page and "&quot;city&quot;: &quot;Zürich&quot;" in page
    assert "Entreprise &lt;b&gt;" in page and "Entreprise <b>" not in page
    assert "report_exported" in page


def test_segment_change_page_names_what_uses_it(staff, world):
    beta = Segment.objects.get(name="Beta")
    page = staff.get(admin_url("segments.segment", "change", beta.pk)).content.decode()
    assert "survey" in page and "(NPS)" in page and "cannot be deleted while these use it" in page


def test_question_choices_and_page_rules_are_indented_in_the_admin(staff, world):
    survey = Survey.objects.get(name="NPS")
    Question.objects.create(
        survey=survey, key="why", type="multiple_choice", text="Why?", choices=["Speed", "Price"]
    )
    survey.targeting.allowed_pages = [{"match": "starts_with", "value": "/app"}]
    survey.targeting.save()
    page = staff.get(admin_url("surveys.survey", "change", survey.pk)).content.decode()
    assert "[\n  &quot;Speed&quot;,\n  &quot;Price&quot;\n]" in page
    assert "&quot;match&quot;: &quot;starts_with&quot;" in page
    question = Question.objects.get(key="why")
    page = staff.get(admin_url("surveys.question", "change", question.pk)).content.decode()
    assert "[\n  &quot;Speed&quot;" in page


def test_page_rules_are_indented_on_the_targeting_admin_page_too(staff, world):
    targeting = Survey.objects.get(name="NPS").targeting
    targeting.excluded_pages = [{"match": "contains", "value": "/billing"}]
    targeting.save()
    page = staff.get(admin_url("targeting.targeting", "change", targeting.pk)).content.decode()
    assert "[\n  {\n    &quot;match&quot;: &quot;contains&quot;" in page


def test_indented_choices_save_back_unchanged(staff, world):
    question = Question.objects.create(
        survey=Survey.objects.get(name="NPS"), key="why", type="multiple_choice", text="Why?",
        choices=["Speed", "Price"],
    )  # fmt: skip
    data = {"survey": question.survey_id, "position": 0, "key": "why",
            "type": "multiple_choice", "text": "Why?",
            "choices": '[\n  "Speed",\n  "Price",\n  "Support"\n]'}  # fmt: skip
    response = staff.post(admin_url("surveys.question", "change", question.pk), data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    question.refresh_from_db()
    assert question.choices == ["Speed", "Price", "Support"]


def test_response_answers_are_shown_readably(staff, world):
    response = Response.objects.get()
    page = staff.get(admin_url("surveys.response", "change", response.pk)).content.decode()
    assert "<pre" in page and "&quot;nps&quot;: 9" in page


def test_workspace_keys_are_read_only(staff, world):
    old = (world.widget_key, world.secret_key)
    url = admin_url("refiner.workspace", "change", world.pk)
    page = staff.get(url).content.decode()
    assert world.secret_key in page and 'name="secret_key"' not in page
    response = staff.post(
        url,
        {
            "name": "Renamed",
            "widget_key": "wk_mine",
            "secret_key": "sk_mine",
            "allowed_origins": "[]",
            "recontact_days": 0,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    world.refresh_from_db()
    assert world.name == "Renamed" and (world.widget_key, world.secret_key) == old


def segment_form(workspace, rules: str, **extra) -> dict:
    return {
        "workspace": workspace.pk,
        "name": "Enterprise",
        "description": "",
        "kind": "rules",
        "rules": rules,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        **extra,
    }


def test_segment_admin_saves_a_valid_rule(staff, workspace):
    rules = (
        '{"type": "group", "match": "all", "conditions": [{"type": "attribute",'
        ' "attribute": "plan", "operator": "equals", "value": "enterprise"}]}'
    )
    response = staff.post(admin_url("segments.segment", "add"), segment_form(workspace, rules))
    assert response.status_code == 302
    segment = Segment.objects.get(name="Enterprise")
    assert segment.rules["conditions"][0]["value"] == "enterprise"
    page = staff.get(admin_url("segments.segment", "change", segment.pk)).content.decode()
    # Indented for reading.
    assert "\n  &quot;conditions&quot;" in page or '\n  "conditions"' in page


@pytest.mark.parametrize(
    "rules, message",
    [
        (
            '{"type": "group", "match": "all", "conditions": [{"type": "attribute",'
            ' "attribute": "plan", "operator": "like", "value": "x"}]}',
            "conditions[0].operator",
        ),
        ('{"type": "group", "match": "maybe", "conditions": []}', "match"),
        ("", "rules"),
        ("{not json", "Enter a valid JSON"),
    ],
)
def test_segment_admin_rejects_an_invalid_rule_without_saving(staff, workspace, rules, message):
    response = staff.post(admin_url("segments.segment", "add"), segment_form(workspace, rules))
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["rules"])
    assert not Segment.objects.exists()


def test_segment_admin_rejects_a_cycle_and_a_stranger(staff, workspace, other_workspace):
    a = SegmentFactory(workspace=workspace, name="A")
    b = SegmentFactory(
        workspace=workspace,
        rules={"type": "group", "match": "all", "conditions": [
            {"type": "segment", "segment": a.pk, "operator": "in"}]},
    )  # fmt: skip
    stranger = SegmentFactory(workspace=other_workspace)
    for target in (b, stranger):
        rules = (
            '{"type": "group", "match": "all", "conditions": '
            f'[{{"type": "segment", "segment": {target.pk}, "operator": "in"}}]}}'
        )
        url = admin_url("segments.segment", "change", a.pk)
        response = staff.post(url, segment_form(workspace, rules, name="A"))
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["rules"]
        a.refresh_from_db()
        assert a.rules == {"type": "group", "match": "all", "conditions": []}


def test_segment_admin_refuses_rules_on_a_manual_segment(staff, workspace):
    data = segment_form(workspace, '{"type": "group", "match": "all", "conditions": []}')
    data["kind"] = "manual"
    response = staff.post(admin_url("segments.segment", "add"), data)
    assert response.status_code == 200
    assert not Segment.objects.exists()
    data["rules"] = ""
    assert staff.post(admin_url("segments.segment", "add"), data).status_code == 302
    assert Segment.objects.get().rules is None


def test_a_segment_in_use_cannot_be_deleted_from_the_admin(staff, world):
    beta = Segment.objects.get(name="Beta")  # targeted by the NPS survey
    survey = Survey.objects.get(name="NPS")
    for method in ("get", "post"):
        response = getattr(staff, method)(
            admin_url("segments.segment", "delete", beta.pk), {"post": "yes"}, follow=True
        )
        # Not a bare 403: back on the segment's page, told what holds it.
        assert response.redirect_chain[-1][0] == admin_url("segments.segment", "change", beta.pk)
        text = response.content.decode()
        assert f"“Beta” cannot be deleted: it is used by survey {survey.pk} (NPS)" in text
    assert Segment.objects.filter(pk=beta.pk).exists()
    changelist = staff.get(admin_url("segments.segment", "changelist"))
    assert "delete_selected" not in changelist.content.decode()
    unused = Segment.objects.get(name="Pro")
    response = staff.post(admin_url("segments.segment", "delete", unused.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Segment.objects.filter(pk=unused.pk).exists()


def test_a_survey_named_by_segment_rules_cannot_be_deleted_from_the_admin(staff, world):
    survey = Survey.objects.get(name="NPS")
    rule = {"type": "group", "match": "all", "conditions": [
        {"type": "survey", "survey": survey.pk, "operator": "completed"}]}  # fmt: skip
    naming = SegmentFactory(workspace=world, name="Answered NPS", rules=rule)
    page = staff.get(admin_url("surveys.survey", "change", survey.pk)).content.decode()
    assert f"segment {naming.pk} (Answered NPS)" in page
    assert "cannot be deleted while these use it" in page
    for method in ("get", "post"):
        response = getattr(staff, method)(
            admin_url("surveys.survey", "delete", survey.pk), {"post": "yes"}, follow=True
        )
        assert response.redirect_chain[-1][0] == admin_url("surveys.survey", "change", survey.pk)
        text = response.content.decode()
        assert f"“NPS” cannot be deleted: it is used by segment {naming.pk} (Answered NPS)" in text
    assert Survey.objects.filter(pk=survey.pk).exists()
    changelist = staff.get(admin_url("surveys.survey", "changelist"))
    assert "delete_selected" not in changelist.content.decode()
    naming.delete()
    response = staff.post(admin_url("surveys.survey", "delete", survey.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Survey.objects.filter(pk=survey.pk).exists()


def test_targeting_admin_refuses_another_workspaces_segment(staff, world, other_workspace):
    targeting = Targeting.objects.get()
    stranger = SegmentFactory(workspace=other_workspace, name="Stranger")
    data = {
        "survey": targeting.survey_id,
        "audience": "segments",
        "segments": [stranger.pk],
        "segment_match": "any",
        "trigger": "page_load",
        "trigger_event": "",
        "allowed_pages": "[]",
        "excluded_pages": "[]",
        "delay_seconds": 0,
        "sample_percent": 100,
        "frequency": "once",
        "recurring_days": 30,
        "priority": 0,
    }
    response = staff.post(admin_url("targeting.targeting", "change", targeting.pk), data)
    assert response.status_code == 200
    assert "Stranger" in str(response.context["adminform"].form.errors["segments"])
    assert list(targeting.segments.values_list("name", flat=True)) == ["Beta"]


def test_segment_member_admin_refuses_a_contact_of_another_workspace(staff, world, other_workspace):
    beta = Segment.objects.get(name="Beta")
    stranger = ContactFactory(workspace=other_workspace, user_id="eve")
    response = staff.post(
        admin_url("segments.segmentmember", "add"), {"segment": beta.pk, "contact": stranger.pk}
    )
    assert response.status_code == 200
    assert not SegmentMember.objects.filter(contact=stranger).exists()


def test_deleting_a_contact_in_the_admin_removes_its_data(staff, world):
    contact = Contact.objects.get(user_id="ada")
    response = staff.post(admin_url("segments.contact", "delete", contact.pk), {"post": "yes"})
    assert response.status_code == 302
    for model in (Event, Display, Response, Answer, ContactValue, SegmentMember):
        assert not model.objects.filter(contact_id=contact.pk).exists()
    assert Account.objects.filter(external_id="acme").exists()


def test_the_admin_is_closed_to_workspace_members(client, world):
    member = Membership.objects.get().user
    client.force_login(member)
    for label in ("segments.contact", "refiner.workspace", "surveys.response"):
        response = client.get(admin_url(label, "changelist"))
        assert response.status_code == 302 and "/login/" in response["Location"]
    assert Survey.objects.count() == 1 and Question.objects.count() == 1

"""The segment editor keeps work and shows impact; the catalogue of names people know.

Deleting asks first, the editor names what uses a segment, an empty value does
not save, unknown trait and event names are warned about, the JSON panel follows
the rule being edited, and the contact list filters by a trait.
"""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from segments.models import Segment
from surveys.models import Survey
from tests.factories import (
    AccountFactory,
    ContactFactory,
    EventFactory,
    ManualSegmentFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import group, plan_is, reference

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


@pytest.fixture
def people(workspace):
    now = timezone.now()
    ada = ContactFactory(
        workspace=workspace, user_id="ada", traits={"plan": "enterprise", "seats": 40},
        last_seen_at=now - timedelta(hours=1),
    )  # fmt: skip
    bob = ContactFactory(workspace=workspace, user_id="bob", traits={"plan": "free", "seats": "3"})
    cy = ContactFactory(workspace=workspace, user_id="cy", traits={"plan": "12", "beta": True})
    EventFactory(contact=ada, name="report_exported", occurred_at=now - timedelta(days=2))
    EventFactory(contact=ada, name="report_exported", occurred_at=now - timedelta(days=1))
    EventFactory(contact=bob, name="report_exported", occurred_at=now - timedelta(days=3))
    return [ada, bob, cy]


# Deleting asks first ------------------------------------------------------------


def test_delete_asks_first_naming_the_segment_and_deletes_nothing(owner, workspace, people):
    segment = SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("enterprise"))

    response = owner.get(f"/segments/{segment.pk}/delete/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "Delete “Enterprise”?" in text
    assert "It has <strong>1</strong> contact now" in text
    assert f'action="/segments/{segment.pk}/delete/"' in text
    assert Segment.objects.filter(pk=segment.pk).exists()
    owner.post(f"/segments/{segment.pk}/delete/")
    assert not Segment.objects.filter(pk=segment.pk).exists()


def test_the_editor_links_to_the_confirmation_instead_of_deleting(owner, workspace):
    segment = SegmentFactory(workspace=workspace)
    text = owner.get(f"/segments/{segment.pk}/").content.decode()
    assert f'href="/segments/{segment.pk}/delete/"' in text
    assert 'id="delete-form"' not in text


def test_the_confirmation_names_the_users_and_offers_no_delete(owner, workspace):
    segment = SegmentFactory(workspace=workspace, name="Enterprise")
    SurveyFactory(workspace=workspace, name="Renewal").targeting.segments.add(segment)
    SegmentFactory(
        workspace=workspace, name="Wider", rules=group(reference(segment.pk), match="any")
    )

    text = owner.get(f"/segments/{segment.pk}/delete/").content.decode()

    assert "cannot be deleted" in text
    assert "Renewal" in text and "targets it" in text and "Wider" in text
    assert f'action="/segments/{segment.pk}/delete/"' not in text


def test_a_viewer_cannot_reach_the_confirmation(viewer, workspace):
    segment = SegmentFactory(workspace=workspace)
    assert viewer.get(f"/segments/{segment.pk}/delete/").status_code == 403


def test_an_outsider_cannot_reach_the_confirmation(outsider, workspace):
    segment = SegmentFactory(workspace=workspace)
    assert outsider.get(f"/segments/{segment.pk}/delete/").status_code == 404


# Impact: what uses a segment ------------------------------------------------------


def test_the_editor_says_which_live_surveys_and_segments_use_it(owner, workspace):
    segment = SegmentFactory(workspace=workspace, name="Enterprise")
    onboarding = SurveyFactory(workspace=workspace, name="Onboarding NPS")
    onboarding.targeting.segments.add(segment)
    churn = SurveyFactory(workspace=workspace, name="Churn check")
    churn.targeting.excluded_segments.add(segment)
    draft = SurveyFactory(workspace=workspace, name="Pricing idea", status=Survey.DRAFT)
    draft.targeting.segments.add(segment)
    wider = SegmentFactory(
        workspace=workspace, name="Not enterprise", rules=group(reference(segment.pk, "not_in"))
    )

    text = owner.get(f"/segments/{segment.pk}/").content.decode()
    uses = re.search(r'data-testid="segment-uses">(.*?)</div>', text, re.S).group(1)

    assert "Used by 2 live surveys:" in uses
    assert f'href="/surveys/{onboarding.pk}/">Onboarding NPS</a> (targets)' in uses
    assert f'href="/surveys/{churn.pk}/">Churn check</a> (excludes)' in uses
    assert "Draft survey · Pricing idea (targets)" in uses
    assert f'href="/segments/{wider.pk}/"' in uses and "Not enterprise" in uses


def test_a_manual_list_shows_the_segments_that_reference_it(owner, workspace):
    manual = ManualSegmentFactory(workspace=workspace, name="Beta testers")
    SegmentFactory(
        workspace=workspace, name="Beta on enterprise", rules=group(reference(manual.pk))
    )
    text = owner.get(f"/segments/{manual.pk}/").content.decode()
    assert "Beta on enterprise" in text


# Empty values and unknown names ---------------------------------------------------


def test_an_empty_value_does_not_save_and_the_row_says_so(owner, workspace, people):
    fields = {"name": "Plan", "description": "", "c-match": "all", "c-0-kind": "attribute",
              "c-0-attribute": "plan", "c-0-operator": "equals", "c-0-value": "  "}  # fmt: skip

    response = owner.post("/segments/new/", fields)

    assert response.status_code == 400
    assert not Segment.objects.exists()
    row = re.search(r'data-prefix="c-0".*?</div>', response.content.decode(), re.S).group(0)
    assert "value: Enter a value" in row


def test_an_empty_value_in_a_nested_group_is_marked_on_its_row(owner, workspace):
    fields = {"name": "Plan", "c-match": "all", "c-0-kind": "group", "c-0-match": "any",
              "c-0-0-kind": "attribute", "c-0-0-attribute": "plan",
              "c-0-0-operator": "in", "c-0-0-value": ""}  # fmt: skip
    response = owner.post("/segments/new/", fields)
    assert response.status_code == 400
    assert re.search(r'data-prefix="c-0-0".*?value: Enter a value', response.content.decode(), re.S)
    assert not Segment.objects.exists()


def test_the_empty_text_typed_in_quotes_still_saves(owner, workspace):
    fields = {"name": "No plan text", "c-match": "all", "c-0-kind": "attribute",
              "c-0-attribute": "plan", "c-0-operator": "equals", "c-0-value": '""'}  # fmt: skip
    assert owner.post("/segments/new/", fields).status_code == 302
    assert Segment.objects.get().rules == plan_is("")


def test_a_misspelt_trait_or_event_is_warned_about_but_saves(owner, workspace, people):
    fields = {"name": "Typos", "c-match": "any",
              "c-0-kind": "attribute", "c-0-attribute": "plna", "c-0-operator": "is_set",
              "c-1-kind": "event", "c-1-event": "reprot_exported", "c-1-operator": "at_least",
              "c-1-value": "1",
              "c-2-kind": "attribute", "c-2-attribute": "plan", "c-2-operator": "is_set",
              "c-3-kind": "account", "c-3-attribute": "tier", "c-3-operator": "is_set"}  # fmt: skip

    preview = owner.post("/segments/preview/", fields, headers=HX).content.decode()

    assert "No contact has the trait `plna`." in preview
    assert "No event `reprot_exported` was ever tracked." in preview
    assert "No account has the trait `tier`." in preview
    assert "`plan`" not in preview
    assert owner.post("/segments/new/", fields).status_code == 302


def test_known_names_and_built_in_fields_raise_no_warning(owner, workspace, people):
    AccountFactory(workspace=workspace, external_id="acme", traits={"tier": "gold"})
    ContactFactory(workspace=workspace, account=workspace.accounts.get())
    rule = {"type": "group", "match": "all", "conditions": [
        {"type": "attribute", "attribute": "email", "operator": "is_set"},
        {"type": "attribute", "attribute": "account.tier", "operator": "is_set"},
        {"type": "event", "event": "report_exported", "operator": "at_least", "value": 1},
    ]}  # fmt: skip
    preview = owner.post("/segments/preview/", {"rules": json.dumps(rule)}).content
    assert b"name-warning" not in preview


def test_another_workspaces_names_do_not_count_as_known(owner, workspace, other_workspace):
    ContactFactory(workspace=other_workspace, traits={"plan": "pro"})
    fields = {"c-match": "all", "c-0-kind": "attribute", "c-0-attribute": "plan",
              "c-0-operator": "is_set"}  # fmt: skip
    preview = owner.post("/segments/preview/", fields).content.decode()
    assert "No contact has the trait `plan`." in preview


# The JSON panel follows the edit ----------------------------------------------------


def test_the_preview_carries_the_rule_being_edited_as_json(owner, workspace, people):
    segment = SegmentFactory(workspace=workspace, rules=plan_is("free"))
    fields = {"segment_id": segment.pk, "c-match": "all", "c-0-kind": "attribute",
              "c-0-attribute": "plan", "c-0-operator": "equals",
              "c-0-value": "enterprise"}  # fmt: skip

    text = owner.post("/segments/preview/", fields, headers=HX).content.decode()

    panel = re.search(
        r'<pre class="code" id="rule-json" hx-swap-oob="true">(.*?)</pre>', text, re.S
    )
    assert panel is not None
    assert "&quot;enterprise&quot;" in panel.group(1) and "free" not in panel.group(1)


def test_an_editor_button_also_refreshes_the_json_panel(owner, workspace):
    segment = SegmentFactory(workspace=workspace)
    fields = {"name": "x", "c-match": "all", "op": "add-condition:c"}
    text = owner.post(f"/segments/{segment.pk}/", fields, headers=HX).content.decode()
    panel = re.search(r'id="rule-json" hx-swap-oob="true">(.*?)</pre>', text, re.S).group(1)
    assert "&quot;attribute&quot;" in panel
    assert not Segment.objects.get().rules["conditions"]


# Catalogue ------------------------------------------------------------------------------


def test_the_catalogue_lists_traits_and_events_with_types_counts_and_last_seen(
    owner, workspace, people
):
    response = owner.get("/catalogue/")

    assert response.status_code == 200
    traits = {t.name: (t.kind, t.contacts) for t in response.context["traits"]}
    assert traits == {
        "plan": ("number or text", 3),  # "12" is a number too
        "seats": ("number", 2),
        "beta": ("true/false", 1),
    }
    events = response.context["events"]
    assert [(e.name, e.contacts) for e in events] == [("report_exported", 3)]  # times
    newest = max(e.occurred_at for e in people[0].events.all())
    assert events[0].last_seen == newest
    text = response.content.decode()
    assert "<code>seats</code>" in text and "<code>user_id</code>" not in text


def test_the_catalogue_is_linked_from_the_contacts_and_the_editor(owner, workspace):
    assert 'href="/catalogue/"' in owner.get("/contacts/").content.decode()
    assert 'href="/catalogue/"' in owner.get("/segments/new/").content.decode()


def test_the_catalogue_shows_only_the_workspaces_own_names(outsider, workspace, people):
    response = outsider.get("/catalogue/")
    assert response.context["traits"] == [] and response.context["events"] == []
    assert b"report_exported" not in response.content


def test_the_catalogue_is_cut_at_its_limit(workspace):
    from segments import catalogue

    ContactFactory(workspace=workspace, traits={f"trait_{n}": n for n in range(5)})
    assert len(catalogue.traits(workspace, limit=3)) == 3


# Contacts filtered by a trait ----------------------------------------------------------


def contact_ids(response) -> list[str]:
    return sorted(c.user_id for c in response.context["page"])


def test_contacts_filter_by_a_trait_value(owner, workspace, people):
    response = owner.get("/contacts/", {"trait": "plan", "value": "enterprise"})
    assert response.status_code == 200
    assert contact_ids(response) == ["ada"]
    # The rule language's equals: 12 is the number (matching "12"), "12" only the text.
    assert contact_ids(owner.get("/contacts/", {"trait": "seats", "value": "3"})) == ["bob"]
    assert contact_ids(owner.get("/contacts/", {"trait": "plan", "value": "12"})) == ["cy"]
    response = owner.get("/contacts/", {"trait": "beta", "value": "true"})
    assert contact_ids(response) == ["cy"]


def test_the_trait_filter_combines_with_search_and_segment(owner, workspace, people):
    segment = ManualSegmentFactory(workspace=workspace)
    segment.memberships.create(contact=people[1])
    query = {"trait": "plan", "value": "free", "segment": segment.pk, "q": "bo"}
    assert contact_ids(owner.get("/contacts/", query)) == ["bob"]
    query["value"] = "enterprise"
    assert contact_ids(owner.get("/contacts/", query)) == []


def test_a_bad_trait_filter_says_why_and_filters_nothing(owner, workspace, people):
    response = owner.get("/contacts/", {"trait": "-bad", "value": "x"})
    assert response.status_code == 400
    assert b"Trait filter not applied" in response.content
    assert contact_ids(response) == ["ada", "bob", "cy"]


def test_a_trait_without_a_value_lists_the_contacts_that_have_it(owner, workspace, people):
    response = owner.get("/contacts/", {"trait": "seats", "value": ""})
    assert response.status_code == 200
    assert contact_ids(response) == ["ada", "bob"]
    assert contact_ids(owner.get("/contacts/", {"trait": "beta"})) == ["cy"]


def test_the_trait_filter_never_finds_another_workspaces_contacts(outsider, workspace, people):
    response = outsider.get("/contacts/", {"trait": "plan", "value": "enterprise"})
    assert contact_ids(response) == []


# Date rules and long event names ------------------------------------------------------


def test_a_date_rule_gets_a_date_picker_and_keeps_a_typed_datetime(owner, workspace):
    rule = {"type": "group", "match": "all", "conditions": [
        {"type": "attribute", "attribute": "signed_up_at", "operator": "after",
         "value": "2024-03-01T09:30:00Z"},
    ]}  # fmt: skip
    segment = SegmentFactory(workspace=workspace, rules=rule)

    text = owner.get(f"/segments/{segment.pk}/").content.decode()

    assert re.search(r'<input type="date" id="c-0-date"[^>]*value="2024-03-01"', text)
    assert 'name="c-0-value" id="c-0-value" value="2024-03-01T09:30:00Z"' in text
    fields = {"name": segment.name, "c-match": "all", "c-0-kind": "attribute",
              "c-0-attribute": "signed_up_at", "c-0-operator": "before",
              "c-0-value": "2024-05-02T10:00:00+02:00"}  # fmt: skip
    assert owner.post(f"/segments/{segment.pk}/", fields).status_code == 302
    assert Segment.objects.get().rules["conditions"][0]["value"] == "2024-05-02T10:00:00+02:00"


def test_a_number_rule_gets_no_date_picker(owner, workspace):
    segment = SegmentFactory(workspace=workspace, rules=plan_is(3))
    assert 'type="date"' not in owner.get(f"/segments/{segment.pk}/").content.decode()


def test_the_event_name_box_fits_long_names(owner, workspace):
    rule = {"type": "group", "match": "all", "conditions": [
        {"type": "event", "event": "report_exported_to_spreadsheet", "operator": "at_least",
         "value": 1},
    ]}  # fmt: skip
    segment = SegmentFactory(workspace=workspace, rules=rule)
    text = owner.get(f"/segments/{segment.pk}/").content.decode()
    box = re.search(r'<input type="text" name="c-0-event"[^>]*>', text, re.S).group(0)
    assert 'size="32"' in box and 'class="event-name"' in box

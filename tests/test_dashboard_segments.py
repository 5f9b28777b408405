import io
import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from segments import rule_editor
from segments.models import Segment, SegmentMember
from segments.services import add_members
from tests.factories import (
    ContactFactory,
    EventFactory,
    ManualSegmentFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.rules import plan_is

pytestmark = pytest.mark.django_db

EMPTY = {"type": "group", "match": "all", "conditions": []}
ENTERPRISE = plan_is("enterprise")
HX = {"HX-Request": "true"}


@pytest.fixture
def contacts(workspace):
    return [
        ContactFactory(workspace=workspace, user_id="ada", traits={"plan": "enterprise"}),
        ContactFactory(workspace=workspace, user_id="bob", traits={"plan": "free"}),
        ContactFactory(workspace=workspace, user_id="cy", traits={"plan": "Enterprise"}),
    ]


def preview_count(html: str) -> str:
    return re.search(r'data-testid="preview-count">([^<]*)<', html).group(1)


def editor_fields(name="Enterprise", **fields):
    return {"name": name, "description": "", "c-match": "all", **fields}


# List -------------------------------------------------------------------------


def test_list_shows_live_sizes_and_uses(owner, workspace, contacts):
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise", rules=ENTERPRISE)
    SegmentFactory(
        workspace=workspace,
        name="Wrapper",
        rules={"type": "group", "match": "all",
               "conditions": [{"type": "segment", "segment": enterprise.pk, "operator": "in"}]},
    )  # fmt: skip
    survey = SurveyFactory(workspace=workspace, name="NPS for big customers")
    survey.targeting.segments.add(enterprise)
    response = owner.get("/segments/")
    assert response.status_code == 200
    rows = {row["segment"].name: row for row in response.context["rows"]}
    for name in ("Enterprise", "Wrapper"):
        assert f'hx-get="/segments/{rows[name]["segment"].pk}/size/"' in response.text
        assert size_of(owner, rows[name]["segment"]) == 1
    assert {use["name"] for use in rows["Enterprise"]["uses"]} == {
        "Wrapper",
        "NPS for big customers",
    }
    assert rows["Wrapper"]["uses"] == []


SIZE = re.compile(r'\s*<a class="count" href="[^"]+"[^>]*>(\d+)</a>\s*')


def size_of(client, segment) -> int:
    response = client.get(f"/segments/{segment.pk}/size/")
    assert response.status_code == 200
    return int(SIZE.fullmatch(response.text)[1])


def test_a_size_counts_rules_and_manual_lists_for_any_member(owner, viewer, workspace, contacts):
    everyone = SegmentFactory(workspace=workspace, rules={"type": "group", "match": "all",
                                                          "conditions": []})  # fmt: skip
    listed = ManualSegmentFactory(workspace=workspace)
    add_members(listed, [contacts[0].user_id])
    assert size_of(owner, everyone) == len(contacts)
    assert size_of(viewer, listed) == 1


def test_a_size_of_another_workspace_is_not_found(outsider, workspace):
    segment = SegmentFactory(workspace=workspace)
    assert outsider.get(f"/segments/{segment.pk}/size/").status_code == 404
    response = Client().get(f"/segments/{segment.pk}/size/")
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_list_hides_other_workspaces(outsider, workspace):
    SegmentFactory(workspace=workspace, name="Secret audience")
    response = outsider.get("/segments/")
    assert response.status_code == 200
    assert b"Secret audience" not in response.content


def test_anonymous_is_sent_to_login(client, workspace):
    segment = SegmentFactory(workspace=workspace)
    for url in ["/segments/", "/segments/new/", f"/segments/{segment.pk}/", "/contacts/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


# Editor -------------------------------------------------------------------------


def test_new_editor_renders_with_suggestions(owner, workspace, contacts):
    EventFactory(contact=contacts[0], name="report_exported")
    SurveyFactory(workspace=workspace, name="Onboarding")
    response = owner.get("/segments/new/")
    assert response.status_code == 200
    suggestions = response.context["suggestions"]
    assert suggestions["traits"] == ["plan"]
    assert suggestions["events"] == ["report_exported"]
    assert [name for _, name in suggestions["surveys"]] == ["Onboarding"]
    assert response.context["preview"]["count"] == 3
    assert b'<datalist id="trait-keys">' in response.content


def test_it_saves_a_rule_built_from_fields(owner, workspace, contacts):
    fields = editor_fields(
        **{"c-0-kind": "attribute", "c-0-attribute": "plan", "c-0-operator": "equals",
           "c-0-value": "enterprise", "c-0-ignore_case": "on"}
    )  # fmt: skip
    response = owner.post("/segments/new/", fields)
    segment = Segment.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == f"/segments/{segment.pk}/"
    assert segment.rules == {
        "type": "group",
        "match": "all",
        "conditions": [
            {"type": "attribute", "attribute": "plan", "operator": "equals",
             "value": "enterprise", "ignore_case": True}
        ],
    }  # fmt: skip


def test_it_saves_nested_groups_of_every_kind(owner, workspace, contacts):
    other = SegmentFactory(workspace=workspace, name="Other")
    survey = SurveyFactory(workspace=workspace)
    fields = editor_fields(
        **{
            "c-0-kind": "event", "c-0-event": "report_exported", "c-0-operator": "at_least",
            "c-0-value": "5", "c-0-within_days": "30",
            "c-1-kind": "group", "c-1-match": "any",
            "c-1-0-kind": "segment", "c-1-0-operator": "in", "c-1-0-segment": str(other.pk),
            "c-1-1-kind": "answer", "c-1-1-survey": str(survey.pk), "c-1-1-question": "nps",
            "c-1-1-operator": "greater_than_or_equal", "c-1-1-value": "9",
            "c-1-2-kind": "survey", "c-1-2-survey": "any", "c-1-2-operator": "dismissed",
            "c-1-3-kind": "account", "c-1-3-attribute": "tier", "c-1-3-operator": "in",
            "c-1-3-value": 'gold, silver, 3, "4"',
            "c-2-kind": "attribute", "c-2-attribute": "signed_up_at",
            "c-2-operator": "more_than_days_ago", "c-2-value": "30",
        }
    )  # fmt: skip
    response = owner.post("/segments/new/", fields)
    assert response.status_code == 302
    rules = Segment.objects.get(name="Enterprise").rules
    assert rules["conditions"][0] == {
        "type": "event", "event": "report_exported", "operator": "at_least",
        "value": 5, "within_days": 30,
    }  # fmt: skip
    nested = rules["conditions"][1]
    assert nested["match"] == "any"
    assert nested["conditions"] == [
        {"type": "segment", "segment": other.pk, "operator": "in"},
        {"type": "answer", "survey": survey.pk, "question": "nps",
         "operator": "greater_than_or_equal", "value": 9},
        {"type": "survey", "survey": "any", "operator": "dismissed"},
        {"type": "attribute", "attribute": "account.tier", "operator": "in",
         "value": ["gold", "silver", 3, "4"]},
    ]  # fmt: skip
    assert rules["conditions"][2]["value"] == 30


def test_it_accepts_a_posted_json_rule(owner, workspace, contacts):
    response = owner.post("/segments/new/", {"name": "From JSON", "rules": json.dumps(ENTERPRISE)})
    assert response.status_code == 302
    assert Segment.objects.get(name="From JSON").rules == ENTERPRISE


def test_invalid_rule_shows_errors_on_the_row_and_saves_nothing(owner, workspace):
    fields = editor_fields(
        **{"c-0-kind": "attribute", "c-0-attribute": "plan", "c-0-operator": "equals",
           "c-0-value": "x",
           "c-1-kind": "attribute", "c-1-attribute": "age", "c-1-operator": "greater_than",
           "c-1-value": "old"}
    )  # fmt: skip
    response = owner.post("/segments/new/", fields)
    assert response.status_code == 400
    assert not Segment.objects.exists()
    rows = response.context["tree"].children
    assert rows[0].errors == {}
    assert rows[1].errors == {"value": "Must be a number."}
    html = response.content.decode()
    assert 'data-prefix="c-1"' in html and "Must be a number." in html
    # What was typed is kept, so it can be fixed.
    assert 'value="old"' in html


def test_invalid_json_rule_is_rejected(owner, workspace):
    response = owner.post("/segments/new/", {"name": "Broken", "rules": "{nope"})
    assert response.status_code == 400
    assert not Segment.objects.exists()
    assert "not valid JSON" in response.content.decode()


def test_a_cycle_is_rejected(owner, workspace):
    first = SegmentFactory(workspace=workspace, name="First")
    second = SegmentFactory(
        workspace=workspace,
        rules={"type": "group", "match": "all",
               "conditions": [{"type": "segment", "segment": first.pk, "operator": "in"}]},
    )  # fmt: skip
    fields = editor_fields(
        name="First",
        **{"c-0-kind": "segment", "c-0-operator": "in", "c-0-segment": str(second.pk)},
    )
    response = owner.post(f"/segments/{first.pk}/", fields)
    assert response.status_code == 400
    assert "cycle" in response.content.decode()
    first.refresh_from_db()
    assert first.rules == EMPTY


def test_it_edits_an_existing_segment(owner, workspace, contacts):
    segment = SegmentFactory(workspace=workspace, name="Old", rules=ENTERPRISE)
    page = owner.get(f"/segments/{segment.pk}/")
    assert page.status_code == 200
    assert page.context["preview"]["count"] == 1
    assert 'name="c-0-attribute" id="c-0-attribute" value="plan"' in page.content.decode()
    fields = editor_fields(
        name="New",
        **{"c-0-kind": "attribute", "c-0-attribute": "plan", "c-0-operator": "equals",
           "c-0-value": "free"},
    )  # fmt: skip
    response = owner.post(f"/segments/{segment.pk}/", fields)
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "New"
    assert segment.rules["conditions"][0]["value"] == "free"


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("add-condition:c", ["attribute", "attribute"]),
        ("add-group:c", ["attribute", "group"]),
        ("remove:c-0", []),
    ],
)
def test_editor_buttons_change_the_tree_without_saving(owner, workspace, operation, expected):
    fields = editor_fields(
        op=operation,
        **{"c-0-kind": "attribute", "c-0-attribute": "plan", "c-0-operator": "is_set"},
    )
    response = owner.post("/segments/new/", fields, headers=HX)
    assert response.status_code == 200
    assert not Segment.objects.exists()
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="rule-editor">')
    assert "<html" not in html
    assert 'hx-swap-oob="innerHTML"' in html
    kinds = ["group" if c.is_group else c.kind for c in response.context["tree"].children]
    assert kinds == expected


def test_editor_buttons_work_without_javascript(owner, workspace):
    response = owner.post("/segments/new/", editor_fields(op="add-condition:c"))
    assert response.status_code == 200
    assert "<html" in response.content.decode()
    assert len(response.context["tree"].children) == 1


def test_changing_the_type_offers_fitting_operators(owner, workspace):
    fields = editor_fields(
        op="refresh", **{"c-0-kind": "event", "c-0-operator": "equals", "c-0-event": "x"}
    )
    response = owner.post("/segments/new/", fields, headers=HX)
    node = response.context["tree"].children[0]
    assert node.operator == "at_least"
    html = response.content.decode()
    assert 'value="at_least" selected' in html
    assert 'value="contains"' not in html
    assert 'name="c-0-within_days"' in html


# Preview --------------------------------------------------------------------------


def test_preview_counts_and_samples_matching_contacts(owner, workspace, contacts):
    fields = {
        "c-match": "all",
        "c-0-kind": "attribute", "c-0-attribute": "plan", "c-0-operator": "equals",
        "c-0-value": "enterprise", "c-0-ignore_case": "on",
    }  # fmt: skip
    response = owner.post("/segments/preview/", fields, headers=HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert preview_count(html) == "2"
    assert "/contacts/ada/" in html and "/contacts/cy/" in html and "/contacts/bob/" not in html


def test_preview_accepts_json_and_reports_problems(owner, workspace, contacts):
    bad = {"type": "group", "match": "most", "conditions": []}
    response = owner.post("/segments/preview/", {"rules": json.dumps(bad)})
    assert response.status_code == 200
    assert preview_count(response.content.decode()) == "–"
    assert (
        "Must be &quot;all&quot;, &quot;any&quot; or &quot;none&quot;." in response.content.decode()
    )
    good = owner.post("/segments/preview/", {"rules": json.dumps(ENTERPRISE)})
    assert preview_count(good.content.decode()) == "1"


def test_preview_never_counts_another_workspace(outsider, workspace, contacts):
    response = outsider.post("/segments/preview/", {"rules": json.dumps(EMPTY)})
    assert preview_count(response.content.decode()) == "0"


def test_preview_of_another_workspaces_segment_is_404(outsider, workspace):
    segment = SegmentFactory(workspace=workspace)
    response = outsider.post(
        "/segments/preview/", {"rules": json.dumps(EMPTY), "segment_id": segment.pk}
    )
    assert response.status_code == 404


# Permissions -------------------------------------------------------------------------


def test_viewer_reads_but_cannot_write(viewer, workspace, contacts):
    segment = SegmentFactory(workspace=workspace, name="Keep", rules=ENTERPRISE)
    page = viewer.get(f"/segments/{segment.pk}/")
    assert page.status_code == 200
    assert b"Save segment" not in page.content
    assert viewer.get("/segments/new/").status_code == 403
    assert viewer.post("/segments/new/", editor_fields()).status_code == 403
    changed = viewer.post(f"/segments/{segment.pk}/", editor_fields(name="Changed"))
    assert changed.status_code == 403
    assert viewer.post(f"/segments/{segment.pk}/delete/").status_code == 403
    segment.refresh_from_db()
    assert segment.name == "Keep" and segment.rules == ENTERPRISE
    assert Segment.objects.count() == 1


def test_outsider_gets_404_everywhere(outsider, workspace):
    segment = SegmentFactory(workspace=workspace, name="Keep")
    manual = ManualSegmentFactory(workspace=workspace)
    ContactFactory(workspace=workspace, user_id="ada")
    assert outsider.get(f"/segments/{segment.pk}/").status_code == 404
    assert outsider.post(f"/segments/{segment.pk}/", editor_fields()).status_code == 404
    assert outsider.post(f"/segments/{segment.pk}/delete/").status_code == 404
    add = outsider.post(f"/segments/{manual.pk}/members/add/", {"user_ids": "ada"})
    assert add.status_code == 404
    assert Segment.objects.filter(pk=segment.pk, name="Keep").exists()
    assert not SegmentMember.objects.exists()


# Delete -------------------------------------------------------------------------------


def test_it_deletes_an_unused_segment(owner, workspace):
    segment = SegmentFactory(workspace=workspace)
    response = owner.post(f"/segments/{segment.pk}/delete/")
    assert response.status_code == 302
    assert not Segment.objects.exists()


def test_it_refuses_to_delete_a_segment_in_use_and_names_the_users(owner, workspace):
    segment = SegmentFactory(workspace=workspace, name="Enterprise")
    survey = SurveyFactory(workspace=workspace, name="Renewal survey")
    survey.targeting.excluded_segments.add(segment)
    response = owner.post(f"/segments/{segment.pk}/delete/", follow=True)
    assert Segment.objects.filter(pk=segment.pk).exists()
    text = response.content.decode()
    assert "cannot be deleted" in text and "Renewal survey" in text


# Manual segments ------------------------------------------------------------------------


def test_it_creates_a_manual_segment(owner, workspace):
    form = owner.get("/segments/new/?kind=manual")
    assert form.status_code == 200
    response = owner.post("/segments/new/", {"kind": "manual", "name": "Beta testers"})
    segment = Segment.objects.get(name="Beta testers")
    assert response.status_code == 302
    assert segment.kind == Segment.MANUAL and segment.rules is None


def test_it_adds_imports_and_removes_members(owner, workspace, contacts):
    segment = ManualSegmentFactory(workspace=workspace)
    response = owner.post(
        f"/segments/{segment.pk}/members/add/", {"user_ids": "ada, ghost"}, follow=True
    )
    assert "1 unknown user id(s) skipped: ghost" in response.content.decode()
    upload = io.BytesIO(b"user_id\nbob\ncy\n")
    upload.name = "members.csv"
    owner.post(f"/segments/{segment.pk}/members/import/", {"file": upload})
    members = set(segment.memberships.values_list("contact__user_id", flat=True))
    assert members == {"ada", "bob", "cy"}
    page = owner.get(f"/segments/{segment.pk}/")
    assert [c.user_id for c in page.context["page"]] == ["ada", "bob", "cy"]
    owner.post(f"/segments/{segment.pk}/members/remove/", {"user_id": "bob"})
    members = set(segment.memberships.values_list("contact__user_id", flat=True))
    assert members == {"ada", "cy"}


def test_viewer_cannot_change_members(viewer, workspace, contacts):
    segment = ManualSegmentFactory(workspace=workspace)
    response = viewer.post(f"/segments/{segment.pk}/members/add/", {"user_ids": "ada"})
    assert response.status_code == 403
    assert not SegmentMember.objects.exists()


def test_members_of_a_rules_segment_cannot_be_added(owner, workspace, contacts):
    segment = SegmentFactory(workspace=workspace)
    response = owner.post(f"/segments/{segment.pk}/members/add/", {"user_ids": "ada"})
    assert response.status_code == 404
    assert not SegmentMember.objects.exists()


# The form's round trip ------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"type": "attribute", "attribute": "zip", "operator": "equals", "value": "007"},
        {"type": "attribute", "attribute": "zip", "operator": "equals", "value": 7},
        {"type": "attribute", "attribute": "beta", "operator": "equals", "value": True},
        {"type": "attribute", "attribute": "plan", "operator": "in",
         "value": ["a, b", "12", 12, "plain"]},
        {"type": "attribute", "attribute": "bio", "operator": "contains", "value": "12"},
        {"type": "attribute", "attribute": "account.size", "operator": "greater_than",
         "value": 2.5},
        {"type": "attribute", "attribute": "signed_up_at", "operator": "before",
         "value": "2024-01-31"},
        {"type": "attribute", "attribute": "plan", "operator": "is_set"},
        {"type": "event", "event": "login", "operator": "exactly", "value": 0},
        {"type": "survey", "survey": 4, "operator": "completed", "within_days": 7},
        {"type": "segment", "segment": 3, "operator": "not_in"},
    ],
)  # fmt: skip
def test_stored_rules_survive_the_editor(condition):
    rule = {"type": "group", "match": "any", "conditions": [
        condition, {"type": "group", "match": "none", "conditions": []}]}  # fmt: skip
    tree = rule_editor.number(rule_editor.from_rule(rule))
    posted = {}
    collect_fields(tree, posted)
    assert rule_editor.to_rule(rule_editor.tree_from_post(posted)) == rule


def collect_fields(group, posted):
    """What a browser would post for the rendered tree."""
    posted[f"{group.prefix}-match"] = group.match
    if group.prefix != "c":
        posted[f"{group.prefix}-kind"] = "group"
    for child in group.children:
        if child.is_group:
            collect_fields(child, posted)
            continue
        for name in ("kind", "attribute", "operator", "value", "within_days", "event",
                     "survey", "question", "segment"):  # fmt: skip
            posted[f"{child.prefix}-{name}"] = getattr(child, name)
        if child.ignore_case:
            posted[f"{child.prefix}-ignore_case"] = "on"


@pytest.mark.parametrize("text", ["a\x00b", "\ud800"], ids=["NUL", "lone surrogate"])
def test_the_editor_refuses_text_no_database_can_hold(owner, workspace, text):
    """Form fields skip the JSON API's string check: the rule's own validation must refuse."""
    condition = {"type": "attribute", "attribute": "plan", "operator": "equals", "value": text}
    rule = {"type": "group", "match": "all", "conditions": [condition]}
    posted = json.dumps(rule)  # ASCII escapes, as a browser's form would send them
    saved = owner.post("/segments/new/", {"name": "Odd", "rules": posted})
    preview = owner.post("/segments/preview/", {"rules": posted})

    assert saved.status_code == 400
    assert not Segment.objects.exists()
    assert preview.status_code == 200
    assert "broken Unicode" in preview.content.decode()

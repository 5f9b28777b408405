"""REST API for segments (SPEC §5.2): CRUD, contacts, preview, manual members."""

import pytest

from segments.models import Segment, SegmentMember
from tests.clients import fields_of
from tests.factories import ContactFactory, ManualSegmentFactory, SegmentFactory, SurveyFactory
from tests.rules import group, plan, reference

pytestmark = pytest.mark.django_db


def rows() -> tuple[int, int, list]:
    return (
        Segment.objects.count(),
        SegmentMember.objects.count(),
        list(Segment.objects.order_by("id").values_list("name", "rules")),
    )


@pytest.fixture
def people(workspace):
    ContactFactory(workspace=workspace, user_id="ada", traits={"plan": "pro"})
    ContactFactory(workspace=workspace, user_id="bob", traits={"plan": "pro"})
    ContactFactory(workspace=workspace, user_id="cy", traits={"plan": "free"})


# CRUD ------------------------------------------------------------------------


def test_it_creates_a_rules_segment(api, workspace, people):
    response = api.post(
        "/api/v1/segments", {"name": " Pro ", "description": "Paying", "rules": group(plan("pro"))}
    )
    assert response.status_code == 201, response.content
    segment = Segment.objects.get(workspace=workspace)
    assert response.json() == {
        "id": segment.pk,
        "name": "Pro",
        "description": "Paying",
        "kind": "rules",
        "rules": group(plan("pro")),
        "contact_count": 2,
        "warnings": [],
    }
    assert segment.rules == group(plan("pro"))


def test_it_creates_a_manual_segment(api, workspace, people):
    response = api.post("/api/v1/segments", {"name": "Beta", "kind": "manual"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "manual" and body["rules"] is None and body["contact_count"] == 0
    assert Segment.objects.get(pk=body["id"]).is_manual


def test_it_lists_segments_with_their_counts(api, workspace, people):
    pro = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    everyone = SegmentFactory(workspace=workspace)
    body = api.get("/api/v1/segments").json()
    assert body["count"] == 2 and body["next"] is None
    counts = {s["id"]: s["contact_count"] for s in body["results"]}
    assert counts == {pro.pk: 2, everyone.pk: 3}


def test_it_shows_a_segment(api, workspace, people):
    segment = SegmentFactory(workspace=workspace, name="Free", rules=group(plan("free")))
    body = api.get(f"/api/v1/segments/{segment.pk}").json()
    assert body["name"] == "Free" and body["contact_count"] == 1
    assert api.get("/api/v1/segments/999999").status_code == 404


def test_it_updates_a_segment(api, workspace, people):
    segment = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    response = api.put(
        f"/api/v1/segments/{segment.pk}", {"name": "Free now", "rules": group(plan("free"))}
    )
    assert response.status_code == 200, response.content
    assert response.json()["contact_count"] == 1
    segment.refresh_from_db()
    assert segment.name == "Free now" and segment.rules == group(plan("free"))


def test_a_segment_cannot_change_kind(api, workspace):
    segment = SegmentFactory(workspace=workspace)
    before = rows()
    response = api.put(f"/api/v1/segments/{segment.pk}", {"name": "X", "kind": "manual"})
    assert "kind" in fields_of(response)
    assert rows() == before


def test_it_deletes_a_segment(api, workspace):
    segment = SegmentFactory(workspace=workspace)
    assert api.delete(f"/api/v1/segments/{segment.pk}").status_code == 204
    assert not Segment.objects.filter(pk=segment.pk).exists()
    assert api.delete(f"/api/v1/segments/{segment.pk}").status_code == 404


def test_it_refuses_to_delete_a_referenced_segment(api, workspace):
    base = SegmentFactory(workspace=workspace, name="Base")
    SegmentFactory(workspace=workspace, name="Uses base", rules=group(reference(base.pk)))
    response = api.delete(f"/api/v1/segments/{base.pk}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "segment_in_use" and "Uses base" in error["message"]
    assert Segment.objects.filter(pk=base.pk).exists()


@pytest.mark.parametrize("field", ["segments", "excluded_segments"])
def test_it_refuses_to_delete_a_segment_a_survey_targets(api, workspace, field):
    segment = SegmentFactory(workspace=workspace)
    survey = SurveyFactory(workspace=workspace, name="Onboarding NPS")
    getattr(survey.targeting, field).add(segment)
    response = api.delete(f"/api/v1/segments/{segment.pk}")
    assert response.status_code == 409
    assert "Onboarding NPS" in response.json()["error"]["message"]
    assert Segment.objects.filter(pk=segment.pk).exists()


# contacts, preview -------------------------------------------------------------


def test_it_lists_a_segments_contacts(api, workspace, people):
    segment = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    body = api.get(f"/api/v1/segments/{segment.pk}/contacts").json()
    assert [c["user_id"] for c in body["results"]] == ["ada", "bob"]
    assert body["count"] == 2 and body["next"] is None
    assert body["results"][0]["traits"] == {"plan": "pro"}


def test_segment_contacts_follow_references(api, workspace, people):
    pro = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    not_pro = SegmentFactory(workspace=workspace, rules=group(reference(pro.pk, "not_in")))
    body = api.get(f"/api/v1/segments/{not_pro.pk}/contacts").json()
    assert [c["user_id"] for c in body["results"]] == ["cy"]


def test_it_previews_a_rule(api, workspace, people):
    before = rows()
    response = api.post("/api/v1/segments/preview", {"rules": group(plan("pro"))})
    assert response.status_code == 200, response.content
    assert response.json() == {"count": 2, "sample": ["ada", "bob"], "warnings": []}
    assert api.post("/api/v1/segments/preview", {"rules": group()}).json()["count"] == 3
    assert rows() == before


def test_preview_reports_rule_errors_under_rules(api):
    fields = fields_of(api.post("/api/v1/segments/preview", {}))
    assert list(fields) == ["rules"]
    fields = fields_of(api.post("/api/v1/segments/preview", {"rules": group(plan(""), match="x")}))
    assert "rules.match" in fields


# manual members ----------------------------------------------------------------


def test_it_adds_and_removes_manual_members(api, workspace, people):
    segment = ManualSegmentFactory(workspace=workspace)
    url = f"/api/v1/segments/{segment.pk}/members"
    response = api.post(url, {"user_ids": ["ada", "cy", "ada"]})
    assert response.status_code == 200, response.content
    assert response.json()["contact_count"] == 2
    # Adding again is harmless.
    assert api.post(url, {"user_ids": ["ada"]}).json()["contact_count"] == 2
    body = api.get(f"/api/v1/segments/{segment.pk}/contacts").json()
    assert [c["user_id"] for c in body["results"]] == ["ada", "cy"]
    response = api.delete(url, {"user_ids": ["ada", "nobody"]})
    assert response.status_code == 200 and response.json()["contact_count"] == 1
    assert list(SegmentMember.objects.values_list("contact__user_id", flat=True)) == ["cy"]


def test_members_refuse_unknown_users_and_write_nothing(api, workspace, people):
    segment = ManualSegmentFactory(workspace=workspace)
    response = api.post(f"/api/v1/segments/{segment.pk}/members", {"user_ids": ["ada", "ghost"]})
    assert "ghost" in fields_of(response)["user_ids"]
    for body in ({}, {"user_ids": []}, {"user_ids": "ada"}, {"user_ids": [1]}):
        assert "user_ids" in fields_of(api.post(f"/api/v1/segments/{segment.pk}/members", body))
    assert SegmentMember.objects.count() == 0


def test_a_rules_segment_has_no_members_to_add(api, workspace, people):
    segment = SegmentFactory(workspace=workspace)
    response = api.post(f"/api/v1/segments/{segment.pk}/members", {"user_ids": ["ada"]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_manual"
    assert SegmentMember.objects.count() == 0


# bad input writes nothing --------------------------------------------------------


@pytest.mark.parametrize(
    "rules, path",
    [
        (group({"type": "attribute", "attribute": "plan", "operator": "like", "value": "x"}),
         "rules.conditions[0].operator"),
        (group({"type": "attribute", "attribute": "n", "operator": "greater_than", "value": "5"}),
         "rules.conditions[0].value"),
        (group({"type": "attribute", "attribute": "x.y", "operator": "is_set"}),
         "rules.conditions[0].attribute"),
        (group({"type": "event", "event": "e", "operator": "at_least", "value": -1}),
         "rules.conditions[0].value"),
        (group({"type": "segment", "segment": 999999, "operator": "in"}),
         "rules.conditions[0].segment"),
        ({"type": "group", "match": "all"}, "rules.conditions"),
        ("everyone", "rules"),
        (None, "rules"),
    ],
)  # fmt: skip
def test_it_refuses_a_bad_rule_on_create_and_update(api, workspace, rules, path):
    segment = SegmentFactory(workspace=workspace, name="Kept", rules=group(plan("pro")))
    before = rows()
    assert path in fields_of(api.post("/api/v1/segments", {"name": "New", "rules": rules}))
    response = api.put(f"/api/v1/segments/{segment.pk}", {"name": "Changed", "rules": rules})
    assert path in fields_of(response)
    assert path in fields_of(api.post("/api/v1/segments/preview", {"rules": rules}))
    assert rows() == before


def test_it_refuses_a_cycle(api, workspace):
    a = SegmentFactory(workspace=workspace, name="A")
    b = SegmentFactory(workspace=workspace, name="B", rules=group(reference(a.pk)))
    before = rows()
    fields = fields_of(
        api.put(f"/api/v1/segments/{a.pk}", {"name": "A", "rules": group(reference(b.pk))})
    )
    assert "cycle" in fields["rules"]
    fields = fields_of(
        api.put(f"/api/v1/segments/{a.pk}", {"name": "A", "rules": group(reference(a.pk))})
    )
    assert "cycle" in fields["rules"]
    assert rows() == before


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rules": group()}, "name"),
        ({"name": "", "rules": group()}, "name"),
        ({"name": "x" * 201, "rules": group()}, "name"),
        ({"name": "X", "description": 5, "rules": group()}, "description"),
        ({"name": "X", "kind": "smart"}, "kind"),
        ({"name": "X"}, "rules"),
        ({"name": "X", "kind": "manual", "rules": group()}, "rules"),
        ({"name": "X", "rules": group(), "color": "red"}, "color"),
    ],
)
def test_it_refuses_bad_segment_fields(api, body, field):
    before = rows()
    assert field in fields_of(api.post("/api/v1/segments", body))
    assert rows() == before


@pytest.mark.parametrize(
    "path", ["/api/v1/segments", "/api/v1/segments/preview", "/api/v1/segments/{id}/members"]
)
def test_malformed_and_oversized_bodies_are_refused(api, workspace, path):
    segment = ManualSegmentFactory(workspace=workspace)
    path = path.format(id=segment.pk)
    before = rows()
    for raw in (b"{", b'"rules"', b"", b'{"name": Infinity}'):
        response = api.post(path, raw=raw)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
    response = api.post(path, {"name": "x" * (64 * 1024), "rules": group()})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert rows() == before


def test_wrong_methods_are_refused(api, workspace):
    segment = SegmentFactory(workspace=workspace)
    for call, path in (
        (api.delete, "/api/v1/segments"),
        (api.post, f"/api/v1/segments/{segment.pk}"),
        (api.get, "/api/v1/segments/preview"),
        (api.post, f"/api/v1/segments/{segment.pk}/contacts"),
        (api.get, f"/api/v1/segments/{segment.pk}/members"),
    ):
        response = call(path)
        assert response.status_code == 405, path
        assert response.json()["error"]["code"] == "method_not_allowed"
        assert response["Allow"]


def test_missing_or_wrong_keys_are_refused(client, workspace):
    segment = SegmentFactory(workspace=workspace)
    before = rows()
    for headers in ({}, {"Authorization": "Bearer nope"}):
        for method, path in (
            ("get", "/api/v1/segments"),
            ("post", "/api/v1/segments"),
            ("delete", f"/api/v1/segments/{segment.pk}"),
            ("post", "/api/v1/segments/preview"),
        ):
            response = getattr(client, method)(
                path, content_type="application/json", headers=headers
            )
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthorized"
    assert rows() == before


# the outsider ----------------------------------------------------------------------


def test_the_outsider_sees_none_of_our_segments(api, outsider_api, workspace, people):
    segment = ManualSegmentFactory(workspace=workspace)
    api.post(f"/api/v1/segments/{segment.pk}/members", {"user_ids": ["ada"]})
    assert outsider_api.get("/api/v1/segments").json()["count"] == 0
    before = rows()
    for call, path, body in (
        (outsider_api.get, f"/api/v1/segments/{segment.pk}", None),
        (outsider_api.put, f"/api/v1/segments/{segment.pk}", {"name": "Mine", "kind": "manual"}),
        (outsider_api.delete, f"/api/v1/segments/{segment.pk}", None),
        (outsider_api.get, f"/api/v1/segments/{segment.pk}/contacts", None),
        (outsider_api.post, f"/api/v1/segments/{segment.pk}/members", {"user_ids": ["ada"]}),
        (outsider_api.delete, f"/api/v1/segments/{segment.pk}/members", {"user_ids": ["ada"]}),
    ):
        response = call(path, body)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert rows() == before


def test_the_outsider_cannot_reference_our_segment(outsider_api, workspace, other_workspace):
    ours = SegmentFactory(workspace=workspace)
    before = rows()
    response = outsider_api.post(
        "/api/v1/segments", {"name": "Sneaky", "rules": group(reference(ours.pk))}
    )
    assert "rules.conditions[0].segment" in fields_of(response)
    response = outsider_api.post("/api/v1/segments/preview", {"rules": group(reference(ours.pk))})
    assert "rules.conditions[0].segment" in fields_of(response)
    assert rows() == before


def test_the_outsiders_preview_counts_only_its_contacts(outsider_api, workspace, people):
    assert outsider_api.post("/api/v1/segments/preview", {"rules": group()}).json() == {
        "count": 0,
        "sample": [],
        "warnings": [],
    }


def test_the_outsider_cannot_add_our_contacts_to_its_segment(outsider_api, other_workspace, people):
    theirs = ManualSegmentFactory(workspace=other_workspace)
    response = outsider_api.post(f"/api/v1/segments/{theirs.pk}/members", {"user_ids": ["ada"]})
    assert "user_ids" in fields_of(response)
    assert SegmentMember.objects.count() == 0

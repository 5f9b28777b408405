"""A broken stored definition fails closed for its segment, never for the workspace.

Saves refuse cycles and missing references, so these definitions are written
straight with the ORM, as a hand edit or an older version could have left them.
"""

import json
import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from refiner.models import Membership
from segments.memory import ContactSnapshot, matches
from segments.models import Contact, Segment
from segments.services import segment_definitions
from segments.sql import compile_rule
from targeting.eligibility import eligible_surveys
from targeting.models import Targeting
from tests.factories import ContactFactory, MembershipFactory, SegmentFactory, SurveyFactory
from tests.rules import group, plan, reference

pytestmark = pytest.mark.django_db

SIZE = re.compile(r'\s*<a class="count" href="[^"]+"[^>]*>(\d+)</a>\s*')
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


PRO = plan("pro")


@pytest.fixture
def broken(workspace) -> dict[str, Segment]:
    """A cycle (a, b), a segment naming it (user), one naming a missing segment, one sound."""
    a = SegmentFactory(workspace=workspace, name="A", rules=group(PRO))
    b = SegmentFactory(workspace=workspace, name="B", rules=group(reference(a.pk), match="any"))
    Segment.objects.filter(pk=a.pk).update(rules=group(reference(b.pk), PRO, match="any"))
    user = SegmentFactory(workspace=workspace, name="User of A", rules=group(reference(a.pk)))
    orphan = SegmentFactory(
        workspace=workspace, name="Orphan", rules=group(reference(10**9, "not_in"))
    )
    sound = SegmentFactory(workspace=workspace, name="Pro", rules=group(PRO))
    return {"a": a, "b": b, "user": user, "orphan": orphan, "sound": sound}


@pytest.fixture
def pro(workspace) -> Contact:
    return ContactFactory(workspace=workspace, user_id="pro-1", traits={"plan": "pro"})


def test_both_evaluators_count_no_one_in_a_broken_segment(workspace, broken, pro, caplog):
    definitions = segment_definitions(workspace.pk)
    snapshot = ContactSnapshot(attributes={"plan": "pro"})
    for name, expected in [("a", False), ("b", False), ("user", False), ("orphan", False),
                           ("sound", True)]:  # fmt: skip
        for operator in ("in", "not_in"):
            rule = group(reference(broken[name].pk, operator))
            held = expected if operator == "in" else not expected
            in_memory = matches(rule, snapshot, NOW, definitions)
            in_sql = Contact.objects.filter(compile_rule(rule, NOW, definitions)).exists()
            assert (in_memory, in_sql) == (held, held), (name, operator)
    assert "on a cycle of references" in caplog.text


def test_eligibility_skips_only_the_broken_segments_survey(workspace, broken, pro):
    everyone = SurveyFactory(workspace=workspace, name="Everyone")
    for_a = SurveyFactory(workspace=workspace, name="For A")
    targeting = for_a.targeting
    targeting.audience = Targeting.SEGMENTS
    targeting.save()
    targeting.segments.set([broken["a"]])

    offered = eligible_surveys(workspace=workspace, contact=pro, now=NOW)

    assert [s.id for s in offered] == [everyone.pk]
    widget = Client().post(
        "/api/v1/widget/eligibility",
        json.dumps({"workspace": workspace.widget_key, "user_id": "pro-1"}),
        content_type="application/json",
    )
    assert widget.status_code == 200
    assert [s["id"] for s in widget.json()["surveys"]] == [everyone.pk]
    explained = api_get(workspace, f"/api/v1/surveys/{for_a.pk}/eligibility/pro-1")
    assert explained.status_code == 200
    assert [r["code"] for r in explained.json()["reasons"]] == ["not_in_audience"]


def api_get(workspace, path: str):
    return Client().get(path, headers={"Authorization": f"Bearer {workspace.secret_key}"})


def test_the_rest_api_answers_with_broken_segments_empty(workspace, broken, pro):
    listed = api_get(workspace, "/api/v1/segments")
    assert listed.status_code == 200
    counts = {row["name"]: row["contact_count"] for row in listed.json()["results"]}
    assert counts == {"A": 0, "B": 0, "User of A": 0, "Orphan": 0, "Pro": 1}

    members = api_get(workspace, f"/api/v1/segments/{broken['a'].pk}/contacts")
    assert members.status_code == 200 and members.json()["count"] == 0
    filtered = api_get(workspace, f"/api/v1/contacts?segment={broken['user'].pk}")
    assert filtered.status_code == 200 and filtered.json()["count"] == 0

    contact = api_get(workspace, "/api/v1/contacts/pro-1")
    assert contact.status_code == 200
    assert [s["name"] for s in contact.json()["segments"]] == ["Pro"]


def test_the_dashboard_answers_with_broken_segments_empty(client, workspace, broken, pro):
    client.force_login(MembershipFactory(workspace=workspace, role=Membership.OWNER).user)

    assert client.get(reverse("segment-list")).status_code == 200
    for name, size in [("b", 0), ("sound", 1)]:
        response = client.get(reverse("segment-size", args=[broken[name].pk]))
        assert response.status_code == 200
        assert SIZE.fullmatch(response.text)[1] == str(size)
    page = client.get(reverse("contact-detail", args=["pro-1"]))
    assert page.status_code == 200
    assert client.get(reverse("segment-edit", args=[broken["a"].pk])).status_code == 200

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from refiner.models import Membership, Workspace
from segments.models import Contact, Event, Segment, SegmentMembership
from segments.services import segment_contacts
from surveys.models import Display, Response, Survey

pytestmark = pytest.mark.django_db


def counts(workspace: Workspace) -> dict:
    return {
        "contacts": Contact.objects.filter(workspace=workspace).count(),
        "events": Event.objects.filter(workspace=workspace).count(),
        "segments": Segment.objects.filter(workspace=workspace).count(),
        "surveys": Survey.objects.filter(workspace=workspace).count(),
        "displays": Display.objects.filter(workspace=workspace).count(),
        "responses": Response.objects.filter(workspace=workspace).count(),
    }


def test_it_seeds_a_demo_workspace_once(client):
    call_command("seed_demo", contacts=40, stdout=open("/dev/null", "w"))
    workspace = Workspace.objects.get(name="Demo")
    user = authenticate(username="demo@example.com", password="demo")
    assert Membership.objects.get(workspace=workspace, user=user).role == Membership.OWNER
    first = counts(workspace)
    assert first["contacts"] == 40 and first["events"] > 100 and first["responses"] > 0
    assert first["surveys"] == 3
    names = set(Segment.objects.filter(workspace=workspace).values_list("name", flat=True))
    assert {"Power users", "Enterprise customers", "Everyone except employees",
            "Beta testers", "NPS promoters"} <= names  # fmt: skip
    for segment in Segment.objects.filter(workspace=workspace):
        members = segment_contacts(segment, workspace.created_at).count()  # every rule compiles
        # The demo starts swept: its segments' history and cached sizes hold their members.
        if segment.kind == Segment.RULES:
            opened = SegmentMembership.objects.filter(segment=segment, left_at__isnull=True)
            assert segment.members_as_of is not None and opened.count() == members

    call_command("seed_demo", contacts=40, stdout=open("/dev/null", "w"))
    assert Workspace.objects.filter(name="Demo").count() == 1
    assert counts(workspace) == first

    client.force_login(user)
    assert client.get("/segments/").status_code == 200

"""The segment's history page (size over 90 days, entries and exits) and the contact
page's "since": drawn from recorded memberships, and only for the workspace's members."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from refiner.models import Membership
from segments import membership
from segments.history import daily_sizes
from segments.ingest import clean_user, identify_contact
from segments.models import SegmentMembership
from tests.factories import MembershipFactory, SegmentFactory

pytestmark = pytest.mark.django_db

PRO = {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"}
HX = {"HX-Request": "true"}


@pytest.fixture
def owner_client(client, workspace):
    client.force_login(MembershipFactory(workspace=workspace, role=Membership.OWNER).user)
    return client


@pytest.fixture
def pro(workspace):
    segment = SegmentFactory(workspace=workspace, name="Pro plan", rules=PRO)
    segment.created_at = timezone.now() - timedelta(days=200)
    segment.save(update_fields=["created_at"])
    workspace.refresh_from_db()
    return segment


def identify(workspace, when, **user):
    return identify_contact(workspace=workspace, user=clean_user(user), now=when)


def test_daily_sizes_follow_entries_and_exits(workspace, pro):
    now = timezone.now()
    identify(workspace, now - timedelta(days=10), id="ada", plan="pro")
    identify(workspace, now - timedelta(days=5), id="bob", plan="pro")
    identify(workspace, now - timedelta(days=2), id="ada", plan="free")
    sizes = {day.day: day.size for day in daily_sizes(pro, now)}
    assert len(sizes) == 90
    on = lambda days: sizes[timezone.localtime(now - timedelta(days=days)).date()]  # noqa: E731
    assert (on(11), on(10), on(5), on(2), on(0)) == (0, 1, 2, 1, 1)


def test_the_history_page_draws_the_size_and_lists_who_entered_and_left(
    owner_client, workspace, pro
):
    now = timezone.now()
    identify(workspace, now - timedelta(days=3), id="ada", plan="pro", name="Ada Lovelace")
    identify(workspace, now - timedelta(days=1), id="ada", plan="free")
    page = owner_client.get(reverse("segment-history", args=[pro.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    svg = re.search(r"<svg class=\"chart size-chart\".*?</svg>", html, re.S).group(0)
    points = re.search(r'<polyline class="trend-line" points="([^"]+)"', svg).group(1).split()
    assert len(points) == 90
    heights = [float(point.split(",")[1]) for point in points]
    assert len(set(heights)) == 2  # out, then in for two days, then out again
    changes = re.search(r'data-testid="membership-changes">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r"(Entered|Left)</span>\s*<a [^>]*>([^<]+)</a>", changes) == [
        ("Left", "Ada Lovelace"),
        ("Entered", "Ada Lovelace"),
    ]


def test_the_segment_page_loads_its_history_as_a_fragment(owner_client, workspace, pro):
    page = owner_client.get(reverse("segment-edit", args=[pro.pk]))
    url = reverse("segment-history", args=[pro.pk])
    assert f'hx-get="{url}"' in page.content.decode()
    fragment = owner_client.get(url, headers=HX)
    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert body.lstrip().startswith("<section") and 'data-testid="size-chart"' in body
    assert "No one has entered or left it yet." in body


def test_the_contact_page_says_since_when_they_are_in_each_segment(owner_client, workspace, pro):
    entered = timezone.now() - timedelta(days=40)
    identify(workspace, entered, id="ada", plan="pro")
    page = owner_client.get(reverse("contact-detail", args=["ada"]))
    assert re.search(
        rf"Pro plan <span class=\"since\">since {entered:%b} {entered.day}, ", page.content.decode()
    )


def test_an_outsider_gets_404_for_the_history(client, workspace, other_workspace, pro):
    client.force_login(MembershipFactory(workspace=other_workspace).user)
    assert client.get(reverse("segment-history", args=[pro.pk])).status_code == 404
    assert client.get(reverse("segment-history", args=[pro.pk]), headers=HX).status_code == 404


def test_the_sweep_command_reports_what_it_did(workspace, pro):
    identify(workspace, timezone.now(), id="ada", plan="pro")
    SegmentMembership.objects.all().delete()  # as before membership was recorded
    out = StringIO()
    call_command("sweep_segments", stdout=out)
    assert re.fullmatch(
        r"Swept 1 segment\(s\) of 1 workspace\(s\) in [\d.]+ s: 1 entered, 0 left.\n",
        out.getvalue(),
    )
    assert membership.open_segments(SegmentMembership.objects.get().contact_id) == {pro.pk}

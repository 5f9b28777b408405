"""A segment's membership over time, as the dashboard shows it: its size day by day
over the last 90 days (an SVG drawn here, no script) and its latest entries and exits.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from refiner.fragments import render_fragment
from refiner.workspaces import require_membership
from segments.models import MembershipSweep, Segment, SegmentMembership

CHART_DAYS = 90
RECENT_CHANGES = 20
# The SVG's drawing area, in its own units (it scales to the page's width).
WIDTH, HEIGHT, LEFT, TOP, BOTTOM = 600, 150, 44, 10, 126


@dataclass(frozen=True)
class Day:
    day: date
    size: int
    x: float = 0
    y: float = 0


def recorded_since(segment: Segment, now: datetime) -> datetime:
    """From when the history is known: the segment's creation or the first sweep
    (which opened the memberships of those already in it), at most 90 days back."""
    sweeps = MembershipSweep.objects.filter(workspace_id=segment.workspace_id)
    first_sweep = sweeps.order_by("started_at").values_list("started_at")[:1]
    starts = [now - timedelta(days=CHART_DAYS - 1), segment.created_at]
    starts += [moment for (moment,) in first_sweep]
    return max(starts)


def _per_day(rows, field: str, since: datetime) -> dict[date, int]:
    found = rows.filter(**{f"{field}__gte": since}).annotate(day=TruncDate(field))
    return dict(found.values("day").annotate(n=Count("id")).values_list("day", "n"))


def daily_sizes(segment: Segment, now: datetime) -> list[Day]:
    """The segment's size at the end of each day since `recorded_since`, today last.

    Three queries whatever the size: who was in at the start, then entries and exits
    counted per day.
    """
    since = recorded_since(segment, now)
    start = timezone.localtime(since).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = SegmentMembership.objects.filter(segment=segment)
    size = rows.filter(Q(entered_at__lt=start), Q(left_at__isnull=True) | Q(left_at__gte=start))
    size = size.count()
    entries, exits = _per_day(rows, "entered_at", start), _per_day(rows, "left_at", start)
    days, day = [], start.date()
    while day <= timezone.localtime(now).date():
        size += entries.get(day, 0) - exits.get(day, 0)
        days.append(Day(day, size))
        day += timedelta(days=1)
    return days


def chart(days: list[Day]) -> dict:
    """Positions of the days in the SVG, and the polyline and area through them."""
    top = max([day.size for day in days] + [1])
    step = (WIDTH - LEFT - 8) / max(len(days) - 1, 1)
    placed = [
        Day(
            d.day,
            d.size,
            round(LEFT + i * step, 1),
            round(BOTTOM - (BOTTOM - TOP) * d.size / top, 1),
        )
        for i, d in enumerate(days)
    ]
    line = " ".join(f"{d.x},{d.y}" for d in placed)
    area = f"{placed[0].x},{BOTTOM} {line} {placed[-1].x},{BOTTOM}" if placed else ""
    return {
        "days": placed,
        "line": line,
        "area": area,
        "top": top,
        "left": LEFT,
        "right": WIDTH - 8,
        "bottom": BOTTOM,
        "ceiling": TOP,
        "width": WIDTH,
        "height": HEIGHT,
    }


@dataclass(frozen=True)
class Change:
    contact: object
    at: datetime
    entered: bool


def recent_changes(segment: Segment, limit: int = RECENT_CHANGES) -> list[Change]:
    """The latest entries and exits, newest first (two index scans, one per kind)."""
    rows = SegmentMembership.objects.filter(segment=segment).select_related("contact")
    entries = rows.order_by("-entered_at", "-id")[:limit]
    exits = rows.filter(left_at__isnull=False).order_by("-left_at", "-id")[:limit]
    changes = [Change(r.contact, r.entered_at, True) for r in entries]
    changes += [Change(r.contact, r.left_at, False) for r in exits]
    return sorted(changes, key=lambda change: change.at, reverse=True)[:limit]


@login_required
@require_GET
def segment_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Size over the last 90 days and the latest entries and exits; the segment page
    loads it as a fragment, and it is a page of its own without JavaScript."""
    membership = require_membership(request)
    segment = Segment.objects.filter(workspace=membership.workspace, pk=pk).first()
    if segment is None:
        raise Http404("There is no such segment in this workspace.")
    now = timezone.now()
    days = daily_sizes(segment, now)
    context = {
        "segment": segment,
        "chart": chart(days),
        "since": recorded_since(segment, now),
        "changes": recent_changes(segment),
    }
    return render_fragment(request, "segments/segment_history.html", "history", context)

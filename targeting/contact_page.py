"""The contact page (SPEC §6): who the contact is, its segments, and which surveys it
would see, each explained.

It lives in `targeting`, the layer that knows segments, surveys and eligibility alike.
"""

from datetime import datetime

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from refiner.models import Workspace
from refiner.workspaces import require_membership
from segments import services
from segments.membership import mark_since
from segments.models import Contact, Segment
from segments.views import SUGGESTIONS, contact_for
from targeting.explanations import WhatIfForm, explain_contact


def _explanations(
    request: HttpRequest, workspace: Workspace, contact: Contact, now: datetime
) -> dict:
    """The what-if form and, when it is valid, each survey explained for its check."""
    what_if = WhatIfForm(request.GET)
    if not what_if.is_valid():
        return {"what_if": what_if, "explanations": None}
    event, url = what_if.cleaned_data["event"] or None, what_if.cleaned_data["url"] or None
    explanations = explain_contact(
        workspace=workspace, contact=contact, now=now, event=event, url=url
    )
    tracked = contact.events.order_by("name").values_list("name", flat=True).distinct()
    triggers = {e.survey.trigger_event for e in explanations if e.survey.trigger_event}
    return {
        "what_if": what_if,
        "asked": event is not None or url is not None,
        "explanations": explanations,
        "event_names": sorted(triggers.union(tracked[:SUGGESTIONS])),
    }


@login_required
@require_GET
def contact_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    contact = contact_for(request, user_id)
    membership = require_membership(request)
    now = timezone.now()
    segments = services.contact_segments(contact, now)
    mark_since(contact, segments)
    member_of = {s.pk for s in segments}
    context = {
        "contact": contact,
        "now": now,
        "segments": segments,
        "events": contact.events.order_by("-occurred_at")[:100],
        "event_count": contact.events.count(),
        "displays": contact.displays.select_related("survey", "response").order_by("-shown_at")[
            :50
        ],
        "manual_segments": [
            s
            for s in Segment.objects.filter(workspace=membership.workspace, kind=Segment.MANUAL)
            if s.pk not in member_of
        ],
        "can_edit": membership.can_edit,
        **_explanations(request, membership.workspace, contact, now),
    }
    status = 400 if context["what_if"].errors else 200
    return render(request, "segments/contact_detail.html", context, status=status)

"""The survey editor's Targeting tab (SPEC §4, §6): the Target Audience and its pacing.

The audience's size and its overlaps with the live surveys are the sweep's stored
figures when they stand for the audience shown. Otherwise (an edited audience, a
draft's), a large workspace answers with an estimate from the sample first
(`_sampled`, segments.estimates), whose fragment then loads the exact figures itself
(the same GET with `exact=1`), as the segment editor's preview does (docs/segments.md).
"""

import json
import math
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from refiner.fragments import render_fragment
from refiner.models import Membership, Workspace
from segments import counts, estimates, member_sets, previews
from segments.counts import Selection
from segments.distinct import distinct_names
from segments.models import Event, Segment
from surveys.models import Survey
from surveys.views import survey_for
from targeting.audiences import (
    AudienceFigures,
    audience_rule,
    live_surveys,
    overlap_count,
    saved_audience,
    selection,
)
from targeting.models import Targeting
from targeting.services import apply_targeting, audience_estimate
from targeting.tab import TargetingTab

MAX_EVENT_NAMES = 200
# What the estimate's follow-up adds to the form's fields to ask for the exact figures.
EXACT_VALS = json.dumps({"exact": "1"})


@dataclass(frozen=True)
class Competitor:
    survey: Survey
    shared: int
    as_of: datetime | None = None  # when counted from memberships
    estimate: estimates.Estimate | None = None  # when estimated from the sample


def _shared(
    workspace_id: int,
    mine: dict,
    theirs: dict,
    segments,
    figures: AudienceFigures,
    now,
    known: counts.Known,
) -> tuple[int, datetime | None]:
    """Contacts in both audiences: the sweep's figure while it stands, else from open
    memberships when every segment is current, else live."""
    first, second = selection(segments, **mine), selection(segments, **theirs)
    stamp = counts.as_of(figures.current, first.segments | second.segments)
    if stamp is not None:
        stored = figures.shared(first, second)
        if stored is not None:
            return stored.contacts, stored.as_of
        return counts.overlap_count(workspace_id, first, second, known), stamp
    both = [audience_rule(segments, **mine), audience_rule(segments, **theirs)]
    return overlap_count(workspace_id, *both, now), None


def competitors(
    survey: Survey,
    audience: dict,
    segments: dict[int, Segment],
    now: datetime,
    figures: AudienceFigures,
    known: counts.Known,
) -> list[Competitor]:
    """Other live surveys whose audience shares contacts with this one: one count each
    (`known`: what the request read of the segments, kept between its counts)."""
    workspace_id = survey.workspace_id
    if audience_rule(segments, **audience) is None:
        return []
    found = []
    for other in live_surveys(workspace_id).exclude(pk=survey.pk):
        theirs = saved_audience(other.targeting)
        if audience_rule(segments, **theirs) is None:
            continue
        shared, as_of = _shared(workspace_id, audience, theirs, segments, figures, now, known)
        if shared:
            found.append(Competitor(other, shared, as_of))
    return found


def _size(
    workspace_id: int,
    audience: dict,
    segments,
    figures: AudienceFigures,
    now,
    known: counts.Known,
) -> tuple[int, datetime | None]:
    """The audience's size: the sweep's figure while it stands, else from open
    memberships when its segments are all current, else live."""
    chosen = selection(segments, **audience)
    stamp = counts.as_of(figures.current, chosen.segments) if chosen.segments else None
    if stamp is not None:
        stored = figures.size(chosen)
        if stored is not None:
            return stored.contacts, stored.as_of
        return counts.selection_count(workspace_id, chosen, known), stamp
    return audience_estimate(workspace_id, now=now, **audience), None


def _rivals(survey: Survey, segments: dict[int, Segment]) -> list[tuple[Survey, Selection]]:
    """The other live surveys with an audience that can hold someone, as selections."""
    found = []
    for other in live_surveys(survey.workspace_id).exclude(pk=survey.pk):
        theirs = saved_audience(other.targeting)
        if audience_rule(segments, **theirs) is not None:
            found.append((other, selection(segments, **theirs)))
    return found


def _sampled(
    survey: Survey,
    audience: dict,
    segments: dict[int, Segment],
    figures: AudienceFigures,
    known: counts.Known,
) -> dict | None:
    """The audience's size and overlaps estimated from the workspace's sample, when the
    workspace is large, no stored figure stands for the audience, every segment
    involved is current (stale ones are counted live, as the exact figures are) and
    one has no member set (with all of them the exact count is as cheap, and reads the
    sets this read into `known`); else None."""
    total = counts.last_identified_contacts(survey.workspace_id)
    chosen = selection(segments, **audience)
    if audience_rule(segments, **audience) is None or not chosen.segments:
        return None  # nobody, or everyone: no membership to read
    if not previews.estimates_first(total) or figures.size(chosen) is not None:
        return None
    rivals = _rivals(survey, segments)
    involved = chosen.segments.union(*(theirs.segments for _, theirs in rivals))
    as_of = counts.as_of(figures.current, involved)
    if as_of is None or member_sets.members_now(involved, known.members) is not None:
        return None
    wanted = [[chosen]] + [[chosen, theirs] for _, theirs in rivals]
    size, *shared = estimates.selections_estimate(
        survey.workspace_id, wanted, total, settings.PREVIEW_SAMPLE_SIZE
    )
    return {
        "size": size.count,
        "estimate": size,
        "exact_vals": EXACT_VALS,
        "as_of": as_of,
        "contacts": size.total,
        "competitors": [
            Competitor(other, both.count, as_of, both)
            for (other, _), both in zip(rivals, shared, strict=True)
            if both.matched
        ],
    }


def _counted(
    survey: Survey,
    audience: dict,
    segments: dict[int, Segment],
    figures: AudienceFigures,
    known: counts.Known,
) -> dict:
    """The audience's size and overlaps: stored, from memberships, or live (exact)."""
    now = timezone.now()
    size, as_of = _size(survey.workspace_id, audience, segments, figures, now, known)
    return {
        "size": size,
        "as_of": as_of,
        "contacts": counts.identified_contacts(survey.workspace_id, as_of),
        "competitors": competitors(survey, audience, segments, now, figures, known),
    }


def _estimate(
    survey: Survey,
    workspace: Workspace,
    form: TargetingTab,
    segments: dict[int, Segment],
    *,
    exact: bool,
) -> dict:
    """The tab's figures for the audience in the form; `exact` after an estimate."""
    audience = form.audience()
    figures = AudienceFigures.load(workspace, counts.current_segments(workspace))
    known = counts.Known()  # each segment read once for the size and every overlap
    found = None if exact else _sampled(survey, audience, segments, figures, known)
    if found is None:
        found = _counted(survey, audience, segments, figures, known)
    try:
        sample = float(form.values["sample_percent"])
    except ValueError:
        sample = 100.0
    sample = min(max(sample, 0), 100) if math.isfinite(sample) else 100.0
    targeted = audience["segments"] if audience["audience"] == Targeting.SEGMENTS else []
    return {
        **found,
        "targeted": [segments[pk] for pk in targeted if pk in segments],
        "excluded": [segments[pk] for pk in audience["excluded_segments"] if pk in segments],
        "sampled": round(found["size"] * sample / 100),
        "sample_percent": sample,
    }


def _event_names(workspace_id: int) -> list[str]:
    names = set(distinct_names(Event, "name", workspace_id, MAX_EVENT_NAMES))
    triggers = Targeting.objects.filter(survey__workspace_id=workspace_id)
    names |= set(triggers.exclude(trigger_event="").values_list("trigger_event", flat=True))
    return sorted(names)


def _render(
    request: HttpRequest, survey: Survey, membership: Membership, form: TargetingTab, **extra
) -> HttpResponse:
    fragment = "estimate" if request.method == "GET" else "targeting-form"
    segments = {s.pk: s for s in Segment.objects.filter(workspace_id=survey.workspace_id)}
    context = {
        "survey": survey,
        "form": form,
        "estimate": _estimate(
            survey, membership.workspace, form, segments, exact=request.GET.get("exact") == "1"
        ),
        "segments": segments.values(),
        "event_names": [] if request.htmx else _event_names(survey.workspace_id),
        "page_matches": Targeting.PAGE_MATCHES,
        "can_edit": membership.can_edit,
        "tab": "targeting",
        **extra,
    }
    return render_fragment(request, "targeting/tab.html", fragment, context)


def _targeting_of(survey: Survey) -> Targeting:
    # Surveys made through the API or the admin always get one, but older rows may not.
    return getattr(survey, "targeting", None) or Targeting.objects.get_or_create(survey=survey)[0]


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def survey_targeting(request: HttpRequest, survey_id: int) -> HttpResponse:
    """The tab. htmx GETs carry the unsaved fields and get the live estimate back."""
    if request.method == "POST":
        return _targeting_post(request, survey_id)
    membership, survey = survey_for(request, survey_id)
    if request.htmx:
        form = TargetingTab.from_data(request.GET)
    else:
        form = TargetingTab.from_targeting(_targeting_of(survey))
    return _render(request, survey, membership, form)


def _targeting_post(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Save, or add/remove a page row (nothing saved) and show the form again."""
    membership, survey = survey_for(request, survey_id, edit=True)
    form = TargetingTab.from_data(request.POST)
    if form.change_rows(request.POST.get("action", "save")):
        return _render(request, survey, membership, form)
    cleaned = form.clean(membership.workspace)
    if cleaned is None:
        return _render(request, survey, membership, form)
    apply_targeting(survey, cleaned)
    if not request.htmx:
        messages.success(request, "Targeting saved.")
        return redirect("survey-targeting", survey_id=survey.pk)
    survey.refresh_from_db()
    form = TargetingTab.from_targeting(Targeting.objects.get(survey=survey))
    return _render(request, survey, membership, form, saved=True)

"""The contact page's answer to "would this contact see each survey, and if not, why?".

The engine's reasons (`targeting.eligibility.explain_all`) answer one exact check. A
product manager asks a looser question: with no event given, an event-triggered survey
is not failing, it is waiting for its event. So what the what-if check leaves open (the
event, the page, a manual trigger) becomes a note on how the survey shows, and only the
steps that say no whatever happens are reasons.
"""

from dataclasses import dataclass
from datetime import datetime

from django import forms

from refiner.models import Workspace
from segments.models import Contact
from targeting.eligibility import Decision, SurveyDefinition, explain_all, segment_names
from targeting.models import Targeting

# How each page rule (`Targeting.PAGE_MATCHES`) reads after "pages that …".
PAGE_MATCH_PHRASES = {
    "equals": "are",
    "starts_with": "start with",
    "contains": "contain",
    "pattern": "match",
}


class WhatIfForm(forms.Form):
    """The check to explain: a GET form, so that a question asked can be shared as a link."""

    event = forms.CharField(
        required=False,
        max_length=200,
        label="Event tracked",
        help_text="Empty: a check on page load, with no event.",
    )
    url = forms.CharField(
        required=False,
        max_length=2000,
        label="Page URL",
        help_text="Empty: any page. A path such as /pricing is enough.",
    )


@dataclass(frozen=True)
class SegmentFit:
    id: int
    name: str
    inside: bool


@dataclass(frozen=True)
class Explanation:
    survey: SurveyDefinition
    verdict: str  # "now", "on_trigger" (once the notes come true) or "not"
    headline: str
    reasons: list[str]
    notes: list[str]
    chosen: list[SegmentFit]
    excluded: list[SegmentFit]
    shows_again_at: datetime | None

    @property
    def recurs(self) -> bool:
        return self.survey.frequency == Targeting.RECURRING


def _page(rule) -> str:
    return f"{PAGE_MATCH_PHRASES.get(rule['match'], rule['match'])} {rule['value']}"


def _pages(rules) -> str:
    return ", ".join(_page(rule) for rule in rules)


def _open_conditions(survey: SurveyDefinition, event: str | None, url: str | None) -> dict:
    """What the check left open, by reason code it would otherwise fail: {code: (note, when)}."""
    found = {}
    if survey.trigger == Targeting.EVENT and event is None:
        found["trigger_mismatch"] = (
            f"Shows when “{survey.trigger_event}” is tracked.",
            f"on {survey.trigger_event}",
        )
    elif survey.trigger == Targeting.MANUAL:
        found["trigger_mismatch"] = (
            "Shows only when the widget asks for it by id.",
            "when asked for by id",
        )
    if survey.allowed_pages and url is None:
        found["page_mismatch"] = (
            f"Shows only on pages that {_pages(survey.allowed_pages)}.",
            "on its pages",
        )
    return found


def _fits(segment_ids, decision: Decision, names: dict[int, str]) -> list[SegmentFit]:
    fits = [
        SegmentFit(pk, names.get(pk, f"#{pk}"), pk in decision.segments_in) for pk in segment_ids
    ]
    return sorted(fits, key=lambda fit: fit.name.lower())


def explanation_of(
    decision: Decision, *, event: str | None, url: str | None, names: dict[int, str]
) -> Explanation:
    survey = decision.survey
    open_conditions = _open_conditions(survey, event, url)
    reasons = [r.message for r in decision.reasons if r.code not in open_conditions]
    notes = [note for note, _ in open_conditions.values()]
    if survey.excluded_pages and url is None:
        notes.append(f"Never on pages that {_pages(survey.excluded_pages)}.")
    if reasons:
        verdict, headline = "not", "Would not show"
    elif open_conditions:
        verdict = "on_trigger"
        headline = "Would show " + ", ".join(when for _, when in open_conditions.values())
    else:
        verdict, headline = "now", "Would show now"
    return Explanation(
        survey=survey,
        verdict=verdict,
        headline=headline,
        reasons=reasons,
        notes=notes,
        chosen=_fits(survey.segments, decision, names),
        excluded=_fits(survey.excluded_segments, decision, names),
        shows_again_at=decision.shows_again_at,
    )


def explain_contact(
    *, workspace: Workspace, contact: Contact, now: datetime, event: str | None, url: str | None
) -> list[Explanation]:
    """Every survey of the workspace but archived ones, explained for the contact."""
    names = segment_names(workspace)
    decisions = explain_all(
        workspace=workspace, contact=contact, now=now, event=event, url=url, names=names
    )
    return [explanation_of(d, event=event, url=url, names=names) for d in decisions]

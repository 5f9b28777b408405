"""The eligibility engine: which surveys may a contact see right now, and why not (SPEC §4).

It is the widget's hot path. The workspace's live surveys and segment definitions
are kept in each process's memory under the workspace's `definitions_version`,
which `targeting.signals` changes on every change; the contact is loaded once as a
snapshot (only when a survey passes the cheap steps) and every segment is evaluated
in memory on it, so a check costs at most three queries whatever the number of
surveys and segments (four, once per process, when a workspace changed since the
widget's one-statement path last admitted it: `targeting.widget_api`).
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache, partial
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count

from refiner.models import Workspace, new_definitions_version
from refiner.ops import SNAPSHOT_READS
from refiner.replicas import on_primary
from segments.memory import ContactSnapshot, DisplayFacts, Evaluator, SegmentDefinition, Turns
from segments.models import Contact, Segment
from segments.services import segment_definitions
from segments.snapshot import EventReads, load_fingerprinted, load_snapshot
from surveys.models import Response, Survey
from targeting import memo
from targeting.models import Targeting

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class SurveyDefinition:
    """What the engine needs of a survey: plain data, cached per workspace."""

    id: int
    name: str
    status: str
    created_at: datetime
    questions: tuple[dict, ...]
    audience: str = Targeting.EVERYONE
    segments: tuple[int, ...] = ()
    segment_match: str = Targeting.ANY
    excluded_segments: tuple[int, ...] = ()
    trigger: str = Targeting.PAGE_LOAD
    trigger_event: str = ""
    allowed_pages: tuple[dict, ...] = ()
    excluded_pages: tuple[dict, ...] = ()
    delay_seconds: int = 0
    sample_percent: float = 100
    frequency: str = Targeting.ONCE
    recurring_days: int = 30
    max_displays_per_contact: int | None = None
    max_responses: int | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    priority: int = 0
    ignore_recontact: bool = False

    @classmethod
    def of(cls, survey: Survey) -> "SurveyDefinition":
        """Built from a survey with its questions and targeting (prefetched or not)."""
        fields = {
            "id": survey.pk,
            "name": survey.name,
            "status": survey.status,
            "created_at": survey.created_at,
            "questions": tuple(q.to_dict() for q in survey.questions.all()),
        }
        targeting = getattr(survey, "targeting", None)
        if targeting is not None:
            fields |= {
                "audience": targeting.audience,
                "segments": tuple(sorted(s.pk for s in targeting.segments.all())),
                "segment_match": targeting.segment_match,
                "excluded_segments": tuple(sorted(s.pk for s in targeting.excluded_segments.all())),
                "trigger": targeting.trigger,
                "trigger_event": targeting.trigger_event,
                "allowed_pages": tuple(targeting.allowed_pages),
                "excluded_pages": tuple(targeting.excluded_pages),
                "delay_seconds": targeting.delay_seconds,
                "sample_percent": targeting.sample_percent,
                "frequency": targeting.frequency,
                "recurring_days": targeting.recurring_days,
                "max_displays_per_contact": targeting.max_displays_per_contact,
                "max_responses": targeting.max_responses,
                "starts_at": targeting.starts_at,
                "ends_at": targeting.ends_at,
                "priority": targeting.priority,
                "ignore_recontact": targeting.ignore_recontact,
            }
        return cls(**fields)

    def to_widget_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "delay_seconds": self.delay_seconds,
            "questions": list(self.questions),
        }


@dataclass(frozen=True)
class Decision:
    """The answer for one survey. An explanation (`explain`, `explain_all`) also says
    which of the survey's chosen and excluded segments the contact is in, and when a
    recurring survey may show again; the widget's decisions leave both empty."""

    survey: SurveyDefinition
    eligible: bool
    reasons: list[Reason]
    segments_in: frozenset[int] = frozenset()
    shows_again_at: datetime | None = None


@dataclass(frozen=True)
class Fingerprint:
    """The fingerprint of a contact's snapshot with the events `event_reads` says, and
    the digest of the contact's row and its account's read in the same statement."""

    event_reads: EventReads
    digest: str
    contact_row: str


@dataclass(frozen=True)
class Asked:
    """What the widget sent with its question, beside who asks."""

    event: str | None = None
    url: str | None = None
    survey_id: int | None = None
    session: str | None = None


@dataclass(frozen=True)
class Definitions:
    """A workspace's live surveys (in the order they are offered) and its segments."""

    surveys: tuple[SurveyDefinition, ...]
    segments: dict[int, SegmentDefinition]
    # What the segments' rules can ask of a contact's events.
    event_reads: EventReads


# Definitions cache ------------------------------------------------------------


def invalidate(workspace_id: int) -> None:
    """Give the workspace a new definitions version: every process reloads its copy."""
    Workspace.objects.filter(pk=workspace_id).update(definitions_version=new_definitions_version())


def _current_version(workspace_id: int) -> str:
    versions = Workspace.objects.filter(pk=workspace_id)
    return versions.values_list("definitions_version", flat=True).first() or "none"


def _offer_order(survey: SurveyDefinition) -> tuple:
    return (-survey.priority, survey.created_at, survey.id)


def load_definitions(workspace_id: int) -> Definitions:
    """Read the definitions from the database (a constant number of queries)."""
    surveys = Survey.objects.complete().filter(workspace_id=workspace_id, status=Survey.LIVE)
    segments = segment_definitions(workspace_id)
    rules = [d.rules for d in segments.values() if d.kind == Segment.RULES]
    return Definitions(
        surveys=tuple(sorted((SurveyDefinition.of(s) for s in surveys), key=_offer_order)),
        segments=segments,
        event_reads=EventReads.for_rules(rules),
    )


# This process's copy of the definitions, by workspace: (version, loaded at, definitions).
# The version comes with the workspace's row, which the widget reads on every call
# anyway, so a check costs no cache round trip and every process sees a change at once.
_in_process: dict[int, tuple[str, float, Definitions]] = {}


# Widget keys by workspace id, as the widget's checks met them.
_workspace_of_key: dict[str, int] = {}


def expected_event_reads(widget_key: str) -> EventReads | None:
    """What the rules of the key's workspace read of a contact's events, as this
    process last held them; None before it held any. The fingerprint read with the
    caller is of these: if the definitions changed since, the check reads a new one."""
    held = _in_process.get(_workspace_of_key.get(widget_key))
    return None if held is None else held[2].event_reads


def _cached(key: str) -> Definitions | None:
    # The shared cache only saves a few queries: when it is down, the database answers.
    try:
        return cache.get(key)
    except Exception as e:  # noqa: BLE001 - any cache backend failure
        log.warning("definitions cache unavailable (%s); reading the database", type(e).__name__)
        return None


def _cache_quietly(key: str, found: Definitions) -> None:
    try:
        cache.set(key, found, settings.DEFINITIONS_CACHE_SECONDS)
    except Exception as e:  # noqa: BLE001 - any cache backend failure
        log.warning("definitions cache unavailable (%s); not storing", type(e).__name__)


def definitions(workspace_id: int, version: str | None = None) -> Definitions:
    """The workspace's definitions, from memory or the cache when they have not changed.

    `version` is the workspace's `definitions_version` as just read from the database;
    None reads it.
    """
    if version is None:
        version = _current_version(workspace_id)
    held = _in_process.get(workspace_id)
    if (
        held is not None
        and held[0] == version
        and time.monotonic() - held[1] < settings.DEFINITIONS_CACHE_SECONDS
    ):
        return held[2]
    key = f"targeting:definitions:{workspace_id}:{version}"
    found = _cached(key)
    if found is None:
        # Stored under the version read from the primary: read from it too, even in
        # a dashboard page that reads the replica, or a lagging replica's copy
        # would be served to the widget under the new version.
        with on_primary():
            found = load_definitions(workspace_id)
        _cache_quietly(key, found)
    _in_process[workspace_id] = (version, time.monotonic(), found)
    return found


# The rules --------------------------------------------------------------------


def sample_position(survey_id: int, contact_id: int | str) -> float:
    """Where the contact falls for this survey, in [0, 100): stable across calls."""
    digest = hashlib.sha256(f"{survey_id}:{contact_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _sampled_as(contact: Contact) -> int | str:
    # A visitor is sampled by its anonymous id: the same answer before its row exists.
    return f"anonymous:{contact.anonymous_id}" if contact.is_anonymous else contact.pk


@lru_cache(maxsize=1024)
def _pattern(value: str) -> tuple[str, ...]:
    """A `pattern` page rule's literal parts, the text between its stars."""
    return tuple(value.split("*"))


def _glob_matches(parts: tuple[str, ...], target: str) -> bool:
    """Whether `target` is the parts joined by runs of any characters (`*`), as a whole.

    The first part must start the target and the last must end it; each middle
    part is taken at its first place after the previous one. Taking the first
    place is never wrong, since a star can stretch over whatever is skipped, so
    nothing backtracks: a hostile pattern against a 2,000-character URL costs a
    few C-speed `str.find` calls, where a `.*` regex could run for minutes.
    """
    if len(parts) == 1:
        return target == parts[0]
    first, *middle, last = parts
    if len(target) < len(first) + len(last):
        return False
    if not target.startswith(first) or not target.endswith(last):
        return False
    position, end = len(first), len(target) - len(last)
    for part in middle:
        found = target.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def _page_target(url: str, value: str) -> str:
    # A rule written as a path ("/settings") is compared with the URL's path, so
    # that product managers need not spell out the host.
    if value.startswith("/") and not url.startswith("/"):
        return urlsplit(url).path or "/"
    return url


def page_matches(rule: dict, url: str) -> bool:
    target, value = _page_target(url, rule["value"]), rule["value"]
    match rule["match"]:
        case "equals":
            return target == value
        case "starts_with":
            return target.startswith(value)
        case "contains":
            return value in target
        case "pattern":
            return _glob_matches(_pattern(value), target)
    return False


@dataclass
class Check:
    """One eligibility question: this contact, now, with this event/URL/survey.

    The contact's snapshot is loaded when a step first needs it: when every survey
    fails on its status, trigger, pages or sample, the check costs no query for it.
    """

    contact: Contact | None
    now: datetime
    event: str | None
    url: str | None
    survey_id: int | None
    recontact_days: int
    segments: dict[int, SegmentDefinition]
    response_counts: dict[int, int]
    event_reads: EventReads | None = None
    # The widget's browser session (once-per-session surveys); None: no session known.
    session: str | None = None
    # Segment names for the reasons; empty for the widget, which answers to a public
    # key: segment names are the customer's own business, not their visitors'.
    segment_names: dict[int, str] = field(default_factory=dict)
    evaluator: Evaluator | None = None
    loaded: ContactSnapshot | None = None
    # When an answer of this check may turn with the clock alone (see `Turns`).
    turns: Turns = field(init=False)

    def __post_init__(self) -> None:
        self.turns = Turns(self.now)

    @property
    def snapshot(self) -> ContactSnapshot:
        if self.loaded is None:
            # An anonymous visitor not yet recorded has nothing to load.
            unsaved = self.contact.pk is None
            self.loaded = (
                ContactSnapshot()
                if unsaved
                else load_snapshot(self.contact, self.event_reads, self.now)
            )
        return self.loaded

    def in_segment(self, segment_id: int) -> bool:
        if self.evaluator is None:
            self.evaluator = Evaluator(self.snapshot, self.now, self.segments, self.turns)
        return self.evaluator.in_segment(segment_id)

    def displays_of(self, survey_id: int) -> list[DisplayFacts]:
        return [d for d in self.snapshot.displays if d.survey_id == survey_id]

    def segment_label(self, segment_id: int) -> str:
        name = self.segment_names.get(segment_id)
        return f"“{name}”" if name is not None else f"#{segment_id}"

    def segment_labels(self, segment_ids: Iterable[int]) -> str:
        return ", ".join(sorted(self.segment_label(pk) for pk in segment_ids))


def _closed_at(display: DisplayFacts) -> datetime | None:
    moments = [m for m in (display.completed_at, display.dismissed_at) if m is not None]
    return max(moments) if moments else None


def _status_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    if survey.status != Survey.LIVE:
        yield Reason("not_live", f"The survey is {survey.status}, not live.")
        return
    check.turns.add(survey.starts_at, survey.ends_at)
    if survey.starts_at is not None and check.now < survey.starts_at:
        yield Reason("outside_schedule", "The survey has not started yet.")
    elif survey.ends_at is not None and check.now >= survey.ends_at:
        yield Reason("outside_schedule", "The survey has ended.")
    if survey.max_responses is not None:
        if check.response_counts.get(survey.id, 0) >= survey.max_responses:
            yield Reason(
                "response_cap_reached",
                f"The survey has its {survey.max_responses} completed responses.",
            )


def _visitor_reasons(survey: SurveyDefinition) -> Iterator[Reason]:
    """An anonymous visitor is never evaluated against segments (docs/decisions.md)."""
    if survey.audience != Targeting.ANYONE:
        yield Reason("not_in_audience", "The visitor is not signed in; the survey is for contacts.")
    elif survey.excluded_segments:
        yield Reason(
            "not_in_audience",
            "The visitor is not signed in, and the survey excludes segments, "
            "which only signed-in contacts can be checked against.",
        )


def _audience_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    if check.contact.is_anonymous:
        yield from _visitor_reasons(survey)
        return
    if survey.audience == Targeting.SEGMENTS:
        yield from _segment_reasons(survey, check)
    excluded = [pk for pk in survey.excluded_segments if check.in_segment(pk)]
    if excluded:
        plural = "s" if len(excluded) > 1 else ""
        yield Reason(
            "in_excluded_segment",
            f"The contact is in the excluded segment{plural} {check.segment_labels(excluded)}.",
        )


def _segment_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    if not survey.segments:
        yield Reason("not_in_audience", "The survey targets segments, but none are chosen.")
        return
    found = (check.in_segment(pk) for pk in survey.segments)
    if survey.segment_match == Targeting.ALL:
        if not all(found):
            missing = [pk for pk in survey.segments if not check.in_segment(pk)]
            yield Reason(
                "not_in_audience",
                f"The contact is not in {check.segment_labels(missing)}, "
                "and the survey needs all of its segments.",
            )
    elif not any(found):
        yield Reason(
            "not_in_audience",
            f"The contact is in none of its segments: {check.segment_labels(survey.segments)}.",
        )


def _trigger_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    if survey.trigger == Targeting.EVENT and check.event != survey.trigger_event:
        wanted = f"It shows when “{survey.trigger_event}” is tracked"
        tracked = f", not “{check.event}”." if check.event else "; no event was tracked."
        yield Reason("trigger_mismatch", wanted + tracked)
    elif survey.trigger == Targeting.MANUAL and check.survey_id != survey.id:
        yield Reason("trigger_mismatch", "It shows only when the widget asks for it by id.")
    url = check.url
    if survey.allowed_pages and (
        url is None or not any(page_matches(rule, url) for rule in survey.allowed_pages)
    ):
        yield Reason("page_mismatch", "The page is not one of the survey’s pages.")
    elif url is not None and any(page_matches(rule, url) for rule in survey.excluded_pages):
        yield Reason("page_mismatch", "The page is one of the survey’s excluded pages.")


def _sample_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    # Every position is under 100, so a full sample needs no hashing.
    if survey.sample_percent >= 100:
        return
    if sample_position(survey.id, _sampled_as(check.contact)) >= survey.sample_percent:
        yield Reason("not_sampled", f"The contact is outside the {survey.sample_percent}% sample.")


def shows_again_at(survey: SurveyDefinition, displays: list[DisplayFacts]) -> datetime | None:
    """When a recurring survey may show again: `recurring_days` after the contact last
    completed or dismissed it (None when never, or when the survey does not recur)."""
    closed = [moment for moment in map(_closed_at, displays) if moment is not None]
    if survey.frequency != Targeting.RECURRING or not closed:
        return None
    return max(closed) + timedelta(days=survey.recurring_days)


def _pacing_reasons(survey: SurveyDefinition, check: Check) -> Iterator[Reason]:
    own = check.displays_of(survey.id)
    if survey.frequency == Targeting.ONCE and any(map(_closed_at, own)):
        yield Reason("already_completed", "The contact already completed or dismissed it.")
    if survey.frequency == Targeting.ONCE_PER_SESSION and check.session is not None:
        if any(d.session == check.session for d in own):
            yield Reason("shown_this_session", "It was shown in this browser session already.")
    again = shows_again_at(survey, own)
    check.turns.add(again)
    if again is not None and check.now < again:
        yield Reason(
            "recently_shown",
            f"It recurs every {survey.recurring_days} days; it may show again from "
            f"{again:%b} {again.day}, {again.year}.",
        )
    cap = survey.max_displays_per_contact
    if cap is not None and len(own) >= cap:
        yield Reason("display_cap_reached", f"The contact was shown it {cap} times already.")
    if check.recontact_days and not survey.ignore_recontact:
        since = check.now - timedelta(days=check.recontact_days)
        others = [d.shown_at for d in check.snapshot.displays if d.survey_id != survey.id]
        check.turns.add_window(others, check.recontact_days)
        if any(shown_at >= since for shown_at in others):
            yield Reason(
                "recontact_period",
                f"The contact saw another survey in the last {check.recontact_days} days.",
            )


STEPS = (_status_reasons, _audience_reasons, _trigger_reasons, _sample_reasons, _pacing_reasons)
# Whether a survey may be shown does not depend on the order of the steps, so the
# widget's check runs the cheap ones first and evaluates segments only if it must,
# last, and without the words of the reasons (`_audience_allows`).
CHEAP_FIRST = (_status_reasons, _trigger_reasons, _sample_reasons, _pacing_reasons)
# The steps that read nothing of the contact's snapshot.
WITHOUT_SNAPSHOT = (_status_reasons, _trigger_reasons, _sample_reasons)


def _passes(survey: SurveyDefinition, check: Check, steps) -> bool:
    return all(next(step(survey, check), None) is None for step in steps)


def _audience_allows(survey: SurveyDefinition, check: Check) -> bool:
    """Does `_audience_reasons` give no reason? The same decision, without working out
    every missing segment and its name for a message no one reads."""
    if check.contact.is_anonymous:
        return next(_visitor_reasons(survey), None) is None
    if survey.audience == Targeting.SEGMENTS:
        found = (check.in_segment(pk) for pk in survey.segments)
        if not survey.segments or not (
            all(found) if survey.segment_match == Targeting.ALL else any(found)
        ):
            return False
    return not any(check.in_segment(pk) for pk in survey.excluded_segments)


def may_show(survey: SurveyDefinition, check: Check) -> bool:
    """Is the survey eligible: does no step give a reason against it?"""
    if check.contact is None:
        return False
    return _passes(survey, check, CHEAP_FIRST) and _audience_allows(survey, check)


def reasons_against(survey: SurveyDefinition, check: Check) -> list[Reason]:
    """Every reason the survey is not eligible, in §4's order (empty: eligible)."""
    if check.contact is None:
        return [Reason("unknown_contact", "The contact was never identified.")]
    found = []
    for step in STEPS:
        found.extend(step(survey, check))
        if found and step is _status_reasons and found[0].code == "not_live":
            return found
    return found


def _response_counts(surveys: Iterable[SurveyDefinition], now: datetime) -> dict[int, int]:
    """Completed responses of the capped surveys that are live now: one query, or none."""
    capped = [
        s.id
        for s in surveys
        if s.max_responses is not None
        and s.status == Survey.LIVE
        and (s.starts_at is None or s.starts_at <= now)
        and (s.ends_at is None or now < s.ends_at)
    ]
    if not capped:
        return {}
    rows = (
        Response.objects.filter(survey_id__in=capped, completed=True)
        .values("survey_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["survey_id"]: row["n"] for row in rows}


def _check(
    workspace: Workspace,
    contact: Contact | None,
    surveys: Iterable[SurveyDefinition],
    found: Definitions,
    now: datetime,
    event: str | None,
    url: str | None,
    survey_id: int | None,
    session: str | None = None,
    response_counts: dict[int, int] | None = None,
) -> Check:
    # Called with the callers' own variables, each named as its parameter.
    if response_counts is None:
        response_counts = _response_counts(surveys, now) if contact is not None else {}
    return Check(
        session=session,
        contact=contact,
        event_reads=found.event_reads,
        now=now,
        event=event,
        url=url,
        survey_id=survey_id,
        recontact_days=workspace.recontact_days,
        segments=found.segments,
        response_counts=response_counts,
    )


def eligible_surveys(
    *,
    workspace: Workspace,
    contact: Contact | None,
    now: datetime,
    event: str | None = None,
    url: str | None = None,
    survey_id: int | None = None,
    version: str | None = None,
    session: str | None = None,
    fingerprint: Fingerprint | None = None,
    response_counts: dict[int, int] | None = None,
) -> list[SurveyDefinition]:
    """The surveys the contact may be shown now: higher priority first, then older first.

    `survey_id` limits the check to that survey (the widget's `showForm`, manual
    triggers). Load `contact` with `select_related("account")` to save a query, and
    pass the `version` of `definitions` when the workspace was just read: the answer
    is then kept (`targeting.memo`), and `fingerprint`, the contact's as read with
    the workspace, saves the query that would read it, as `response_counts` (the
    capped surveys', just read by `kept_answer`) saves theirs.
    """
    if contact is None:
        return []
    found = definitions(workspace.pk, version)
    surveys = [s for s in found.surveys if survey_id is None or s.id == survey_id]
    if not surveys:
        return []
    check = _check(
        workspace, contact, surveys, found, now, event, url, survey_id, session, response_counts
    )
    remembered = version is not None and settings.ELIGIBILITY_MEMO_SIZE
    if not remembered or contact.pk is None or contact.is_anonymous:
        return [s for s in surveys if may_show(s, check)]
    _workspace_of_key[workspace.widget_key] = workspace.pk
    memo_key = partial(_answer_key, workspace, version, check, fingerprint)
    current = fingerprint is not None and fingerprint.event_reads == found.event_reads
    # A survey that fails before the contact's data is read costs no query at all; the
    # answer is kept too, for the widget's one-statement path (`kept_answer`).
    if not any(_passes(s, check, WITHOUT_SNAPSHOT) for s in surveys):
        if current:
            memo.answers.put(memo_key(fingerprint.digest), now, check.turns.at, ())
        return []
    if current:
        kept = memo.answers.get(memo_key(fingerprint.digest), now)
        if kept is not None:
            return list(kept)
    return _worked_out(surveys, found, check, memo_key)


def kept_answer(
    *, workspace: Workspace, contact_id: int, now: datetime, asked: Asked, fingerprint: Fingerprint
) -> tuple[list[SurveyDefinition] | None, dict[int, int] | None]:
    """The answer `eligible_surveys` kept for the contact with this fingerprint, when
    one holds at `now` (None: work it out), and the capped surveys' response counts
    read to find it (None: not read). The workspace is as the caller's statement found
    it unchanged; the contact is known by its id alone, its row by the digest."""
    if not settings.ELIGIBILITY_MEMO_SIZE:
        return None, None
    version = workspace.definitions_version
    found = definitions(workspace.pk, version)
    if fingerprint.event_reads != found.event_reads:
        return None, None
    surveys = [s for s in found.surveys if asked.survey_id is None or s.id == asked.survey_id]
    if not surveys:
        return [], None
    counts = _response_counts(surveys, now)
    key = answer_key(
        contact_id,
        version,
        workspace.recontact_days,
        fingerprint.contact_row,
        fingerprint.digest,
        counts,
        asked,
    )
    kept = memo.answers.get(key, now)
    return (None if kept is None else list(kept)), counts


def answer_key(
    contact_id: int,
    version: str,
    recontact_days: int,
    contact_row: str,
    rows: str,
    response_counts: dict[int, int],
    asked: Asked,
) -> tuple[int, bytes]:
    """Where the memo keeps an answer: the contact, and a digest of every input of the
    answer but the clock: the definitions' `version`, the workspace's recontact
    period, the contact's row and its account's (a digest, or their attributes:
    `Fingerprint.contact_row`), `rows` (the fingerprint of its snapshot), the capped
    surveys' response counts, and what the widget sent."""
    inputs = [
        version,
        recontact_days,
        contact_row,
        rows,
        sorted(response_counts.items()),
        [asked.event, asked.url, asked.survey_id, asked.session],
    ]
    text = json.dumps(inputs, default=str)
    return contact_id, hashlib.blake2b(text.encode(), digest_size=16).digest()


def _attributes_text(contact: Contact) -> str:
    """The contact's and its account's attributes, as an answer's key holds them where
    no digest of their rows was read with the contact (SQLite)."""
    account = contact.account.attributes() if contact.account_id else None
    return json.dumps([contact.attributes(), account], sort_keys=True, default=str)


def _answer_key(
    workspace: Workspace, version: str, check: Check, fingerprint: Fingerprint | None, seen: str
) -> tuple[int, bytes]:
    """`answer_key` of the check's answer when the contact's snapshot has fingerprint
    `seen`: its row as read with the contact, or, with no fingerprint, its attributes."""
    contact = check.contact
    row = fingerprint.contact_row if fingerprint is not None else _attributes_text(contact)
    asked = Asked(check.event, check.url, check.survey_id, check.session)
    return answer_key(
        contact.pk,
        version,
        workspace.recontact_days,
        row,
        seen,
        check.response_counts,
        asked,
    )


def _worked_out(
    surveys: list[SurveyDefinition],
    found: Definitions,
    check: Check,
    memo_key: Callable[[str], tuple],
) -> list[SurveyDefinition]:
    """The check's answer with the snapshot loaded now: kept under the fingerprint of
    the very rows it was built from, or read from the memo when one is kept there."""
    check.loaded, seen = load_fingerprinted(check.contact, found.event_reads, check.now)
    SNAPSHOT_READS.inc()
    key = memo_key(seen)
    kept = memo.answers.get(key, check.now)
    if kept is not None:
        return list(kept)
    answer = [s for s in surveys if may_show(s, check)]
    memo.answers.put(key, check.now, check.turns.at, tuple(answer))
    return answer


def display_decision(
    *,
    workspace: Workspace,
    contact: Contact,
    survey_id: int,
    now: datetime,
    event: str | None = None,
    url: str | None = None,
    session: str | None = None,
) -> Decision | None:
    """May the widget record a display of the survey for the contact now, and if not, why?

    Every §4 step, as when the widget asks for that survey by id (so a `manual`
    survey can pass). None when the survey is not live in the workspace. The
    contact's displays and the response counts are read when this runs: lock the
    contact first, so that a racing display or completion cannot slip in between.
    """
    found = definitions(workspace.pk, workspace.definitions_version)
    survey = next((s for s in found.surveys if s.id == survey_id), None)
    if survey is None:
        return None
    check = _check(workspace, contact, [survey], found, now, event, url, survey_id, session)
    reasons = reasons_against(survey, check)
    return Decision(survey, not reasons, reasons)


def segment_names(workspace: Workspace) -> dict[int, str]:
    """The workspace's segment names by id, for explanations (never for the widget)."""
    return dict(Segment.objects.filter(workspace=workspace).values_list("pk", "name"))


def _decisions(
    surveys, *, workspace, contact, now, event, url, survey_id, names=None
) -> list[Decision]:
    found = definitions(workspace.pk)
    check = _check(workspace, contact, surveys, found, now, event, url, survey_id)
    check.segment_names = segment_names(workspace) if names is None else names
    return [_explained(survey, check) for survey in surveys]


def _explained(survey: SurveyDefinition, check: Check) -> Decision:
    reasons = reasons_against(survey, check)
    if check.contact is None:
        return Decision(survey, False, reasons)
    named = survey.segments + survey.excluded_segments
    return Decision(
        survey,
        not reasons,
        reasons,
        segments_in=frozenset(pk for pk in named if check.in_segment(pk)),
        shows_again_at=shows_again_at(survey, check.displays_of(survey.id)),
    )


def _survey_definitions(workspace: Workspace, **filters) -> list[SurveyDefinition]:
    surveys = Survey.objects.complete().filter(workspace=workspace, **filters)
    return sorted((SurveyDefinition.of(s) for s in surveys), key=_offer_order)


def explain(
    *,
    workspace: Workspace,
    survey_id: int,
    contact: Contact | None,
    now: datetime,
    event: str | None = None,
    url: str | None = None,
) -> Decision:
    """Why the survey is or is not eligible for the contact now (any status).

    Reasons come in §4's order, the first being the step that said no; later ones
    are listed too so the product manager sees everything to change. The check is
    an automatic one (not the widget asking for the survey by id), so a `manual`
    survey says `trigger_mismatch`. Raises
    `Survey.DoesNotExist` for a survey outside the workspace.
    """
    surveys = _survey_definitions(workspace, pk=survey_id)
    if not surveys:
        raise Survey.DoesNotExist(f"There is no survey {survey_id} in this workspace.")
    return _decisions(
        surveys, workspace=workspace, contact=contact, now=now, event=event, url=url, survey_id=None
    )[0]


def explain_all(
    *,
    workspace: Workspace,
    contact: Contact | None,
    now: datetime,
    event: str | None = None,
    url: str | None = None,
    names: dict[int, str] | None = None,
) -> list[Decision]:
    """`explain` for every survey of the workspace except archived ones, on one snapshot.

    `names` are the workspace's `segment_names`, when the caller has read them already.
    """
    surveys = [s for s in _survey_definitions(workspace) if s.status != Survey.ARCHIVED]
    return _decisions(
        surveys,
        workspace=workspace,
        contact=contact,
        now=now,
        event=event,
        url=url,
        survey_id=None,
        names=names,
    )

"""Every dashboard page and htmx fragment, timed through a signed-in Django test client.

    .venv/bin/python bench/dashboard.py [--workspace ID] [--repeat 3]

On a seeded workspace (bench/seed.py; default the largest bench-<contacts>), with
what the pages need added once and kept: the six typical rules of bench/segments.py
saved as segments, the two seeded surveys targeted at some of them (so the
Targeting tab counts an audience and its overlap with the other survey), a draft
targeted at others (its saved audience read from the sweep's figures; edited in the
form, estimated first on a large workspace, then counted), a signed-in owner, and one
contact with 1,000 events. Each page is requested once to warm up,
then `repeat` times; the median is compared with the 300 ms target (issue 16). The
CSV export is timed to its first byte. The workspace is swept first, as the
15-minute timer does (`--no-sweep` times the pages without it). Requests go through
the whole middleware stack (time budgets included) but not over HTTP, so the figures
are the server's.
"""

import argparse
import json
import os
import statistics
import sys
import time

from common import load_bench_module, setup_django, table

TARGET = 0.300
DETAIL_EVENTS = 1000
OWNER = "bench-dashboard@example.com"
DRAFT = "bench draft"
# The draft's audience: segments no live survey's audience is made of.
DRAFT_AUDIENCE = (["event at_least 5 in 30 days", "contains, ignore_case"], ["trait equals"])


def prepare(workspace_id: int) -> dict:
    """What the pages need beyond the seed, made once (later runs find it)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count
    from django.utils import timezone

    from refiner.models import Membership
    from segments.models import Contact, Event, Segment
    from surveys.models import Response, Survey
    from targeting.models import Targeting

    bench_segments = load_bench_module("segments")
    user, _ = get_user_model().objects.get_or_create(username=OWNER, defaults={"email": OWNER})
    Membership.objects.get_or_create(
        workspace_id=workspace_id, user=user, defaults={"role": Membership.OWNER}
    )
    free = bench_segments.free_segment(workspace_id)
    segments = {}
    for case in bench_segments.cases(free):
        rule = bench_segments.as_rule(case["rule"])
        if rule.get("type") != "group":
            rule = {"type": "group", "match": "all", "conditions": [rule]}
        segment, created = Segment.objects.get_or_create(
            workspace_id=workspace_id, name=f"dashboard: {case['name']}", defaults={"rules": rule}
        )
        if not created and segment.rules != rule:
            # Saved only when it changed: a save makes its cached count stale until swept.
            segment.rules = rule
            segment.save()
        segments[case["name"]] = segment

    surveys = list(Survey.objects.filter(workspace_id=workspace_id).order_by("pk")[:2])
    audiences = [
        (["trait equals", "nested all/any of 4"], ["segment not_in (+ equals)"]),
        (["date more_than_days_ago 365", "trait equals"], []),
    ]
    for survey, (targeted, excluded) in zip(surveys, audiences, strict=False):
        targeting, _ = Targeting.objects.get_or_create(survey=survey)
        targeting.audience = Targeting.SEGMENTS
        targeting.save()
        targeting.segments.set([segments[name] for name in targeted])
        targeting.excluded_segments.set([segments[name] for name in excluded])
    draft, _ = Survey.objects.get_or_create(
        workspace_id=workspace_id, name=DRAFT, defaults={"status": Survey.DRAFT}
    )
    targeting, _ = Targeting.objects.get_or_create(survey=draft)
    targeting.audience = Targeting.SEGMENTS
    targeting.save()
    targeted, excluded = DRAFT_AUDIENCE
    targeting.segments.set([segments[name] for name in targeted])
    targeting.excluded_segments.set([segments[name] for name in excluded])

    contact = Contact.objects.filter(workspace_id=workspace_id).order_by("user_id").first()
    have = Event.objects.filter(contact=contact).count()
    if have < DETAIL_EVENTS:
        now = timezone.now()
        Event.objects.bulk_create(
            Event(
                workspace_id=workspace_id,
                contact=contact,
                name=["page_viewed", "feature_used", "report_viewed"][i % 3],
                occurred_at=now - timezone.timedelta(minutes=37 * i),
            )
            for i in range(DETAIL_EVENTS - have)
        )
    busiest = (
        Survey.objects.filter(workspace_id=workspace_id)
        .annotate(answered=Count("responses"))
        .order_by("-answered")
        .values_list("pk", "answered")
        .first()
    )
    return {
        "far_contacts": far_cursor(
            Contact.objects.filter(workspace_id=workspace_id), "last_seen_at", 500
        ),
        "far_responses": far_cursor(
            Response.objects.filter(workspace_id=workspace_id), "created_at", 1000
        ),
        "user": user,
        "segments": segments,
        "surveys": surveys,
        "draft": draft,
        "contact": contact,
        "busiest": busiest,
    }


def far_cursor(rows, moment_field: str, page: int) -> str:
    """The cursor that opens the page-th page of 25, newest first, as its Older links lead;
    the last page when there are fewer (10,000 contacts at the small size are 400 pages),
    and none (the first page) when there is only one."""
    from refiner.keyset import cursor_of

    page = min(page, -(-rows.count() // 25))
    if page <= 1:
        return ""
    last_of_previous = rows.order_by(f"-{moment_field}", "-pk")[(page - 1) * 25 - 1]
    return cursor_of(getattr(last_of_previous, moment_field), last_of_previous.pk)


def audience_of(survey) -> dict:
    """The tab's audience fields of the survey's saved targeting."""
    targeting = survey.targeting
    return {
        "audience": targeting.audience,
        "segment_match": targeting.segment_match,
        "segments": [s.pk for s in targeting.segments.all()],
        "excluded_segments": [s.pk for s in targeting.excluded_segments.all()],
    }


def pages(fixtures: dict) -> list[tuple[str, str, dict]]:
    """(name, method, request arguments) of every page and fragment measured."""
    listed: list[tuple[str, str, dict]] = []

    def page(name: str, path: str, data: dict | None = None, method="get", htmx=False):
        arguments = {"path": path, "data": data or {}}
        if htmx:
            arguments["HTTP_HX_REQUEST"] = "true"
        listed.append((name, method, arguments))

    segments, contact = fixtures["segments"], fixtures["contact"]
    page("segment list", "/segments/")
    for name, segment in segments.items():
        page(f"segment size: {name}", f"/segments/{segment.pk}/size/", htmx=True)
    for name, segment in segments.items():
        rules = {"rules": json.dumps(segment.rules)}
        page(f"editor preview: {name}", "/segments/preview/", rules, "post", htmx=True)
    for name, segment in segments.items():
        # What the estimate of a large workspace loads next; not the first answer.
        exact = {"rules": json.dumps(segment.rules), "exact": "1"}
        page(
            f"editor preview, exact follow-up: {name}",
            "/segments/preview/",
            exact,
            "post",
            htmx=True,
        )
    nested = segments["nested all/any of 4"]
    page("segment editor, saved rule: nested all/any of 4", f"/segments/{nested.pk}/")
    for survey in fixtures["surveys"]:
        path = f"/surveys/{survey.pk}/targeting/"
        page(f"targeting tab: {survey.name}", path)
        audience = audience_of(survey)
        page(f"targeting estimate + overlap: {survey.name}", path, audience, htmx=True)
    # An unsaved edit (the second survey, Feature feedback in the seed, with one more
    # excluded segment) and a draft have no stored figure: a large workspace answers
    # with an estimate, whose fragment then asks `exact`.
    first = fixtures["surveys"][-1] if fixtures["surveys"] else None
    if first is not None:
        edited = audience_of(first) | {
            "excluded_segments": [
                *audience_of(first)["excluded_segments"],
                segments["segment not_in (+ equals)"].pk,
            ]
        }
        path = f"/surveys/{first.pk}/targeting/"
        page(f"targeting edited audience: {first.name}", path, edited, htmx=True)
        exact = edited | {"exact": "1"}
        page(f"targeting edited audience, exact follow-up: {first.name}", path, exact, htmx=True)
    # The draft's saved audience reads the sweep's figures (a recent draft is counted by
    # the sweep); edited in the form, it is estimated, then counted.
    draft = fixtures["draft"]
    path = f"/surveys/{draft.pk}/targeting/"
    page(f"targeting draft: {draft.name}", path, audience_of(draft), htmx=True)
    exact = audience_of(draft) | {"exact": "1"}
    page(f"targeting draft, exact follow-up: {draft.name}", path, exact, htmx=True)
    edited = audience_of(draft) | {
        "excluded_segments": [
            *audience_of(draft)["excluded_segments"],
            segments["segment not_in (+ equals)"].pk,
        ]
    }
    page(f"targeting edited draft: {draft.name}", path, edited, htmx=True)
    exact = edited | {"exact": "1"}
    page(f"targeting edited draft, exact follow-up: {draft.name}", path, exact, htmx=True)
    page("contact list", "/contacts/")
    page("contact search: user id", "/contacts/", {"q": contact.user_id})
    page("contact search: email domain", "/contacts/", {"q": "example99"})
    page("contact search: no match", "/contacts/", {"q": "nobody-here"})
    page("contact list, page 500", "/contacts/", {"after": fixtures["far_contacts"]})
    page("contact detail, 1,000 events", f"/contacts/{contact.user_id}/")
    page("responses", "/responses/")
    page("responses, page 1,000", "/responses/", {"after": fixtures["far_responses"]})
    page("CSV export, first byte", "/responses/export.csv", method="export")
    if fixtures["busiest"]:
        survey_id, _ = fixtures["busiest"]
        page("responses of one survey", "/responses/", {"survey": survey_id})
        page("results of one survey", f"/surveys/{survey_id}/results/")
    return listed


def timed_request(client, method: str, arguments: dict) -> tuple[float, int]:
    """Seconds to the answer (to its first byte for a streamed one) and its status."""
    started = time.perf_counter()
    if method == "export":
        response = client.get(**arguments)
        next(iter(response.streaming_content), b"")
        elapsed = time.perf_counter() - started
        response.close()
        return elapsed, response.status_code
    response = getattr(client, method)(**arguments)
    return time.perf_counter() - started, response.status_code


def sweep(workspace_id: int, log=print) -> None:
    """Sweep as `manage.py sweep_segments` does every 15 minutes, so the pages find the
    cached counts a running installation has (docs/segments.md)."""
    from django.db import connection
    from django.utils import timezone

    from segments.membership import sweep_workspace

    started = time.perf_counter()
    swept = sweep_workspace(workspace_id, timezone.now())
    seconds = time.perf_counter() - started
    log(
        f"  sweep first: {swept.segments} segment(s) compared in {seconds:.1f} s, "
        f"{swept.entries} entered, {swept.exits} left"
    )
    if connection.vendor == "postgresql":
        # What autovacuum does after such a write in production; a server with it off
        # (this bench's machine) would plan the membership counts for empty tables:
        # 0.9-2.4 s instead of 16-29 ms for an edited audience at 10,000 contacts.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE segments_segmentmembership")


def run(
    workspace_id: int, repeat: int = 3, log=print, only: list[str] | None = None, swept: bool = True
) -> list[dict]:
    from django.conf import settings
    from django.test import Client

    from refiner.workspaces import SESSION_KEY

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host

    fixtures = prepare(workspace_id)
    if swept:
        sweep(workspace_id, log)
    client = Client()
    client.force_login(fixtures["user"])
    session = client.session  # the owner may belong to other bench workspaces: pick this one
    session[SESSION_KEY] = workspace_id
    session.save()
    results = []
    for name, method, arguments in pages(fixtures):
        if only and not any(part in name for part in only):
            continue
        first, status = timed_request(client, method, arguments)  # warm-up
        times = [timed_request(client, method, arguments)[0] for _ in range(repeat)]
        median = statistics.median(times)
        results.append({"name": name, "status": status, "median": median, "first": first})
        log(f"  {name}: {median * 1000:.0f} ms (status {status})")
    rows = [
        [
            r["name"],
            r["status"],
            f"{r['first'] * 1000:.0f}",
            f"{r['median'] * 1000:.0f}" + ("" if r["median"] <= TARGET else " ✗"),
        ]
        for r in results
    ]
    log(table(["page or fragment", "status", "first ms", "median ms (≤300)"], rows))
    return results


def passed(results: list[dict]) -> bool:
    """Every page answered 200: a slow page is a missed target, an error is a failure."""
    return all(r["status"] == 200 for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=int, help="workspace id (default: largest bench-*)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--only", action="append", help="measure only the pages whose name holds this (repeatable)"
    )
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="add what the pages need and stop (to run sweep_segments before timing)",
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="time the pages without sweeping first"
    )
    arguments = parser.parse_args()
    # One JSON line per request would bury the table (bench/common.py's server does the same).
    os.environ.setdefault("LOG_REQUESTS", "false")
    setup_django()
    bench_segments = load_bench_module("segments")
    workspace_id = arguments.workspace or bench_segments.largest_workspace()
    if arguments.prepare_only:
        prepare(workspace_id)
        return
    results = run(workspace_id, arguments.repeat, only=arguments.only, swept=not arguments.no_sweep)
    sys.exit(0 if passed(results) else 1)


if __name__ == "__main__":
    main()

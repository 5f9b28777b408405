"""Load test of POST /api/v1/widget/eligibility next to GET /api/v1/ping, same server, same run.

    .venv/bin/python bench/eligibility.py [--contacts 1000] [--requests 3000]
        [--servers gunicorn granian gunicorn granian]

A workspace with 20 live surveys targeting 50 segments (attribute, event, nested
and reference rules) and contacts with about 100 events each; gunicorn -w 2 (or
granian with 2 WSGI workers, `--servers`, each in turn on the same seed) on a free
loopback port; 100 concurrent connections. Saturated (each connection sends
again as soon as it is answered), latency is mostly queueing: 2 workers serve 100
clients. So latency is also measured paced: the same 100 connections sending on a
fixed schedule at half the saturated eligibility throughput, counted from the
scheduled moment.
"""

import argparse
import json
import random
import sys

from common import SERVERS, Server, load, load_bench_module, setup_django, table

SURVEYS, SEGMENTS = 20, 50
THROUGHPUT_TARGET, P99_TARGET = 0.70, 0.025
PACE_SHARE = 0.5


def segment_rules() -> list[dict]:
    """50 rules of the kinds customers write, over the seeded traits and events."""

    def attribute(key, operator, value=None, **extra):
        condition = {"type": "attribute", "attribute": key, "operator": operator, **extra}
        if value is not None:
            condition["value"] = value
        return condition

    def event(name, operator, value, days=None):
        condition = {"type": "event", "event": name, "operator": operator, "value": value}
        if days is not None:
            condition["within_days"] = days
        return condition

    def group(match, *conditions):
        return {"type": "group", "match": match, "conditions": list(conditions)}

    seed = load_bench_module("seed")
    rules = []
    for index in range(SEGMENTS):
        name = seed.EVENT_NAMES[index % len(seed.EVENT_NAMES)]
        kind = index % 5
        if kind == 0:
            rules.append(group("all", attribute("plan", "equals", seed.PLANS[0][index % 4])))
        elif kind == 1:
            rules.append(group("all", event(name, "at_least", 1 + index % 7, 30)))
        elif kind == 2:
            rules.append(
                group(
                    "all",
                    attribute("country", "in", seed.COUNTRIES[: 2 + index % 5]),
                    group(
                        "any",
                        attribute("seats", "greater_than_or_equal", index % 20),
                        attribute("is_admin", "is_true"),
                    ),
                )
            )
        elif kind == 3:
            rules.append(
                group(
                    "all",
                    attribute("role", "contains", "manager", ignore_case=True),
                    attribute("signed_up_at", "more_than_days_ago", 30 + index),
                    event(name, "at_most", 10),
                )
            )
        else:
            rules.append(
                group(
                    "any",
                    attribute("score", "greater_than", 50 + index % 40),
                    event("plan_upgraded", "exactly", 0),
                    attribute("trial_ends_at", "less_than_days_ago", 400),
                )
            )
    return rules


def prepare(contacts: int, events: float, log=print) -> tuple[str, list[str]]:
    """Seed the workspace; return its widget key and some of its user ids."""
    from django.db import transaction

    from refiner.models import Workspace
    from segments.models import Contact, Segment
    from surveys.models import Question, Survey
    from targeting.services import apply_targeting, clean_targeting

    seed = load_bench_module("seed")
    workspace_id = seed.seed(contacts=contacts, events=events, name="bench-eligibility", log=log)
    workspace = Workspace.objects.get(pk=workspace_id)
    with transaction.atomic():
        segments = [
            Segment.objects.create(workspace=workspace, name=f"segment {i}", rules=rule)
            for i, rule in enumerate(segment_rules())
        ]
        # A few references between segments, as real workspaces have.
        for i in range(0, 10):
            Segment.objects.create(
                workspace=workspace,
                name=f"not in segment {i}",
                rules={
                    "type": "group",
                    "match": "all",
                    "conditions": [
                        {"type": "segment", "segment": segments[i].pk, "operator": "not_in"}
                    ],
                },
            )
        surveys = list(Survey.objects.filter(workspace=workspace))
        for i in range(len(surveys), SURVEYS):
            survey = Survey.objects.create(workspace=workspace, name=f"survey {i}", status="live")
            Question.objects.create(survey=survey, key="nps", type="nps", text="How likely…?")
            surveys.append(survey)
        for i, survey in enumerate(surveys):
            targeted = [segments[(i * 5 + j) % SEGMENTS].pk for j in range(5)]
            cleaned = clean_targeting(
                {
                    "audience": "segments",
                    "segments": targeted,
                    "segment_match": "any" if i % 2 else "all",
                    "excluded_segments": [segments[(i * 5 + 7) % SEGMENTS].pk],
                    "trigger": "page_load",
                    "allowed_pages": [{"match": "contains", "value": "/app"}],
                    "frequency": "recurring" if i % 3 == 0 else "once",
                    "recurring_days": 30,
                    "sample_percent": 100,
                    "priority": i % 4,
                },
                workspace=workspace,
            )
            apply_targeting(survey, cleaned)
    users = list(
        Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True)[:500]
    )
    return workspace.widget_key, users


def run(
    contacts: int,
    events: float,
    requests: int,
    seconds: float,
    log=print,
    servers: tuple[str, ...] = ("gunicorn",),
) -> list[dict]:
    """Seed once, then load each server of `servers` in turn (a name may come back, to
    alternate them); the results of each, in that order."""
    widget_key, users = prepare(contacts, events, log)
    runs = []
    for kind in servers:
        log(f"\n{kind}, 2 workers:\n")
        runs.append(measure(widget_key, users, requests, seconds, log, kind))
    if len(servers) > 1:
        log("\n" + compare(runs))
    return runs


def measure(
    widget_key: str, users: list[str], requests: int, seconds: float, log, kind: str
) -> dict:
    picker = random.Random(7)
    bodies = [
        json.dumps(
            {
                "workspace": widget_key,
                "user_id": picker.choice(users),
                "url": "https://app.example.com/app/reports",
            }
        ).encode()
        for _ in range(1000)
    ]

    def body(number: int) -> bytes:
        return bodies[number % len(bodies)]

    results = {"server": kind}
    with Server(kind=kind) as server:
        sample = load(server.port, "POST", "/api/v1/widget/eligibility", body, requests=50)
        if sample["errors"]:
            log(f"eligibility errors during warm-up: {sample['first_errors']}")
        load(server.port, "GET", "/api/v1/ping", requests=200)
        # Interleaved halves, so both endpoints see the same machine load.
        runs = {"ping": [], "eligibility": []}
        for _ in range(2):
            runs["ping"].append(load(server.port, "GET", "/api/v1/ping", requests=requests // 2,
                                     seconds=seconds, cpu=server.cpu_seconds))  # fmt: skip
            runs["eligibility"].append(
                load(
                    server.port,
                    "POST",
                    "/api/v1/widget/eligibility",
                    body,
                    requests=requests // 2,
                    seconds=seconds,
                    cpu=server.cpu_seconds,
                )  # fmt: skip
            )
        # 100 connections again, now paced at half the saturated eligibility throughput:
        # the latency visitors see under a steady load the server can carry.
        pace = (
            PACE_SHARE
            * sum(p["requests"] for p in runs["eligibility"])
            / sum(p["seconds"] for p in runs["eligibility"])
        )
        latency = {
            name: load(
                server.port,
                method,
                path,
                payload,
                requests=requests // 2,
                seconds=seconds,
                rate=pace,
            )  # fmt: skip
            for name, method, path, payload in (
                ("ping", "GET", "/api/v1/ping", None),
                ("eligibility", "POST", "/api/v1/widget/eligibility", body),
            )
        }
    for name, parts in runs.items():
        total = sum(p["requests"] for p in parts)
        wall = sum(p["seconds"] for p in parts)
        results[name] = {
            "requests": total,
            "errors": sum(p["errors"] for p in parts) + latency[name]["errors"],
            "first_errors": [e for p in parts for e in p["first_errors"]][:3],
            "rps": total / wall,
            # Percentiles of the halves, the worse of the two.
            "p50": max(p["p50"] for p in parts),
            "p95": max(p["p95"] for p in parts),
            "p99": max(p["p99"] for p in parts),
            "cpu_ms": sum(p["cpu_ms"] * p["requests"] for p in parts) / total,
            "paced": latency[name],
        }
    results["ratio"] = results["eligibility"]["rps"] / results["ping"]["rps"]
    log(report(results))
    for name in ("ping", "eligibility"):
        if results[name]["errors"]:
            log(f"{name} errors: {results[name]['first_errors']}")
    return results


def report(results: dict) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}"

    rows = []
    for name in ("ping", "eligibility"):
        r = results[name]
        rows.append(
            [
                name,
                r["requests"],
                r["errors"],
                f"{r['rps']:.0f}",
                f"{r['cpu_ms']:.2f}",
                ms(r["p50"]),
                ms(r["p95"]),
                ms(r["p99"]),
                f"{r['paced']['rps']:.0f}",
                ms(r["paced"]["p50"]),
                ms(r["paced"]["p95"]),
                ms(r["paced"]["p99"]),
            ]  # fmt: skip
        )
    headers = [
        "endpoint",
        "requests",
        "errors",
        "req/s @100",
        "server CPU ms/req",
        "p50 ms @100",
        "p95 ms @100",
        "p99 ms @100",
        "paced req/s",
        "paced p50 ms",
        "paced p95 ms",
        "paced p99 ms",
    ]
    paced = results["eligibility"]["paced"]
    verdict = (
        f"eligibility / ping throughput: {results['ratio']:.0%} (target ≥ 70%); "
        f"eligibility p99 at 100 connections paced at {paced['rps']:.0f} req/s: "
        f"{paced['p99'] * 1000:.1f} ms (target < 25 ms); {results['server']}'s CPU per request: "
        f"eligibility {results['eligibility']['cpu_ms']:.2f} ms, "
        f"ping {results['ping']['cpu_ms']:.2f} ms"
    )
    return table(headers, rows) + "\n\n" + verdict


def compare(runs: list[dict]) -> str:
    """One line per server run: what the servers differ in, side by side."""
    rows = [
        [
            r["server"],
            name,
            f"{r[name]['rps']:.0f}",
            f"{r[name]['cpu_ms']:.2f}",
            f"{r[name]['paced']['p50'] * 1000:.1f}",
            f"{r[name]['paced']['p99'] * 1000:.1f}",
            f"{r['ratio']:.0%}" if name == "eligibility" else "100%",
        ]
        for r in runs
        for name in ("ping", "eligibility")
    ]
    return table(
        [
            "server",
            "endpoint",
            "req/s @100",
            "CPU ms/req",
            "paced p50 ms",
            "paced p99 ms",
            "of ping",
        ],
        rows,
    )


def passed(runs: list[dict]) -> bool:
    return all(r["ping"]["errors"] == 0 and r["eligibility"]["errors"] == 0 for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--events", type=float, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=SERVERS,
        default=["gunicorn"],
        help="servers to load in turn, e.g. gunicorn granian gunicorn granian",
    )
    arguments = parser.parse_args()
    setup_django()
    runs = run(
        arguments.contacts,
        arguments.events,
        arguments.requests,
        arguments.seconds,
        servers=tuple(arguments.servers),
    )
    sys.exit(0 if passed(runs) else 1)


if __name__ == "__main__":
    main()

"""Hostile input on gunicorn: every request stays under its time budget (SPEC §5).

    .venv/bin/python bench/hostile.py [--contacts 100000] [--seconds 40]

An attacker holding a workspace's secret key and its public widget key sends the
worst input the limits allow at a seeded workspace: the widest legal rules to
preview and save, a chain of segment references expanded to the 1,000-condition
cap, rules past the caps, a survey whose page pattern is all stars and the longest
URL the widget accepts. Each request must end (answered, refused, or stopped
with 503 `timeout`) within its budget: 1 s for widget calls, 10 s for the rest.

Meanwhile a second client, in another workspace on the same server, asks for
eligibility at a steady pace; its latency while under attack is printed next to
its latency on a quiet server. gunicorn runs two sync workers, so the attacker
sends one request at a time: with the rate limits, that is what one client gets.
"""

import argparse
import json
import random
import statistics
import sys
import threading
import time

from common import Server, ensure_database, load, load_bench_module, setup_django, table

WIDGET_BUDGET, REST_BUDGET = 1.0, 10.0
# Measured from the client over loopback: the server's budget, plus the answer's trip
# and PostgreSQL's reaction to a cancel, within 5 % of the budget (a quarter second at least).
SLACK_SHARE, SLACK_MIN = 0.05, 0.25
VICTIM_RATE = 20
URL_LENGTH = 2000
EVENT_NAMES = ["page_viewed", "feature_used", "report_exported", "csv_exported", "invite_sent"]
TRAIT_KEYS = ["role", "country", "language", "industry", "plan", "email", "name"]


def attribute(key: str, operator: str, value=None, **extra) -> dict:
    condition = {"type": "attribute", "attribute": key, "operator": operator, **extra}
    if value is not None:
        condition["value"] = value
    return condition


def group(match: str, conditions: list) -> dict:
    return {"type": "group", "match": match, "conditions": conditions}


def words(rng: random.Random, count: int, size: int = 40) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return ["".join(rng.choice(letters) for _ in range(size)) for _ in range(count)]


def worst_rules() -> dict[str, dict]:
    """The widest rules inside §3.1's limits (200 conditions, lists of 1,000, depth 5)."""
    rng = random.Random(3)
    # Five levels of groups, each holding 39 conditions and the next group: 200 in all.
    nested = group("any", [attribute("role", "contains", w) for w in words(rng, 40, 8)])
    for level in range(4):
        match = ("all", "none", "any", "all")[level]
        inner = [attribute(TRAIT_KEYS[level], "ends_with", w) for w in words(rng, 39, 6)]
        nested = group(match, [*inner, nested])
    return {
        "200 not_contains, ignore_case": group(
            "all",
            [attribute("role", "not_contains", w, ignore_case=True) for w in words(rng, 200)],
        ),
        "200 contains over 7 keys, any": group(
            "any",
            [
                attribute(TRAIT_KEYS[i % len(TRAIT_KEYS)], "contains", w)
                for i, w in enumerate(words(rng, 200, 12))
            ],
        ),
        "200 event counts, all": group(
            "all",
            [
                {
                    "type": "event",
                    "event": EVENT_NAMES[i % len(EVENT_NAMES)],
                    "operator": "at_most",
                    "value": 1000 + i,
                    "within_days": 1 + i % 90,
                }
                for i in range(200)
            ],
        ),
        "5 in-lists of 1,000 values": group(
            "any",
            [attribute(TRAIT_KEYS[i], "in", words(rng, 1000, 8)) for i in range(5)],
        ),
        "nested 5 deep, 200 conditions": nested,
    }


def too_complex_rules(chain_top: int) -> dict[str, dict]:
    """Rules past the caps: each must be refused quickly, never run."""
    return {
        "201 conditions": group("all", [attribute("plan", "is_set")] * 201),
        "6 levels of groups": group(
            "all",
            [group("all", [group("all", [group("all", [group("all", [group("all", [])])])])])],
        ),
        "chain past 1,000 expanded conditions": group(
            "any", [{"type": "segment", "segment": chain_top, "operator": "in"}] * 3
        ),
    }


class Attacker:
    """One client sending one request at a time; every request is timed against its budget."""

    def __init__(self, port: int, secret_key: str, widget_key: str):
        self.port, self.secret_key, self.widget_key = port, secret_key, widget_key
        self.rows: list[dict] = []

    def send(self, label: str, method: str, path: str, body: dict, budget: float) -> dict:
        import http.client

        payload = json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if not path.startswith("/api/v1/widget/"):
            headers["Authorization"] = f"Bearer {self.secret_key}"
        start = time.perf_counter()
        try:
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            content, status = response.read(), response.status
        except (OSError, http.client.HTTPException) as problem:
            # gunicorn killed the worker (its own 30 s timeout) or the client gave up.
            content, status = repr(problem).encode(), 599
        finally:
            connection.close()
        elapsed = time.perf_counter() - start
        code = ""
        if status >= 400:
            try:
                code = json.loads(content)["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "?"
        row = {"label": label, "status": status, "code": code, "seconds": elapsed, "budget": budget}
        self.rows.append(row)
        return json.loads(content) if status < 300 and content else {}

    def preview(self, label: str, rule: dict) -> None:
        self.send(
            f"preview: {label}", "POST", "/api/v1/segments/preview", {"rules": rule}, REST_BUDGET
        )

    def save(self, label: str, name: str, rule: dict) -> int | None:
        body = {"name": name, "rules": rule}
        return self.send(f"save: {label}", "POST", "/api/v1/segments", body, REST_BUDGET).get("id")

    def eligibility(self, label: str, user_id: str, url: str) -> None:
        body = {"workspace": self.widget_key, "user_id": user_id, "url": url}
        self.send(f"widget: {label}", "POST", "/api/v1/widget/eligibility", body, WIDGET_BUDGET)


def reference_chain(attacker: Attacker, round_number: int) -> int | None:
    """Ten segments, each referencing the last and adding 99 conditions: 1,000 expanded."""
    rng = random.Random(round_number)
    previous = None
    for depth in range(10):
        conditions = [attribute("role", "not_contains", w) for w in words(rng, 99, 10)]
        if previous is not None:
            conditions.append({"type": "segment", "segment": previous, "operator": "in"})
        saved = attacker.save(
            f"reference chain, depth {depth + 1}",
            f"hostile chain {round_number}.{depth}",
            group("all", conditions),
        )
        previous = saved or previous
    return previous


def attack_round(attacker: Attacker, round_number: int, users: list[str]) -> None:
    rules = worst_rules()
    for label, rule in rules.items():
        attacker.preview(label, rule)
    for label, rule in rules.items():
        attacker.save(label, f"hostile {round_number}: {label}", rule)
    top = reference_chain(attacker, round_number)
    if top is not None:
        attacker.preview(
            "reference chain top",
            group("all", [{"type": "segment", "segment": top, "operator": "in"}]),
        )
    for label, rule in too_complex_rules(top or 1).items():
        attacker.preview(f"refused: {label}", rule)
    attacker.send("list segments with counts", "GET", "/api/v1/segments", {}, REST_BUDGET)
    long_url = "https://app.example.com" + "/" * (URL_LENGTH - 23)
    for user_id in users[:5]:
        attacker.eligibility("all-star pattern, 2,000-char URL", user_id, long_url)


def hostile_survey(attacker: Attacker) -> None:
    """A live survey whose pages are a pattern of stars that backtracking regexes choke on."""
    body = {
        "name": "Hostile pages",
        "status": "live",
        "questions": [{"key": "nps", "type": "nps", "text": "How likely?"}],
        "targeting": {
            "allowed_pages": [{"match": "pattern", "value": "*/" * 20 + "edit"}],
            "frequency": "every_trigger",
        },
    }
    if not attacker.send(
        "save: survey with an all-star pattern", "POST", "/api/v1/surveys", body, REST_BUDGET
    ):
        raise RuntimeError(f"could not create the hostile survey: {attacker.rows[-1]}")


def victim_workspace(log) -> tuple[str, list[str]]:
    """A small workspace with one survey every contact is always eligible for."""
    from refiner.models import Workspace
    from segments.models import Contact
    from surveys.models import Survey
    from targeting.services import apply_targeting, clean_targeting

    seed = load_bench_module("seed")
    workspace_id = seed.seed(contacts=500, name="bench-hostile-victim", log=log)
    workspace = Workspace.objects.get(pk=workspace_id)
    for survey in Survey.objects.filter(workspace=workspace):
        cleaned = clean_targeting({"frequency": "every_trigger"}, workspace=workspace)
        apply_targeting(survey, cleaned)
    users = list(Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True))
    return workspace.widget_key, users[:200]


def hostile_workspace(contacts: int, name: str | None, log) -> tuple[object, list[str]]:
    from refiner.models import Workspace
    from segments.models import Contact, Segment
    from surveys.models import Survey

    seed = load_bench_module("seed")
    segments = load_bench_module("segments")
    name = name or f"bench-hostile-{contacts}"
    existing = segments.workspace_by_name(name)
    if existing and Contact.objects.filter(workspace_id=existing).count() == contacts:
        log(f"reusing workspace {existing} ({name})")
        workspace_id = existing
    else:
        workspace_id = seed.seed(contacts=contacts, name=name, log=log)
    workspace = Workspace.objects.get(pk=workspace_id)
    # Segments and surveys of earlier runs go, so every run starts alike.
    Survey.objects.filter(workspace=workspace, name="Hostile pages").delete()
    Segment.objects.filter(workspace=workspace).delete()
    users = list(Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True)[:20])
    return workspace, users


def slack(budget: float) -> float:
    return max(SLACK_MIN, SLACK_SHARE * budget)


def run(contacts: int, seconds: float, log=print, name: str | None = None) -> dict:
    """Seed (or reuse the workspace `name`), attack for `seconds`, and measure."""
    victim_key, victim_users = victim_workspace(log)
    workspace, users = hostile_workspace(contacts, name, log)
    bodies = [
        json.dumps({"workspace": victim_key, "user_id": user, "url": "https://x.test/app"}).encode()
        for user in victim_users
    ]

    def victim_body(number: int) -> bytes:
        return bodies[number % len(bodies)]

    def victim(window: float) -> dict:
        return load(
            server.port,
            "POST",
            "/api/v1/widget/eligibility",
            victim_body,
            concurrency=4,
            requests=10**6,
            seconds=window,
            rate=VICTIM_RATE,
        )

    with Server() as server:
        load(
            server.port,
            "POST",
            "/api/v1/widget/eligibility",
            victim_body,
            requests=50,
            concurrency=2,
        )
        quiet = victim(seconds / 2)
        attacker = Attacker(server.port, workspace.secret_key, workspace.widget_key)
        hostile_survey(attacker)
        under_attack: dict = {}
        thread = threading.Thread(target=lambda: under_attack.update(victim(seconds)))
        thread.start()
        started, rounds = time.monotonic(), 0
        while time.monotonic() - started < seconds:
            attack_round(attacker, rounds, users)
            rounds += 1
        thread.join()
    late = [r for r in attacker.rows if r["seconds"] > r["budget"] + slack(r["budget"])]
    broken = [r for r in attacker.rows if r["status"] >= 500 and r["code"] != "timeout"]
    return {
        "rows": attacker.rows,
        "rounds": rounds,
        "quiet": quiet,
        "under_attack": under_attack,
        "late": late,
        "broken": broken,
    }


def report(result: dict) -> str:
    by_label: dict[str, list[dict]] = {}
    for row in result["rows"]:
        by_label.setdefault(row["label"], []).append(row)
    rows = []
    for label, found in by_label.items():
        times = [r["seconds"] for r in found]
        answers = sorted({f"{r['status']} {r['code']}".strip() for r in found})
        rows.append(
            [
                label,
                len(found),
                ", ".join(answers),
                f"{statistics.median(times) * 1000:.0f}",
                f"{max(times) * 1000:.0f}",
                f"{found[0]['budget']:.0f} s",
            ]
        )
    quiet, attacked = result["quiet"], result["under_attack"]
    lines = [
        table(["request", "sent", "answers", "median ms", "max ms", "budget"], rows),
        "",
        f"attack rounds: {result['rounds']}; over budget: {len(result['late'])}; "
        f"5xx other than timeout: {len(result['broken'])}",
        "",
        table(
            ["second client's eligibility", "requests", "errors", "p50 ms", "p99 ms"],
            [
                [
                    name,
                    r["requests"],
                    r["errors"],
                    f"{r['p50'] * 1000:.1f}",
                    f"{r['p99'] * 1000:.1f}",
                ]
                for name, r in (("quiet server", quiet), ("under attack", attacked))
            ],
        ),
        "",
        f"p50 under attack / quiet: {attacked['p50'] / quiet['p50']:.2f}x",
    ]
    return "\n".join(lines)


def passed(result: dict) -> bool:
    return (
        not result["late"]
        and not result["broken"]
        and not result["quiet"]["errors"]
        and not result["under_attack"]["errors"]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=40)
    arguments = parser.parse_args()
    ensure_database()
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    result = run(arguments.contacts, arguments.seconds)
    print(report(result))
    for row in result["late"] + result["broken"]:
        print(f"FAILED: {row}")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())

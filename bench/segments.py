"""Segment counting and listing through `rule_contacts`, next to hand-written SQL.

    .venv/bin/python bench/segments.py [--workspace ID] [--worst]

For each typical rule: the count and the first page (50 members by user_id),
through the ORM (`segments.services.rule_count` and `rule_contacts`, what the
API and the dashboard use) and through a hand-written
query over the same tables, timed in the same run. Both must give the same
answer; ratios over target get their EXPLAIN ANALYZE plans printed.

Then the worst rules within the limits of SPEC §3.1 (`--worst`: only those), each
counted; the target is 2 s over a million contacts. `PGOPTIONS='-c
statement_timeout=60000'` stops a case that runs away, reported as stopped.
"""

import argparse
import sys

from common import best_of, load_bench_module, setup_django, table

COUNT_TARGET, PAGE_TARGET = 1.5, 2.0
PAGE = 50

# The hand-written queries take %(ws)s, %(now)s and the named parameters of each case.
VALUE_PAGE = """
    SELECT c.user_id FROM segments_contact c
    JOIN segments_contactvalue v ON v.contact_id = c.id
    WHERE c.workspace_id = %(ws)s AND v.workspace_id = %(ws)s AND {where}
    ORDER BY c.user_id LIMIT 50
"""


def cases(segment_id: int) -> list[dict]:
    return [
        {
            "name": "trait equals",
            "rule": {"attribute": "plan", "operator": "equals", "value": "enterprise"},
            "count": """SELECT count(*) FROM segments_contactvalue v
                WHERE v.workspace_id = %(ws)s AND v.key = 'plan' AND v.text = 'enterprise'""",
            "page": VALUE_PAGE.format(where="v.key = 'plan' AND v.text = 'enterprise'"),
        },
        {
            "name": "date more_than_days_ago 365",
            "rule": {"attribute": "signed_up_at", "operator": "more_than_days_ago", "value": 365},
            "count": """SELECT count(*) FROM segments_contactvalue v
                WHERE v.workspace_id = %(ws)s AND v.key = 'signed_up_at'
                AND v.date < %(now)s - interval '365 days'""",
            "page": VALUE_PAGE.format(
                where="v.key = 'signed_up_at' AND v.date < %(now)s - interval '365 days'"
            ),
        },
        {
            "name": "event at_least 5 in 30 days",
            "rule": {
                "type": "event",
                "event": "feature_used",
                "operator": "at_least",
                "value": 5,
                "within_days": 30,
            },
            "count": """SELECT count(*) FROM (
                SELECT e.contact_id FROM segments_event e
                WHERE e.workspace_id = %(ws)s AND e.name = 'feature_used'
                AND e.occurred_at BETWEEN %(now)s - interval '30 days' AND %(now)s
                GROUP BY e.contact_id HAVING count(*) >= 5) active""",
            "page": """SELECT c.user_id FROM segments_contact c
                WHERE c.workspace_id = %(ws)s AND c.id IN (
                    SELECT e.contact_id FROM segments_event e
                    WHERE e.workspace_id = %(ws)s AND e.name = 'feature_used'
                    AND e.occurred_at BETWEEN %(now)s - interval '30 days' AND %(now)s
                    GROUP BY e.contact_id HAVING count(*) >= 5)
                ORDER BY c.user_id LIMIT 50""",
        },
        {
            "name": "nested all/any of 4",
            "rule": {
                "type": "group",
                "match": "all",
                "conditions": [
                    {"attribute": "plan", "operator": "in", "value": ["pro", "enterprise"]},
                    {"attribute": "country", "operator": "in", "value": ["US", "GB"]},
                    {
                        "type": "group",
                        "match": "any",
                        "conditions": [
                            {"attribute": "seats", "operator": "greater_than_or_equal", "value": 5},
                            {"attribute": "is_admin", "operator": "is_true"},
                        ],
                    },
                ],
            },
            "count": """SELECT count(*) FROM segments_contactvalue p
                JOIN segments_contactvalue co ON co.contact_id = p.contact_id
                    AND co.key = 'country' AND co.text IN ('US', 'GB')
                LEFT JOIN segments_contactvalue s ON s.contact_id = p.contact_id
                    AND s.key = 'seats'
                LEFT JOIN segments_contactvalue a ON a.contact_id = p.contact_id
                    AND a.key = 'is_admin'
                WHERE p.workspace_id = %(ws)s AND p.key = 'plan'
                    AND p.text IN ('pro', 'enterprise') AND (s.num >= 5 OR a.boolean)""",
            "page": """SELECT c.user_id FROM segments_contact c
                JOIN segments_contactvalue p ON p.contact_id = c.id
                    AND p.key = 'plan' AND p.text IN ('pro', 'enterprise')
                JOIN segments_contactvalue co ON co.contact_id = c.id
                    AND co.key = 'country' AND co.text IN ('US', 'GB')
                LEFT JOIN segments_contactvalue s ON s.contact_id = c.id AND s.key = 'seats'
                LEFT JOIN segments_contactvalue a ON a.contact_id = c.id AND a.key = 'is_admin'
                WHERE c.workspace_id = %(ws)s AND (s.num >= 5 OR a.boolean)
                ORDER BY c.user_id LIMIT 50""",
        },
        {
            "name": "contains, ignore_case",
            "rule": {
                "attribute": "role",
                "operator": "contains",
                "value": "MANAGER",
                "ignore_case": True,
            },
            "count": """SELECT count(*) FROM segments_contactvalue v
                WHERE v.workspace_id = %(ws)s AND v.key = 'role'
                AND v.text_folded LIKE '%%manager%%'""",
            "page": VALUE_PAGE.format(where="v.key = 'role' AND v.text_folded LIKE '%%manager%%'"),
        },
        {
            "name": "segment not_in (+ equals)",
            "rule": {
                "type": "group",
                "match": "all",
                "conditions": [
                    {"type": "segment", "segment": segment_id, "operator": "not_in"},
                    {"attribute": "country", "operator": "equals", "value": "DE"},
                ],
            },
            "count": """SELECT count(*) FROM segments_contactvalue co
                WHERE co.workspace_id = %(ws)s AND co.key = 'country' AND co.text = 'DE'
                AND NOT EXISTS (SELECT 1 FROM segments_contactvalue p
                    WHERE p.contact_id = co.contact_id AND p.key = 'plan' AND p.text = 'free')""",
            "page": """SELECT c.user_id FROM segments_contact c
                JOIN segments_contactvalue co ON co.contact_id = c.id
                    AND co.key = 'country' AND co.text = 'DE'
                WHERE c.workspace_id = %(ws)s AND NOT EXISTS (
                    SELECT 1 FROM segments_contactvalue p
                    WHERE p.contact_id = c.id AND p.key = 'plan' AND p.text = 'free')
                ORDER BY c.user_id LIMIT 50""",
        },
    ]


def as_rule(condition: dict) -> dict:
    """Single conditions in the table above omit the attribute type; rules need it."""
    if "attribute" in condition and "type" not in condition:
        return {"type": "attribute", **condition}
    if condition.get("type") == "group":
        return {**condition, "conditions": [as_rule(c) for c in condition["conditions"]]}
    return condition


def free_segment(workspace_id: int) -> int:
    """The segment the not_in case references (plan equals free), made once."""
    from segments.models import Segment

    rule = {
        "type": "group",
        "match": "all",
        "conditions": [
            {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "free"}
        ],
    }
    segment, _ = Segment.objects.get_or_create(
        workspace_id=workspace_id, name="bench: free plan", defaults={"rules": rule}
    )
    return segment.pk


def orm_sql(run) -> str:
    """The SQL the ORM sent for `run` (its last query that reads), parameters inlined."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    # The last query that reads: a set-based count ends with its transaction's COMMIT.
    reads = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(("SELECT", "WITH"))]
    return [sql for sql in reads if "set_config" not in sql][-1]


def explain(sql: str, params: dict | None = None) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def run(workspace_id: int, repeat: int = 5, log=print) -> list[dict]:
    """Time every case; return rows with the timings, ratios and any disagreement."""
    from django.db import connection
    from django.utils import timezone

    from segments.services import check_rule, rule_contacts, rule_count

    now = timezone.now()
    params = {"ws": workspace_id, "now": now}
    segment_id = free_segment(workspace_id)
    results = []
    for case in cases(segment_id):
        rule = as_rule(case["rule"])
        if rule.get("type") != "group":
            rule = {"type": "group", "match": "all", "conditions": [rule]}
        errors = check_rule(rule, workspace_id=workspace_id)
        if errors:
            raise SystemExit(f"{case['name']}: invalid rule {errors}")

        def orm_count(rule=rule):
            return rule_count(workspace_id, rule, now)

        def orm_page(rule=rule):
            contacts = rule_contacts(workspace_id, rule, now).order_by("user_id")[:PAGE]
            return [c.user_id for c in contacts]

        def hand(sql, many=False):
            def query():
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    rows = cursor.fetchall()
                return [r[0] for r in rows] if many else rows[0][0]

            return query

        count_orm, members = best_of(orm_count, repeat)
        count_hand, hand_members = best_of(hand(case["count"]), repeat)
        page_orm, page = best_of(orm_page, repeat)
        page_hand, hand_page = best_of(hand(case["page"], many=True), repeat)
        row = {
            "name": case["name"],
            "members": members,
            "count_orm": count_orm,
            "count_hand": count_hand,
            "page_orm": page_orm,
            "page_hand": page_hand,
            "count_ratio": count_orm / count_hand,
            "page_ratio": page_orm / page_hand,
            "agree": members == hand_members and page == hand_page,
        }
        results.append(row)
        if not row["agree"]:
            log(f"DISAGREEMENT in {case['name']}: {members} vs {hand_members}, pages differ")
        if row["count_ratio"] > COUNT_TARGET:
            log(f"\n### {case['name']}: count {row['count_ratio']:.2f}x, plans")
            log("ORM:\n" + explain(orm_sql(orm_count)))
            log("hand-written:\n" + explain(case["count"], params))
        if row["page_ratio"] > PAGE_TARGET:
            log(f"\n### {case['name']}: first page {row['page_ratio']:.2f}x, plans")
            log("ORM:\n" + explain(orm_sql(orm_page)))
            log("hand-written:\n" + explain(case["page"], params))
    log(report(results))
    return results


# The worst rules within the limits of SPEC §3.1: each is built so that every contact
# must evaluate every condition (nothing matches early, or everything must be checked).
WORST_TARGET = 2.0


def worst_rules(workspace_id: int) -> list[tuple[str, dict]]:
    event_names = load_bench_module("seed").EVENT_NAMES

    def group(conditions, match="all"):
        return {"type": "group", "match": match, "conditions": conditions}

    def text(key, operator, value, **options):
        return {"type": "attribute", "attribute": key, "operator": operator, "value": value,
                **options}  # fmt: skip

    def event(index, operator, value, within_days=None):
        name = event_names[index % len(event_names)]
        condition = {"type": "event", "event": name, "operator": operator, "value": value}
        return condition if within_days is None else {**condition, "within_days": within_days}

    keys = ["country", "role", "plan", "language", "score"]
    return [
        ("200 not_contains ignore_case (all)",
         group([text("email", "not_contains", f"ZZ{i}q", ignore_case=True) for i in range(200)])),
        ("200 contains (any)",
         group([text("role", "contains", f"qq{i}") for i in range(200)], "any")),
        ("200 contains on 5 keys (any)",
         group([text(keys[i % 5], "contains", f"qq{i}") for i in range(200)], "any")),
        ("200 event at_least 1000+ (any)",
         group([event(i, "at_least", 1000 + i) for i in range(200)], "any")),
        ("200 event at_most 1000+ (all)",
         group([event(i, "at_most", 1000 + i) for i in range(200)])),
        ("200 event at_least 2-11 (any)",
         group([event(i, "at_least", 2 + i // 20) for i in range(200)], "any")),
        ("200 event at_least 1000+ within 90 days (any)",
         group([event(i, "at_least", 1000 + i, 90) for i in range(200)], "any")),
        ("200 event at_least 2-11 within 90 days (any)",
         group([event(i, "at_least", 2 + i // 20, 90) for i in range(200)], "any")),
        # Counts that hold at zero on every name, two windows, every contact's totals
        # read: no per-name merging collapses `exactly 0` beside `at_most k`.
        ("200 event exactly 0 / at_most 1-5 within 30 or 90 days (all)",
         group([event(i, "exactly", 0, [30, 90][i // 20 % 2]) if i % 4 == 0
                else event(i, "at_most", 1 + i // 40, [30, 90][i // 20 % 2])
                for i in range(200)])),
        ("5 not_in lists, 5,000 values (all)",
         group([text(key, "not_in", [f"v{k}-{i}" for i in range(1000)]) for k, key in
                enumerate(keys)])),
        ("10-deep reference chain, 968 conditions expanded",
         group([reference_chain(workspace_id)])),
        ("10-deep chain of real sets (equality, any/all, not_in)",
         group([mixed_chain(workspace_id)])),
    ]  # fmt: skip


def reference_chain(workspace_id: int) -> dict:
    """A reference to the top of a 10-deep chain: each of segments 2-9 names the one
    below twice (in and not_in), so the rule expands to 968 conditions."""
    from segments.models import Segment

    def ref(pk, operator="in"):
        return {"type": "segment", "segment": pk, "operator": operator}

    rules = [
        {
            "type": "group",
            "match": "all",
            "conditions": [
                {"type": "attribute", "attribute": "plan", "operator": "equals", "value": "pro"}
            ],
        }
    ]
    for _ in range(8):
        below = len(rules)
        rules.append(
            {
                "type": "group",
                "match": "any",
                "conditions": [ref(f"@{below}"), ref(f"@{below}", "not_in")],
            }
        )
    rules.append({"type": "group", "match": "all", "conditions": [ref(f"@{len(rules)}")] + [
        {"type": "attribute", "attribute": "seats", "operator": "less_than", "value": 10**6 + i}
        for i in range(200)]})  # fmt: skip
    ids: list[int] = []
    for depth, rule in enumerate(rules, start=1):
        for condition in rule["conditions"]:
            if condition["type"] == "segment":
                condition["segment"] = ids[int(condition["segment"][1:]) - 1]
        segment, _ = Segment.objects.update_or_create(
            workspace_id=workspace_id, name=f"bench: chain {depth}", defaults={"rules": rule}
        )
        ids.append(segment.pk)
    return ref(ids[-1])


def mixed_chain(workspace_id: int) -> dict:
    """A reference to the top of a 10-deep chain that no collapse removes: each level is
    "in the one below and not in country Ck, or role Rk, or not in the first", so every
    level is a real set of most of the workspace, and every leaf a frequent trait value."""
    from segments.models import Segment

    seed = load_bench_module("seed")

    def trait(key, operator, value):
        return {"type": "attribute", "attribute": key, "operator": operator, "value": value}

    def ref(pk, operator="in"):
        return {"type": "segment", "segment": pk, "operator": operator}

    def group(match, *conditions):
        return {"type": "group", "match": match, "conditions": list(conditions)}

    rules = [group("all", trait("plan", "not_equals", "enterprise"))]
    ids: list[int] = []
    for depth in range(1, 11):
        if depth > 1:
            country = trait("country", "not_equals", seed.COUNTRIES[depth - 1])
            role = trait("role", "equals", seed.ROLES[depth - 1])
            rules.append(
                group("any", group("all", ref(ids[-1]), country), role, ref(ids[0], "not_in"))
            )
        segment, _ = Segment.objects.update_or_create(
            workspace_id=workspace_id,
            name=f"bench: mixed chain {depth}",
            defaults={"rules": rules[depth - 1]},
        )
        ids.append(segment.pk)
    return ref(ids[-1])


def run_worst(
    workspace_id: int, repeat: int = 3, log=print, compare: bool = True, only: str = ""
) -> list[dict]:
    """Time the count of each worst legal rule (no hand-written twin: the point is the bound).

    With `compare`, the same count through the contact-by-contact compiler
    (`rule_contacts(...).count()`, what every count used before `segments.sets`) is
    timed in the same run, so the ratio holds on a noisy machine.
    """
    from django.db import OperationalError, connection
    from django.utils import timezone

    from segments.services import check_rule, rule_contacts, rule_count

    now = timezone.now()
    results = []

    def timed(function):
        try:
            return best_of(function, repeat)
        except OperationalError as error:  # PGOPTIONS='-c statement_timeout=…' stops it
            log(f"    stopped ({str(error).strip()})")
            connection.close()
            return None, None

    for name, rule in worst_rules(workspace_id):
        if only not in name:
            continue
        errors = check_rule(rule, workspace_id=workspace_id)
        if errors:
            raise SystemExit(f"{name}: invalid rule {errors}")
        seconds, members = timed(lambda r=rule: rule_count(workspace_id, r, now))
        before, before_members = (None, None)
        if compare:
            before, before_members = timed(
                lambda r=rule: rule_contacts(workspace_id, r, now).count()
            )
        agree = before_members is None or members is None or before_members == members
        results.append(
            {"name": name, "members": members, "seconds": seconds, "before": before,
             "agree": agree}
        )  # fmt: skip
        shown = "stopped" if seconds is None else f"{seconds:.2f} s"
        was = "" if before is None else f" (contact by contact {before:.2f} s)"
        log(f"  {name}: {shown}{was}, {members} members" + ("" if agree else " DISAGREE"))

    def shown(r):
        if r["seconds"] is None:
            return ["?", "stopped ✗"]
        mark = "" if r["seconds"] <= WORST_TARGET else " ✗"
        return [f"{r['members']:,}", f"{r['seconds']:.2f}{mark}"]

    def before(r):
        if r["before"] is None:
            return ["–" if not compare else "stopped", "–"]
        ratio = f"{r['before'] / r['seconds']:.1f}×" if r["seconds"] else "–"
        return [f"{r['before']:.2f}", ratio]

    rows = [[r["name"], *shown(r), *before(r)] for r in results]
    headers = ["worst legal rule", "members", "count s (≤2)", "contact by contact s", "speed-up"]
    log(table(headers, rows))
    return results


def report(results: list[dict]) -> str:
    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.1f}"

    rows = [
        [
            r["name"],
            f"{r['members']:,}",
            ms(r["count_orm"]),
            ms(r["count_hand"]),
            f"{r['count_ratio']:.2f}" + ("" if r["count_ratio"] <= COUNT_TARGET else " ✗"),
            ms(r["page_orm"]),
            ms(r["page_hand"]),
            f"{r['page_ratio']:.2f}" + ("" if r["page_ratio"] <= PAGE_TARGET else " ✗"),
            "yes" if r["agree"] else "NO",
        ]
        for r in results
    ]
    headers = [
        "rule",
        "members",
        "count ORM ms",
        "count SQL ms",
        "ratio (≤1.5)",
        "page ORM ms",
        "page SQL ms",
        "ratio (≤2)",
        "same answer",
    ]
    return table(headers, rows)


def workspace_by_name(name: str) -> int | None:
    from refiner.models import Workspace

    return Workspace.objects.filter(name=name).order_by("-pk").values_list("pk", flat=True).first()


def largest_workspace() -> int:
    """The largest seeded workspace: seed.py names them bench-<contacts>."""
    from refiner.models import Workspace

    names = Workspace.objects.filter(name__regex=r"^bench-[0-9]+$").values_list("name", "pk")
    return max(names, key=lambda row: int(row[0].split("-")[1]))[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=int, help="workspace id (default: largest bench-*)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--worst", action="store_true", help="only the worst legal rules")
    parser.add_argument(
        "--no-compare", action="store_true", help="worst rules: skip the contact-by-contact count"
    )
    parser.add_argument("--only", default="", help="worst rules: those whose name holds this")
    arguments = parser.parse_args()
    setup_django()
    from segments.models import Contact

    workspace_id = arguments.workspace or largest_workspace()
    size = Contact.objects.filter(workspace_id=workspace_id).count()
    print(f"workspace {workspace_id}: {size:,} contacts")
    if arguments.worst:
        worst = run_worst(
            workspace_id, arguments.repeat, compare=not arguments.no_compare, only=arguments.only
        )
        sys.exit(0 if all(r["agree"] for r in worst) else 1)
    results = run(workspace_id, arguments.repeat)
    worst = run_worst(workspace_id, arguments.repeat)
    sys.exit(0 if all(r["agree"] for r in results + worst) else 1)


if __name__ == "__main__":
    main()

"""Seed a realistic workspace into the bench database with PostgreSQL COPY.

    .venv/bin/python bench/seed.py --contacts 1000000

Contacts get 10 traits of mixed types, an account (most of them), the parsed
`ContactValue` rows that `segments.values.parse_value` gives for every raw value,
about 10 events each over 90 days (Zipf-like over 20 names), and displays and
responses of two surveys. Non-constraint indexes are dropped during the load and
rebuilt after, foreign-key triggers are skipped (`session_replication_role`), and
two processes generate and COPY disjoint ranges of contacts.
"""

import argparse
import json
import multiprocessing
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from common import database_url, setup_django

BULK_TABLES = [
    "segments_account",
    "segments_accountvalue",
    "segments_contact",
    "segments_contactvalue",
    "segments_event",
    "segments_eventtotal",
    "surveys_display",
    "surveys_response",
    "surveys_answer",
]
EVENT_NAMES = [
    "page_viewed", "feature_used", "dashboard_opened", "search_performed", "report_viewed",
    "file_uploaded", "comment_added", "invite_sent", "report_exported", "settings_changed",
    "integration_connected", "billing_viewed", "api_key_created", "csv_exported", "filter_saved",
    "project_created", "teammate_invited", "plan_upgraded", "support_contacted", "account_closed",
]  # fmt: skip
PLANS = (["free", "starter", "pro", "enterprise"], [50, 25, 18, 7])
COUNTRIES = ["US", "GB", "DE", "FR", "CA", "IN", "BR", "JP", "AU", "NL", "ES", "IT", "SE", "PL"]
ROLES = [
    "Admin", "Developer", "Product Manager", "Designer", "Data Analyst", "Support Engineer",
    "Sales", "Marketing Manager", "CEO", "Engineering Manager",
]  # fmt: skip
LANGUAGES = ["en", "fr", "de", "es", "pt", "ja"]
INDUSTRIES = ["saas", "fintech", "retail", "health", "education", "media", "logistics"]
EVENT_DAYS = 90
CHUNK = 20_000


def zipf_weights(count: int, exponent: float = 1.1) -> list[float]:
    weights = [1 / rank**exponent for rank in range(1, count + 1)]
    total, cumulative, running = sum(weights), [], 0.0
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return cumulative


def cell(value) -> str:
    """One value in COPY's text format."""
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


class ValueCells:
    """The COPY cells of a key's parsed value; repeated raw values are parsed only once."""

    def __init__(self):
        from segments.values import parse_value

        self.parse_value = parse_value
        self.cache: dict[tuple, str] = {}

    def fresh(self, key: str, raw) -> str:
        parsed = self.parse_value(raw)
        return (
            f"{key}\t{cell(parsed.text)}\t{cell(parsed.text_folded)}\t{cell(parsed.num)}\t"
            f"{cell(parsed.date)}\t{cell(parsed.boolean)}"
        )

    def cached(self, key: str, raw) -> str:
        # type() in the key: True == 1 in a dict, but they parse differently.
        token = (key, type(raw), raw)
        found = self.cache.get(token)
        if found is None:
            found = self.cache[token] = self.fresh(key, raw)
        return found


def contact_traits(rng: random.Random, now: datetime, day_strings: list[str]) -> dict:
    traits = {
        "plan": rng.choices(*PLANS)[0],
        "seats": min(int(rng.paretovariate(1.2)), 5000),
        "signed_up_at": day_strings[rng.randrange(730)],
        "is_admin": rng.random() < 0.1,
        "country": COUNTRIES[min(int(rng.expovariate(0.35)), len(COUNTRIES) - 1)],
        "role": rng.choice(ROLES),
        "score": f"{rng.randrange(1001) / 10:.1f}",
        "language": rng.choice(LANGUAGES),
        "mrr": rng.randrange(0, 200_000) / 100,
    }
    if rng.random() < 0.3:
        traits["trial_ends_at"] = day_strings[rng.randrange(700, 760)]
    return traits


def generate_chunk(job: dict) -> dict:
    """Generate and COPY contacts [start, end) with everything hanging off them."""
    import psycopg

    from segments.values import iso

    job_started = time.perf_counter()
    rng = random.Random(job["seed"] * 1_000_003 + job["start"])
    now = job["now"]
    ws = job["workspace_id"]
    values = ValueCells()
    cumulative = zipf_weights(len(EVENT_NAMES))
    minutes = job["minutes"]
    seconds = [f":{s:02d}+00" for s in range(60)]
    uniform, span = rng.random, len(minutes) * 60
    contacts, cvalues, events, displays, responses, answers = [], [], [], [], [], []
    for index in range(job["start"], job["end"]):
        contact_id = job["contact_base"] + index
        user_id = f"user-{index:07d}"
        email = f"user{index}@example{index % 997}.com"
        name = f"Person {index}"
        first_seen = now - timedelta(seconds=rng.randrange(365 * 86400))
        last_seen = first_seen + (now - first_seen) * rng.random()
        first_seen, last_seen = first_seen.replace(microsecond=0), last_seen.replace(microsecond=0)
        traits = contact_traits(rng, now, job["day_strings"])
        account_id = None
        if job["accounts"] and rng.random() < 0.8:
            account_id = job["account_base"] + rng.randrange(job["accounts"])
        contacts.append(
            f"{contact_id}\t{ws}\t{user_id}\t{email}\t{name}\t{cell(json.dumps(traits))}\t"
            f"{cell(account_id)}\t{first_seen.isoformat()}\t{last_seen.isoformat()}\n"
        )
        prefix = f"{ws}\t{contact_id}\t"
        for key, raw in traits.items():
            if key == "mrr":
                cvalues.append(prefix + values.fresh(key, raw) + "\n")
            else:
                cvalues.append(prefix + values.cached(key, raw) + "\n")
        for key, raw in (("user_id", user_id), ("email", email), ("name", name)):
            cvalues.append(prefix + values.fresh(key, raw) + "\n")
        cvalues.append(prefix + values.fresh("first_seen_at", iso(first_seen)) + "\n")
        cvalues.append(prefix + values.fresh("last_seen_at", iso(last_seen)) + "\n")
        count = int(rng.expovariate(1 / (job["events"] + 0.5)))
        if count:
            names = rng.choices(EVENT_NAMES, cum_weights=cumulative, k=count)
            for event in names:
                moment = int(uniform() * span)
                events.append(f"{prefix}{event}\t{minutes[moment // 60]}{seconds[moment % 60]}\n")
        for survey_index, (survey_id, share) in enumerate(job["surveys"]):
            if rng.random() >= share:
                continue
            display_id = uuid.uuid4()
            shown = now - timedelta(seconds=rng.randrange(EVENT_DAYS * 86400))
            roll = rng.random()
            dismissed = shown + timedelta(seconds=20) if roll < 0.3 else None
            completed = shown + timedelta(seconds=45) if roll >= 0.5 else None
            displays.append(
                f"{display_id}\t{ws}\t{survey_id}\t{contact_id}\t{shown.isoformat()}\t"
                f"{cell(dismissed)}\t{cell(completed)}\n"
            )
            if completed is None:
                continue
            response_id = job["response_base"] + index * 2 + survey_index
            score = min(10, max(0, int(rng.gauss(7.5, 2.2))))
            responses.append(
                f"{response_id}\t{ws}\t{survey_id}\t{contact_id}\t{display_id}\t"
                f'{{"nps": {score}}}\tt\t{shown.isoformat()}\t{completed.isoformat()}\t'
                f"{completed.isoformat()}\n"
            )
            answers.append(
                f"{ws}\t{contact_id}\t{survey_id}\t{response_id}\t"
                f"{values.cached('nps', score)}\t{completed.isoformat()}\tt\n"
            )
    generated = time.perf_counter()
    copies = [
        (
            "segments_contact (id, workspace_id, user_id, email, name, traits, account_id, "
            "first_seen_at, last_seen_at)",
            contacts,
        ),
        (
            "segments_contactvalue (workspace_id, contact_id, key, text, text_folded, num, date, "
            "boolean)",
            cvalues,
        ),
        ("segments_event (workspace_id, contact_id, name, occurred_at)", events),
        (
            "surveys_display (id, workspace_id, survey_id, contact_id, shown_at, dismissed_at, "
            "completed_at)",
            displays,
        ),
        (
            "surveys_response (id, workspace_id, survey_id, contact_id, display_id, answers, "
            "completed, created_at, updated_at, completed_at)",
            responses,
        ),
        (
            "surveys_answer (workspace_id, contact_id, survey_id, response_id, key, text, "
            "text_folded, num, date, boolean, answered_at, is_latest)",
            answers,
        ),
    ]
    with psycopg.connect(job["url"]) as connection:
        bulk_session(connection)
        with connection.cursor() as cursor:
            for target, lines in copies:
                copy_lines(cursor, target, lines)
    return {
        "contacts": len(contacts),
        "values": len(cvalues),
        "events": len(events),
        "generate_seconds": generated - job_started,
        "copy_seconds": time.perf_counter() - generated,
    }


def bulk_session(connection) -> None:
    # Foreign keys hold by construction; skipping their per-row triggers is most of the win.
    connection.execute("SET session_replication_role = replica")
    connection.execute("SET synchronous_commit = off")


def copy_lines(cursor, target: str, lines: list[str], batch: int = 20_000) -> None:
    if not lines:
        return
    with cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for start in range(0, len(lines), batch):
            copy.write("".join(lines[start : start + batch]))


def droppable_indexes(cursor) -> list[tuple[str, str]]:
    """(name, definition) of the indexes of the bulk tables that back no constraint."""
    cursor.execute(
        """
        SELECT i.relname, pg_get_indexdef(i.oid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)
        """,
        [BULK_TABLES],
    )
    # A partitioned table's index prints as ON ONLY (the parent alone); rebuilt, it must
    # cover every partition.
    return [(name, sql.replace(" ON ONLY ", " ON ")) for name, sql in cursor.fetchall()]


def rebuild_indexes(url: str, definitions: list[tuple[str, str]]) -> None:
    import psycopg

    def build(definition: str) -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("SET maintenance_work_mem = '1GB'")
            connection.execute("SET max_parallel_maintenance_workers = 0")
            connection.execute(definition)

    # Largest first so the two builders finish together.
    ordered = sorted(definitions, key=lambda d: ("segments_event" not in d[1], d[0]))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(build, [definition for _, definition in ordered]))


def delete_workspace(cursor, workspace_id: int) -> None:
    """Raw deletes in dependency order: the ORM's cascade is far too slow at this size."""
    for table in [
        "surveys_answer",
        "surveys_response",
        "surveys_display",
        "segments_event",
        "segments_eventtotal",
        "segments_contactvalue",
        "segments_contact",
        "segments_accountvalue",
        "segments_account",
    ]:
        if table == "segments_contact":
            for history in ("segments_segmentmembership", "segments_membershipsweep"):
                cursor.execute(f"DELETE FROM {history} WHERE workspace_id = %s", [workspace_id])  # noqa: S608
            cursor.execute(
                "DELETE FROM segments_segmentmember WHERE segment_id IN "
                "(SELECT id FROM segments_segment WHERE workspace_id = %s)",
                [workspace_id],
            )
        cursor.execute(f"DELETE FROM {table} WHERE workspace_id = %s", [workspace_id])  # noqa: S608


def create_surveys(workspace, now: datetime) -> list[int]:
    from surveys.models import Question, Survey

    ids = []
    for name in ("Onboarding NPS", "Feature feedback"):
        survey = Survey.objects.create(
            workspace=workspace, name=name, status=Survey.LIVE, created_at=now - timedelta(91)
        )
        Question.objects.create(survey=survey, key="nps", type="nps", text="How likely…?")
        ids.append(survey.pk)
    return ids


def seed_accounts(cursor, workspace_id: int, count: int, base: int, now: datetime) -> None:
    values = ValueCells()
    rng = random.Random(count)
    accounts, account_values = [], []
    for index in range(count):
        external_id, name = f"acct-{index:06d}", f"Company {index}"
        traits = {
            "industry": rng.choice(INDUSTRIES),
            "employees": min(int(rng.paretovariate(1.1) * 5), 100_000),
            "tier": rng.choice(["smb", "mid-market", "enterprise"]),
        }
        account_id = base + index
        accounts.append(
            f"{account_id}\t{workspace_id}\t{external_id}\t{name}\t{cell(json.dumps(traits))}\t"
            f"{now.isoformat()}\t{now.isoformat()}\n"
        )
        for key, raw in {"id": external_id, "name": name, **traits}.items():
            account_values.append(f"{workspace_id}\t{account_id}\t{values.cached(key, raw)}\n")
    copy_lines(
        cursor,
        "segments_account (id, workspace_id, external_id, name, traits, created_at, updated_at)",
        accounts,
    )
    copy_lines(
        cursor,
        "segments_accountvalue (workspace_id, account_id, key, text, text_folded, num, date, "
        "boolean)",
        account_values,
    )


def reserve_ids(cursor, table: str, count: int) -> int:
    """The first of `count` ids taken from the table's sequence, so that concurrent
    writers (the app, another seeder) never get them."""
    cursor.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
        f"greatest((SELECT coalesce(max(id), 0) FROM {table}), "
        f"nextval(pg_get_serial_sequence('{table}', 'id'))) + %s)",
        [count],
    )
    return cursor.fetchone()[0] - count + 1


def seed(
    *,
    contacts: int,
    events: float = 10,
    name: str | None = None,
    processes: int = 2,
    seed_value: int = 1,
    log=print,
) -> int:
    """Seed a fresh workspace (replacing one of the same name); return its id."""
    import psycopg
    from django.db import connection as django_connection
    from django.utils import timezone

    from refiner.models import Workspace
    from segments.partitions import ensure_months, is_partitioned
    from segments.totals import add_totals

    url = database_url()
    name = name or f"bench-{contacts}"
    now = timezone.now().replace(microsecond=0)
    timings = {}
    started = time.perf_counter()
    old = list(Workspace.objects.filter(name=name).values_list("pk", flat=True))
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        bulk_session(connection)
        for workspace_id in old:
            delete_workspace(cursor, workspace_id)
    Workspace.objects.filter(pk__in=old).delete()
    workspace = Workspace.objects.create(name=name)
    surveys = create_surveys(workspace, now)
    if is_partitioned(django_connection):
        # Each seeded month in its own partition, as the daily event_partitions made them.
        ensure_months(django_connection, now - timedelta(days=EVENT_DAYS), now)
    timings["clean up old workspace"] = time.perf_counter() - started

    step = time.perf_counter()
    account_count = max(1, contacts // 20)
    with psycopg.connect(url) as connection:
        bulk_session(connection)
        with connection.cursor() as cursor:
            contact_base = reserve_ids(cursor, "segments_contact", contacts)
            account_base = reserve_ids(cursor, "segments_account", account_count)
            response_base = reserve_ids(cursor, "surveys_response", 2 * contacts)
            indexes = droppable_indexes(cursor) if contacts >= 100_000 else []
            for index_name, _ in indexes:
                cursor.execute(f'DROP INDEX "{index_name}"')
            seed_accounts(cursor, workspace.pk, account_count, account_base, now)
    timings["accounts (+ drop indexes)"] = time.perf_counter() - step

    step = time.perf_counter()
    start_day = (now - timedelta(days=730)).date()
    day_strings = [(start_day + timedelta(days=d)).isoformat() for d in range(760)]
    first_minute = now - timedelta(days=EVENT_DAYS)
    minutes = [
        (first_minute + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M")
        for m in range(EVENT_DAYS * 1440)
    ]
    base_job = {
        "url": url,
        "now": now,
        "seed": seed_value,
        "workspace_id": workspace.pk,
        "contact_base": contact_base,
        "account_base": account_base,
        "response_base": response_base,
        "accounts": account_count,
        "events": events,
        "surveys": list(zip(surveys, (0.3, 0.1), strict=True)),
        "day_strings": day_strings,
        "minutes": minutes,
    }
    jobs = [
        {**base_job, "start": start, "end": min(start + CHUNK, contacts)}
        for start in range(0, contacts, CHUNK)
    ]
    django_connection.close()
    totals = {
        "contacts": 0, "values": 0, "events": 0, "generate_seconds": 0.0, "copy_seconds": 0.0
    }  # fmt: skip
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(processes) as pool:
            for result in pool.imap_unordered(generate_chunk, jobs):
                for key in totals:
                    totals[key] += result[key]
        timings["generate + COPY contacts, values, events, displays"] = time.perf_counter() - step
        step = time.perf_counter()
        # COPY with triggers off (bulk_session) left the event totals to fill in one pass.
        with psycopg.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")
            event_totals = add_totals(cursor, workspace_id=workspace.pk)
        timings["event totals"] = time.perf_counter() - step
    finally:
        step = time.perf_counter()
        rebuild_indexes(url, indexes)
        timings["rebuild indexes"] = time.perf_counter() - step

    step = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        # VACUUM sets the visibility map, so counts can use index-only scans from the start.
        for table in BULK_TABLES:
            connection.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum analyze"] = time.perf_counter() - step
    total = time.perf_counter() - started
    log(
        f"seeded workspace {workspace.pk} ({name}): {totals['contacts']:,} contacts, "
        f"{account_count:,} accounts, {totals['values']:,} contact values, "
        f"{totals['events']:,} events ({event_totals:,} event totals) in {total:.1f} s"
    )
    log(
        f"  (summed over processes: generating {totals['generate_seconds']:.1f} s, "
        f"COPY {totals['copy_seconds']:.1f} s)"
    )
    for label, seconds in timings.items():
        log(f"  {label}: {seconds:.1f} s")
    return workspace.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--events", type=float, default=10, help="average events per contact")
    parser.add_argument("--name", help="workspace name (default bench-<contacts>)")
    parser.add_argument("--processes", type=int, default=2)
    arguments = parser.parse_args()
    setup_django()
    seed(
        contacts=arguments.contacts,
        events=arguments.events,
        name=arguments.name,
        processes=arguments.processes,
    )


if __name__ == "__main__":
    main()

"""`make stress`: mixed widget load on gunicorn + PostgreSQL; zero errors and zero lost writes.

It creates and migrates its own database (`refiner_stress`, dropped and made anew
on every run), starts gunicorn (2 workers) on a free loopback port, and for
STRESS_SECONDS (default 120) runs STRESS_CLIENTS (default 8) client threads that
identify users, track events, ask for eligibility, record displays and send
answers. Every write the server acknowledged is then counted in the database.
The exit status is 1 on any error or lost write.

Rate limits are switched off for the run: all the load comes from one address
with one key, which the limits would rightly throttle.
"""

import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
SERVER_URL = os.environ.get("STRESS_SERVER_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("STRESS_DATABASE", "refiner_stress")
SECONDS = float(os.environ.get("STRESS_SECONDS", "120"))
CLIENTS = int(os.environ.get("STRESS_CLIENTS", "8"))
MAX_REQUESTS = int(os.environ.get("STRESS_MAX_REQUESTS", "2000000"))  # a hard bound on the loop
USERS = int(os.environ.get("STRESS_USERS", "2000"))
REQUEST_TIMEOUT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_database() -> str:
    if not DATABASE.replace("_", "").isalnum():
        sys.exit(f"refusing odd database name {DATABASE!r}")
    with psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return f"{SERVER_URL}/{DATABASE}"


def server_env(database_url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "RATE_LIMIT_WIDGET_PER_MINUTE": "0",
        "RATE_LIMIT_REST_PER_MINUTE": "0",
        "LOG_LEVEL": "ERROR",
        # One JSON line per request would flood the terminal (and costs ~40 µs each).
        "LOG_REQUESTS": "false",
    }


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        sys.exit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


class Api:
    """One keep-nothing HTTP client per thread (gunicorn's sync workers close connections)."""

    def __init__(self, port: int):
        self.port = port

    def call(self, method: str, path: str, body: dict | None = None, key: str | None = None):
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = conn.getresponse()
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()


def wait_until_up(api: Api, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("gunicorn exited during start-up")
        try:
            if api.call("GET", "/api/v1/ping")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("gunicorn did not answer /api/v1/ping in time")


class Ledger:
    """What the server acknowledged, to compare with what the database holds afterwards."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users: set[str] = set()
        self.events = 0
        self.displays: dict[str, dict] = {}  # display id -> answers acknowledged
        self.completed: set[str] = set()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.error_samples: list[str] = []
        self.requests = 0

    def timing(self, op: str, seconds: float) -> None:
        with self.lock:
            self.latencies[op].append(seconds)
            self.requests += 1

    def error(self, op: str, detail: str) -> None:
        with self.lock:
            self.errors[op] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{op}: {detail}")


def client_loop(api: Api, keys: dict, survey_id: int, ledger: Ledger, stop: float, seed: int):
    rng = random.Random(seed)
    widget = keys["widget_key"]

    def timed(op: str, method: str, path: str, body: dict, expect: int):
        started = time.perf_counter()
        try:
            status, data = api.call(method, path, body)
        except Exception as e:  # noqa: BLE001 - every failure is counted, none stops the run
            ledger.error(op, f"{type(e).__name__}: {e}")
            return None
        ledger.timing(op, time.perf_counter() - started)
        if status != expect:
            ledger.error(op, f"HTTP {status}: {json.dumps(data)[:200]}")
            return None
        return data

    while time.monotonic() < stop and ledger.requests < MAX_REQUESTS:
        user_id = f"user-{rng.randrange(USERS)}"
        roll = rng.random()
        if roll < 0.25:
            body = {"workspace": widget, "user": {"id": user_id, "plan": rng.choice("abc"),
                                                  "visits": rng.randrange(100)}}  # fmt: skip
            if timed("identify", "POST", "/api/v1/widget/identify", body, 200) is not None:
                with ledger.lock:
                    ledger.users.add(user_id)
        elif roll < 0.55:
            body = {"workspace": widget, "user_id": user_id, "event": rng.choice(["view", "click"])}
            if timed("track", "POST", "/api/v1/widget/track", body, 202) is not None:
                with ledger.lock:
                    ledger.users.add(user_id)
                    ledger.events += 1
        elif roll < 0.85:
            body = {"workspace": widget, "user_id": user_id, "url": "https://app.example/home"}
            timed("eligibility", "POST", "/api/v1/widget/eligibility", body, 200)
        else:
            with ledger.lock:
                known = user_id in ledger.users
            if not known:
                continue
            body = {"workspace": widget, "user_id": user_id, "survey": survey_id}
            data = timed("display", "POST", "/api/v1/widget/displays", body, 201)
            if data is None:
                continue
            display = data["display"]
            with ledger.lock:
                ledger.displays[display] = {}
            path = f"/api/v1/widget/displays/{display}/answers"
            score = rng.randrange(11)
            answers = {"workspace": widget, "answers": {"nps": score}, "completed": False}
            if timed("answers", "POST", path, answers, 200) is not None:
                with ledger.lock:
                    ledger.displays[display]["nps"] = score
            text = {"workspace": widget, "answers": {"why": f"because {score}"}, "completed": True}
            if timed("answers", "POST", path, text, 200) is not None:
                with ledger.lock:
                    ledger.displays[display]["why"] = f"because {score}"
                    ledger.completed.add(display)


def count_rows(database_url: str, workspace_id: int, ledger: Ledger) -> dict:
    """Acknowledged writes that the database does not hold (every figure should be 0)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT user_id FROM segments_contact WHERE workspace_id = %s", [workspace_id]
        ).fetchall()
        contacts = {r[0] for r in rows}
        events = conn.execute(
            "SELECT count(*) FROM segments_event WHERE workspace_id = %s", [workspace_id]
        ).fetchone()[0]
        displays = {
            str(r[0]): r[1]
            for r in conn.execute(
                "SELECT d.id, r.answers FROM surveys_display d "
                "LEFT JOIN surveys_response r ON r.display_id = d.id WHERE d.workspace_id = %s",
                [workspace_id],
            )
        }
        completed = {
            str(r[0])
            for r in conn.execute(
                "SELECT display_id FROM surveys_response WHERE workspace_id = %s AND completed",
                [workspace_id],
            )
        }
    missing_answers = sum(
        1
        for display, answers in ledger.displays.items()
        for key, value in answers.items()
        if (displays.get(display) or {}).get(key) != value
    )
    return {
        "contacts_missing": len(ledger.users - contacts),
        "contacts_duplicated": len(rows) - len(contacts),
        "events_missing": ledger.events - events,
        "displays_missing": len(set(ledger.displays) - set(displays)),
        "answers_missing": missing_answers,
        "completions_missing": len(ledger.completed - completed),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(ledger: Ledger, elapsed: float, lost: dict) -> dict:
    operations = {}
    for op, values in sorted(ledger.latencies.items()):
        operations[op] = {
            "requests": len(values),
            "p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1),
        }
    return {
        "seconds": round(elapsed, 1),
        "clients": CLIENTS,
        "requests": ledger.requests,
        "requests_per_second": round(ledger.requests / elapsed, 1),
        "errors": sum(ledger.errors.values()),
        "errors_by_operation": dict(ledger.errors),
        "error_samples": ledger.error_samples,
        "operations": operations,
        "acknowledged": {
            "contacts": len(ledger.users),
            "events": ledger.events,
            "displays": len(ledger.displays),
            "completed": len(ledger.completed),
        },
        "lost_writes": lost,
    }


def main() -> int:
    database_url = create_database()
    env = server_env(database_url)
    manage(env, "migrate", "--noinput")
    keys = json.loads(manage(env, "create_workspace", "Stress").strip().splitlines()[-1])
    port = free_port()
    server = subprocess.Popen(
        [GUNICORN, "refiner.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}", "--timeout", "30"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    api = Api(port)
    try:
        wait_until_up(api, server)
        status, survey = api.call(
            "POST",
            "/api/v1/surveys",
            {
                "name": "Stress NPS",
                "status": "live",
                "questions": [
                    {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"},
                    {"key": "why", "type": "text", "text": "Why?"},
                ],
            },
            keys["secret_key"],
        )
        if status != 201:
            sys.exit(f"could not create the survey: {status} {survey}")
        ledger = Ledger()
        started = time.monotonic()
        stop = started + SECONDS
        threads = [
            threading.Thread(target=client_loop, args=(api, keys, survey["id"], ledger, stop, seed))
            for seed in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    result = report(ledger, elapsed, count_rows(database_url, keys["id"], ledger))
    print(json.dumps(result, indent=2))
    failed = result["errors"] or any(result["lost_writes"].values())
    print("stress: FAILED" if failed else "stress: zero errors, zero lost writes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

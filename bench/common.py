"""Shared set-up of the benchmark scripts: Django on the bench database, timing, tables."""

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/refiner_bench"
# The production settings the benches' servers run with (and bench/widget_cpu.py in process).
SERVER_SETTINGS = {
    "DEBUG": "False",
    "SECURE_SSL_REDIRECT": "False",
    "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
    "ALLOWED_HOSTS": "127.0.0.1",
    # The load comes from one address; the limiter would answer 429s.
    "RATE_LIMIT_WIDGET_PER_MINUTE": "0",
    "RATE_LIMIT_REST_PER_MINUTE": "0",
    "LOG_LEVEL": "ERROR",
    # One JSON line per request would flood the terminal (and costs ~40 µs each).
    "LOG_REQUESTS": "false",
}


def setup_django() -> None:
    """Point Django at the bench database (never the developer's) and start it."""
    # bench/segments.py would shadow the `segments` app: the project root goes first
    # and bench/ leaves the path (its modules are already imported by then).
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [str(ROOT)] + [p for p in sys.path if p not in (here, str(ROOT), "")]
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", BENCH_DATABASE_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "refiner.settings")
    # In-process measurements keep the settings they were taken with (DEBUG was the
    # default then); the gunicorn runs below set production settings of their own.
    os.environ.setdefault("DEBUG", "true")
    import django

    django.setup()


def load_bench_module(name: str):
    """Import bench/<name>.py under a name that cannot clash with an app."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", BENCH_DATABASE_URL)


def ensure_database() -> None:
    import psycopg

    url = database_url()
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(url, dbname="postgres", autocommit=True) as connection:
        found = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not found:
            connection.execute(f'CREATE DATABASE "{name}"')


def best_of(function: Callable[[], object], repeat: int = 5) -> tuple[float, object]:
    """The median wall time (seconds) of `repeat` runs after one warm-up run, and the result."""
    result = function()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table, so the output can go straight into docs/benchmarks.md."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)


# HTTP load ------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# granian-close: granian closing each connection after its response, as gunicorn's sync
# workers do, and as nginx's upstream connections are without `keepalive`.
SERVERS = ("gunicorn", "granian", "granian-close")


def server_command(kind: str, workers: int, port: int) -> list[str]:
    """The production server's command line: gunicorn's sync workers, or granian's WSGI.

    Both get `workers` processes, each serving one request at a time (granian with one
    blocking thread per worker, like a sync worker), so each holds one database
    connection and the two differ only in the server around the same Django.
    """
    binary = str(ROOT / ".venv" / "bin" / kind.removesuffix("-close"))
    if kind == "gunicorn":
        options = f"-w {workers} -b 127.0.0.1:{port} --backlog 2048 --log-level warning"
        return [binary, "refiner.wsgi", *options.split()]
    if kind in ("granian", "granian-close"):
        options = f"--interface wsgi --workers {workers} --blocking-threads 1 --host 127.0.0.1"
        options += f" --port {port} --backlog 2048 --log-level warning --no-access-log"
        if kind == "granian-close":
            options += " --no-http1-keep-alive"
        return [binary, *options.split(), "refiner.wsgi:application"]
    raise ValueError(f"unknown server {kind}; one of {', '.join(SERVERS)}")


class Server:
    """The production server (`kind`: gunicorn or granian, 2 workers) on the bench database,
    started and stopped by us."""

    def __init__(self, workers: int = 2, kind: str = "gunicorn"):
        self.port = free_port()
        self.workers = workers
        self.kind = kind
        self.process = None

    def __enter__(self) -> "Server":
        import subprocess

        env = {**os.environ, "DATABASE_URL": database_url(), **SERVER_SETTINGS}
        self.process = subprocess.Popen(
            server_command(self.kind, self.workers, self.port), cwd=ROOT, env=env
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request("GET", self.port, "/api/v1/ping")[0] == 200:
                    return self
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start")
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise RuntimeError(f"{self.kind} did not answer within 30 s")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) its workers have used so far, from Linux's /proc."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a process that has just ended
            if int(fields[1]) == self.process.pid:  # a worker: its parent is the server's main
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:
                self.process.kill()
                self.process.wait()


def request(method: str, port: int, path: str, body: bytes | None = None, connection=None):
    """(status, body) of one request; reuses `connection` when given."""
    import http.client

    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if own:
            connection.close()


def load(
    port: int,
    method: str,
    path: str,
    body: Callable[[int], bytes] | None = None,
    *,
    concurrency: int = 100,
    requests: int = 2000,
    seconds: float = 30,
    expect: int = 200,
    rate: float | None = None,
    cpu: Callable[[], float] | None = None,
) -> dict:
    """`requests` calls (or until `seconds` pass) from `concurrency` threads over loopback.

    Each thread keeps a connection open; gunicorn's sync workers close it after each
    response, and http.client then opens a new one, as browsers would. Without `rate`
    every thread sends its next request as soon as the last is answered (saturation).
    With `rate` (requests per second in all) each thread sends on a fixed schedule and
    latency counts from the scheduled moment, so time spent waiting behind a slow
    answer is counted too: what visitors arriving at that rate would see.
    `cpu` (a `Server.cpu_seconds`) adds the server's CPU milliseconds per request:
    a cost that noisy neighbours on the machine move less than throughput.
    """
    import http.client
    import threading

    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    interval = concurrency / rate if rate else 0.0
    begin = time.perf_counter()

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        scheduled = begin + interval * index / concurrency
        while time.monotonic() < deadline:
            with lock:
                number = next(counter, None)
            if number is None:
                break
            payload = body(number) if body else None
            if rate:
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                start, scheduled = scheduled, scheduled + interval
            else:
                start = time.perf_counter()
            try:
                status, content = request(method, port, path, payload, connection)
            except (OSError, http.client.HTTPException) as problem:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, content = None, repr(problem).encode()
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if status != expect:
                    errors.append(f"{status}: {content[:200]!r}")
        connection.close()

    cpu_before = cpu() if cpu else 0.0
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu_used = cpu() - cpu_before if cpu else None
    ordered = sorted(latencies)

    def percentile(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": wall,
        "rps": len(latencies) / wall if wall else 0.0,
        "p50": percentile(0.50),
        "p95": percentile(0.95),
        "p99": percentile(0.99),
        "cpu_ms": cpu_used * 1000 / len(latencies) if cpu_used is not None and latencies else None,
    }

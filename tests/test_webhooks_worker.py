"""A worker restart loses no delivery: real `db_worker` processes, one killed mid-delivery.

The worker and the test share a database: PostgreSQL's test database itself (committed
rows, hence transaction=True), or for SQLite a file copied from the suite's migrated
template, since another process cannot open the in-memory test database. Rows are made
and read by `manage.py shell` in that database, the same way on both.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.factories import EndpointFactory
from tests.servers import ROOT, sqlite_template  # noqa: F401 - a fixture used below
from tests.webhook_receiver import run_worker_until_settled
from webhooks.models import Delivery
from webhooks.tasks import sweep, sweep_deliveries

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 0.5  # seconds: the lease is six of them


@pytest.fixture
def database_url(tmp_path, request) -> str:
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = (db["USER"] or "postgres") + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
        host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
        return f"postgres://{auth}@{host}:{port}/{db['NAME']}"
    template, _ = request.getfixturevalue("sqlite_template")
    path = tmp_path / "worker.sqlite3"
    path.write_bytes(template.read_bytes())
    return f"sqlite:///{path}"


def environment(database_url: str) -> dict:
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "refiner.settings",
        "DEBUG": "true",
        "DATABASE_URL": database_url,
        "CONN_MAX_AGE": "0",
        "WEBHOOKS_ALLOW_PRIVATE": "true",
        "WEBHOOKS_TIMEOUT_SECONDS": str(TIMEOUT),
        "WEBHOOKS_SWEEP_SECONDS": "0.5",
        "LOG_REQUESTS": "false",
    }


def django(database_url: str, code: str) -> dict:
    """Run `code` in `manage.py shell` on the shared database; it prints one JSON object."""
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        cwd=ROOT,
        env=environment(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_worker(database_url: str, log: Path) -> subprocess.Popen:
    """What `make worker` and deploy/refiner-worker.service run: the sweep, then db_worker."""
    subprocess.run(
        [sys.executable, "manage.py", "webhooks_sweep"],
        cwd=ROOT,
        env=environment(database_url),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "db_worker",
            "--no-reload",
            "--no-startup-delay",
            "--interval",
            "0.1",
        ],  # fmt: skip
        cwd=ROOT,
        env=environment(database_url),
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )


SETUP = """
import json
from refiner.models import Workspace
from segments.models import Contact
from webhooks.models import Endpoint
from webhooks.services import record_event
from webhooks import events
from django.utils import timezone
workspace = Workspace.objects.create(name="Worker test")
endpoint = Endpoint.objects.create(workspace=workspace, url={url!r}, events=["survey.displayed"])
payload = events.envelope("survey.displayed", workspace.pk, {{"user_id": "u-1"}}, timezone.now())
contact = Contact.objects.create(workspace=workspace, user_id="u-1")
(delivery,) = record_event([endpoint], payload, contact.pk)
print(json.dumps({{"delivery": delivery.pk, "event_id": payload["id"]}}))
"""

# What the killed worker leaves: its task RUNNING for ever. Every other queued task is
# dropped too (a duplicate queued by the start-up sweep would otherwise deliver it), so
# only the Delivery row and its lapsed lease can bring the event back.
LOSE_THE_QUEUE = """
import json
from django_tasks_db.models import DBTaskResult
running = DBTaskResult.objects.filter(status="RUNNING").count()
DBTaskResult.objects.exclude(status="RUNNING").delete()
print(json.dumps({"running": running}))
"""

STATE = """
import json
from webhooks.models import Delivery
d = Delivery.objects.get(pk={pk})
held = d.claimed_until is not None
print(json.dumps({{"status": d.status, "attempts": d.attempts, "held": held}}))
"""


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


def test_a_worker_killed_mid_delivery_loses_nothing(database_url, receiver, tmp_path):
    log = tmp_path / "worker.log"
    receiver.hang = hang = threading.Event()
    made = django(database_url, SETUP.format(url=receiver.url))
    first = start_worker(database_url, log)
    second = None
    try:
        wait_for(receiver.arrived.is_set, 30, "the first worker's request")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # The killed worker's request never gets an answer; later ones are answered.
        receiver.hang = None
        hang.set()
        assert django(database_url, LOSE_THE_QUEUE) == {"running": 1}
        held = django(database_url, STATE.format(pk=made["delivery"]))
        assert held == {"status": "pending", "attempts": 1, "held": True}

        second = start_worker(database_url, log)
        wait_for(lambda: len(receiver.requests) >= 1, 60, "the second worker's delivery")
        wait_for(
            lambda: (
                django(database_url, STATE.format(pk=made["delivery"]))["status"] == "succeeded"
            ),
            30,
            "the delivery to be recorded",
        )
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)

    done = django(database_url, STATE.format(pk=made["delivery"]))
    assert done == {"status": "succeeded", "attempts": 2, "held": False}, log.read_text()
    (request,) = receiver.requests
    assert json.loads(request.body)["id"] == made["event_id"]


def test_a_delivery_whose_task_was_never_queued_is_swept_and_sent(workspace, receiver, settings):
    """A crash between the commit and the enqueue: the Delivery row is enough."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    settings.WEBHOOKS_SWEEP_SECONDS = 1
    endpoint = EndpointFactory(workspace=workspace, url=receiver.url)
    long_ago = timezone.now() - timezone.timedelta(minutes=5)
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        workspace=workspace,
        event="survey.displayed",
        payload={"id": "x", "type": "survey.displayed", "data": {}},
        next_attempt_at=long_ago,
    )

    queued = sweep(timezone.now())
    run_worker_until_settled()

    delivery.refresh_from_db()
    assert queued == 1 and delivery.status == Delivery.SUCCEEDED
    assert len(receiver.requests) == 1


def test_the_sweep_leaves_a_delivery_that_a_live_worker_holds(workspace, settings):
    settings.WEBHOOKS_SWEEP_SECONDS = 1
    endpoint = EndpointFactory(workspace=workspace)
    now = timezone.now()
    Delivery.objects.create(
        endpoint=endpoint,
        workspace=workspace,
        event="survey.displayed",
        payload={},
        next_attempt_at=now - timezone.timedelta(minutes=5),
        claimed_until=now + timezone.timedelta(seconds=20),
    )

    assert sweep(now) == 0
    assert sweep(now + timezone.timedelta(seconds=21)) == 1


def test_the_start_up_sweep_schedules_one_periodic_sweep_however_often_it_runs(workspace):
    call_command("webhooks_sweep", stdout=StringIO())
    call_command("webhooks_sweep", stdout=StringIO())

    waiting = DBTaskResult.objects.filter(task_path=sweep_deliveries.module_path, status="READY")
    assert waiting.count() == 1
    assert waiting.get().run_after > timezone.now()

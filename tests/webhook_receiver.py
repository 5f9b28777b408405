"""A real HTTP receiver for webhook tests, the worker run in-process, and the doc's code.

The receiver is http.server in a thread on a free loopback port. Each request is
recorded with its headers and raw body; `answers` scripts the status codes it gives
(then 200), and `hang` makes it hold requests without answering.
"""

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.core.management import call_command

from webhooks.models import Delivery

DOC = Path(__file__).resolve().parent.parent / "docs" / "webhooks.md"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float


@dataclass
class Receiver:
    answers: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    hang: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/refiner"

    def record(self, handler: BaseHTTPRequestHandler) -> int:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        self.arrived.set()
        if self.hang is not None:
            self.hang.wait(30)
            return 0
        self.requests.append(Received(handler.path, dict(handler.headers), body, time.monotonic()))
        return self.answers.pop(0) if self.answers else 200


def start_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            status = receiver.record(self)
            if not status:
                return
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", f"http://127.0.0.1:{receiver.port}/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_worker_until_settled(timeout: float = 20) -> None:
    """Run django-tasks' own db_worker (batch mode) until no delivery is pending."""
    deadline = time.monotonic() + timeout
    while Delivery.objects.filter(status=Delivery.PENDING).exists():
        if time.monotonic() > deadline:
            raise AssertionError("deliveries still pending after the worker ran")
        call_command(
            "db_worker", batch=True, reload=False, startup_delay=False, interval=0, verbosity=0
        )
        time.sleep(0.02)


def doc_code(language: str, marker: str) -> str:
    """The fenced `language` block of docs/webhooks.md that contains `marker`."""
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"docs/webhooks.md has {len(found)} {language} blocks with {marker}"
    return found[0]


def documented_python_verifier():
    namespace: dict = {}
    exec(doc_code("python", "def verify_refiner_signature"), namespace)  # noqa: S102
    return namespace["verify_refiner_signature"]

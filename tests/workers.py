"""Real threads with their own database connections, as a server's workers run them, and
the database those workers cannot reach."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from django.db import connection

POSTGRES = connection.vendor == "postgresql"

# Races need real threads waiting on real row locks, more requests a minute than the rate
# limits let through, and longer waits than the widget's budget: every race module's marks.
RACES = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not POSTGRES,
        reason="needs PostgreSQL: SQLite's in-memory test database cannot wait for locks",
    ),
    pytest.mark.usefixtures("no_rate_limits", "patient_widget"),
]


def at_once(count: int, work: Callable[[int], object]) -> list:
    """Run work(0..count-1) in threads released together; return results or exceptions."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except Exception as e:  # noqa: BLE001 - returned for the caller to report
            results[index] = e
        finally:
            connection.close()  # each thread has its own connection; give it back

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def in_worker(work: Callable[[], object]) -> object:
    """Run work in a fresh thread (hence a fresh connection), as a server worker would."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except Exception as e:  # noqa: BLE001 - re-raised below
            outcome["error"] = e
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextmanager
def unreachable_database(how: str = "closed") -> Iterator[None]:
    settings_dict = connection.settings_dict  # the dict every thread's connection is built from
    saved = dict(settings_dict)
    silent = None
    try:
        if not POSTGRES:
            settings_dict["NAME"] = "/nonexistent-directory/refiner.sqlite3"
        elif how == "closed":
            settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"
        else:  # a server that accepts the connection and never says a word
            silent = socket.socket()
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", str(silent.getsockname()[1])
        yield
    finally:
        settings_dict.clear()
        settings_dict.update(saved)
        if silent is not None:
            silent.close()

"""A transaction PostgreSQL cancels to break a deadlock runs again (refiner/retries.py)."""

import threading
from collections import Counter

import psycopg
import pytest
from django.db import OperationalError, transaction

from refiner.retries import ATTEMPTS, again_after_deadlock
from segments.models import Contact
from tests.factories import ContactFactory, WorkspaceFactory
from tests.workers import POSTGRES, at_once


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not POSTGRES, reason="needs PostgreSQL: SQLite's test database cannot wait for locks"
)
def test_two_transactions_locking_in_opposite_orders_both_go_through():
    workspace = WorkspaceFactory()
    rows = [ContactFactory(workspace=workspace).pk, ContactFactory(workspace=workspace).pk]
    both_hold_one = threading.Barrier(2)
    attempts: Counter = Counter()

    @again_after_deadlock
    def lock_both(index: int) -> str:
        attempts[index] += 1
        first, second = rows if index == 0 else rows[::-1]
        with transaction.atomic():
            Contact.all_contacts.select_for_update().get(pk=first)
            if attempts[index] == 1:
                both_hold_one.wait(timeout=10)  # each now wants the other's row: a deadlock
            Contact.all_contacts.select_for_update().get(pk=second)
        return "locked both"

    assert at_once(2, lock_both) == ["locked both", "locked both"]
    # PostgreSQL cancelled exactly one of them, which then ran again.
    assert sorted(attempts.values()) == [1, 2]


def _deadlock() -> OperationalError:
    """What Django raises when PostgreSQL cancels a statement to break a deadlock."""
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("deadlock detected")
    return error


def test_it_gives_up_after_its_attempts_and_leaves_other_errors_alone():
    calls: Counter = Counter()

    @again_after_deadlock
    def always(kind: str) -> None:
        calls[kind] += 1
        raise _deadlock() if kind == "deadlock" else OperationalError("server closed")

    with pytest.raises(OperationalError, match="deadlock"):
        always("deadlock")
    with pytest.raises(OperationalError, match="server closed"):
        always("other")

    assert calls == {"deadlock": ATTEMPTS, "other": 1}


@pytest.mark.django_db
def test_inside_a_callers_transaction_it_runs_once():
    calls = []

    @again_after_deadlock
    def cancelled() -> None:
        calls.append(1)
        raise _deadlock()

    with pytest.raises(OperationalError), transaction.atomic():
        cancelled()

    assert calls == [1]

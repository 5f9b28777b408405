"""Transactions run again when PostgreSQL breaks a deadlock by cancelling one of them.

Two transactions that lock the same rows in different orders wait on each other;
PostgreSQL notices after `deadlock_timeout` and cancels one, which then fails as a
whole and wrote nothing. Its work is still valid: run again, it finds the other
transaction committed and goes through. Some writes of the widget cannot order
their locks the same way without costing every call a lock they rarely need (a
visitor answering while another tab merges it into a contact, two answers to one
survey at once: tests/test_anonymous_races.py), so they take this instead.
"""

import functools
import logging
from collections.abc import Callable

from django.db import OperationalError, connection

log = logging.getLogger(__name__)

DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE
ATTEMPTS = 3


def is_deadlock(error: BaseException) -> bool:
    return getattr(error.__cause__, "sqlstate", None) == DEADLOCK_DETECTED


def again_after_deadlock(function: Callable) -> Callable:
    """Run `function`, which opens its own transaction, up to `ATTEMPTS` times while
    PostgreSQL cancels it to break a deadlock. Called inside a transaction it runs
    once: what failed then is the caller's whole transaction, not this part of it."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if connection.in_atomic_block:
            return function(*args, **kwargs)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as error:
                if attempt == ATTEMPTS or not is_deadlock(error):
                    raise
                log.info("%s was cancelled to break a deadlock; again", function.__name__)

    return wrapper

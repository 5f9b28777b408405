"""The widget's eligibility answers, kept in this process's memory while they hold.

The widget asks "which survey now?" on every page load, and most asks find nothing
changed since the last one: the same contact, traits, events, displays and
definitions. An answer is kept under a digest of everything it was worked out from
(`targeting.eligibility.answer_key`), so any change to any of it is a new key and
the old answer is never read again. Time is the one input that moves by itself, so
each answer also keeps the moment around which one of the rules it read may turn
(`segments.memory.Turns`); it is used only before that moment, and never for longer
than `ELIGIBILITY_MEMO_SECONDS`.

Nothing here is shared between processes or read back by anyone but the check that
would have worked out the same answer; the least recently used answers leave first,
so the memory it takes is bounded by `ELIGIBILITY_MEMO_SIZE`.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class KeptAnswer:
    worked_out_at: datetime
    # Used before this moment only: the earlier of a turning point and the safety limit.
    good_until: datetime
    surveys: tuple[Any, ...]

    def holds_at(self, now: datetime) -> bool:
        return self.worked_out_at <= now < self.good_until


class AnswerMemo:
    """Answers by key, the least recently used leaving first once `size` are kept."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple, KeptAnswer] = OrderedDict()
        # gthread and granian workers run requests on threads of one process.
        self._lock = Lock()

    @property
    def size(self) -> int:
        return settings.ELIGIBILITY_MEMO_SIZE

    def get(self, key: tuple, now: datetime) -> tuple | None:
        """The surveys kept under `key`, if that answer holds at `now`."""
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if not kept.holds_at(now):
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return kept.surveys

    def put(self, key: tuple, now: datetime, turns_at: datetime | None, surveys: tuple) -> None:
        limit = now + timedelta(seconds=settings.ELIGIBILITY_MEMO_SECONDS)
        good_until = limit if turns_at is None else min(turns_at, limit)
        if good_until <= now:
            return
        with self._lock:
            self._kept[key] = KeptAnswer(now, good_until, surveys)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


answers = AnswerMemo()

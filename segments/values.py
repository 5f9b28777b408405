"""Parsing of stored values, done once in Python when a value is written.

Both evaluators compare only what these functions produce: SQL reads the parsed
columns that writers fill from them, the in-memory evaluator calls them on the
raw value. That is what makes the two agree (SPEC §3.2, §3.6).
"""

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)
_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?",
    re.ASCII,
)
_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """Fold ASCII letters only, so SQL on both databases and Python agree."""
    return text.translate(_ASCII_FOLD)


def is_json_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_json_integer(value: Any) -> bool:
    # Python's True is an int; JSON's true is no number.
    return isinstance(value, int) and not isinstance(value, bool)


def parse_number(value: Any) -> float | None:
    """A JSON number, or a string holding a plain decimal number; else None."""
    if is_json_number(value):
        number = value
    elif isinstance(value, str) and _NUMBER.fullmatch(value):
        number = value
    else:
        return None
    try:
        result = float(number)
    except OverflowError:
        return None
    return result if math.isfinite(result) else None


def parse_date(value: Any) -> datetime | None:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.fraction]][Z|±HH:MM]` as a UTC datetime."""
    if not isinstance(value, str):
        return None
    match = _DATE.fullmatch(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micro,
            tzinfo=UTC,
        )
        if offset and offset != "Z":
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                return None
            shift = timedelta(hours=hours, minutes=minutes)
            moment = moment - shift if offset[0] == "+" else moment + shift
    except (ValueError, OverflowError):
        return None
    return moment


@dataclass(frozen=True)
class ParsedValue:
    """One stored value with its parsed forms; a column is None when it does not apply."""

    text: str | None = None
    text_folded: str | None = None
    num: float | None = None
    date: datetime | None = None
    boolean: bool | None = None

    def as_fields(self) -> dict:
        return {
            "text": self.text,
            "text_folded": self.text_folded,
            "num": self.num,
            "date": self.date,
            "boolean": self.boolean,
        }


def parse_value(value: Any) -> ParsedValue:
    if isinstance(value, bool):
        return ParsedValue(boolean=value)
    if isinstance(value, str):
        return ParsedValue(
            text=value, text_folded=fold(value), num=parse_number(value), date=parse_date(value)
        )
    return ParsedValue(num=parse_number(value))


EARLIEST = datetime.min.replace(tzinfo=UTC)


def days_before(now: datetime, days: int) -> datetime:
    """`now` − `days` days; the earliest moment when that falls before year 1.

    Every date is after the earliest moment, so a window reaching further back
    means the same as one that reaches back to it, and no rule crashes on a huge N.
    """
    try:
        return now - timedelta(days=days)
    except OverflowError:
        return EARLIEST


def days_after(moment: datetime, days: int) -> datetime | None:
    """`moment` + `days` days; None past year 9999, a moment no clock reaches."""
    try:
        return moment + timedelta(days=days)
    except OverflowError:
        return None


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

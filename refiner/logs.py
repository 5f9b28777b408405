"""JSON log lines. Apart from refiner.ops, since logging is set up before any model loads."""

import json
import logging
import time

# Attributes every LogRecord has; anything else on a record came from `extra=`.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so that log collectors need no parsing rules."""

    converter = time.gmtime  # timestamps in UTC, marked Z

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Plain values only: an object such as Django's request would print its path.
        line |= {
            k: v
            for k, v in vars(record).items()
            if k not in RECORD_ATTRIBUTES and isinstance(v, str | int | float | bool | None)
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)

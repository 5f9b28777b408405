"""User ids pasted or uploaded (CSV) to add to, or remove from, a manual segment."""

import csv
import io
import re


def user_ids_from_text(text: str) -> list[str]:
    """User ids separated by commas, spaces or new lines."""
    return [part for part in re.split(r"[\s,;]+", text) if part][:1000]


MAX_CSV_BYTES = 1024 * 1024


def user_ids_from_csv(upload) -> tuple[list[str], str | None]:
    """User ids from the first column of a CSV file (a `user_id` header row is skipped)."""
    if upload.size > MAX_CSV_BYTES:
        return [], "The file is over 1 MiB."
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not UTF-8 text."
    ids = []
    for row in csv.reader(io.StringIO(text)):
        if row and row[0].strip():
            ids.append(row[0].strip()[:200])
    if ids and ids[0].lower() in ("user_id", "userid", "id", "user id"):
        ids = ids[1:]
    if not ids:
        return [], "The file holds no user ids."
    return ids[:10_000], None

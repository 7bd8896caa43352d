"""nbgrader's submission times: ``timestamp.txt`` beside a submitted notebook, read and written in one format."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

NBGRADER_TIME = "%Y-%m-%d %H:%M:%S.%f %Z"
"""nbgrader's timestamp.txt format (always written in UTC)."""


def parse_time(text: str) -> datetime | None:
    """A timestamp as nbgrader, Gradescope or ISO 8601 write it (naive means UTC), or None."""
    text = str(text).strip()
    for parse in (
        lambda t: datetime.strptime(t, NBGRADER_TIME),
        lambda t: datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f %z"),
        lambda t: datetime.strptime(t, "%Y-%m-%d %H:%M:%S %z"),
        lambda t: datetime.fromisoformat(t[:-1] + "+00:00" if t.endswith("Z") else t),
    ):
        try:
            stamp = parse(text)
        except ValueError:
            continue
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    return None


def format_time(stamp: datetime) -> str:
    """``stamp`` in nbgrader's timestamp.txt format."""
    return stamp.astimezone(timezone.utc).strftime(NBGRADER_TIME)


def submission_time(folder: Path) -> tuple[str | None, datetime | None]:
    """(timestamp.txt's text, the time it names) of a submitted assignment folder (a link is ignored)."""
    stamp = Path(folder) / "timestamp.txt"
    try:
        if stamp.is_symlink() or not stamp.is_file():
            return None, None
        with stamp.open("rb") as fh:
            text = fh.read(64).decode("utf-8", "replace").strip() or None
    except OSError:
        return None, None
    return text, parse_time(text) if text else None

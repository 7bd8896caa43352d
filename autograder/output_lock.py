"""One grader per output folder: ``OUTPUT/.grading.lock`` names the process grading into it.

Two batches writing one output would overwrite each other's results and rebuild grades.csv from
a mix of both. Every grade (``make grade``, ``--student`` regrades, Gradescope's run) holds the
lock from its first write to its last. The file holds the holder's pid on its first line, then
when it started and its command line, for the message a second grade prints. The holder also
keeps an exclusive ``flock`` on it, so a check and a take-over cannot interleave. A lock whose
pid is no longer running (a grader killed outright) is stale: the next grade takes it over.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".grading.lock"


class Busy(Exception):
    """Another live process grades into the same output; the message says which and what to do."""


@dataclass
class Holder:
    """What a lock file says about the process that wrote it."""

    pid: int | None
    started: str = ""
    start_ticks: str = ""
    command: str = ""


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), "" where unknown.

    With the pid it names one process for good: a pid reused after a reboot or a long term has another."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    return fields[19] if len(fields) > 19 else ""


def _alive(holder: Holder) -> bool:
    """The process that wrote the lock is still running (not a zombie, not a later process with its pid)."""
    if holder.pid is None or holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    try:
        state = Path(f"/proc/{holder.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc to ask: the signal said it exists
    if state in ("Z", "X"):
        return False
    return not holder.start_ticks or holder.start_ticks == _start_ticks(holder.pid)


def _read(fd: int) -> Holder:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace")
    lines = text.splitlines()
    first = lines[0].split() if lines else []
    pid = int(first[0]) if first and first[0].isdigit() else None
    values = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Holder(pid, values.get("started", ""), values.get("start_ticks", ""), values.get("command", ""))


def _write(fd: int) -> None:
    pid = os.getpid()
    text = (
        f"{pid}\n"
        f"started: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}\n"
        f"start_ticks: {_start_ticks(pid)}\n"
        f"command: {' '.join(sys.argv)[:300]}\n"
    )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())
    os.fsync(fd)


def busy_message(output: Path, holder: Holder) -> str:
    since = f", started {holder.started}" if holder.started else ""
    return (
        f"{output} is being graded by another grade (pid {holder.pid}{since}): wait for it to finish, "
        f"or grade into another --output (a lock left by a grader that is no longer running is taken over)"
    )


@contextmanager
def hold(output: Path) -> Iterator[None]:
    """Hold ``output``'s lock while the block runs; Busy (nothing written) if a live process holds it."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    path = output / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise Busy(busy_message(output, holder)) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it between our open and our flock: start again on the new file
    try:
        holder = _read(fd)
        if holder.pid is not None and holder.pid != os.getpid() and _alive(holder):
            raise Busy(busy_message(output, holder))  # a lock written without the flock (by hand, another tool)
        if holder.pid is not None and holder.pid != os.getpid():
            print(f"note: took over the lock of {output} left by pid {holder.pid}, no longer running", file=sys.stderr)
        _write(fd)
        try:
            yield
        finally:
            try:
                path.unlink()  # still under the flock: nobody can have taken it meanwhile
            except FileNotFoundError:
                pass
    finally:
        os.close(fd)

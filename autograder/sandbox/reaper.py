"""Find, measure and kill a run's process tree through ``/proc``, from the grader's side.

Everything here reads kernel-provided files only: nothing the sandboxed code writes is
trusted. Processes are identified by (pid, start time) so a recycled PID is never killed
by mistake. Without ``/proc`` (macOS) the functions see nothing and only process-group
kills are available.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
HAS_PROC = os.path.isdir("/proc/self/task")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state [0], ppid [1], CPU [11:15], start [19])."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot; None if it is gone or a zombie."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (of all its threads)."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(p) for p in f.read().split())
        except OSError:
            continue
    return kids


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, breadth first (``pid`` itself excluded)."""
    found: list[int] = []
    queue = children(pid)
    seen = set()
    while queue:
        p = queue.pop(0)
        if p in seen:
            continue
        seen.add(p)
        found.append(p)
        queue.extend(children(p))
    return found


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def _private_bytes(pid: int) -> int:
    """Resident memory not backed by files (statm resident - shared): what a hog grows."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            fields = f.read().split()
        return max(0, int(fields[1]) - int(fields[2])) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


@dataclass
class Usage:
    """Processes, threads and private resident memory of a tree at one moment."""

    tasks: int = 0
    memory_bytes: int = 0
    cpu_seconds: float = 0.0
    """CPU time of the live processes plus what they have waited for."""


def measure(pids: list[int]) -> Usage:
    """Threads and private resident memory summed over ``pids`` (gone ones count zero)."""
    usage = Usage()
    ticks = 0
    for pid in pids:
        usage.tasks += _threads(pid)
        usage.memory_bytes += _private_bytes(pid)
        fields = _stat_fields(pid)
        if fields:
            ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    usage.cpu_seconds = ticks / TICKS
    return usage


def inner_pid(pid: int) -> int:
    """``pid`` as the process sees itself: the last ``NSpid`` entry (the innermost PID namespace)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError, IndexError):
        pass
    return pid


def start_method_of(pid: int) -> str | None:
    """``spawn`` or ``forkserver`` if ``pid`` is a multiprocessing worker (or server) started that way."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read(4096)
    except OSError:
        return None
    if b"multiprocessing.spawn" in cmdline:
        return "spawn"
    if b"multiprocessing.forkserver" in cmdline:
        return "forkserver"
    return None


def allowed_cpus(pid: int) -> list[int]:
    """The cores ``pid`` may run on (its ``Cpus_allowed_list``), or [] if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    cpus: list[int] = []
                    for part in line.split(":", 1)[1].strip().split(","):
                        low, _, high = part.partition("-")
                        cpus += range(int(low), int(high or low) + 1)
                    return cpus
    except (OSError, ValueError):
        pass
    return []


def user_tasks(uid: int) -> int:
    """Tasks (processes and threads) whose real uid is ``uid``, the count RLIMIT_NPROC checks."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            if int(fields["Uid"].split()[0]) == uid:
                total += int(fields["Threads"])
        except (KeyError, ValueError, IndexError):
            continue
    return total


class Tracker:
    """Remembers every process seen in a run, so those that leave the tree can still be found."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.inner: set[int] = set()
        """The same processes' ids inside their own PID namespace (what ``os.getpid()`` told them)."""
        self.start_methods: set[str] = set()
        """``spawn`` or ``forkserver`` when a process of the run was started that way (seen in its command line)."""

    def note(self, pids: list[int]) -> None:
        """Record ``pids`` (with their start times) as belonging to the run."""
        for pid in pids:
            if pid not in self.seen:
                started = start_time(pid)
                if started is not None:
                    self.seen[pid] = started
                    self.inner.add(inner_pid(pid))
                    method = start_method_of(pid)
                    if method:
                        self.start_methods.add(method)

    def alive(self) -> list[int]:
        """Recorded processes still running (same PID and same start time)."""
        return [pid for pid, started in self.seen.items() if start_time(pid) == started]


def kill_group(pgid: int) -> None:
    """SIGKILL a whole process group; quietly does nothing if it is gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill(pid: int) -> bool:
    """SIGKILL one process; True if the signal was delivered."""
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_until_gone(find: Callable[[], list[int]], *, rounds: int, kill_all: Callable | None = None, pause=0.0) -> int:
    """The sandbox's one kill loop: SIGKILL what ``find`` returns until it finds nothing; how many it found.

    Several rounds, because a process that was forking when the signals went out may have a brand-new
    child. ``kill_all``: one signal for them all instead (say, to every process of a uid); ``pause``:
    seconds for the killed to go before the next look (else a yield).
    """
    found: set[int] = set()
    for _ in range(rounds):
        alive = find()
        if not alive:
            break
        found.update(alive)
        if kill_all is not None:
            kill_all(alive)
        else:
            for pid in alive:
                kill(pid)
        time.sleep(pause) if pause else os.sched_yield()
    return len(found)


def sweep(tracker: Tracker, pgid: int | None, rounds: int = 200) -> int:
    """Kill the run's process group (if any) and every recorded process and its descendants until none is left;
    how many there were."""

    def left() -> list[int]:
        if pgid is not None:
            kill_group(pgid)  # every round: a new member of the group dies before the tree is looked at
        targets = tracker.alive()
        for pid in list(targets):
            targets.extend(descendants(pid))
        tracker.note(targets)
        return [pid for pid in set(targets) if start_time(pid) is not None]

    return kill_until_gone(left, rounds=rounds)

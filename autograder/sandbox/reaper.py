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
class TreeUsage:
    """Processes, threads and private resident memory of a tree at one moment."""

    tasks: int = 0
    memory_bytes: int = 0
    cpu_seconds: float = 0.0
    """CPU time of the live processes plus what they have waited for."""


def measure(pids: list[int]) -> TreeUsage:
    """Threads and private resident memory summed over ``pids`` (gone ones count zero)."""
    usage = TreeUsage()
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


def scheduled_ns(pid: int) -> tuple[int, int] | None:
    """(nanoseconds ``pid``'s main thread has run on a core, nanoseconds it has waited runnable for one), from
    ``/proc/PID/schedstat``; ticks from ``/proc/PID/stat`` (no waiting time) where the kernel keeps no schedstat;
    None if it is gone."""
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as f:
            ran, waited = f.read().split()[:2]
        return int(ran), int(waited)
    except (OSError, ValueError):
        fields = _stat_fields(pid)
        if not fields:
            return None
        return sum(int(v) for v in fields[11:13]) * 1_000_000_000 // TICKS, 0


def threads_ran_ns(pid: int) -> int:
    """Nanoseconds all of ``pid``'s threads have run on a core (its stat's ticks, its waited-for children's too,
    where the kernel keeps no schedstat); 0 if it is gone."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    total = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            fields = _stat_fields(pid)
            return sum(int(v) for v in fields[11:15]) * 1_000_000_000 // TICKS if fields else 0
    return total


def any_thread_runnable(pid: int) -> bool:
    """Some thread of ``pid`` is running or ready to run (state R): a Pool's caller waits in its main thread
    while its own threads hand out the tasks."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"R":
                    return True
        except (OSError, IndexError):
            continue
    return False


class Tracker:
    """Remembers every process seen in a run, so those that leave the tree can still be found, and samples
    the CPU time each one uses while the run goes."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        self.inner: set[int] = set()
        """The same processes' ids inside their own PID namespace (what ``os.getpid()`` told them)."""
        self.inner_of: dict[int, int] = {}
        self.start_methods: set[str] = set()
        """``spawn`` or ``forkserver`` when a process of the run was started that way (seen in its command line)."""
        self.created = time.monotonic_ns()
        """When the watchdog began to watch the run (just after it started): no process of it ran before."""
        self.polls: list[int] = []
        """When each CPU sample was taken (``time.monotonic_ns``, the clock episode records use)."""
        self.run_cpu: list[int] = []
        """The whole run's CPU nanoseconds at each sample: the kernel's count for its control group where there
        is one, else the sum over the threads of its live processes (what a process that ended had used stays
        in the total; one that lived between two samples is missed)."""
        self.process_cpu: dict[int, list[tuple[int, int, int]]] = {}
        """Per process (by the id it sees itself as): (sample index, ns run, ns waited runnable) at each sample."""
        self.runnable: list[int] = []
        """How many of the run's processes were running or ready to run (state R) at each sample: none means the
        whole run slept then (a pause, or waiting on something outside it)."""
        self._threads_ran: dict[int, int] = {}
        """Without a control group: each process's threads' ns run, as last seen (kept once it ends)."""

    def note(self, pids: list[int]) -> None:
        """Record ``pids`` (with their start times) as belonging to the run."""
        for pid in pids:
            if pid not in self.seen:
                started = start_time(pid)
                if started is not None:
                    self.seen[pid] = started
                    self.inner_of[pid] = inner_pid(pid)
                    self.inner.add(self.inner_of[pid])
                    method = start_method_of(pid)
                    if method:
                        self.start_methods.add(method)

    def sample(self, pids: list[int], run_cpu_seconds: float | None = None) -> None:
        """One CPU sample of the run's processes ``pids`` (noted first); ``run_cpu_seconds``: the kernel's count
        for the whole run, where it has one."""
        index, runnable = len(self.polls), 0
        self.polls.append(time.monotonic_ns())
        for pid in pids:
            scheduled = scheduled_ns(pid)
            if scheduled is None or pid not in self.inner_of:
                continue
            self.process_cpu.setdefault(self.inner_of[pid], []).append((index, *scheduled))
            runnable += any_thread_runnable(pid)
            if run_cpu_seconds is None:
                self._threads_ran[pid] = max(self._threads_ran.get(pid, 0), threads_ran_ns(pid))
        total = int(run_cpu_seconds * 1e9) if run_cpu_seconds is not None else sum(self._threads_ran.values())
        self.run_cpu.append(max(total, self.run_cpu[-1] if self.run_cpu else 0))
        self.runnable.append(runnable)

    def samples(self) -> dict:
        """The CPU samples as plain data: ``polls``, ``run_cpu`` and ``processes`` (see the attributes)."""
        return {
            "created": self.created,
            "polls": list(self.polls),
            "run_cpu": list(self.run_cpu),
            "runnable": list(self.runnable),
            "processes": {pid: [list(s) for s in series] for pid, series in self.process_cpu.items()},
        }

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

"""What a sandboxed run may use (:class:`Limits`) and what came of it (:class:`Outcome`)."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from autograder.config import SANDBOX

MiB = 2**20


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed run: its time is the caller's to choose, the rest defaults to the
    grader's settings (``config.SandboxSettings``)."""

    wall_seconds: float
    """Wall-clock time before the whole process tree is killed."""
    memory_bytes: int = SANDBOX.memory_bytes
    """Address-space cap of each process (RLIMIT_AS), and cap of the whole run's resident memory."""
    max_processes: int = SANDBOX.max_processes
    """Processes and threads the run may have alive at once; trying to exceed it ends the run."""
    output_bytes: int = SANDBOX.output_bytes
    """Bytes of stdout and of stderr kept; the rest is read and dropped."""
    file_bytes: int = SANDBOX.file_bytes
    """Largest file the run may write (RLIMIT_FSIZE); bubblewrap's private /tmp holds at most memory_bytes."""
    cpus: tuple[int, ...] | None = None
    """Cores the run may use (CPU affinity, and its control group's cpuset where there is one); None: any."""

    def __post_init__(self) -> None:
        bad = [
            name
            for name, ok in (
                ("wall_seconds", self.wall_seconds > 0),
                ("memory_bytes", self.memory_bytes >= 16 * MiB),
                ("max_processes", self.max_processes >= 1),
                ("output_bytes", self.output_bytes >= 0),
                ("file_bytes", self.file_bytes >= 0),
            )
            if not ok
        ]
        if bad:
            raise ValueError(
                f"Limits: {', '.join(bad)} out of range in {self!r}: use a positive time, "
                "at least 16 MiB of memory, at least 1 process and a non-negative output cap"
            )


@dataclass
class Outcome:
    """What happened to one sandboxed run, as seen from outside it."""

    returncode: int | None
    """Exit status; negative means killed by that signal; None if it never started."""
    timed_out: bool
    """The wall-clock limit was hit and the process tree was killed."""
    wall_seconds: float
    """Wall time measured by the grader, from start to exit."""
    cpu_seconds: float
    """User + system CPU time of the child and the descendants it waited for."""
    stdout: str
    """Standard output, up to ``Limits.output_bytes``."""
    stderr: str
    """Standard error, up to ``Limits.output_bytes``."""
    output_truncated: bool
    """More than ``output_bytes`` was written to stdout or stderr."""
    isolation: str
    """"bubblewrap" (own namespaces, read-only view of the Python environment) or "process" (plain child)."""
    memory_exceeded: bool = False
    """The run went over ``Limits.memory_bytes`` (killed by the grader, or an allocation failed)."""
    process_limit_hit: bool = False
    """The run tried to have more than ``Limits.max_processes`` processes and threads; it was killed."""
    killed_orphans: int = 0
    """Processes still alive after the main process ended, killed by the sandbox."""
    said_done: bool = False
    """The command wrote ``done`` on its done pipe: its results were complete and the tree was ended then."""
    inner_pids: list[int] = field(default_factory=list)
    """Every process id the run had, as the run itself saw them (its PID namespace), seen from outside."""
    kernel_caps: bool = False
    """A control group capped the run's memory and tasks, and counted its CPU time."""
    peak_memory_bytes: int = 0
    """Highest memory of the run (the control group's count, else the watchdog's sum of private memory)."""
    cpus: list[int] = field(default_factory=list)
    """The cores the run's first process was allowed, as the kernel reported them."""
    start_methods: list[str] = field(default_factory=list)
    """``spawn``/``forkserver`` if the run started processes that way (seen from outside, in their command lines)."""
    stopped: bool = False
    """The grader ended the run early, once it had seen all it needed (``Session.run``'s ``stop``)."""
    cpu_samples: dict = field(default_factory=dict)
    """The watchdog's CPU samples of the run's processes while it went (``reaper.Tracker.samples``)."""
    verdict: str = ""
    """One line saying what happened, for feedback pages and logs."""

    @property
    def ok(self) -> bool:
        """The run finished by itself with status 0, within every limit."""
        return (
            (self.returncode == 0 or self.said_done)
            and not self.timed_out
            and not self.memory_exceeded
            and not self.process_limit_hit
        )


# Messages a Python process prints when an allocation fails under RLIMIT_AS.
_MEMORY_MARKERS = ("MemoryError", "Unable to allocate", "Cannot allocate memory", "std::bad_alloc", "out of memory")


def looks_out_of_memory(returncode: int | None, stderr: str) -> bool:
    """A failed run whose error output ends with an allocation failure."""
    if returncode in (0, None):
        return False
    tail = stderr[-2000:]
    return any(marker in tail for marker in _MEMORY_MARKERS)


def signal_name(signum: int) -> str:
    """``SIGSEGV (segmentation fault)``-style name of a signal number."""
    try:
        sig = signal.Signals(signum)
    except ValueError:
        return f"signal {signum}"
    described = signal.strsignal(sig)
    return f"{sig.name} ({described.lower()})" if described else sig.name


def limit_passed(limits: Limits, *, memory_bytes: int, tasks: int, kernel, late: bool) -> str | None:
    """The limit a running run has passed: ``"memory"``, ``"tasks"``, ``"time"`` or None.

    One cause per run, the first that applies (a fork bomb also fills memory and time). A task the
    kernel killed for memory (``kernel``: the control group's usage, or None), or a fork it refused,
    counts at once: a Pool whose worker was killed would otherwise wait for its lost task until the
    time limit.
    """
    if kernel is not None and kernel.oom_killed:
        return "memory"
    if tasks > limits.max_processes or (kernel is not None and kernel.pids_refused):
        return "tasks"
    if memory_bytes > limits.memory_bytes:
        return "memory"
    return "time" if late else None


def describe(outcome: Outcome, limits: Limits) -> str:
    """The one-line verdict of ``outcome``, most important cause first."""
    if outcome.returncode is None and not outcome.timed_out:
        reason = "did not start"
    elif outcome.stopped:
        reason = "ended by the grader once it had what it needed"
    elif outcome.timed_out:
        reason = f"time limit: still running after {limits.wall_seconds:g} s, stopped"
    elif outcome.process_limit_hit:
        reason = f"process limit: tried to run more than {limits.max_processes} processes/threads, stopped"
    elif outcome.memory_exceeded:
        reason = f"memory limit: used more than {limits.memory_bytes / MiB:.0f} MiB, stopped"
    elif outcome.returncode is not None and outcome.returncode < 0:
        reason = f"crashed: killed by {signal_name(-outcome.returncode)}"
    elif outcome.returncode:
        reason = f"exited with status {outcome.returncode}"
    else:
        reason = "finished normally"
    extras = []
    if outcome.output_truncated:
        extras.append(f"output beyond {limits.output_bytes // 1024} KiB per stream was dropped")
    if outcome.killed_orphans:
        extras.append(f"{outcome.killed_orphans} leftover process(es) killed")
    return "; ".join([reason, *extras])

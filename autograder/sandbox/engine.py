"""The grader's side of one sandboxed run, the same for a fresh process (``process.py``) and a session's forked
child (``session.py``): the runner starts the run's first process, a :class:`Run` does everything else, in order:
account and control group, placement (:meth:`Run.place`) and confinement settings (``launcher.confine``), the
watchdog (:meth:`Run.watch`), the kill policy (:meth:`Run.kill`, :meth:`Run.close`) and the :class:`Outcome`.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from . import accounts, bwrap, cgroups, reaper
from .limits import Limits, Outcome, describe, limit_passed, looks_out_of_memory

POLL_SECONDS = 0.01


def child_env(home: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    """The environment a sandboxed Python starts with (one thread per BLAS, random str hashes), then ``env``."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        # Random, as in a plain interpreter: code whose result depends on str hashes must not look deterministic.
        "PYTHONHASHSEED": str(secrets.randbelow(2**32)),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    base.update(env or {})
    return base


class Run:
    """One run, from its account and control group to its :class:`Outcome`."""

    def __init__(self, mode: str, limits: Limits, workdir: Path, env: dict[str, str], *, spare_tasks: int) -> None:
        """``env``: the run's environment, given a TMPDIR of its own here where it needs one; ``spare_tasks``:
        tasks of the sandbox's own in the run's control group."""
        self.mode, self.limits = mode, limits
        self.sandboxed = mode == bwrap.BUBBLEWRAP
        self.group = _new_group(limits, spare_tasks)
        self.account = _own_account(Path(workdir), env, self.sandboxed)
        self.tracker = reaper.Tracker()
        self.hit: str | None = None
        """Why the watchdog ended the run: "memory", "tasks", "time", "stop" (asked to), or None."""
        self.peak_memory = 0
        self.cpu_seconds = 0.0
        self.kernel: cgroups.GroupUsage | None = None
        """The group's counts once the run ended (None without a group)."""

    # --- before the run ---------------------------------------------------------------------

    def confinement(self, cwd: str, *, count_tasks: bool = True) -> dict:
        """What ``launcher.confine`` applies to the run's first process (``count_tasks``: an RLIMIT_NPROC)."""
        uid, gid = self.account or (None, None)
        return {
            "cwd": cwd,
            "memory_bytes": self.limits.memory_bytes,
            "file_bytes": self.limits.file_bytes,
            "nproc": _nproc(self.limits, self.sandboxed) if count_tasks else None,
            "uid": uid,
            "gid": gid,
        }

    def place(self, pid: int) -> None:
        """Put process ``pid`` (0: this one) on the run's cores and in its control group, before it runs anything."""
        if self.limits.cpus:
            os.sched_setaffinity(pid, self.limits.cpus)
        if self.group is not None:
            self.group.add(pid or os.getpid())

    def drop_group(self) -> None:
        """Go on without a control group (the run could not be put in it): the watchdog's limits alone."""
        if self.group is not None:
            self.group.remove()
            self.group = None

    # --- during the run ----------------------------------------------------------------------

    def watch(
        self,
        tree: Callable[[], list[int]],
        ended: Callable[[float], bool],
        *,
        start: float,
        uncounted: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> str | None:
        """Measure ``tree`` (the run's processes, ``uncounted`` of them the sandbox's) every few milliseconds until
        ``ended`` (waiting at most the time given) says the run is over, a limit is passed or ``stop`` says so."""
        deadline = start + self.limits.wall_seconds
        while not ended(POLL_SECONDS):
            pids = tree()
            self.tracker.note(pids)
            usage = reaper.measure(pids)
            self.peak_memory = max(self.peak_memory, usage.memory_bytes)
            self.cpu_seconds = max(self.cpu_seconds, usage.cpu_seconds)
            kernel = self.group.usage() if self.group is not None else None
            self.tracker.sample(pids, kernel.cpu_seconds if kernel else None)
            self.hit = limit_passed(
                self.limits,
                memory_bytes=usage.memory_bytes,
                tasks=usage.tasks - (uncounted if pids else 0),
                kernel=kernel,
                late=time.perf_counter() > deadline,
            )
            if self.hit is None and stop is not None and stop():
                self.hit = "stop"
            if self.hit:
                break
        self.kernel = self.group.usage() if self.group is not None else None
        return self.hit

    # --- after the run -----------------------------------------------------------------------

    def kill(self, pgid: int | None = None) -> int:
        """End every process of the run now: its control group (the kernel's complete list), then the tree the
        watchdog saw and every descendant, with the process group ``pgid``; how many the tree still had."""
        if self.group is not None:
            self.group.kill_all()
        return reaper.sweep(self.tracker, pgid)

    def close(self) -> int:
        """Remove the control group and end the account (every process, shared file and IPC object of its uid);
        how many of its processes were still alive (a daemon that left the process tree)."""
        if self.group is not None:
            self.group.remove()
        return accounts.end(*self.account) if self.account else 0

    def outcome(
        self,
        *,
        returncode: int | None,
        wall_seconds: float,
        cpu_seconds: float,
        stdout: tuple[str, bool],
        stderr: tuple[str, bool],
        killed: int,
        said_done: bool,
        cpus: list[int],
        supervisor_lost: bool = False,
    ) -> Outcome:
        """What happened: the runner's exit status, times and output (text, whether some was dropped), with
        the watchdog's and the kernel's findings; ``supervisor_lost``: the run killed the sandbox's own process."""
        kernel = self.kernel
        memory_hit = self.hit == "memory" or bool(kernel and kernel.oom_killed)
        process_hit = not memory_hit and (self.hit == "tasks" or bool(kernel and kernel.pids_refused))
        outcome = Outcome(
            returncode=returncode,
            timed_out=self.hit == "time",
            wall_seconds=wall_seconds,
            # The kernel's count for the whole group where there is one: it misses no process.
            cpu_seconds=kernel.cpu_seconds if kernel else cpu_seconds,
            stdout=stdout[0],
            stderr=stderr[0],
            output_truncated=stdout[1] or stderr[1],
            isolation=self.mode,
            memory_exceeded=memory_hit or looks_out_of_memory(returncode, stderr[0]),
            process_limit_hit=process_hit,
            killed_orphans=killed,
            said_done=said_done,
            inner_pids=sorted(self.tracker.inner),
            kernel_caps=self.group is not None,
            peak_memory_bytes=kernel.peak_memory_bytes if kernel else self.peak_memory,
            cpus=cpus,
            start_methods=sorted(self.tracker.start_methods),
            stopped=self.hit == "stop",
            cpu_samples=self.tracker.samples(),
        )
        outcome.verdict = describe(outcome, self.limits)
        if supervisor_lost:
            outcome.verdict = f"the run killed the sandbox's supervisor process ({outcome.verdict})"
        return outcome

    def not_started(self, why: str) -> Outcome:
        """The sandbox could not start the run (no fault of its code): release what it held and say so."""
        self.close()
        failed = Outcome(None, False, 0.0, 0.0, "", f"sandbox: cannot start: {why}", False, self.mode)
        failed.verdict = f"did not start: {why}"
        return failed


def _new_group(limits: Limits, spare: int) -> cgroups.Group | None:
    """A control group for one run, or None where the machine has none to give (the watchdog alone then)."""
    control = cgroups.controller()
    if not control.available:
        return None
    try:
        return control.create(
            memory_bytes=limits.memory_bytes, max_tasks=limits.max_processes + spare, cpus=limits.cpus
        )
    except OSError:
        return None


def _own_account(workdir: Path, env: dict[str, str], sandboxed: bool) -> tuple[int, int] | None:
    """As root: a fresh account for one run, owning its folder (and, without bubblewrap, a TMPDIR inside it)."""
    if not accounts.is_root():
        return None
    uid, gid = accounts.next_ids()
    if not sandboxed:  # the run sees the real file system: it must reach its folder, and /tmp is shared
        accounts.open_passage([workdir, *bwrap.python_roots()])
        tmp = workdir / "tmp"
        tmp.mkdir(mode=0o700, exist_ok=True)
        env["TMPDIR"] = str(tmp)
    accounts.chown_tree(workdir, uid, gid)
    return uid, gid


def _nproc(limits: Limits, sandboxed: bool) -> int | None:
    """RLIMIT_NPROC for the run's first process: the kernel's own stop for fork bombs, where it counts only this run.

    As root the count is of the run's own fresh uid, which also holds the launcher; one extra
    task lets the watchdog see the attempt to go over. Under bubblewrap without root it is of
    the run's user namespace, which also holds bubblewrap's init. Without either the kernel
    counts every task of this user: allow what the user runs now, the run's share and a few
    spare tasks (this grader's own threads start after the count).
    """
    if accounts.is_root():
        return limits.max_processes + (1 if sandboxed else 2)
    if sandboxed:
        return limits.max_processes + 2
    if not reaper.HAS_PROC:
        return None
    return reaper.user_tasks(os.getuid()) + limits.max_processes + 8

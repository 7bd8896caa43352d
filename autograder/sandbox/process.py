"""Start one sandboxed run, watch it from outside, stop it, and say what happened.

The grader's side of a run: a waiter thread blocks in ``wait4`` (exact wall time, CPU time
of every descendant that was waited for), two reader threads drain stdout and stderr
(keeping at most ``output_bytes`` of each), and the calling thread is the watchdog: every
few milliseconds it measures the run's process tree through ``/proc`` and kills the whole
tree when time, memory or the process count runs out. Where the machine allows it (root, a
writable cgroup file system), each run also gets a control group of its own: the kernel then
caps the memory of the whole run (shared pages included) and its task count, and counts the
CPU time of every process that ran in it (see ``cgroups.py``).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import accounts, bwrap, cgroups, reaper
from .limits import Limits, Outcome, describe, limit_passed, looks_out_of_memory

BUBBLEWRAP = "bubblewrap"
PROCESS = "process"
POLL_SECONDS = 0.01
LAUNCHER = Path(__file__).resolve().with_name("launcher.py")
LAUNCHER_IN_SANDBOX = "/run/sandbox/launcher.py"
"""Where bubblewrap shows the launcher to the run (read-only, alone: not the grader's package)."""


class SandboxError(RuntimeError):
    """The sandbox itself cannot be used as asked (not a problem of the code it runs)."""


# ---------------------------------------------------------------- isolation mode


def _requested_mode(isolation: str | None) -> str:
    mode = (isolation or os.environ.get(bwrap.ENV_MODE) or "auto").strip().lower()
    if mode not in ("auto", BUBBLEWRAP, PROCESS):
        raise SandboxError(f"{bwrap.ENV_MODE}={mode!r} is not a sandbox mode: use auto, bubblewrap or process")
    return mode


@functools.cache
def _bubblewrap_problem() -> str:
    """Why bubblewrap cannot run a sandbox here ("" if it can): tried once per grader process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if bwrap.executable() is None:
        return "the bwrap program is not installed"
    # Named like every folder the grader makes in $TMPDIR (autograder.paths.TEMP_PREFIX).
    with tempfile.TemporaryDirectory(prefix="neuroevo-sandbox-probe-") as tmp:
        outcome = _run(
            ["true"], workdir=Path(tmp), limits=Limits(wall_seconds=20), env=None, stdin=b"", mode=BUBBLEWRAP
        )
    if outcome.returncode == 0:
        return ""
    detail = (outcome.stderr.strip().splitlines() or [outcome.verdict])[-1]
    return f"bwrap cannot create a sandbox here ({detail})"


def isolation_mode(isolation: str | None = None) -> str:
    """The isolation runs get: "bubblewrap" when usable (or required), else "process".

    ``isolation`` (or the NEUROEVO_SANDBOX environment variable) may force "process", or
    require "bubblewrap", which raises :class:`SandboxError` when it cannot work here.
    """
    mode = _requested_mode(isolation)
    if mode == PROCESS:
        return PROCESS
    problem = _bubblewrap_problem()
    if problem and mode == BUBBLEWRAP:
        raise SandboxError(
            f"bubblewrap isolation was required but {problem}; install bubblewrap "
            f"(apt-get install bubblewrap) or set {bwrap.ENV_MODE}=process"
        )
    return PROCESS if problem else BUBBLEWRAP


CONTAINER_COMMAND = (
    'docker run --rm -v "$PWD":/course -w /course python:3.11 '
    'sh -c "apt-get update -q && apt-get install -y -q make && make grade VENV=/opt/venv"'
)
"""Grading as root in a throw-away container: every run then gets an unprivileged account of its own."""


def isolation_warning(isolation: str | None = None) -> str:
    """What to tell staff once per batch about how runs are isolated; "" under bubblewrap."""
    if isolation_mode(isolation) == BUBBLEWRAP:
        return ""
    forced = _requested_mode(isolation) == PROCESS
    why = f"{bwrap.ENV_MODE}=process was set" if forced else _bubblewrap_problem()
    if accounts.is_root():
        return (
            f"NOTE: runs are not in bubblewrap namespaces ({why}). Each run is a fresh unprivileged "
            "account instead (no capabilities, no new privileges, its own folder and TMPDIR), ended with "
            "every process and shared file it made; the solutions, submissions and results are closed "
            "to it by file permissions, checked by a probe run before grading. Runs can still use the "
            "network and see the machine's processes."
        )
    return (
        "WARNING: submissions run WITHOUT isolation (" + why + "). Student code can read and "
        "write every file this user can, including solutions/ and other students' grades, and use "
        "the network. Time, memory and process limits still apply. Grade on Linux with bubblewrap "
        "installed (apt-get install bubblewrap), or as root in a throw-away container, where each run "
        f"gets an account of its own: {CONTAINER_COMMAND}"
    )


# ---------------------------------------------------------------- one run


def _child_env(workdir: Path, env: Mapping[str, str] | None) -> dict[str, str]:
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
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


class _Capture:
    """Reads one pipe to its end, keeping the first ``limit`` bytes and counting the rest."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit = stream, limit
        self.kept: list[bytes] = []
        self.kept_size = 0
        self.size = 0
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            room = self.limit - self.kept_size
            if room > 0:
                self.kept.append(chunk[:room])
                self.kept_size += len(self.kept[-1])
            self.size += len(chunk)

    def result(self, timeout: float) -> tuple[str, bool]:
        """(decoded text kept, whether anything was dropped)."""
        self.thread.join(timeout)
        return b"".join(self.kept).decode("utf-8", "replace"), self.size > self.limit


@dataclass
class _Exit:
    status: int | None = None
    cpu_seconds: float = 0.0
    ended: float = 0.0


def _read_status(fd: int) -> dict[str, list[int]]:
    """The launcher's report lines, by first word; nothing the command wrote can reach this pipe."""
    os.set_blocking(fd, False)
    data = b""
    try:
        while chunk := os.read(fd, 4096):
            data += chunk
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    report: dict[str, list[int]] = {}
    for line in data.decode("ascii", "replace").splitlines():
        word, *numbers = line.split()
        try:
            report.setdefault(word, [int(n) for n in numbers])
        except ValueError:
            continue
    return report


DEFAULT_LIMITS = Limits()


def run(
    argv: Sequence[str],
    *,
    workdir: Path,
    limits: Limits = DEFAULT_LIMITS,
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    isolation: str | None = None,
) -> Outcome:
    """Run ``argv`` in ``workdir`` under ``limits`` and report what happened.

    ``stdin`` is what the run reads on its standard input (then end of file). ``isolation``
    overrides NEUROEVO_SANDBOX.
    """
    workdir = Path(workdir).absolute()
    if not workdir.is_dir():
        raise SandboxError(f"sandbox working folder {workdir} does not exist: create it and put the code in it")
    if not argv:
        raise SandboxError("nothing to run: argv is empty")
    return _run(argv, workdir=workdir, limits=limits, env=env, stdin=stdin, mode=isolation_mode(isolation))


def own_account(workdir: Path, env: dict[str, str], sandboxed: bool) -> tuple[int, int] | None:
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


def _command(
    argv: Sequence[str],
    workdir: Path,
    limits: Limits,
    sandboxed: bool,
    status_fd: int,
    account: tuple[int, int] | None,
) -> list[str]:
    """The full command line: bubblewrap (or nothing), the launcher and its settings, then ``argv``."""
    settings = {
        "status_fd": status_fd,
        "cwd": str(workdir),
        "memory_bytes": limits.memory_bytes,
        "file_bytes": limits.file_bytes,
        "nproc": _nproc(limits, sandboxed),
        "uid": account[0] if account else None,
        "gid": account[1] if account else None,
    }
    if not sandboxed:
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(settings), *argv]
    launcher = [sys.executable, "-I", "-S", LAUNCHER_IN_SANDBOX, json.dumps(settings), *argv]
    return bwrap.command(
        launcher, workdir=workdir, files={LAUNCHER: LAUNCHER_IN_SANDBOX}, tmpfs_bytes=limits.memory_bytes
    )


def _wait_in_background(pid: int) -> tuple[_Exit, threading.Event]:
    """A thread blocked in wait4 on ``pid``: exact end time and the CPU time of what it waited for."""
    exit_, finished = _Exit(), threading.Event()

    def wait() -> None:
        _, status, usage = os.wait4(pid, 0)
        exit_.ended = time.perf_counter()
        exit_.status = status
        exit_.cpu_seconds = usage.ru_utime + usage.ru_stime
        finished.set()

    threading.Thread(target=wait, daemon=True).start()
    return exit_, finished


@dataclass
class _Watch:
    """What the watchdog saw and did."""

    tracker: reaper.Tracker
    group: cgroups.Group | None = None
    timed_out: bool = False
    memory_hit: bool = False
    process_hit: bool = False
    cpu_seconds: float = 0.0
    peak_memory: int = 0

    @property
    def stopped(self) -> bool:
        return self.timed_out or self.memory_hit or self.process_hit


def _watch(
    pid: int, finished: threading.Event, limits: Limits, deadline: float, sandboxed: bool, group: cgroups.Group | None
) -> _Watch:
    """Measure the run's tree every few milliseconds until it ends; kill it all when a limit is passed."""
    seen = _Watch(reaper.Tracker(), group)
    while not finished.wait(POLL_SECONDS):
        tree = reaper.descendants(pid)
        if not sandboxed:
            tree.append(pid)
        seen.tracker.note(tree)
        usage = reaper.measure(tree)
        seen.peak_memory = max(seen.peak_memory, usage.memory_bytes)
        # Under bubblewrap the first descendant is bubblewrap's own init, not the run's.
        tasks = usage.tasks - (1 if sandboxed and tree else 0)
        seen.cpu_seconds = max(seen.cpu_seconds, usage.cpu_seconds)
        kernel = group.usage() if group is not None else None
        hit = limit_passed(
            limits, memory_bytes=usage.memory_bytes, tasks=tasks, kernel=kernel, late=time.perf_counter() > deadline
        )
        seen.memory_hit, seen.process_hit, seen.timed_out = hit == "memory", hit == "tasks", hit == "time"
        if seen.stopped:
            _stop(pid, seen.tracker, sandboxed, group)
            finished.wait()
            break
    return seen


def _new_group(limits: Limits, spare: int = 2) -> cgroups.Group | None:
    """A control group for one run, or None where the machine has none to give (the watchdog alone then).

    ``spare``: tasks of the sandbox's own beside the run's (here bubblewrap's init and the launcher).
    """
    control = cgroups.controller()
    if not control.available:
        return None
    try:
        return control.create(
            memory_bytes=limits.memory_bytes, max_tasks=limits.max_processes + spare, cpus=limits.cpus
        )
    except OSError:
        return None


def _run(
    argv: Sequence[str], *, workdir: Path, limits: Limits, env: Mapping[str, str] | None, stdin: bytes, mode: str
) -> Outcome:
    sandboxed = mode == BUBBLEWRAP
    status_r, status_w = os.pipe()
    stdin_r, stdin_w = os.pipe()
    group = _new_group(limits)
    child_env = _child_env(workdir, env)
    account = own_account(workdir, child_env, sandboxed)
    try:
        cmd = _command(argv, workdir, limits, sandboxed, status_w, account)
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=child_env,
            stdin=stdin_r,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_w,),
            start_new_session=True,
            preexec_fn=_preexec(group, limits.cpus),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        for fd in (status_r, stdin_w):
            os.close(fd)
        if group:
            group.remove()
        if account:
            accounts.end(*account)
        return Outcome(
            None, False, 0.0, 0.0, "", f"sandbox: cannot start: {exc}", False, mode, verdict=f"did not start: {exc}"
        )
    finally:
        os.close(status_w)
        os.close(stdin_r)
    _feed(stdin_w, stdin)
    out, err = _Capture(proc.stdout, limits.output_bytes), _Capture(proc.stderr, limits.output_bytes)
    exit_, finished = _wait_in_background(proc.pid)
    seen = _watch(proc.pid, finished, limits, start + limits.wall_seconds, sandboxed, group)
    proc.returncode = exit_.status  # keep subprocess from waiting on a reaped pid
    leftovers = 0 if sandboxed else reaper.sweep(seen.tracker, proc.pid)
    kernel = None
    if group is not None:
        kernel = group.usage()
        group.kill_all()  # bubblewrap's own init may still be exiting: clean-up, not a leftover of the run
        group.remove()
    # Whatever left the process tree (a daemon whose parent was killed) still has the run's uid.
    escaped = accounts.end(*account) if account else 0
    report = _read_status(status_r)
    stdout, cut_out = out.result(timeout=5)
    stderr, cut_err = err.result(timeout=5)
    for stream in (proc.stdout, proc.stderr):
        stream.close()

    # CPU time: the kernel's count for the whole group where there is one; else exact when the
    # launcher reported it; else what the grader saw (/proc ticks, wait4).
    cpu = max(exit_.cpu_seconds, seen.cpu_seconds)
    if len(report.get("exited", ())) == 3:
        status, killed, cpu_us = report["exited"]
        returncode: int | None = os.waitstatus_to_exitcode(status)
        leftovers += killed
        cpu = cpu_us / 1e6
    elif "started" in report or seen.stopped:
        # The launcher was killed (by the watchdog, or by the code it ran) before it could report.
        returncode = _outer_code(exit_.status, sandboxed)
    else:
        returncode = None
    if kernel is not None:
        cpu = kernel.cpu_seconds
    memory_hit = seen.memory_hit or bool(kernel and kernel.oom_killed)
    process_hit = seen.process_hit or bool(kernel and kernel.pids_refused)
    outcome = Outcome(
        returncode=returncode,
        timed_out=seen.timed_out,
        wall_seconds=exit_.ended - start,
        cpu_seconds=cpu,
        stdout=stdout,
        stderr=stderr,
        output_truncated=cut_out or cut_err,
        isolation=mode,
        memory_exceeded=memory_hit or looks_out_of_memory(returncode, stderr),
        process_limit_hit=process_hit and not memory_hit,
        killed_orphans=leftovers + escaped,
        said_done=report.get("done") == [1],
        inner_pids=sorted(seen.tracker.inner),
        kernel_caps=group is not None,
        peak_memory_bytes=kernel.peak_memory_bytes if kernel else seen.peak_memory,
        cpus=list(limits.cpus or ()),
        start_methods=sorted(seen.tracker.start_methods),
    )
    outcome.verdict = describe(outcome, limits)
    if "started" in report and "exited" not in report and not seen.stopped:
        outcome.verdict = f"the run killed the sandbox's supervisor process (exit status unknown; {outcome.verdict})"
    return outcome


def _preexec(group: cgroups.Group | None, cpus: tuple[int, ...] | None):
    """What the run's first process does before it executes anything: join its group, take its cores."""
    if group is None and not cpus:
        return None

    def setup() -> None:
        if group is not None:
            group.join()
        if cpus:
            os.sched_setaffinity(0, cpus)

    return setup


def _feed(fd: int, data: bytes) -> None:
    """Write the run's whole standard input and close it (small jobs: never blocks on a full pipe)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass
    finally:
        os.close(fd)


def _nproc(limits: Limits, sandboxed: bool) -> int | None:
    """RLIMIT_NPROC for the launcher: the kernel's own stop for fork bombs, where it counts only this run.

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


def _outer_code(status: int | None, sandboxed: bool) -> int | None:
    """Exit code of the outermost process; bubblewrap reports a signal N as 128 + N."""
    if status is None:
        return None
    code = os.waitstatus_to_exitcode(status)
    return -(code - 128) if sandboxed and 128 < code < 128 + 65 else code


def _stop(pid: int, tracker: reaper.Tracker, sandboxed: bool, group: cgroups.Group | None = None) -> None:
    """Kill the whole run now."""
    if group is not None:
        group.kill_all()
    if sandboxed:
        # Killing the PID namespace's init makes the kernel kill everything inside it.
        for child in reaper.children(pid):
            reaper.kill(child)
        reaper.kill(pid)
    else:
        reaper.sweep(tracker, pid)

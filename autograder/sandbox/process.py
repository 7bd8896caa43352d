"""The isolation runs get, and runs in a fresh sandboxed process of their own.

A fresh run is the launcher (``launcher.py``, under bubblewrap when it can) starting the command:
a waiter thread notes the moment the launcher ends (exact wall time; ``wait4`` reaps it once its
process group is killed, with the CPU time of everything it waited for), two reader threads drain
stdout and stderr (keeping at most ``output_bytes`` of each), and the calling thread runs the
watchdog. Account, control group, watchdog, kill policy and outcome are the run engine's
(``engine.py``), shared with session runs.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from . import accounts, bwrap, reaper
from .bwrap import BUBBLEWRAP, PROCESS
from .engine import Run, child_env
from .limits import Limits, Outcome

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
        self.stream.close()
        return b"".join(self.kept).decode("utf-8", "replace"), self.size > self.limit


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


def run(
    argv: Sequence[str],
    *,
    workdir: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    isolation: str | None = None,
    stop: Callable[[], bool] | None = None,
) -> Outcome:
    """Run ``argv`` in ``workdir`` under ``limits`` and report what happened.

    ``stdin`` is what the run reads on its standard input (then end of file). ``isolation``
    overrides NEUROEVO_SANDBOX. ``stop``: asked while the run goes on; once it says True the run
    is ended there (``Outcome.stopped``), as in a session.
    """
    workdir = Path(workdir).absolute()
    if not workdir.is_dir():
        raise SandboxError(f"sandbox working folder {workdir} does not exist: create it and put the code in it")
    if not argv:
        raise SandboxError("nothing to run: argv is empty")
    return _run(argv, workdir=workdir, limits=limits, env=env, stdin=stdin, mode=isolation_mode(isolation), stop=stop)


def _command(argv: Sequence[str], workdir: Path, sandboxed: bool, settings: dict, tmpfs_bytes: int) -> list[str]:
    """The full command line: bubblewrap (or nothing), the launcher and its settings, then ``argv``."""
    if not sandboxed:
        return [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(settings), *argv]
    launcher = [sys.executable, "-I", "-S", LAUNCHER_IN_SANDBOX, json.dumps(settings), *argv]
    return bwrap.command(launcher, workdir=workdir, files={LAUNCHER: LAUNCHER_IN_SANDBOX}, tmpfs_bytes=tmpfs_bytes)


def _notice_end(pid: int) -> tuple[threading.Event, list[float]]:
    """A thread that notes when ``pid`` ends, leaving it unreaped: until the grader reaps it, neither its id nor
    its process group's can pass to another process, so killing that group never reaches anyone else."""
    finished, when = threading.Event(), []

    def wait() -> None:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        when.append(time.perf_counter())
        finished.set()

    threading.Thread(target=wait, daemon=True).start()
    return finished, when


def _run(
    argv: Sequence[str],
    *,
    workdir: Path,
    limits: Limits,
    env: Mapping[str, str] | None,
    stdin: bytes,
    mode: str,
    stop: Callable[[], bool] | None = None,
) -> Outcome:
    sandboxed = mode == BUBBLEWRAP
    environment = child_env(workdir, env)
    run = Run(mode, limits, workdir, environment, spare_tasks=2)  # bubblewrap's init and the launcher
    status_r, status_w = os.pipe()
    stdin_r, stdin_w = os.pipe()
    try:
        cmd = _command(
            argv, workdir, sandboxed, {"status_fd": status_w, **run.confinement(str(workdir))}, limits.memory_bytes
        )
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=environment,
            stdin=stdin_r,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(status_w,),
            start_new_session=True,
            preexec_fn=(lambda: run.place(0)) if run.group is not None or limits.cpus else None,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        for fd in (status_r, stdin_w):
            os.close(fd)
        return run.not_started(str(exc))
    finally:
        os.close(status_w)
        os.close(stdin_r)
    _feed(stdin_w, stdin)
    out, err = _Capture(proc.stdout, limits.output_bytes), _Capture(proc.stderr, limits.output_bytes)
    finished, ended = _notice_end(proc.pid)

    def tree() -> list[int]:  # under bubblewrap, bubblewrap and its init are above the run
        return reaper.descendants(proc.pid) + ([] if sandboxed else [proc.pid])

    if run.watch(tree, finished.wait, start=start, uncounted=1 if sandboxed else 0, stop=stop):
        run.kill(proc.pid)
        finished.wait()
    found = run.kill(proc.pid)
    # Under bubblewrap nothing of the run outlives its namespace, whose init (bubblewrap's) may still be exiting.
    leftovers = 0 if sandboxed else found
    _, status, usage = os.wait4(proc.pid, 0)  # CPU time of everything it waited for
    proc.returncode = status  # keep subprocess from waiting on a reaped pid
    escaped = run.close()  # whatever left the process tree (a daemon whose parent was killed) still has its uid
    report = _read_status(status_r)

    # CPU time (where no control group counted it): exact when the launcher reported it, else what the
    # grader saw (/proc ticks, wait4).
    cpu = max(usage.ru_utime + usage.ru_stime, run.cpu_seconds)
    if len(report.get("exited", ())) == 3:
        reported, killed, cpu_us = report["exited"]
        returncode: int | None = os.waitstatus_to_exitcode(reported)
        leftovers += killed
        cpu = cpu_us / 1e6
    elif "started" in report or run.hit:
        # The launcher was killed (by the watchdog, or by the code it ran) before it could report.
        returncode = _outer_code(status, sandboxed)
    else:
        returncode = None
    return run.outcome(
        returncode=returncode,
        wall_seconds=ended[0] - start,
        cpu_seconds=cpu,
        stdout=out.result(timeout=5),
        stderr=err.result(timeout=5),
        killed=leftovers + escaped,
        said_done=report.get("done") == [1],
        cpus=list(limits.cpus or ()),
        supervisor_lost="started" in report and "exited" not in report and not run.hit,
    )


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


def _outer_code(status: int, sandboxed: bool) -> int:
    """Exit code of the outermost process; bubblewrap reports a signal N as 128 + N."""
    code = os.waitstatus_to_exitcode(status)
    return -(code - 128) if sandboxed and 128 < code < 128 + 65 else code

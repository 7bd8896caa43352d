"""Run untrusted student code in a child process with limits.

API (used by the grader core; keep it stable):

    outcome = run(argv, workdir=Path, limits=Limits(), env={...})

``argv`` runs with ``workdir`` as its current folder. The grader measures wall time and
CPU time itself, from outside the child. Output is captured up to ``limits.output_bytes``
per stream. When the wall-clock limit is hit, the child's whole process group is killed,
so no orphan ``Pool`` workers survive.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed run."""

    wall_seconds: float = 120.0
    """Wall-clock time before the whole process group is killed."""
    memory_bytes: int = 4 * 2**30
    """Address-space cap per process (RLIMIT_AS)."""
    max_processes: int = 64
    """Processes the run may have alive at once."""
    output_bytes: int = 256 * 2**10
    """Bytes of stdout and of stderr kept; the rest is read and dropped."""


@dataclass
class Outcome:
    """What happened to one sandboxed run, as seen from outside it."""

    returncode: int | None
    """Exit status; negative means killed by that signal; None if it never started."""
    timed_out: bool
    """The wall-clock limit was hit and the process group was killed."""
    wall_seconds: float
    """Wall time measured by the grader, from start to exit."""
    cpu_seconds: float
    """User + system CPU time of the child and the descendants it waited for."""
    stdout: str
    stderr: str
    output_truncated: bool
    """More than ``output_bytes`` was written to stdout or stderr."""
    isolation: str
    """"process" (plain child process with limits) or "bubblewrap"."""


def _reader(stream, limit: int, sink: list, flags: dict) -> None:
    kept = 0
    while True:
        chunk = stream.read(65536)
        if not chunk:
            break
        if kept < limit:
            sink.append(chunk[: limit - kept])
            kept += len(sink[-1])
        if kept >= limit and len(chunk) > 0:
            flags["truncated"] = flags.get("truncated", False) or kept + len(chunk) > limit
    stream.close()


def _preexec(limits: Limits):
    def apply() -> None:
        os.setsid()  # own process group: one kill reaches every worker
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run(argv: Sequence[str], *, workdir: Path, limits: Limits = Limits(), env: Mapping[str, str] | None = None) -> Outcome:
    """Run ``argv`` in ``workdir`` under ``limits`` and report what happened."""
    child_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir), "LANG": "C.UTF-8",
                 "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    child_env.update(env or {})
    start = time.perf_counter()
    proc = subprocess.Popen(list(argv), cwd=workdir, env=child_env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_preexec(limits))
    out: list[bytes] = []
    err: list[bytes] = []
    flags: dict = {}
    threads = [threading.Thread(target=_reader, args=(proc.stdout, limits.output_bytes, out, flags), daemon=True),
               threading.Thread(target=_reader, args=(proc.stderr, limits.output_bytes, err, flags), daemon=True)]
    for t in threads:
        t.start()
    timed_out = False
    usage = None
    deadline = start + limits.wall_seconds
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        if time.perf_counter() > deadline:
            timed_out = True
            _kill_group(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - start
    _kill_group(proc.pid)  # workers the child left behind
    for t in threads:
        t.join(timeout=5)
    return Outcome(
        returncode=proc.returncode, timed_out=timed_out, wall_seconds=wall,
        cpu_seconds=(usage.ru_utime + usage.ru_stime) if usage else 0.0,
        stdout=b"".join(out).decode("utf-8", "replace"), stderr=b"".join(err).decode("utf-8", "replace"),
        output_truncated=bool(flags.get("truncated")), isolation="process",
    )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

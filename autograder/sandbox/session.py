"""A sandbox session: one sandboxed zygote per submission, forking a clean child for every run.

Starting Python and importing numpy and gymnasium costs a few tenths of a second, more than
many runs take. A session pays it once: the zygote (``zygote.py``, trusted, started like every
sandbox under bubblewrap when it can) imports them, then forks one child per run. Each child
gets what a run of its own would: a new folder, a new ``/tmp``, ``/dev/shm`` and IPC namespace,
a new uid and session keyring (as root), its own control group (memory, tasks, CPU), its own
limits, and it is killed with everything it started when its call is done, fails or overruns.
The child never sees the zygote's pipes, and cannot signal or trace it (another uid; the zygote
is non-dumpable).

The grader's side is here: :meth:`Session.run` sends the job and has the child made; from
there on the run engine (``engine.py``) handles it exactly as a fresh process's run: placement in
its control group before it runs anything, the watchdog, the kill policy and the :class:`Outcome`.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from autograder.config import SANDBOX

from . import bwrap, reaper
from .bwrap import BUBBLEWRAP
from .engine import Run, child_env
from .limits import Limits, Outcome
from .process import LAUNCHER, LAUNCHER_IN_SANDBOX, SandboxError, isolation_mode

ZYGOTE = Path(__file__).resolve().with_name("zygote.py")
ZYGOTE_IN_SANDBOX = "/run/sandbox/zygote.py"
TEMPLATE_IN_SANDBOX = "/run/sandbox/template"
RUNS_IN_SANDBOX = "/run/sandbox/runs"
"""Where a run sees its folders under bubblewrap: fixed paths, outside the /tmp each run gets anew,
and nothing of the grader's own paths."""
MARKER = b"\x00neuroevo-run-end\x00\n"
START_SECONDS = 60.0


class _Stream:
    """Drains one output pipe of the session, cutting it into runs at the zygote's markers."""

    def __init__(self, stream, limit: int) -> None:
        self.fd, self.limit = stream.fileno(), limit
        self.lock = threading.Condition()
        self.buffer = b""
        self.runs: list[tuple[bytes, bool]] = []
        self.closed = False
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                chunk = b""
            with self.lock:
                if not chunk:
                    self.closed = True
                    self.lock.notify_all()
                    return
                self.buffer += chunk
                self._cut()
                # Keep at most ``limit`` bytes of an unfinished run, and remember it overflowed.
                if len(self.buffer) > 2 * self.limit + 256:
                    self.buffer = self.buffer[: self.limit] + b"\x00overflow\x00" + self.buffer[-256:]
                self.lock.notify_all()

    def _cut(self) -> None:
        while MARKER in self.buffer:
            text, self.buffer = self.buffer.split(MARKER, 1)
            cut = b"\x00overflow\x00" in text or len(text) > self.limit
            self.runs.append((text.replace(b"\x00overflow\x00", b"")[: self.limit], cut))

    def take(self, timeout: float = 5.0) -> tuple[str, bool]:
        """Output of the run that ended last (decoded, capped) and whether some was dropped."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not self.runs and not self.closed and time.monotonic() < deadline:
                self.lock.wait(0.05)
            text, cut = self.runs.pop(0) if self.runs else (b"", False)
        return text.decode("utf-8", "replace"), cut


class Session:
    """One zygote, started on first use, serving the runs of one submission one at a time."""

    def __init__(
        self,
        template: Path,
        runs: Path,
        *,
        preload: tuple[str, ...],
        env: Mapping[str, str] | None = None,
        tmpfs_bytes: int = SANDBOX.memory_bytes,
        output_bytes: int = SANDBOX.output_bytes,
        isolation: str | None = None,
    ):
        """``template``: read-only to every run; ``runs``: the only folder runs can write, emptied after each."""
        self.template, self.runs = Path(template).absolute(), Path(runs).absolute()
        self.preload, self.env = preload, dict(env or {})
        self.tmpfs_bytes, self.output_bytes = tmpfs_bytes, output_bytes
        self.mode = isolation_mode(isolation)
        self.proc: subprocess.Popen | None = None
        self.private_tmp = False
        self.failed = False
        """The session could not start here: the caller runs each call as a process of its own instead."""

    # --- life cycle ------------------------------------------------------------------

    def _start(self) -> None:
        cmd_r, self.cmd_w = os.pipe()
        self.status_r, status_w = os.pipe()
        sandboxed = self.mode == BUBBLEWRAP
        env = child_env(self.template, self.env)
        settings = {
            "cmd_fd": cmd_r,
            "status_fd": status_w,
            "template": TEMPLATE_IN_SANDBOX if sandboxed else str(self.template),
            "preload": list(self.preload),
            "env": dict(env),
        }
        if sandboxed:
            settings["env"]["HOME"] = RUNS_IN_SANDBOX
            command = bwrap.command(
                [sys.executable, ZYGOTE_IN_SANDBOX, json.dumps(settings)],
                workdir=self.runs,
                workdir_inside=RUNS_IN_SANDBOX,
                files={ZYGOTE: ZYGOTE_IN_SANDBOX, LAUNCHER: LAUNCHER_IN_SANDBOX, self.template: TEMPLATE_IN_SANDBOX},
                tmpfs_bytes=self.tmpfs_bytes,
                session=True,
            )
        else:
            command = [sys.executable, str(ZYGOTE), json.dumps(settings)]
        try:
            self.proc = subprocess.Popen(
                command,
                cwd=self.template,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(cmd_r, status_w),
                start_new_session=True,
            )
        finally:
            os.close(cmd_r)
            os.close(status_w)
        self.out = _Stream(self.proc.stdout, self.output_bytes)
        self.err = _Stream(self.proc.stderr, self.output_bytes)
        self.status = b""
        line = self._expect(("ready", "failed"), START_SECONDS)
        if not line or line[0] != "ready":
            detail = " ".join(line[1:]) if line else "no answer"
            self.close()
            raise SandboxError(f"the sandbox session could not start ({detail})")
        self.private_tmp = line[1:] == ["1"]
        if sandboxed and not self.private_tmp:
            self.close()
            raise SandboxError("the sandbox session cannot give each run its own /tmp here")

    def close(self) -> None:
        """End the zygote and everything left of its runs."""
        if self.proc is None:
            return
        for fd in (self.cmd_w, self.status_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        reaper.sweep(reaper.Tracker(), self.proc.pid)
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()
        self.proc = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- talking to the zygote -----------------------------------------------------------

    def _send(self, command: dict) -> None:
        os.write(self.cmd_w, (json.dumps(command) + "\n").encode())

    def _lines(self, timeout: float) -> list[list[str]]:
        """Report lines that arrived within ``timeout`` seconds (none: an empty list)."""
        ready, _, _ = select.select([self.status_r], [], [], timeout)
        if ready:
            chunk = os.read(self.status_r, 1 << 16)
            if not chunk:
                raise EOFError
            self.status += chunk
        lines = []
        while b"\n" in self.status:
            line, self.status = self.status.split(b"\n", 1)
            lines.append(line.decode("ascii", "replace").split())
        return lines

    def _expect(self, words: tuple[str, ...], timeout: float) -> list[str] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                for line in self._lines(min(0.05, max(0.0, deadline - time.monotonic()))):
                    if line and line[0] in words:
                        return line
            except EOFError:
                return None
        return None

    def _host_pid(self, inner: int) -> int | None:
        """The grader's id of the run's first process (the zygote reports the id it sees)."""
        for pid in reaper.descendants(self.proc.pid):
            if (reaper.inner_pid(pid) if self.mode == BUBBLEWRAP else pid) == inner:
                return pid
        return None

    # --- one run ---------------------------------------------------------------------------

    def run(
        self,
        run_dir: Path,
        *,
        stdin: bytes,
        limits: Limits,
        env: Mapping[str, str] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Outcome:
        """One run of the harness in ``run_dir`` (which must hold it): what happened, as ``sandbox.run`` says.

        ``stop``: asked while the run goes on; once it says True the run is ended there (``Outcome.stopped``).
        """
        if self.proc is None or self.proc.poll() is not None:
            self.close()
            self._start()
        sandboxed = self.mode == BUBBLEWRAP
        run_env = dict(env or {})
        run = Run(self.mode, limits, run_dir, run_env, spare_tasks=1)  # the zygote's child waiting for the run's pid 1
        inside = (
            f"{RUNS_IN_SANDBOX}/{Path(run_dir).relative_to(self.runs)}" if sandboxed else str(Path(run_dir).absolute())
        )
        # RLIMIT_NPROC only on the run's own uid: a user namespace's or user's count would hold the zygote's tasks.
        confinement = run.confinement(inside, count_tasks=run.account is not None)
        self._send(
            {
                "op": "run",
                "confine": confinement,
                "tmpfs_bytes": self.tmpfs_bytes,
                "private_tmp": sandboxed,
                "keep": _under_fresh_folders(),
                "env": run_env,
                "stdin": stdin.decode(),
            }
        )
        forked = self._expect(("forked",), 10.0)
        if not forked:
            self.close()
            return run.not_started("the sandbox session did not answer")
        host = self._host_pid(int(forked[1]))
        if host is not None:
            try:  # inherited by everything the run starts; the group's cpuset (if any) keeps it from widening
                run.place(host)
            except OSError:
                run.drop_group()
        cpus = reaper.allowed_cpus(host) if host is not None else []
        reports = _Reports()
        start = time.perf_counter()
        self._send({"op": "go"})
        hit = run.watch(
            lambda: [host, *reaper.descendants(host)] if host is not None else [],
            lambda timeout: self._ended(reports, timeout),
            start=start,
            stop=stop,
        )
        wall = (reports.ended or time.perf_counter()) - start
        if hit:
            run.kill()
        self._send({"op": "kill"})
        end_line = self._expect(("ended",), 10.0)
        if end_line is None:  # the zygote is gone (killed by the run, as the same user): start a new one next time
            self.close()
        leftovers = run.kill()  # the zygote has reaped the run's first process: its id may be another's now
        escaped = run.close()
        stdout = self.out.take(2.0) if self.proc else ("", False)
        stderr = self.err.take(2.0) if self.proc else ("", False)
        if not reports.started and end_line is not None and run.hit != "time":
            # The trusted setup did not finish: the sandbox failed, not the submission.
            self.close()
            raise SandboxError(f"the sandbox could not start a run: {stderr[0].strip()[-300:] or 'no message'}")
        status = reports.status
        if status is None and run.hit:
            status = 9  # stopped by the watchdog: the wait status of a SIGKILL
        elif status is None and reports.done:
            status = 0  # its result was complete; the processes it left were ended by the sandbox
        returncode = None if status is None else os.waitstatus_to_exitcode(status)
        if end_line is None and returncode is None:
            returncode = -9
        return run.outcome(
            returncode=returncode,
            wall_seconds=wall,
            cpu_seconds=int(end_line[1]) / 1e6 if end_line else 0.0,
            stdout=stdout,
            stderr=stderr,
            killed=leftovers + escaped,
            said_done=reports.done,
            cpus=cpus,
            supervisor_lost=end_line is None,
        )

    def _ended(self, reports: _Reports, timeout: float) -> bool:
        """Whether the run has ended (exited, said it was done, or lost its zygote), after reading ``timeout`` s."""
        try:
            lines = self._lines(timeout)
        except EOFError:  # the zygote is gone
            reports.ended = reports.ended or time.perf_counter()
            return True
        for word, *rest in filter(None, lines):
            if word == "started":
                reports.started = True
            elif word == "done":
                reports.done = True
            elif word == "exited":
                reports.status = int(rest[0])
            if word in ("done", "exited"):
                reports.ended = reports.ended or time.perf_counter()
        return reports.ended is not None


@dataclass
class _Reports:
    """What the zygote said of the current run: trusted setup done, results on disk (``done``), the wait status
    of its first process, and when it exited, said it was done or lost its zygote (``time.perf_counter``)."""

    started: bool = False
    done: bool = False
    status: int | None = None
    ended: float | None = None


def _under_fresh_folders() -> list[str]:
    """The Python environment's folders that lie under /tmp or /dev/shm, which each run gets anew."""
    return [str(p) for p in bwrap.python_roots() if p.parts[1:2] == ("tmp",) or p.parts[1:3] == ("dev", "shm")]

"""A sandbox session: one sandboxed zygote per submission, forking a clean child for every run.

Starting Python and importing numpy and gymnasium costs a few tenths of a second, more than
many runs take. A session pays it once: the zygote (``zygote.py``, trusted, started like every
sandbox under bubblewrap when it can) imports them, then forks one child per run. Each child
gets what a run of its own would: a new folder, a new ``/tmp``, ``/dev/shm`` and IPC namespace,
a new uid and session keyring (as root), its own control group (memory, tasks, CPU), its own
limits, and it is killed with everything it started when its call is done, fails or overruns.
The child never sees the zygote's pipes, and cannot signal or trace it (another uid; the zygote
is non-dumpable).

The grader's side is here: :meth:`Session.run` sends the job, puts the child in its control
group before it runs anything, watches time, memory and tasks every few milliseconds, and
returns an :class:`Outcome` as :func:`autograder.sandbox.run` would.
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
from pathlib import Path

from . import accounts, bwrap, reaper
from .limits import Limits, Outcome, describe, limit_passed, looks_out_of_memory
from .process import (
    BUBBLEWRAP,
    LAUNCHER,
    LAUNCHER_IN_SANDBOX,
    POLL_SECONDS,
    SandboxError,
    _child_env,
    _new_group,
    _nproc,
    isolation_mode,
    own_account,
)

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
        tmpfs_bytes: int = 2**30,
        output_bytes: int = 64 * 2**10,
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
        settings = {
            "cmd_fd": cmd_r,
            "status_fd": status_w,
            "template": TEMPLATE_IN_SANDBOX if sandboxed else str(self.template),
            "preload": list(self.preload),
            "env": _child_env(self.template, self.env),
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
                env=_child_env(self.template, self.env),
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
        run_env = dict(env or {})
        account = own_account(Path(run_dir), run_env, self.mode == BUBBLEWRAP)
        uid, gid = account or (None, None)
        group = _new_group(limits, spare=1)  # the zygote's child that waits for the run's pid 1
        settings = {
            "memory_bytes": limits.memory_bytes,
            "file_bytes": limits.file_bytes,
            "tmpfs_bytes": self.tmpfs_bytes,
            # The run's own uid counts only its own tasks (a user namespace's count would hold the zygote's).
            "nproc": _nproc(limits, self.mode == BUBBLEWRAP) if account else None,
        }
        inside = (
            f"{RUNS_IN_SANDBOX}/{Path(run_dir).relative_to(self.runs)}"
            if self.mode == BUBBLEWRAP
            else str(Path(run_dir).absolute())
        )
        self._send(
            {
                "op": "run",
                "dir": inside,
                "uid": uid,
                "gid": gid,
                "private_tmp": self.mode == BUBBLEWRAP,
                "keep": _under_fresh_folders(),
                "limits": settings,
                "env": run_env,
                "stdin": stdin.decode(),
            }
        )
        forked = self._expect(("forked",), 10.0)
        if not forked:
            self.close()
            if group:
                group.remove()
            if account:
                accounts.end(uid, gid)
            return Outcome(
                None,
                False,
                0.0,
                0.0,
                "",
                "sandbox: the session did not fork the run",
                False,
                self.mode,
                verdict="did not start: the sandbox session did not answer",
            )
        host = self._host_pid(int(forked[1]))
        cpus: list[int] = []
        if host is not None and limits.cpus:
            try:  # inherited by everything the run starts; the group's cpuset (if any) keeps it from widening
                os.sched_setaffinity(host, limits.cpus)
            except OSError:
                pass
        if host is not None:
            cpus = reaper.allowed_cpus(host)
        if group is not None and host is not None:
            try:
                for path in group.procs_files():
                    with open(path, "w") as fh:
                        fh.write(str(host))
            except OSError:
                group.remove()
                group = None
        start = time.perf_counter()
        self._send({"op": "go"})
        seen, status, said_done, ended, cpu = self._watch(host, limits, start, group, stop)
        wall = (ended or time.perf_counter()) - start
        kernel = group.usage() if group is not None else None
        self._send({"op": "kill"})
        if group is not None:
            group.kill_all()
        end_line = self._expect(("ended",), 10.0)
        if end_line is None:  # the zygote is gone (killed by the run, as the same user): start a new one next time
            self.close()
        else:
            cpu = int(end_line[1]) / 1e6
        # Whatever left the zygote's reach (a daemon that was never its child) still has the run's uid.
        escaped = accounts.end(uid, gid) if account else 0
        if group is not None:
            cpu = kernel.cpu_seconds
            group.remove()
        stdout, cut_out = self.out.take(2.0) if self.proc else ("", False)
        stderr, cut_err = self.err.take(2.0) if self.proc else ("", False)
        if not seen["started"] and end_line is not None and not seen["timeout"]:
            # The trusted setup did not finish: the sandbox failed, not the submission.
            self.close()
            raise SandboxError(f"the sandbox could not start a run: {stderr.strip()[-300:] or 'no message'}")
        if status is None and (seen["memory"] or seen["tasks"] or seen["timeout"] or seen["stopped"]):
            status = 9  # stopped by the watchdog: the wait status of a SIGKILL
        elif status is None and said_done:
            status = 0  # its result was complete; the processes it left were ended by the sandbox
        returncode = None if status is None else os.waitstatus_to_exitcode(status)
        memory_hit = seen["memory"] or bool(kernel and kernel.oom_killed)
        process_hit = not memory_hit and (seen["tasks"] or bool(kernel and kernel.pids_refused))
        outcome = Outcome(
            returncode=returncode if not seen["timeout"] else returncode,
            timed_out=seen["timeout"],
            wall_seconds=wall,
            cpu_seconds=cpu,
            stdout=stdout,
            stderr=stderr,
            output_truncated=cut_out or cut_err,
            isolation=self.mode,
            memory_exceeded=memory_hit or looks_out_of_memory(returncode, stderr),
            process_limit_hit=process_hit,
            said_done=said_done,
            killed_orphans=escaped,
            inner_pids=sorted(seen["inner"]),
            kernel_caps=group is not None,
            peak_memory_bytes=kernel.peak_memory_bytes if kernel else seen["peak"],
            cpus=cpus,
            start_methods=sorted(seen["methods"]),
            stopped=seen["stopped"],
        )
        if end_line is None:
            outcome.returncode = outcome.returncode if outcome.returncode is not None else -9
        outcome.verdict = describe(outcome, limits)
        if end_line is None:
            outcome.verdict = f"the run killed the sandbox's supervisor process ({outcome.verdict})"
        return outcome

    def _watch(self, host: int | None, limits: Limits, start: float, group, stop=None) -> tuple:
        """Until the run is done, exits or passes a limit: (what was seen, wait status, done?, end time, cpu)."""
        seen = {
            "timeout": False,
            "memory": False,
            "tasks": False,
            "inner": set(),
            "peak": 0,
            "methods": set(),
            "started": False,
            "stopped": False,
        }
        tracker = reaper.Tracker()
        status, said_done, ended = None, False, None
        while True:
            try:
                lines = self._lines(POLL_SECONDS)
            except EOFError:
                return seen, status, said_done, ended or time.perf_counter(), 0.0
            for line in lines:
                if line[:1] == ["started"]:
                    seen["started"] = True
                elif line[:1] == ["done"]:
                    said_done, ended = True, ended or time.perf_counter()
                elif line[:1] == ["exited"]:
                    status, ended = int(line[1]), ended or time.perf_counter()
            if ended:
                return seen, status, said_done, ended, 0.0
            tree = ([host] + reaper.descendants(host)) if host else []
            tracker.note(tree)
            usage = reaper.measure(tree)
            seen["peak"] = max(seen["peak"], usage.memory_bytes)
            kernel = group.usage() if group is not None else None
            hit = limit_passed(
                limits,
                memory_bytes=usage.memory_bytes,
                tasks=usage.tasks,
                kernel=kernel,
                late=time.perf_counter() - start > limits.wall_seconds,
            )
            seen["memory"], seen["tasks"], seen["timeout"] = hit == "memory", hit == "tasks", hit == "time"
            seen["inner"] = tracker.inner if self.mode == BUBBLEWRAP else set(tracker.seen)
            seen["methods"] = tracker.start_methods
            seen["stopped"] = not (seen["memory"] or seen["tasks"] or seen["timeout"]) and bool(stop and stop())
            if seen["memory"] or seen["tasks"] or seen["timeout"] or seen["stopped"]:
                return seen, status, said_done, time.perf_counter(), 0.0


def _under_fresh_folders() -> list[str]:
    """The Python environment's folders that lie under /tmp or /dev/shm, which each run gets anew."""
    return [str(p) for p in bwrap.python_roots() if p.parts[1:2] == ("tmp",) or p.parts[1:3] == ("dev", "shm")]

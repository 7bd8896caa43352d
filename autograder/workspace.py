"""The sandboxed runs of one submission: a fresh folder per run, one call per run, read back strictly.

A submission is prepared once into a *template* folder: the generated student module
(``submission.py``), the trusted helper with its recording shim (``evolution.py``) and the
harness. Every run then starts from a new copy of those files in a new folder, so nothing a
run writes (files, caches, answers) is there for any later run; the sandbox gives it a new
``/tmp``, ``/dev/shm`` and user id as well. The job goes in on standard input, never as a file.
Afterwards only the expected files are read, each opened without following links, refused
unless regular and small, and the folder is deleted whatever the run left in it.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autograder import paths, quotas, readback
from autograder.config import SANDBOX
from autograder.sandbox import Limits, Outcome, SandboxError, reaper, run
from autograder.sandbox.accounts import remove_tree
from autograder.sandbox.session import Session

RECORD_LINE_BYTES = 16 * 2**10
"""Longest episode record line read (a real one is about 1 KiB)."""
RECORD_FILES = 256
"""Most record files read from one run (one per process that played episodes)."""
TEMPLATE_FILES = ("submission.py", "evolution.py", "harness/__init__.py", "harness/__main__.py")
FIXED_TIME = 946_684_800  # 2000-01-01


@dataclass
class Episode:
    """One recorded episode: which process played it, when (``t0`` to ``t``, monotonic ns), from which start
    state, with what."""

    pid: int
    t: int
    seed: int | None
    params: dict
    ret: float
    t0: int


@dataclass
class RunResult:
    """A sandboxed run read back: its outcome, what the call returned and the episodes it recorded."""

    outcome: Outcome
    import_info: dict | None = None
    result: dict | None = None
    """The harness's record of the call (``result`` or ``error``), when it could be read."""
    episodes: list[Episode] = field(default_factory=list)
    garbled: list[str] = field(default_factory=list)
    """Why result files or record lines were refused (bad JSON, too big, wrong form)."""


def recording_helper_source() -> str:
    """The trusted evolution.py followed by the recording shim."""
    helper = paths.helper_module().read_text(encoding="utf-8")
    shim = (paths.HARNESS_DIR / "recording.py").read_text(encoding="utf-8")
    return helper.rstrip("\n") + "\n\n\n" + shim


PASSAGE = 0o711
"""Mode of the folders on the way to a run's folder: a run's account may pass through, never list or read."""


def prepare(template: Path, module_source: str) -> None:
    """Fill the ``template`` folder with the submission module, the recording helper and the harness.

    The template is the grader's alone (for the reference, it holds the reference solution): runs
    get copies in folders of their own, and may only pass through the folder above it.
    """
    (template / "harness").mkdir(parents=True, exist_ok=True)
    os.chmod(template, 0o700)
    os.chmod(template.parent, PASSAGE)
    (template / "submission.py").write_text(module_source, encoding="utf-8")
    (template / "evolution.py").write_text(recording_helper_source(), encoding="utf-8")
    for name in ("__init__.py", "__main__.py"):
        shutil.copyfile(paths.HARNESS_DIR / name, template / "harness" / name)
    # One fixed time on everything a run can see of the template: its age must not tell a run how far
    # into the grading it is.
    for path in [*(template / name for name in TEMPLATE_FILES), template / "harness", template]:
        os.utime(path, (FIXED_TIME, FIXED_TIME))


def blas_settings() -> dict[str, str]:
    """The grader's OpenBLAS settings (kernel choice, cache sizes), thread counts aside.

    OpenBLAS picks its matrix kernels from these, and kernels round differently: the
    sandbox must use the grader's, or the grader's replay of an episode can differ in the
    last bit from the submission's.
    """
    return {
        key: value for key, value in os.environ.items() if key.startswith("OPENBLAS_") and key != "OPENBLAS_NUM_THREADS"
    }


GRADER_MEMORY = 2**30
"""Memory kept for the grader itself when a container has less than a run's cap to spare."""


@functools.cache
def run_memory_bytes() -> int:
    """One run's memory cap: ``SANDBOX.memory_bytes``, lowered where the container has less to give.

    A run allowed more than the container holds would meet the container's own out-of-memory
    killer, which may pick the grader instead of the run.
    """
    available = quotas.read().effective_memory_bytes
    if available is None:
        return SANDBOX.memory_bytes
    return max(256 * 2**20, min(SANDBOX.memory_bytes, available - GRADER_MEMORY))


PRELOAD = ("numpy", "gymnasium", "evolution")
"""What a session's zygote imports once, for every run to inherit (the trusted recording helper included)."""


def session(template: Path) -> Session:
    """The sandbox session serving the runs made from ``template`` (runs write only in ``runs/`` beside it)."""
    runs = template.parent / "runs"
    runs.mkdir(exist_ok=True)
    os.chmod(runs, PASSAGE)
    _memory_backed(runs)
    return Session(
        template,
        runs,
        preload=PRELOAD,
        env=_run_env(),
        tmpfs_bytes=run_memory_bytes(),
    )


def _memory_backed(folder: Path) -> bool:
    """Mount a size-capped in-memory file system on ``folder`` (as root on Linux), so that no run can fill the disk.

    Its pages count against the writing run's memory cap as well. Elsewhere the folder stays on disk,
    each file capped by ``SANDBOX.file_bytes``.
    """
    if not (sys.platform.startswith("linux") and os.geteuid() == 0 and shutil.which("mount")):
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={run_memory_bytes()},mode={PASSAGE:o}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


def release_runs_folder(folder: Path) -> None:
    """Undo ``_memory_backed`` (a no-op on a plain folder)."""
    if os.path.ismount(folder):
        _unmount(str(Path(folder).resolve()))


OWNER_FILE = "grader.pid"
"""In a batch's scratch folder: the process id, start time and PID namespace of the grader using it."""


def _pid_namespace() -> str:
    """This process's PID namespace (``pid:[inode]``); a process id means nothing outside it."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def claim_scratch(scratch: Path) -> None:
    """Mark ``scratch`` as this grader's, so that a later batch can tell when it was abandoned."""
    (Path(scratch) / OWNER_FILE).write_text(f"{os.getpid()} {reaper.start_time(os.getpid())} {_pid_namespace()}\n")


def _unescape(field: str) -> str:
    """A path as /proc/self/mounts writes it, with its octal escapes (space, tab, newline, backslash) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts() -> list[Path]:
    """Every mount point of this process's mount namespace (none where /proc/self/mounts cannot be read)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="surrogateescape") as fh:
            return [Path(_unescape(line.split()[1])) for line in fh if len(line.split()) > 1]
    except OSError:
        return []


MNT_DETACH = 2
"""umount2's flag for a lazy unmount (``umount -l``): gone from the mount table at once, its memory freed when
the last file open in it is closed."""


@functools.cache
def _libc():
    return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _unmount(mount: str) -> None:
    """Detach ``mount`` lazily; through the C library, so that no ``umount`` program (nor PATH) is needed."""
    libc = _libc()
    if libc is not None:
        libc.umount2(os.fsencode(mount), MNT_DETACH)


def _unmount_below(folder: Path, table: list[Path]) -> None:
    """Detach every mount of ``table`` at or below ``folder``, the deepest first."""
    for mount in sorted((m for m in table if m.is_relative_to(folder)), key=lambda m: len(m.parts), reverse=True):
        _unmount(str(mount))


def release_scratch(scratch: Path) -> None:
    """Unmount everything below ``scratch``, then delete it, the owner mark last, whatever way the batch ends.

    Until the mark is gone, a later batch can still tell an abandoned scratch folder (and release it).
    The mount table holds real paths: ``scratch`` is resolved first (TMPDIR may name a link).
    """
    scratch = Path(scratch).resolve()
    _unmount_below(scratch, mounts())
    for entry in os.listdir(scratch) if scratch.is_dir() else ():
        if entry != OWNER_FILE:
            remove_tree(scratch / entry)
    remove_tree(scratch)


def release_abandoned_scratch(prefix: str) -> list[Path]:
    """Release (``release_scratch``) every scratch folder named ``<prefix>*`` whose grader is gone; those released.

    A grader killed outright (SIGKILL) leaves its memory-backed runs folders mounted. They are found
    in the mount table wherever that grader's TMPDIR pointed, however deep (a test runner's nested
    temporary folders too); a scratch folder with nothing mounted is found in this grader's own
    temporary folder. Only folders this account made and marked are candidates: a folder whose
    owner is alive, or with no owner recorded, is left alone.
    """
    table = mounts()
    candidates = set()
    for mount in table:
        candidates.update(folder for folder in (mount, *mount.parents) if folder.name.startswith(prefix))
    root = Path(tempfile.gettempdir()).resolve()
    try:
        candidates.update(root / name for name in os.listdir(root) if name.startswith(prefix))
    except OSError:
        pass
    released = []
    for folder in sorted(candidates):
        if _ours(folder) and _owner_alive(folder) is False:
            release_scratch(folder)
            released.append(folder)
    return released


def _ours(folder: Path) -> bool:
    """``folder`` is a real folder holding a regular owner mark, both made by this grader's account."""
    try:
        info, mark = os.lstat(folder), os.lstat(folder / OWNER_FILE)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and stat.S_ISREG(mark.st_mode) and info.st_uid == mark.st_uid == os.geteuid()


def _owner_alive(folder: Path) -> bool | None:
    """Whether the grader that claimed ``folder`` still runs; None (left alone) when no owner is recorded, or
    when it ran in another PID namespace (a container sharing this temporary folder), where its id cannot be
    looked up."""
    try:
        pid, started, *namespace = (folder / OWNER_FILE).read_text().split()
        if namespace and namespace != [_pid_namespace()]:
            return None
        return str(reaper.start_time(int(pid))) == started
    except (OSError, ValueError):
        return None


STOPPING = threading.Event()
"""Set while a batch stops (Ctrl-C, SIGTERM) with students still being graded in its other threads: their runs
end at once and ``run_call`` raises KeyboardInterrupt there, so that the batch ends in seconds, their work
dropped, rather than after their grading."""


def _stopping_or(stop: Callable[[], bool] | None) -> Callable[[], bool]:
    return lambda: STOPPING.is_set() or bool(stop and stop())


def _run_env() -> dict[str, str]:
    return {"NEUROEVO_AGENTS_DIR": "agents", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", **blas_settings()}


def run_call(
    template: Path,
    function: str,
    kwargs: dict,
    *,
    wall_seconds: float,
    start_method: str | None,
    expected_episodes: int = 0,
    session: Session | None = None,
    cpus: tuple[int, ...] | None = None,
    stop_after_episodes: int | None = None,
) -> RunResult:
    """One fresh run of ``function(**kwargs)`` from ``template``, read back and cleaned up.

    ``function`` None runs nothing but the import (the start-up cost). ``expected_episodes``
    bounds how many record lines are read (a few more are allowed, to report the excess).
    With a ``session`` the run is a clean child of its zygote, else a sandboxed process of its own.
    ``stop_after_episodes``: end the run (in a session) once that many episodes are recorded; nothing in
    the run tells it apart from a run left to finish until it is ended.
    """
    if STOPPING.is_set():
        raise KeyboardInterrupt
    parent = session.runs if session else template.parent
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=parent))
    try:  # the run's own: as root, its account owns it (sandbox.run and Session.run give it over)
        os.chmod(workdir, 0o700)
        for name in TEMPLATE_FILES:
            (workdir / name).parent.mkdir(exist_ok=True)
            shutil.copyfile(template / name, workdir / name)
        for name in ("out", "record"):
            (workdir / name).mkdir()
        job = {"function": function, "kwargs": kwargs, "start_method": start_method}
        limits = Limits(wall_seconds=wall_seconds, memory_bytes=run_memory_bytes(), cpus=cpus)
        if session is not None and not session.failed:
            try:
                stop = _EpisodeCount(workdir / "record", stop_after_episodes) if stop_after_episodes else None
                outcome = session.run(workdir, stdin=json.dumps(job).encode(), limits=limits, stop=_stopping_or(stop))
            except SandboxError:  # no session here (no private /tmp per run): a sandboxed process per run
                session.failed = True
        if session is None or session.failed:
            outcome = run(
                [sys.executable, "-m", "harness"],
                workdir=workdir,
                limits=limits,
                env=_run_env(),
                stdin=json.dumps(job).encode(),
                stop=STOPPING.is_set,
            )
        if STOPPING.is_set():  # ended by the batch's stop, not by the student's code: no verdict on it
            raise KeyboardInterrupt
        if outcome.verdict.startswith("did not start"):  # the sandbox failed before any student code ran
            raise SandboxError(f"the sandbox could not start a run ({outcome.verdict})")
        result = RunResult(outcome=outcome)
        result.import_info = _read_result(workdir / "out" / "import.json", result)
        if function:
            result.result = _read_result(workdir / "out" / "result.json", result)
            _read_records(workdir / "record", result, max_lines=expected_episodes + 64)
        return result
    finally:
        remove_tree(workdir)
        if session is not None:  # whatever else the run left in the runs folder goes too
            for entry in os.listdir(session.runs):
                remove_tree(session.runs / entry)


class _EpisodeCount:
    """True once the record folder holds ``wanted`` lines: read-only, links and odd files skipped,
    looked at every ``EVERY`` seconds at most."""

    EVERY = 0.02

    def __init__(self, folder: Path, wanted: int):
        self.folder, self.wanted, self.last = folder, wanted, 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.EVERY:
            return False
        self.last, lines = now, 0
        for entry in _record_files(self.folder):
            try:
                data = _open_regular(Path(entry.path), self.wanted * RECORD_LINE_BYTES)
            except readback.Invalid:
                continue
            lines += data.count(b"\n") if data else 0
        return lines >= self.wanted


def _open_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a link, FIFO or device) of at most ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise readback.Invalid(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise readback.Invalid(f"{path.name} is {info.st_size} bytes, more than the {max_bytes} allowed")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)


def _read_result(path: Path, result: RunResult) -> dict | None:
    try:
        data = _open_regular(path, SANDBOX.result_bytes)
        if data is None:
            return None
        parsed = readback.parse_json(data.decode("utf-8", "replace"))
    except readback.Invalid as exc:
        result.garbled.append(f"{path.name}: {exc}")
        return None
    if not isinstance(parsed, dict):
        result.garbled.append(f"{path.name}: not a JSON object")
        return None
    return parsed


def _record_files(folder: Path) -> list[os.DirEntry]:
    """The entries of a run's record folder, by name, at most ``RECORD_FILES`` (none if it cannot be listed)."""
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)[:RECORD_FILES]
    except OSError:
        return []


def _read_records(folder: Path, result: RunResult, *, max_lines: int) -> None:
    """Episode records: one ``<pid>.jsonl`` per process, read line by line within fixed budgets."""
    budget, lines = max_lines * RECORD_LINE_BYTES, 0
    for entry in _record_files(folder):
        if not (entry.name.endswith(".jsonl") and entry.name[:-6].isdigit()):
            result.garbled.append(f"unexpected file in the episode records: {entry.name[:60]}")
            continue
        try:
            data = _open_regular(Path(entry.path), budget)
        except readback.Invalid as exc:
            result.garbled.append(f"episode record {exc}")
            continue
        if data is None:
            continue
        budget -= len(data)
        for raw in data.splitlines():
            lines += 1
            if lines > max_lines:
                result.garbled.append(f"too many recorded episodes (more than {max_lines})")
                return
            try:
                if len(raw) > RECORD_LINE_BYTES:
                    raise readback.Invalid(f"a line of {len(raw)} bytes")
                result.episodes.append(_episode(readback.parse_json(raw.decode("utf-8", "replace"))))
            except (readback.Invalid, TypeError) as exc:
                result.garbled.append(f"episode record line refused: {exc}")
    result.episodes.sort(key=lambda e: (e.t, e.pid))


def _episode(line) -> Episode:
    if not isinstance(line, dict):
        raise readback.Invalid("not a JSON object")
    seed = line.get("seed")
    if seed is not None:
        seed = readback.integer(seed, "seed")
    return Episode(
        pid=readback.integer(line.get("pid"), "pid"),
        t=readback.integer(line.get("t"), "t"),
        t0=readback.integer(line.get("t0"), "t0"),
        seed=seed,
        params=readback.params(line.get("params"), "recorded params"),
        ret=readback.finite(line.get("ret"), "recorded return"),
    )

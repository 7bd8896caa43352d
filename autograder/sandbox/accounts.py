"""A fresh unprivileged account for every run of a root grader, and an end to everything it left.

A grader running as root never runs student code as root, with bubblewrap or without. Each run
gets a uid and gid of its own (:func:`next_ids`), drawn at random far above any real account and
never handed out twice by one grader process, so nothing tied to a uid (its processes, its
process count, its kernel keyring, files it owns) can belong to another run. The trusted
launcher or zygote switches to it before any student code runs (``launcher.drop_privileges``):
no supplementary groups, no capabilities, no new privileges.

After the run :func:`end` makes sure nothing of the account is left, whatever the run did:

* **processes**: every process of the uid is killed with one ``kill(-1, SIGKILL)`` sent *as that
  uid* (the kernel signals every process the sender may signal, and a fork racing with it fails),
  repeated until ``/proc`` shows none. A double-forked daemon that left the run's process tree
  cannot hide from it, and no process of another run or of the grader can be hit;
* **files** it owns in the folders every user may write (``/tmp``, ``/var/tmp``, ``/dev/shm``,
  ``/dev/mqueue``, ``/run/lock`` and the world-writable folders inside them);
* **System V IPC** objects (shared memory, semaphores, message queues) it owns.

Linux only; elsewhere there is no root grader to drop from and every function does nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from . import reaper

UID_BASE = 100_000_000
"""Lowest uid handed to a run: far above any real account (and below the 32-bit 'nobody' range)."""
UID_SPAN = 2**30
SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock")
"""Folders any user may create files in: what a run leaves there must go with it."""
MAX_SCANNED = 100_000
"""Entries looked at in the shared folders per clean-up (a run cannot make the grader walk for ever)."""
KILL_ROUNDS = 50

_handed_out: set[int] = set()


def is_root() -> bool:
    """The grader runs as root: every run is switched to an account of its own."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def next_ids() -> tuple[int, int]:
    """A fresh (uid, gid) for one run, never the same twice in this grader process."""
    while True:
        n = UID_BASE + secrets.randbelow(UID_SPAN)
        if n not in _handed_out:
            _handed_out.add(n)
            return n, n


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """Give the run's account its folder and everything in it (never following symbolic links)."""
    os.chown(root, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


def open_passage(paths: Iterable[Path]) -> list[str]:
    """Let every account pass through (``o+x``, never read) each folder above ``paths``; the folders changed.

    A run's account must reach its own folder and the Python environment, which may lie below a
    folder closed to other users (``/root`` holding a pyenv interpreter, a private TMPDIR).
    """
    changed: list[str] = []
    for path in paths:
        for folder in reversed(Path(path).absolute().parents):
            try:
                mode = folder.stat().st_mode
            except OSError:
                continue
            if not mode & stat.S_IXOTH:
                os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)
                changed.append(str(folder))
    return changed


# ---------------------------------------------------------------- processes


def _uids_of(pid: str) -> tuple[set[int], bool] | None:
    """The real, effective, saved and file-system uids of a process, and whether it is a zombie."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            text = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    uids: set[int] = set()
    zombie = False
    for line in text.splitlines():
        if line.startswith("Uid:"):
            uids = {int(v) for v in line.split()[1:]}
        elif line.startswith("State:"):
            zombie = line.split()[1:2] in (["Z"], ["X"])
    return uids, zombie


def _live_processes() -> Iterator[tuple[int, set[int]]]:
    """(pid, user ids) of every live (not zombie) process."""
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        info = _uids_of(entry) if entry.isdigit() else None
        if info and not info[1]:
            yield int(entry), info[0]


def processes_of(uid: int) -> list[int]:
    """Live processes that hold ``uid`` as any of their user ids."""
    return [pid for pid, uids in _live_processes() if uid in uids]


def _kill_as(uid: int, gid: int) -> None:
    """``kill(-1, SIGKILL)`` from a process of ``uid``: every process of that uid, and nothing else."""
    subprocess.run(
        [sys.executable, "-I", "-S", "-c", "import os, signal; os.kill(-1, signal.SIGKILL)"],
        user=uid,
        group=gid,
        extra_groups=[],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def kill_all(uid: int, gid: int | None = None) -> int:
    """End every process of ``uid``; how many there were."""

    def kill_as_uid(alive: list[int]) -> None:
        try:
            _kill_as(uid, uid if gid is None else gid)
        except (OSError, subprocess.SubprocessError):  # the killer could not start: one by one instead
            for pid in alive:
                reaper.kill(pid)

    return reaper.kill_until_gone(lambda: processes_of(uid), rounds=KILL_ROUNDS, kill_all=kill_as_uid)


# ---------------------------------------------------------------- files and IPC


def _world_writable(mode: int) -> bool:
    return stat.S_ISDIR(mode) and bool(mode & stat.S_IWOTH)


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything below it, however deep, without following links.

    ``rm -rf`` walks a tree of any depth with constant stack (Python's ``shutil.rmtree`` recurses
    and fails on a few thousand nested folders); files a run made read-only or owned by its
    uid are no obstacle to root, and a non-root grader first makes folders writable again.
    """
    if not os.path.lexists(path):
        return
    rm = shutil.which("rm")
    if rm:
        done = subprocess.run([rm, "-rf", "--one-file-system", "--", str(path)], capture_output=True)
        if done.returncode != 0 and os.path.lexists(path):
            subprocess.run(["chmod", "-R", "u+rwx", str(path)], capture_output=True)
            subprocess.run([rm, "-rf", "--one-file-system", "--", str(path)], capture_output=True)
    else:  # not POSIX
        shutil.rmtree(path, ignore_errors=True)


def _remove(path: str, mode: int) -> None:
    """A file at once; a folder, however deep, with ``remove_tree``."""
    if stat.S_ISDIR(mode):
        remove_tree(Path(path))
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_files_of(uid: int, roots: tuple[str, ...] = SHARED_WRITABLE) -> list[str]:
    """Delete what ``uid`` owns in the shared writable folders (and world-writable folders inside them).

    Only other accounts' entries count against ``MAX_SCANNED``, and each root has its own budget:
    a run that fills one folder with files of its own cannot hide others from the sweep.
    """
    removed: list[str] = []
    for root in roots:
        if not os.path.isdir(root) or os.path.islink(root):
            continue
        todo, foreign = [root], 0
        while todo and foreign < MAX_SCANNED:
            folder = todo.pop()
            try:
                entries = os.scandir(folder)
            except OSError:
                continue
            with entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if info.st_uid == uid:
                        _remove(entry.path, info.st_mode)
                        removed.append(entry.path)
                        continue
                    foreign += 1
                    if _world_writable(info.st_mode):
                        todo.append(entry.path)
    return removed


_IPC_KINDS = {"shm": "shmctl", "msg": "msgctl", "sem": "semctl"}
IPC_RMID = 0


def remove_ipc_of(uid: int) -> int:
    """Remove the System V shared memory, message queues and semaphores ``uid`` owns or created."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    removed = 0
    for kind, call in _IPC_KINDS.items():
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        if not lines:
            continue
        header = lines[0].split()
        columns = [header.index(name) for name in ("uid", "cuid") if name in header]
        for line in lines[1:]:
            values = line.split()
            if any(int(values[c]) == uid for c in columns):
                ident = int(values[1])
                if call == "semctl":
                    libc.semctl(ident, 0, IPC_RMID)
                else:
                    getattr(libc, call)(ident, IPC_RMID, None)
                removed += 1
    return removed


# ---------------------------------------------------------------- the end of a run


def end(uid: int, gid: int | None = None) -> int:
    """Kill every process of ``uid``, then remove its files in shared folders and its IPC objects.

    Returns how many of its processes were still alive (outside the run's process tree, if the
    run's own clean-up came first)."""
    if not sys.platform.startswith("linux") or not is_root():
        return 0
    processes = kill_all(uid, gid)
    try:
        remove_files_of(uid)
        remove_ipc_of(uid)
    except Exception:  # whatever a run left, it must never make the grader fail (the next run has another uid)
        pass
    return processes


def end_every_account() -> int:
    """End whatever is left of every account this grader handed out (before its last word is written)."""
    if not sys.platform.startswith("linux") or not is_root():
        return 0
    owners = {uid for _, uids in _live_processes() for uid in uids & _handed_out}
    return sum(kill_all(uid) for uid in sorted(owners))

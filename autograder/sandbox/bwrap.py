"""Bubblewrap command lines, and whether bubblewrap works on this machine.

The sandbox sees: its working folder (read-write, at its real path), the Python environment
(the venv and the interpreter it points to) and the system's ``/usr``-style folders read-only,
fresh ``/proc``, ``/dev`` and ``/tmp``, and nothing else: no home folders, no project tree, no
network, no other process. When the grader runs as root, bubblewrap runs privileged (no
user namespace) and keeps only CAP_SETUID/CAP_SETGID so the launcher can switch to an
unprivileged uid before any untrusted code runs; as another user, bubblewrap makes a user
namespace and the launcher's RLIMIT_NPROC counts only the sandbox's own processes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from . import accounts

ENV_MODE = "NEUROEVO_SANDBOX"
"""Environment variable choosing the isolation: "auto" (default), "bubblewrap" or "process"."""
BUBBLEWRAP = "bubblewrap"
PROCESS = "process"

# Top-level system folders the interpreter and its shared libraries may live in.
SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
# Single files from /etc the dynamic loader and the C library read.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "localtime")

# Mount points bubblewrap creates itself (with their own modes).
FRESH_DIRS = (Path("/"), Path("/tmp"), Path("/dev"), Path("/proc"))


def executable() -> str | None:
    """Path of the ``bwrap`` program, or None if it is not installed."""
    return shutil.which("bwrap")


def python_roots() -> list[Path]:
    """Folders the running Python needs: the venv, the base interpreter it points to, their real paths."""
    candidates = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        Path(sys.executable).parent,
        Path(os.path.realpath(sys.executable)).parent.parent,
    ]
    roots: list[Path] = []
    for c in candidates:
        for p in (Path(c).absolute(), Path(os.path.realpath(c))):
            if p.is_dir() and p not in roots:
                roots.append(p)
    # Keep only outermost folders: binding a folder inside another bound one is redundant.
    return [p for p in roots if not any(q != p and q in p.parents for q in roots)]


def _covered(path: Path) -> bool:
    """``path`` is already visible through the system folders."""
    parts = path.parts
    return len(parts) > 1 and parts[1] in SYSTEM_DIRS


SESSION_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_KILL")
"""What a session's zygote keeps: switching each run to its own uid, mounting each run's own /tmp and
/dev/shm, killing each run's processes. Every run drops them all before running anything."""


def command(
    launcher: Sequence[str],
    *,
    workdir: Path,
    files: Mapping[Path, str] | None = None,
    tmpfs_bytes: int = 2**30,
    session: bool = False,
    workdir_inside: str | None = None,
) -> list[str]:
    """The ``bwrap`` argv that runs ``launcher`` inside the sandbox, in ``workdir``.

    ``files`` maps host files to the read-only path they get inside the sandbox;
    ``tmpfs_bytes`` caps each in-memory folder (/tmp, /dev/shm).
    """
    exe = executable()
    if exe is None:
        raise FileNotFoundError("bwrap not found")
    args = [
        exe,
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    caps = SESSION_CAPS if session else ("CAP_SETUID", "CAP_SETGID")
    if accounts.is_root():
        args += ["--cap-drop", "ALL"] + [arg for cap in caps for arg in ("--cap-add", cap)]
    else:
        args += ["--unshare-user"] + ([arg for cap in caps for arg in ("--cap-add", cap)] if session else [])
    for name in SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for name in ETC_FILES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    # Fresh /proc, /dev and /tmp; a world-writable /dev/shm for multiprocessing's semaphores. Both
    # live in memory the watchdog does not see, hence their size cap.
    size = str(tmpfs_bytes)
    args += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/dev/shm",
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
    ]
    readonly = [root for root in python_roots() if not _covered(root)]
    workdir_at = Path(workdir_inside or workdir)
    args += _parent_dirs([*readonly, *map(Path, (files or {}).values()), workdir_at])
    for path in readonly:
        args += ["--ro-bind", str(path), str(path)]
    for host, inside in (files or {}).items():
        args += ["--ro-bind", str(host), inside]
    # The launcher enters workdir itself, after switching to the uid that owns it.
    args += ["--bind", str(workdir), str(workdir_at), "--chdir", "/", "--", *launcher]
    return args


def _parent_dirs(paths: Iterable[Path]) -> list[str]:
    """Create the folders leading to each bind point world-traversable (bwrap would make them 0700)."""
    args: list[str] = []
    made: set[Path] = set()
    for path in paths:
        for parent in reversed(path.parents):
            if parent in made or parent in FRESH_DIRS or _covered(parent) or parent.parts[1] in ("proc", "dev"):
                continue
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args

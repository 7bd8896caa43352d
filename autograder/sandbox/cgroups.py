"""Kernel-enforced caps and accounting for one run: a control group of its own (v2 or v1).

Limits set per process (RLIMIT_AS) miss memory that processes share: ``MAP_SHARED``
anonymous pages, files in an in-memory ``/tmp`` or ``/dev/shm``. A control group counts every
page its processes touch, shared or not, and the kernel stops the run at the cap itself. It
also caps the number of tasks (a fork bomb gets ``EAGAIN``, not the machine), and adds up the
CPU time of every process that ever ran in it, waited for or not.

Each run gets a fresh group below the grader's own, created before the run starts, given the
run's first process before that runs anything, and removed afterwards (after killing
whatever is still in it). Without a writable cgroup file system (macOS, an unprivileged
container) :func:`available` says why, and the caller falls back to its own watchdog.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from . import reaper

ROOT = Path("/sys/fs/cgroup")


@dataclass
class GroupUsage:
    """What the kernel counted for one run's group."""

    cpu_seconds: float = 0.0
    """User + system CPU time of every task that ran in the group."""
    peak_memory_bytes: int = 0
    """Highest memory charged to the group (shared and file-backed pages included)."""
    oom_killed: bool = False
    """The kernel killed a task of the group for going over the memory cap."""
    pids_refused: bool = False
    """A fork or thread creation was refused because the task cap was reached."""


def _own_path(controller: str | None) -> str:
    """This process's group path in the hierarchy holding ``controller`` (None: the v2 one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller is None and names == "") or (controller and controller in names.split(",")):
            return path
    return "/"


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK)


class Group:
    """One run's control group: create, add the run's first process, read, kill, remove."""

    def __init__(self, dirs: dict[str, Path], version: int):
        self.dirs, self.version = dirs, version

    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files the run's first process writes its pid to."""
        return [str(d / "cgroup.procs") for d in dict.fromkeys(self.dirs.values())]

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the group (before it runs anything of the run's)."""
        for path in self.procs_files():
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, str(pid).encode())
            finally:
                os.close(fd)

    def _read(self, controller: str, name: str) -> str:
        try:
            return (self.dirs[controller] / name).read_text()
        except (OSError, KeyError):
            return ""

    def _keyed(self, controller: str, name: str) -> dict[str, int]:
        out = {}
        for line in self._read(controller, name).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        return out

    def usage(self) -> GroupUsage:
        """The kernel's counts for the run so far."""
        if self.version == 2:
            cpu = self._keyed("cpu", "cpu.stat").get("usage_usec", 0) / 1e6
            peak = self._read("memory", "memory.peak").strip()
            events = self._keyed("memory", "memory.events")
            pid_events = self._keyed("pids", "pids.events")
            return GroupUsage(
                cpu, int(peak) if peak.isdigit() else 0, events.get("oom_kill", 0) > 0, pid_events.get("max", 0) > 0
            )
        cpu_text = self._read("cpuacct", "cpuacct.usage").strip()
        peak = self._read("memory", "memory.max_usage_in_bytes").strip()
        oom = self._keyed("memory", "memory.oom_control")
        return GroupUsage(
            int(cpu_text) / 1e9 if cpu_text.isdigit() else 0.0,
            int(peak) if peak.isdigit() else 0,
            oom.get("oom_kill", 0) > 0 or oom.get("under_oom", 0) > 0,
            self._keyed("pids", "pids.events").get("max", 0) > 0,
        )

    def memory_bytes(self) -> int:
        """Memory charged to the group now."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        text = self._read("memory", name).strip()
        return int(text) if text.isdigit() else 0

    def pids(self) -> list[int]:
        """Processes in the group now."""
        found: set[int] = set()
        for path in self.procs_files():
            try:
                found.update(int(p) for p in Path(path).read_text().split())
            except (OSError, ValueError):
                continue
        return sorted(found)

    def kill_all(self) -> int:
        """SIGKILL every process in the group until it is empty; how many were found."""
        if self.version == 2 and (self.dirs["pids"] / "cgroup.kill").exists():
            try:
                (self.dirs["pids"] / "cgroup.kill").write_text("1")
            except OSError:
                pass
        return reaper.kill_until_gone(self.pids, rounds=500, pause=0.002)

    def remove(self) -> None:
        """Kill what is left and delete the group's folders."""
        self.kill_all()
        for path in dict.fromkeys(self.dirs.values()):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a task is still exiting
                    time.sleep(0.005)


class Controller:
    """Creates one group per run under the grader's own group, with its memory, task and CPU accounting."""

    def __init__(self) -> None:
        self.version, self.parents, self.problem = 0, {}, ""
        v2 = ROOT / "cgroup.controllers"
        if v2.is_file():
            parent = ROOT / _own_path(None).lstrip("/")
            enabled = (
                set((parent / "cgroup.subtree_control").read_text().split())
                if (parent / "cgroup.subtree_control").is_file()
                else set()
            )
            missing = {"memory", "pids", "cpu"} - enabled
            if missing:
                self.problem = (
                    f"cgroup v2 controllers {', '.join(sorted(missing))} are not enabled for {parent}'s children"
                )
            elif not _writable_dir(parent):
                self.problem = f"{parent} is not writable (run the grader as root or delegate the cgroup)"
            else:
                self.version, self.parents = 2, {c: parent for c in ("memory", "pids", "cpu")}
            return
        found = {}
        for controller in ("memory", "pids", "cpuacct"):
            mount = next(
                (d for d in (ROOT / controller, ROOT / f"cpu,{controller}", ROOT / f"{controller},cpu") if d.is_dir()),
                None,
            )
            if mount is None:
                self.problem = f"no cgroup v1 hierarchy for {controller} under {ROOT}"
                return
            parent = mount / _own_path(controller).lstrip("/")
            if not _writable_dir(parent):
                self.problem = f"{parent} is not writable (run the grader as root)"
                return
            found[controller] = parent
        self.version, self.parents = 1, found

    @property
    def available(self) -> bool:
        return self.version > 0

    def _cpuset_parent(self) -> Path | None:
        """Where a run's cpuset group goes, or None without a writable cpuset controller."""
        if self.version == 2:
            parent = self.parents["memory"]
            enabled = (
                (parent / "cgroup.subtree_control").read_text().split()
                if (parent / "cgroup.subtree_control").is_file()
                else []
            )
            return parent if "cpuset" in enabled else None
        mount = ROOT / "cpuset"
        parent = mount / _own_path("cpuset").lstrip("/")
        return parent if _writable_dir(parent) and (parent / "cpuset.cpus").is_file() else None

    def create(self, *, memory_bytes: int, max_tasks: int, cpus: tuple[int, ...] | None = None) -> Group:
        """A new empty group with these caps (raises OSError if the kernel refuses).

        ``cpus``: pin the group to these cores (a cpuset a task cannot widen), where the machine
        has a writable cpuset controller; elsewhere the caller's CPU affinity alone applies.
        """
        name = f"run-{secrets.token_hex(8)}"  # a run can read its group's name: it must tell it nothing
        parents = dict(self.parents)
        cpuset = self._cpuset_parent() if cpus else None
        if cpuset is not None:
            parents["cpuset"] = cpuset
        dirs = {key: parent / name for key, parent in parents.items()}
        for path in dict.fromkeys(dirs.values()):
            path.mkdir()
        group = Group(dirs, self.version)
        try:
            if self.version == 2:
                _write(dirs["memory"] / "memory.max", str(memory_bytes))
                _write(dirs["memory"] / "memory.swap.max", "0", optional=True)
                _write(dirs["pids"] / "pids.max", str(max_tasks))
            else:
                _write(dirs["memory"] / "memory.limit_in_bytes", str(memory_bytes))
                _write(dirs["memory"] / "memory.memsw.limit_in_bytes", str(memory_bytes), optional=True)
                _write(dirs["pids"] / "pids.max", str(max_tasks))
            if cpuset is not None:
                if self.version == 1:  # v1 needs the memory nodes too before a task may join
                    _write(dirs["cpuset"] / "cpuset.mems", (cpuset / "cpuset.mems").read_text().strip())
                _write(dirs["cpuset"] / "cpuset.cpus", ",".join(map(str, cpus)))
        except OSError:
            group.remove()
            raise
        return group


def _write(path: Path, text: str, optional: bool = False) -> None:
    try:
        path.write_text(text)
    except OSError:
        if not optional:
            raise


_CONTROLLER: Controller | None = None


def controller() -> Controller:
    """The machine's cgroup controller, probed once per grader process."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = Controller()
    return _CONTROLLER

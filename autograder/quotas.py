"""The CPU and memory this process can really use: its CPU affinity, and its control group's caps.

In a container, ``os.cpu_count()`` and the affinity mask describe the host: Gradescope runs the
grader in a Docker container whose CPU is a CFS quota (a share of a big machine, in CPU-seconds
per second) and whose memory is a cgroup limit. A grader that trusts the core count starts too
many workers, and timed runs then share a quota of one or two CPUs: the speedup it measures is
the quota's, not the submission's. :func:`read` finds the real figures, :func:`problems` says
which are too small for grading, :func:`jobs_cap` how many grading jobs fit.

How the figures are found (everything below ``root``, so tests can build a fake tree):

* the process's group in each hierarchy from ``/proc/self/cgroup``, and where each hierarchy is
  mounted from ``/proc/self/mountinfo`` (``/proc/mounts`` where that is missing);
* a controller is read in the v1 hierarchy that carries it, else in the v2 hierarchy when its
  ``cgroup.controllers`` lists it (a hybrid machine binds ``cpu`` and ``memory`` to v1 and
  leaves the v2 one empty);
* from the process's own group up to the top of the mount, since a parent's cap binds every
  group below it: the smallest cap found counts.

Reading never raises. A group folder without the file has no cap at that level (a root group
has none); a cap file that cannot be read or parsed makes the figure unknown, unless another
level has a cap, which binds whatever the unreadable one says.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

UNKNOWN = "unknown"
"""Source of a figure that could not be read (the figure is None)."""

V1_NO_MEMORY_LIMIT_FROM = 2**62
"""v1 ``memory.limit_in_bytes`` at or above this means no limit: the kernel shows "unlimited" as
2**63 less a page (9223372036854771712 with 4 KiB pages), and no machine has 2**62 bytes."""

V1_NO_CPU_QUOTA = -1
"""v1 ``cpu.cfs_quota_us`` of a group without a quota."""

GRADESCOPE_SETTINGS = "the Autograder Settings section of the assignment's settings"
"""Where Gradescope's documentation says an assignment's CPU allocation and memory limit are raised."""

_MOUNTINFO_ESCAPE = re.compile(r"\\([0-7]{3})")  # the kernel writes a space in a path as \040


@dataclass(frozen=True)
class Quota:
    """The CPUs and memory this process may use, and where each figure came from.

    ``effective_cpus`` and ``effective_memory_bytes`` are the binding ones: the smaller of the
    cgroup cap and what the machine offers (None when neither is known).
    """

    affinity_cpus: int
    """Cores the process may be scheduled on (``sched_getaffinity``, else ``os.cpu_count()``)."""
    affinity_source: str
    quota_cpus: float | None
    """CPU-seconds per second the control group allows (None: no quota, or unknown: see the source)."""
    quota_source: str
    memory_bytes: int | None
    """The control group's memory cap (None: no cap, or unknown: see the source)."""
    memory_source: str
    physical_memory_bytes: int | None
    """The machine's memory (``MemTotal`` of ``/proc/meminfo``, else ``os.sysconf``)."""
    physical_memory_source: str

    @property
    def quota_binds(self) -> bool:
        """The CPU quota, not the affinity mask, limits the CPUs."""
        return self.quota_cpus is not None and self.quota_cpus < self.affinity_cpus

    @property
    def effective_cpus(self) -> float:
        """CPUs the process can keep busy: the smaller of affinity and quota."""
        return float(self.quota_cpus if self.quota_binds else self.affinity_cpus)

    @property
    def effective_cpus_source(self) -> str:
        return self.quota_source if self.quota_binds else self.affinity_source

    @property
    def memory_binds(self) -> bool:
        """The control group's cap, not the machine's memory, limits the memory."""
        return self.memory_bytes is not None and (
            self.physical_memory_bytes is None or self.memory_bytes < self.physical_memory_bytes
        )

    @property
    def effective_memory_bytes(self) -> int | None:
        """Memory the process can use: the smaller of the cgroup cap and the machine's memory."""
        return self.memory_bytes if self.memory_binds else self.physical_memory_bytes

    @property
    def effective_memory_source(self) -> str:
        return self.memory_source if self.memory_binds else self.physical_memory_source

    def as_dict(self) -> dict:
        """Every figure and source, effective ones included, ready for results.json ``extra_data``."""
        return {
            **asdict(self),
            "effective_cpus": self.effective_cpus,
            "effective_cpus_source": self.effective_cpus_source,
            "effective_memory_bytes": self.effective_memory_bytes,
            "effective_memory_source": self.effective_memory_source,
        }


def read(root: Path = Path("/"), *, affinity_cpus: int | None = None) -> Quota:
    """This process's CPU and memory figures, every file read below ``root``; never raises.

    ``affinity_cpus``: the affinity count to use instead of asking the OS (tests). The
    ``os.sysconf`` fallback for the machine's memory applies only to the real root.
    """
    if affinity_cpus is not None:
        affinity, affinity_source = affinity_cpus, "given by the caller"
    else:
        affinity, affinity_source = _os_affinity()
    hierarchies = _Hierarchies(root)
    quota, quota_source = hierarchies.cpu_quota()
    memory, memory_source = hierarchies.memory_limit()
    physical, physical_source = _physical_memory(root)
    return Quota(affinity, affinity_source, quota, quota_source, memory, memory_source, physical, physical_source)


def problems(quota: Quota, *, cpus_needed: int, memory_needed: int) -> list[str]:
    """One line for staff per figure too small to grade with, naming the cause and the fix.

    ``cpus_needed``: workers the speedup category times in parallel (``SpeedupSettings.processes``);
    ``memory_needed``: a sandboxed run's cap (``SandboxSettings.memory_bytes``). An unknown
    memory figure is not reported: the grader cannot tell, and runs are capped anyway.
    """
    found = []
    if quota.effective_cpus < cpus_needed:
        found.append(
            f"the grader has {_cpus_text(quota.effective_cpus)} effective CPU"
            f"{'' if quota.effective_cpus == 1 else 's'} ({quota.effective_cpus_source}): the speedup category "
            f"needs at least {cpus_needed}, or its timed runs measure the grader's CPU share, not the submission; "
            f"on Gradescope raise the CPU allocation in {GRADESCOPE_SETTINGS}"
        )
    memory = quota.effective_memory_bytes
    if memory is not None and memory < memory_needed:
        found.append(
            f"the grader has {_bytes_text(memory)} of memory ({quota.effective_memory_source}): a sandboxed run "
            f"may use up to {_bytes_text(memory_needed)}, so a run within its cap can get the whole grader killed; "
            f"on Gradescope raise the memory limit in {GRADESCOPE_SETTINGS}"
        )
    return found


def jobs_cap(quota: Quota, per_job_cpus: int) -> int:
    """Grading jobs the CPUs allow at once, each keeping ``per_job_cpus`` busy (at least 1)."""
    if per_job_cpus < 1:
        raise ValueError(f"per_job_cpus must be at least 1, not {per_job_cpus}")
    # a quota of 400000/100000 is exactly 4.0, but leave room for a quotient a hair below a whole number
    return max(1, math.floor(quota.effective_cpus / per_job_cpus + 1e-9))


# --- reading ---


def _os_affinity() -> tuple[int, str]:
    try:
        return len(os.sched_getaffinity(0)), "CPU affinity"
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1, "os.cpu_count"


def _physical_memory(root: Path) -> tuple[int | None, str]:
    text = _text(root / "proc/meminfo")
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "MemTotal:" and parts[1].isdigit() and parts[2] == "kB":
            return int(parts[1]) * 1024, "/proc/meminfo MemTotal"
    if root == Path("/"):
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "os.sysconf"
        except (AttributeError, ValueError, OSError):
            pass
    return None, UNKNOWN


def _text(path: Path) -> str | None:
    """The file's text, or None if it cannot be read."""
    try:
        return path.read_text()
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class _Mount:
    version: int
    """1 or 2."""
    point: PurePosixPath
    """Where the hierarchy is mounted, as the process sees it (``/sys/fs/cgroup/cpu``)."""
    top: str
    """The group the mount shows at its mount point (``/`` unless a sub-tree is bind-mounted)."""
    options: frozenset[str]
    """Super-block options: a v1 mount's controllers are among them."""


_NO_CAP = "no cap"
"""A level's cap file says there is none (or the level has no such file)."""


class _Hierarchies:
    """The cgroup mounts and the process's groups, as found below ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.mounts = self._mounts()
        self.groups = self._groups()

    def _mounts(self) -> list[_Mount]:
        found = []
        text = _text(self.root / "proc/self/mountinfo")
        if text is not None:
            # id parent major:minor root mount-point options [optional...] - fstype source super-options
            for line in text.splitlines():
                before, sep, after = line.partition(" - ")
                fields, tail = before.split(), after.split()
                if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
                    continue
                if not fields[4].startswith("/"):  # garbled: a mount point is absolute
                    continue
                found.append(
                    _Mount(
                        1 if tail[0] == "cgroup" else 2,
                        PurePosixPath(_unescape(fields[4])),
                        _unescape(fields[3]),
                        frozenset(tail[2].split(",")),
                    )
                )
            return found
        # /proc/mounts: source mount-point fstype options dump pass (no sub-tree: assume the whole hierarchy)
        for line in (_text(self.root / "proc/mounts") or "").splitlines():
            fields = line.split()
            if len(fields) >= 4 and fields[2] in ("cgroup", "cgroup2") and fields[1].startswith("/"):
                version = 1 if fields[2] == "cgroup" else 2
                found.append(_Mount(version, PurePosixPath(_unescape(fields[1])), "/", frozenset(fields[3].split(","))))
        return found

    def _groups(self) -> dict[str, str]:
        """The process's group per v1 controller, and under "" its v2 group."""
        groups = {}
        for line in (_text(self.root / "proc/self/cgroup") or "").splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3 or not parts[2].startswith("/"):
                continue
            for name in parts[1].split(",") if parts[1] else [""]:
                groups.setdefault(name, parts[2])
        return groups

    def levels(self, controller: str) -> tuple[int, list[Path]] | None:
        """The hierarchy version and the group folders, own group first, up to the mount point."""
        v1 = [m for m in self.mounts if m.version == 1 and controller in m.options]
        if v1 and controller in self.groups:
            version, candidates, group = 1, v1, self.groups[controller]
        else:
            v2 = [m for m in self.mounts if m.version == 2 and controller in self._v2_controllers(m)]
            if not v2 or "" not in self.groups:
                return None
            version, candidates, group = 2, v2, self.groups[""]
        located = [(m, rel) for m in candidates if (rel := _below(group, m.top)) is not None]
        if not located:
            return None
        mount, rel = located[0]
        top = self.root / mount.point.relative_to("/")
        own = top.joinpath(*rel)
        if not _is_dir(own):
            return None
        return version, [own, *own.parents[: len(rel)]]

    def _v2_controllers(self, mount: _Mount) -> list[str]:
        return (_text(self.root / mount.point.relative_to("/") / "cgroup.controllers") or "").split()

    def shown(self, path: Path) -> str:
        """``path`` as the process sees it (without the test's root)."""
        try:
            return str(PurePosixPath("/") / path.relative_to(self.root))
        except ValueError:
            return str(path)

    def _smallest(self, controller: str, file: str, read_level) -> tuple[float | None, str]:
        """The smallest cap from the process's own group up to the mount point, and its source.

        ``read_level(version, folder)`` gives the level's cap (a number, :data:`_NO_CAP`, or None if
        unreadable or garbled) and the file's text for the source ("cpu.max 150000 100000").
        """
        found = self.levels(controller)
        if found is None:
            return None, UNKNOWN
        version, folders = found
        best, best_source, unreadable = None, "", False
        for folder in folders:
            cap, text = read_level(version, folder)
            if cap is None:
                unreadable = True
            elif cap != _NO_CAP and (best is None or cap < best):
                best, best_source = cap, f"cgroup v{version} {text} of {self.shown(folder)}"
        if best is not None:
            return best, best_source
        if unreadable:
            return None, UNKNOWN
        return None, f"no limit in cgroup v{version} {file} of {self.shown(folders[0])} and its parents"

    def cpu_quota(self) -> tuple[float | None, str]:
        """CPUs the quota allows (None: no quota, or unknown), and its source."""

        def level(version: int, folder: Path):
            if version == 2:
                if not (folder / "cpu.max").exists():
                    return _NO_CAP, ""
                text = _text(folder / "cpu.max")
                return _cpu_max(text), f"cpu.max {_oneline(text)}"
            if not (folder / "cpu.cfs_quota_us").exists():
                return _NO_CAP, ""
            quota, period = _text(folder / "cpu.cfs_quota_us"), _text(folder / "cpu.cfs_period_us")
            return _cfs(quota, period), f"cpu.cfs_quota_us/cpu.cfs_period_us {_oneline(quota)}/{_oneline(period)}"

        found = self.levels("cpu")
        return self._smallest("cpu", "cpu.max" if found and found[0] == 2 else "cpu.cfs_quota_us", level)

    def memory_limit(self) -> tuple[int | None, str]:
        """The memory cap in bytes (None: no cap, or unknown), and its source."""
        found = self.levels("memory")
        file = "memory.max" if found and found[0] == 2 else "memory.limit_in_bytes"

        def level(version: int, folder: Path):
            if not (folder / file).exists():
                return _NO_CAP, ""
            text = _text(folder / file)
            return (_memory_max(text) if version == 2 else _memory_v1(text)), f"{file} {_oneline(text)}"

        limit, source = self._smallest("memory", file, level)
        return (int(limit) if limit is not None else None), source


def _below(group: str, top: str) -> list[str] | None:
    """The path components of ``group`` below the mount's ``top`` group (None: not below it)."""
    group_parts, top_parts = PurePosixPath(group).parts, PurePosixPath(top).parts
    if ".." in group_parts or group_parts[: len(top_parts)] != top_parts:
        return None  # outside the mount's sub-tree (a group in another cgroup namespace): no folder to read
    return list(group_parts[len(top_parts) :])


def _unescape(field: str) -> str:
    return _MOUNTINFO_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _cpu_max(text: str | None):
    """CPUs of a v2 ``cpu.max`` ("max 100000", "150000 100000"), :data:`_NO_CAP`, or None if garbled."""
    parts = (text or "").split()
    if parts and parts[0] == "max" and len(parts) <= 2:
        return _NO_CAP
    if len(parts) != 2 or not all(part.isdigit() and int(part) > 0 for part in parts):
        return None
    return int(parts[0]) / int(parts[1])


def _cfs(quota_text: str | None, period_text: str | None):
    """CPUs of v1 ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, :data:`_NO_CAP`, or None if garbled."""
    quota, period = _integer(quota_text), _integer(period_text)
    if quota == V1_NO_CPU_QUOTA:
        return _NO_CAP
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def _memory_max(text: str | None):
    """Bytes of a v2 ``memory.max`` ("max" or a number), :data:`_NO_CAP`, or None if garbled."""
    text = (text or "").strip()
    if text == "max":
        return _NO_CAP
    return int(text) if text.isdigit() else None


def _memory_v1(text: str | None):
    """Bytes of a v1 ``memory.limit_in_bytes``, :data:`_NO_CAP` (about 2**63, or -1), or None if garbled."""
    limit = _integer(text)
    if limit is not None and (limit >= V1_NO_MEMORY_LIMIT_FROM or limit == -1):
        return _NO_CAP
    return limit if limit is not None and limit > 0 else None


def _oneline(text: str | None) -> str:
    return " ".join((text or "").split())


def _integer(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None


def _cpus_text(cpus: float) -> str:
    """1.0, 1.5, 0.25: whole numbers keep one decimal, so a fractional quota reads as one."""
    text = f"{cpus:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _bytes_text(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"

"""Unit tests of ``autograder.quotas``: CPU and memory caps read from fake cgroup trees.

Each test builds the files a container would show (``/proc/self/cgroup``, the mount table,
``/sys/fs/cgroup/...``) below ``tmp_path`` and reads them with an affinity count given, so
the figures do not depend on this machine; one test reads the real machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import quotas
from autograder.quotas import Quota

GiB = 2**30
PHYSICAL = 16 * GiB
V1_UNLIMITED = "9223372036854771712"
"""What v1 ``memory.limit_in_bytes`` shows for "no limit" with 4 KiB pages (2**63 less a page)."""

V2_MOUNTINFO = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
HYBRID_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:12 - cgroup cgroup rw,memory\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
"""A v1 machine with an (empty) v2 hierarchy beside, as ``mount | grep cgroup`` shows this one."""


def fake_root(tmp_path: Path, *, cgroup: str, mounts: str, files: dict[str, str]) -> Path:
    """A root folder with ``/proc/self/cgroup``, ``/proc/self/mountinfo``, a 16 GiB meminfo and ``files``."""
    written = {
        "proc/self/cgroup": cgroup,
        "proc/self/mountinfo": mounts,
        "proc/meminfo": f"MemTotal:       {PHYSICAL // 1024} kB\nMemFree:        1024 kB\n",
        **files,
    }
    for name, text in written.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def v2_root(tmp_path: Path, group: str, caps: dict[str, dict[str, str]]) -> Path:
    """A pure v2 machine with the process in ``group`` and ``caps``: {group folder: {file: text}}."""
    files = {"sys/fs/cgroup/cgroup.controllers": "cpuset cpu io memory pids\n"}
    for folder, texts in caps.items():
        for name, text in texts.items():
            files[f"sys/fs/cgroup/{folder}/{name}".replace("//", "/")] = text
    (tmp_path / "sys/fs/cgroup" / group.lstrip("/")).mkdir(parents=True, exist_ok=True)
    return fake_root(tmp_path, cgroup=f"0::{group}\n", mounts=V2_MOUNTINFO, files=files)


def hybrid_root(tmp_path: Path, *, cfs: tuple[str, str], memory_limit: str) -> Path:
    """A hybrid machine whose process is in /grader of the cpu and memory hierarchies, with these caps."""
    return fake_root(
        tmp_path,
        cgroup="12:memory:/grader\n4:cpu,cpuacct:/grader\n1:name=systemd:/\n0::/\n",
        mounts=HYBRID_MOUNTINFO,
        files={
            "sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/cpu,cpuacct/grader/cpu.cfs_quota_us": f"{cfs[0]}\n",
            "sys/fs/cgroup/cpu,cpuacct/grader/cpu.cfs_period_us": f"{cfs[1]}\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{V1_UNLIMITED}\n",
            "sys/fs/cgroup/memory/grader/memory.limit_in_bytes": f"{memory_limit}\n",
        },
    )


def quota(**changes) -> Quota:
    """A Quota of 4 CPUs and 16 GiB, no cgroup caps, with ``changes``."""
    figures = dict(
        affinity_cpus=4,
        affinity_source="CPU affinity",
        quota_cpus=None,
        quota_source="no limit in cgroup v2 cpu.max of /sys/fs/cgroup and its parents",
        memory_bytes=None,
        memory_source="no limit in cgroup v2 memory.max of /sys/fs/cgroup and its parents",
        physical_memory_bytes=PHYSICAL,
        physical_memory_source="/proc/meminfo MemTotal",
    )
    return Quota(**{**figures, **changes})


# --- read: cgroup v2 ---


def test_read_v2_quota_of_one_and_a_half_cpus(tmp_path):
    """A cpu.max of 150000/100000 gives 1.5 CPUs, below 8 cores of affinity, and names its file."""
    root = v2_root(tmp_path, "/grader", {"grader": {"cpu.max": "150000 100000\n", "memory.max": f"{2 * GiB}\n"}})
    found = quotas.read(root, affinity_cpus=8)
    assert found.quota_cpus == 1.5
    assert found.effective_cpus == 1.5
    assert found.quota_source == "cgroup v2 cpu.max 150000 100000 of /sys/fs/cgroup/grader"
    assert found.effective_cpus_source == found.quota_source
    assert found.memory_bytes == found.effective_memory_bytes == 2 * GiB
    assert found.memory_source == f"cgroup v2 memory.max {2 * GiB} of /sys/fs/cgroup/grader"
    assert found.physical_memory_bytes == PHYSICAL


def test_read_v2_tighter_parent_caps_the_child(tmp_path):
    """The parent's smaller cpu.max and memory.max bind the group below it, whose own are looser."""
    root = v2_root(
        tmp_path,
        "/outer/inner",
        {
            "outer": {"cpu.max": "100000 100000\n", "memory.max": f"{GiB}\n"},
            "outer/inner": {"cpu.max": "400000 100000\n", "memory.max": "max\n"},
        },
    )
    found = quotas.read(root, affinity_cpus=8)
    assert found.quota_cpus == 1.0
    assert found.quota_source == "cgroup v2 cpu.max 100000 100000 of /sys/fs/cgroup/outer"
    assert found.memory_bytes == GiB
    assert found.memory_source.endswith("of /sys/fs/cgroup/outer")


def test_read_v2_max_means_no_quota(tmp_path):
    """cpu.max "max 100000" and memory.max "max" are no caps: affinity and the machine's memory bind."""
    root = v2_root(tmp_path, "/grader", {"grader": {"cpu.max": "max 100000\n", "memory.max": "max\n"}})
    found = quotas.read(root, affinity_cpus=3)
    assert found.quota_cpus is None
    assert found.quota_source == "no limit in cgroup v2 cpu.max of /sys/fs/cgroup/grader and its parents"
    assert (found.effective_cpus, found.effective_cpus_source) == (3.0, "given by the caller")
    assert found.memory_bytes is None
    assert found.memory_source.startswith("no limit in cgroup v2 memory.max")
    assert found.effective_memory_bytes == PHYSICAL


def test_read_v2_root_group_without_cap_files_has_no_limit(tmp_path):
    """A group folder without cpu.max or memory.max (a root group) has no cap, not an unknown one."""
    found = quotas.read(v2_root(tmp_path, "/", {}), affinity_cpus=2)
    assert found.quota_cpus is None and found.quota_source.startswith("no limit in cgroup v2 cpu.max")
    assert found.memory_bytes is None and found.memory_source.startswith("no limit in cgroup v2 memory.max")


def test_read_v2_controller_not_enabled_is_unknown(tmp_path):
    """A v2 hierarchy whose cgroup.controllers lacks cpu and memory leaves both figures unknown."""
    root = v2_root(tmp_path, "/grader", {"": {"cgroup.controllers": "pids\n"}})
    found = quotas.read(root, affinity_cpus=2)
    assert (found.quota_cpus, found.quota_source) == (None, quotas.UNKNOWN)
    assert (found.memory_bytes, found.memory_source) == (None, quotas.UNKNOWN)


# --- read: cgroup v1 (hybrid, like this machine) ---


def test_read_v1_cfs_quota_minus_one_means_no_quota(tmp_path):
    """cfs_quota_us -1 at every level is no quota: the affinity count is the effective CPUs."""
    found = quotas.read(hybrid_root(tmp_path, cfs=("-1", "100000"), memory_limit=V1_UNLIMITED), affinity_cpus=4)
    assert found.quota_cpus is None
    assert found.quota_source == (
        "no limit in cgroup v1 cpu.cfs_quota_us of /sys/fs/cgroup/cpu,cpuacct/grader and its parents"
    )
    assert found.effective_cpus == 4.0


def test_read_v1_cfs_quota_of_two_cpus(tmp_path):
    """cfs_quota_us 200000 over cfs_period_us 100000 is 2 CPUs, read in v1 although a v2 hierarchy is mounted."""
    found = quotas.read(hybrid_root(tmp_path, cfs=("200000", "100000"), memory_limit=V1_UNLIMITED), affinity_cpus=4)
    assert found.quota_cpus == 2.0
    assert found.effective_cpus == 2.0
    assert found.quota_source == (
        "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 200000/100000 of /sys/fs/cgroup/cpu,cpuacct/grader"
    )


def test_read_v1_memory_near_two_to_the_63_means_no_limit(tmp_path):
    """memory.limit_in_bytes of 2**63 less a page is the kernel's "unlimited": the machine's memory binds."""
    found = quotas.read(hybrid_root(tmp_path, cfs=("-1", "100000"), memory_limit=V1_UNLIMITED), affinity_cpus=4)
    assert found.memory_bytes is None
    assert found.memory_source.startswith("no limit in cgroup v1 memory.limit_in_bytes")
    assert found.effective_memory_bytes == PHYSICAL
    assert found.effective_memory_source == "/proc/meminfo MemTotal"


def test_read_v1_memory_limit_is_read(tmp_path):
    """A v1 memory.limit_in_bytes of 2 GiB is the memory cap, and binds below the machine's 16 GiB."""
    found = quotas.read(hybrid_root(tmp_path, cfs=("-1", "100000"), memory_limit=str(2 * GiB)), affinity_cpus=4)
    assert found.memory_bytes == found.effective_memory_bytes == 2 * GiB
    assert found.memory_source == f"cgroup v1 memory.limit_in_bytes {2 * GiB} of /sys/fs/cgroup/memory/grader"


def test_read_v1_bind_mounted_subtree_reads_the_mount_point(tmp_path):
    """A container's own group bind-mounted at the mount point (Docker without a cgroup namespace) is found."""
    root = fake_root(
        tmp_path,
        cgroup="4:cpu,cpuacct:/docker/abc\n",
        mounts="32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n",
        files={
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
            "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        },
    )
    found = quotas.read(root, affinity_cpus=64)
    assert found.quota_cpus == 0.5
    assert found.quota_source.endswith("of /sys/fs/cgroup/cpu,cpuacct")


def test_read_falls_back_to_proc_mounts(tmp_path):
    """Without /proc/self/mountinfo the cgroup mounts are taken from /proc/mounts."""
    root = hybrid_root(tmp_path, cfs=("300000", "100000"), memory_limit=V1_UNLIMITED)
    (root / "proc/self/mountinfo").unlink()
    (root / "proc/mounts").write_text(
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0\n"
    )
    assert quotas.read(root, affinity_cpus=8).quota_cpus == 3.0


# --- read: missing and garbled files ---


def test_read_missing_files_leave_figures_unknown(tmp_path):
    """An empty root gives unknown caps and machine memory, and the affinity count as the effective CPUs."""
    found = quotas.read(tmp_path, affinity_cpus=2)
    assert (found.quota_cpus, found.quota_source) == (None, quotas.UNKNOWN)
    assert (found.memory_bytes, found.memory_source) == (None, quotas.UNKNOWN)
    assert (found.physical_memory_bytes, found.physical_memory_source) == (None, quotas.UNKNOWN)
    assert found.effective_cpus == 2.0
    assert found.effective_memory_bytes is None


def test_read_missing_own_group_folder_is_unknown(tmp_path):
    """A group named in /proc/self/cgroup that has no folder under the mount leaves the figures unknown."""
    root = v2_root(tmp_path, "/grader", {})
    (root / "proc/self/cgroup").write_text("0::/elsewhere\n")
    found = quotas.read(root, affinity_cpus=2)
    assert found.quota_source == found.memory_source == quotas.UNKNOWN


def test_read_garbled_cap_file_is_unknown(tmp_path):
    """A cpu.max or memory.max that does not parse makes the figure unknown, not zero and not an error."""
    root = v2_root(tmp_path, "/grader", {"grader": {"cpu.max": "lots of cpu\n", "memory.max": "12abc\n"}})
    found = quotas.read(root, affinity_cpus=2)
    assert (found.quota_cpus, found.quota_source) == (None, quotas.UNKNOWN)
    assert (found.memory_bytes, found.memory_source) == (None, quotas.UNKNOWN)
    assert found.effective_cpus == 2.0


def test_read_garbled_cap_file_defers_to_a_readable_tighter_one(tmp_path):
    """A parent's readable cap still binds when the child's own file is garbled."""
    root = v2_root(
        tmp_path, "/outer/inner", {"outer": {"cpu.max": "50000 100000\n"}, "outer/inner": {"cpu.max": "0 0\n"}}
    )
    assert quotas.read(root, affinity_cpus=2).quota_cpus == 0.5


def test_read_garbled_proc_files_do_not_raise(tmp_path):
    """Junk in /proc/self/cgroup, the mount table and meminfo gives unknown figures."""
    root = fake_root(
        tmp_path,
        cgroup="nonsense\n0::relative\n::\n",
        mounts="- cgroup2\n1 2 3 / relative - cgroup2 x rw\n\x00\xff - -\n",
        files={"proc/meminfo": "MemTotal: lots\n"},
    )
    (root / "proc/self/cgroup").write_bytes(b"\xff\xfe\x00junk")
    found = quotas.read(root, affinity_cpus=1)
    assert found.quota_source == found.memory_source == found.physical_memory_source == quotas.UNKNOWN


def test_read_this_machine_gives_sane_figures():
    """On the real machine the effective CPUs and memory are positive and within what the machine offers."""
    found = quotas.read()
    assert found.affinity_cpus >= 1
    assert 0 < found.effective_cpus <= found.affinity_cpus
    assert found.physical_memory_bytes is None or found.physical_memory_bytes > 0
    if found.effective_memory_bytes is not None and found.physical_memory_bytes is not None:
        assert 0 < found.effective_memory_bytes <= found.physical_memory_bytes
    assert all(found.as_dict()[key] for key in ("affinity_source", "quota_source", "memory_source"))


# --- Quota, problems, jobs_cap ---


def test_quota_as_dict_is_json_ready():
    """as_dict holds every figure, the effective ones included, and serialises to JSON."""
    figures = json.loads(json.dumps(quota(quota_cpus=1.5, quota_source="cgroup v2 cpu.max 150000 100000").as_dict()))
    assert figures["effective_cpus"] == 1.5
    assert figures["effective_cpus_source"] == "cgroup v2 cpu.max 150000 100000"
    assert figures["effective_memory_bytes"] == PHYSICAL
    assert figures["affinity_cpus"] == 4


def test_problems_none_when_cpus_and_memory_suffice():
    """Enough CPUs and memory give no problems."""
    assert quotas.problems(quota(), cpus_needed=2, memory_needed=3 * GiB) == []


def test_problems_names_too_few_cpus_their_source_and_the_setting():
    """An effective 1.0 CPU under a need of 2 is one line naming the figure, its source and Gradescope's setting."""
    found = quota(quota_cpus=1.0, quota_source="cgroup v2 cpu.max 100000 100000 of /sys/fs/cgroup")
    [line] = quotas.problems(found, cpus_needed=2, memory_needed=GiB)
    assert line.startswith("the grader has 1.0 effective CPU (cgroup v2 cpu.max 100000 100000 of /sys/fs/cgroup)")
    assert "needs at least 2" in line
    assert "CPU allocation" in line and "Autograder Settings" in line
    assert "\n" not in line


def test_problems_names_too_little_memory_and_the_setting():
    """A 768 MiB memory cap under a 3 GiB run cap is one line naming both sizes and Gradescope's setting."""
    found = quota(memory_bytes=768 * 2**20, memory_source="cgroup v2 memory.max 805306368 of /sys/fs/cgroup")
    [line] = quotas.problems(found, cpus_needed=2, memory_needed=3 * GiB)
    assert line.startswith("the grader has 768 MiB of memory (cgroup v2 memory.max 805306368 of /sys/fs/cgroup)")
    assert "3.0 GiB" in line and "memory limit" in line and "Autograder Settings" in line


def test_problems_fractional_cpus_fall_short_of_a_whole_need():
    """1.5 effective CPUs is short of 2, and both CPU and memory shortfalls are reported."""
    found = quota(quota_cpus=1.5, memory_bytes=GiB)
    lines = quotas.problems(found, cpus_needed=2, memory_needed=3 * GiB)
    assert len(lines) == 2
    assert lines[0].startswith("the grader has 1.5 effective CPUs")


def test_problems_unknown_memory_is_not_reported():
    """Without any memory figure nothing is said about memory."""
    found = quota(physical_memory_bytes=None, physical_memory_source=quotas.UNKNOWN)
    assert quotas.problems(found, cpus_needed=1, memory_needed=3 * GiB) == []


@pytest.mark.parametrize(
    ("affinity", "quota_cpus", "per_job", "expected"),
    [(4, None, 2, 2), (4, None, 1, 4), (64, 4.0, 2, 2), (8, 1.5, 2, 1), (1, None, 4, 1), (64, 5.9, 2, 2)],
)
def test_jobs_cap_divides_effective_cpus(affinity, quota_cpus, per_job, expected):
    """Jobs are the effective CPUs over each job's CPUs, rounded down, and at least 1."""
    assert quotas.jobs_cap(quota(affinity_cpus=affinity, quota_cpus=quota_cpus), per_job) == expected


def test_jobs_cap_refuses_jobs_of_no_cpus():
    """A job needing fewer than one CPU is a caller's mistake."""
    with pytest.raises(ValueError):
        quotas.jobs_cap(quota(), 0)

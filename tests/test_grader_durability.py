"""A batch killed half-way (SIGKILL) and run again ends with the same grades as an uninterrupted one, and the
scratch folder the killed grader left is released by the next batch: one left mounted wherever the killed
grader's TMPDIR pointed, one not mounted in the next batch's own TMPDIR."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import support

from autograder import demo

CATEGORIES = "serial,determinism"  # deterministic categories: the grades must match exactly


def _batch(submitted: Path) -> None:
    entries = support.corpus("wrong")
    support.write_student(submitted, "a-reference", demo.reference_source())
    for name in ("unseeded_episodes",):
        support.write_student(submitted, f"b-{name}", entries[name].source)
    support.write_student(submitted, "c-untouched", None)


@pytest.mark.slow
@pytest.mark.extended
def test_grader_sigkill_halfway_then_rerun_matches_uninterrupted(tmp_path):
    """Kill the grader with SIGKILL after the first student, re-run it: grades.csv equals an uninterrupted run's;
    the re-run released the scratch the killed grader left in the same (nested) TMPDIR, mounted or not."""
    submitted = tmp_path / "submitted"
    _batch(submitted)
    env = {
        **os.environ,
        "PYTHONPATH": str(support.ROOT),
        "TMPDIR": str(tmp_path),
        "NEUROEVO_GRADER_SETTINGS": json.dumps(support.UNTIMED_SETTINGS),
    }
    whole = tmp_path / "whole"
    done = support.grade(submitted, whole, "--categories", CATEGORIES, settings=support.UNTIMED_SETTINGS)
    assert done.returncode == 0, done.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "--submitted",
            str(submitted),
            "--output",
            str(killed),
            "--categories",
            CATEGORIES,
        ],
        cwd=support.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list(killed.glob("*/results.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the batch finished before it could be killed: make it longer"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (killed / "grades.csv").exists() or len(list(killed.glob("*/results.json"))) < 3

    again = support.grade(
        submitted, killed, "--categories", CATEGORIES, settings=support.UNTIMED_SETTINGS, env={"TMPDIR": str(tmp_path)}
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "kept" in again.stderr, "the re-run regraded students finished before the kill"
    assert (killed / "grades.csv").read_text() == (whole / "grades.csv").read_text()
    assert not support.leftovers(tmp_path), "the re-run left the killed grader's scratch in place"


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0), reason="mounts need root on Linux")
def test_grader_scratch_of_a_killed_grader_is_released(tmp_path, monkeypatch):
    """A batch's scratch whose grader died is unmounted and removed by the next batch: one with its runs folder
    still mounted in another, nested TMPDIR (found in the mount table), one unmounted in this batch's TMPDIR; a
    live grader's scratch, one with no owner recorded, one whose owner mark is a link and one whose owner ran in
    another PID namespace are left alone."""
    from autograder import workspace

    mine, elsewhere = tmp_path / "tmp", tmp_path / "pytest-of-someone" / "pytest-3" / "test_it0"
    monkeypatch.setattr(tempfile, "tempdir", str(mine))
    dead = subprocess.Popen(["true"])
    dead.wait()
    kept = ("alive", "unknown", "linked", "other-namespace")
    folders = {name: elsewhere / f"neuroevo-batch-{name}" for name in ("dead", *kept)}
    folders["dead-unmounted"] = mine / "neuroevo-batch-dead-unmounted"
    for name, folder in folders.items():
        (folder / "student" / "runs").mkdir(parents=True)
        if name != "dead-unmounted":
            assert subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder / "student" / "runs")]).returncode == 0
    for name in ("dead", "dead-unmounted"):
        (folders[name] / workspace.OWNER_FILE).write_text(f"{dead.pid} 12345\n")
    (tmp_path / "forged.pid").write_text(f"{dead.pid} 12345\n")
    (folders["linked"] / workspace.OWNER_FILE).symlink_to(tmp_path / "forged.pid")
    (folders["other-namespace"] / workspace.OWNER_FILE).write_text(f"{dead.pid} 12345 pid:[1]\n")
    workspace.claim_scratch(folders["alive"])
    try:
        released = workspace.release_abandoned_scratch("neuroevo-batch-")
        assert sorted(released) == sorted([folders["dead"], folders["dead-unmounted"]])
        assert not folders["dead"].exists() and not folders["dead-unmounted"].exists()
        for name in kept:
            assert os.path.ismount(folders[name] / "student" / "runs"), name
    finally:
        for folder in folders.values():
            workspace.release_runs_folder(folder / "student" / "runs")
            workspace.remove_tree(folder)


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0), reason="mounts need root on Linux")
def test_grader_scratch_release_when_tmpdir_is_itself_a_mount(tmp_path, monkeypatch):
    """A TMPDIR that is a mount point of its own (a tmpfs /tmp) is searched like any folder, and left mounted."""
    from autograder import workspace

    tmp = tmp_path / "tmpfs"
    tmp.mkdir()
    assert subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(tmp)]).returncode == 0
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(tmp))
        dead = subprocess.Popen(["true"])
        dead.wait()
        (tmp / "neuroevo-batch-dead").mkdir()
        (tmp / "neuroevo-batch-dead" / workspace.OWNER_FILE).write_text(f"{dead.pid} 12345\n")
        assert workspace.release_abandoned_scratch("neuroevo-batch-") == [tmp / "neuroevo-batch-dead"]
        assert os.path.ismount(tmp) and os.listdir(tmp) == []
    finally:
        workspace.release_runs_folder(tmp)

"""A batch killed half-way (SIGKILL) and run again ends with the same grades as an uninterrupted one."""

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
def test_grader_sigkill_halfway_then_rerun_matches_uninterrupted(tmp_path):
    """Kill the grader with SIGKILL after the first student, re-run it: grades.csv equals an uninterrupted run's."""
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

    again = support.grade(submitted, killed, "--categories", CATEGORIES, settings=support.UNTIMED_SETTINGS)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "kept" in again.stderr, "the re-run regraded students finished before the kill"
    assert (killed / "grades.csv").read_text() == (whole / "grades.csv").read_text()


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0), reason="mounts need root on Linux")
def test_grader_scratch_of_a_killed_grader_is_released(tmp_path, monkeypatch):
    """A batch's scratch whose grader died (its runs folder still mounted) is unmounted and removed by the next
    batch; a live grader's scratch, and one with no owner recorded, are left alone."""
    from autograder import workspace

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    folders = {name: tmp_path / f"neuroevo-batch-{name}" for name in ("dead", "alive", "unknown")}
    for folder in folders.values():
        (folder / "student" / "runs").mkdir(parents=True)
        assert subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(folder / "student" / "runs")]).returncode == 0
    (folders["dead"] / workspace.OWNER_FILE).write_text(f"{dead.pid} 12345\n")
    workspace.claim_scratch(folders["alive"])
    try:
        assert workspace.release_abandoned_scratch("neuroevo-batch-") == [folders["dead"]]
        assert not folders["dead"].exists()
        assert os.path.ismount(folders["alive"] / "student" / "runs")
        assert os.path.ismount(folders["unknown"] / "student" / "runs")
    finally:
        for folder in folders.values():
            workspace.release_runs_folder(folder / "student" / "runs")

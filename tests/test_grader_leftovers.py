"""Nothing left behind: whatever way ``grade`` ends, its temporary folder and the mount table are as it found them.

The batch's scratch folder holds memory-backed runs folders (tmpfs, as root on Linux): every way out
unmounts them, then deletes the folder, its owner mark last. A grader killed outright leaves them to
the next batch (``test_grader_durability.py``).
"""

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

from autograder import batch, cli, workspace
from autograder.grade import GraderFault

AS_ROOT_ON_LINUX = sys.platform.startswith("linux") and os.geteuid() == 0

SLEEPER = """
import time


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    time.sleep(600)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    time.sleep(600)
"""
"""A submission whose runs wait (without using a core) until their time limit: a batch stays mid-run."""

STOP_SETTINGS = {**support.UNTIMED_SETTINGS, "observe": {**support.UNTIMED_SETTINGS["observe"], "wall_seconds": 30}}
"""Test-only limits: a grader that ignored a stop would still end within a minute."""


@pytest.mark.parametrize(
    "fault, status",
    [(GraderFault("set-up wrong"), 3), (KeyboardInterrupt(), 130), (RuntimeError("a bug"), None)],
    ids=["exit-3", "ctrl-c-130", "uncaught-exception"],
)
def test_leftovers_batch_unmounts_then_removes_scratch_on_every_way_out(tmp_path, monkeypatch, fault, status):
    """A batch stopped up front by a set-up fault, Ctrl-C or a bug unmounts its runs folder, then deletes its
    scratch folder, the owner mark with the last call; the temporary folder is left as it was."""
    submitted, tmp = tmp_path / "submitted", tmp_path / "tmp"
    support.write_student(submitted, "a", None)
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    calls: list[str] = []

    def failing_preflight(workdir, categories, **where):
        runs = workdir / "student" / "runs"
        runs.mkdir(parents=True)
        if AS_ROOT_ON_LINUX:
            assert workspace._memory_backed(runs), "could not mount the runs folder"
        raise fault

    unmount, remove = workspace._unmount, workspace.remove_tree
    monkeypatch.setattr(batch, "preflight", failing_preflight)
    monkeypatch.setattr(batch.gradebook, "rebuild", lambda path, rows, **_: path.write_text(str(len(rows))))
    monkeypatch.setattr(workspace, "_unmount", lambda m: (calls.append(("unmount", Path(m))), unmount(m)))
    monkeypatch.setattr(workspace, "remove_tree", lambda p: (calls.append(("remove", Path(p))), remove(p)))
    argv = ["grade", "--submitted", str(submitted), "--output", str(tmp_path / "grades"), "--categories", "serial"]
    if status is None:
        with pytest.raises(RuntimeError):
            cli.main(argv)
    else:
        assert cli.main(argv) == status
    assert os.listdir(tmp) == [] and not support.mounts_under(tmp)
    # Only this batch's calls: releasing another (abandoned) batch's scratch is not this test's business.
    mine = [(what, path.relative_to(tmp)) for what, path in calls if path.is_relative_to(tmp)]
    scratch = mine[-1][1]
    assert scratch.name.startswith(batch.SCRATCH_PREFIX), mine
    unmounted = [("unmount", scratch / "student" / "runs")] if AS_ROOT_ON_LINUX else []
    assert mine == unmounted + [("remove", scratch / "student"), ("remove", scratch)], mine


def test_leftovers_bad_command_line_exits_2_and_makes_nothing(tmp_path):
    """``grade`` with a bad argument exits 2 and makes nothing in its temporary folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    support.write_student(tmp_path / "submitted", "a", None)
    done = support.grade(
        tmp_path / "submitted", tmp_path / "grades", "--categories", "no-such-part", env={"TMPDIR": str(tmp)}
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert os.listdir(tmp) == [] and not support.mounts_under(tmp)


def _start(submitted: Path, output: Path, tmp: Path) -> subprocess.Popen:
    """``grade`` in the background with TMPDIR at ``tmp``; its standard error goes to ``output``.err."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(support.ROOT),
        "TMPDIR": str(tmp),
        "NEUROEVO_GRADER_SETTINGS": json.dumps(STOP_SETTINGS),
    }
    command = [sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted), "--output", str(output)]
    err_file = output.with_suffix(".err")
    with err_file.open("w") as err:
        proc = subprocess.Popen(
            [*command, "--categories", "serial"],
            cwd=support.ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
    proc.err_file = err_file
    return proc


def _stderr(proc: subprocess.Popen) -> str:
    return proc.err_file.read_text()[-2000:]


def _wait_for_mount(tmp: Path, proc: subprocess.Popen) -> None:
    """Until a runs folder is mounted below ``tmp``: the grader is mid-batch, running student code."""
    deadline = time.monotonic() + 180
    while not support.mounts_under(tmp):
        if proc.poll() is not None:
            pytest.fail(f"the grader ended (status {proc.returncode}) before its runs started: {_stderr(proc)}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("no runs folder was mounted within 3 minutes")
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.skipif(not AS_ROOT_ON_LINUX, reason="runs folders are memory-backed mounts only as root on Linux")
def test_leftovers_sigterm_mid_run_exits_130_and_leaves_nothing(tmp_path):
    """``grade`` sent SIGTERM while student code runs exits 130, saying so, with nothing left mounted or on disk
    in its temporary folder. (A SIGKILLed grader's scratch: ``test_grader_durability.py``.)"""
    submitted, tmp = tmp_path / "submitted", tmp_path / "tmp"
    support.write_student(submitted, "sleeper", SLEEPER)
    stopped = _start(submitted, tmp_path / "grades", tmp)
    try:
        _wait_for_mount(tmp, stopped)
        stopped.send_signal(signal.SIGTERM)
        stopped.wait(timeout=120)
    finally:
        if stopped.poll() is None:
            os.killpg(stopped.pid, signal.SIGKILL)
            stopped.wait()
    assert stopped.returncode == 130, _stderr(stopped)
    assert "interrupted after 0 of 1" in _stderr(stopped), _stderr(stopped)
    assert os.listdir(tmp) == [] and not support.mounts_under(tmp_path)

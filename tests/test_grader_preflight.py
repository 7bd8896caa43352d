"""What the grader refuses or warns about once, before grading anyone: isolation and a broken reference."""

from __future__ import annotations

import json
import os
import tempfile

import nbformat
import pytest
import support

from autograder import cli, demo, paths

CATEGORIES = "serial"


def _two_students(tmp_path):
    submitted = tmp_path / "submitted"
    support.write_student(submitted, "a", demo.reference_source())
    support.write_student(submitted, "b", None)
    return submitted


def test_grader_preflight_required_bubblewrap_missing_refused_up_front(tmp_path):
    """NEUROEVO_SANDBOX=bubblewrap without a usable bwrap stops the batch with one line and status 3, grading no one."""
    submitted = _two_students(tmp_path)
    done = support.grade(
        submitted,
        tmp_path / "grades",
        "--categories",
        CATEGORIES,
        env={"NEUROEVO_SANDBOX": "bubblewrap", "PATH": str(tmp_path / "no-such-bin")},
    )
    assert done.returncode == 3, done.stderr[-2000:]
    assert "cannot grade" in done.stderr and "bubblewrap" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "grades").glob("*/results.json"))


def test_grader_preflight_broken_reference_refused_up_front(tmp_path, monkeypatch, capsys):
    """A reference solution that does not run stops the batch once, up front, not once per student, with its
    runs folder unmounted and its scratch folder gone."""
    submitted = _two_students(tmp_path)
    broken = tmp_path / "broken.ipynb"
    source = demo.reference_source().replace(
        "def evolve_parallel(", "def evolve_parallel(*_, **__):\n    return oops\n\n\ndef _(", 1
    )
    nbformat.write(demo.with_solution(source), broken)
    monkeypatch.setattr(paths, "reference_notebook", lambda: broken)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    status = cli.main(
        ["grade", "--submitted", str(submitted), "--output", str(tmp_path / "grades"), "--categories", "speedup"]
    )
    err = capsys.readouterr().err
    assert status == 3 and "reference solution" in err and err.count("cannot grade") == 1, err
    assert "NameError" in err, err
    assert not list((tmp_path / "grades").glob("*/results.json"))
    assert os.listdir(tmp) == [] and not support.mounts_under(tmp)


@pytest.mark.slow
def test_grader_preflight_no_isolation_warned_once_and_recorded(tmp_path):
    """Without isolation the batch warns once and every results.json records it."""
    submitted = _two_students(tmp_path)
    done = support.grade(
        submitted,
        tmp_path / "grades",
        "--categories",
        CATEGORIES,
        env={"NEUROEVO_SANDBOX": "process"},
        settings=support.UNTIMED_SETTINGS,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = "not in bubblewrap namespaces" if os.geteuid() == 0 else "WITHOUT isolation"
    assert done.stderr.count(said) == 1, done.stderr[-2000:]
    for student in ("a", "b"):
        isolation = json.loads((tmp_path / "grades" / student / "results.json").read_text())["extra_data"]["isolation"]
        assert isolation["mode"] == "process" and isolation["warning"] is True
        assert isolation["account_per_run"] is (os.geteuid() == 0)

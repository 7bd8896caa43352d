"""What the grader refuses or warns about once, before grading anyone: isolation and a broken reference."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile

import nbformat
import pytest
import support

from autograder import cli, demo, observe, paths, reference

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
        "    with Pool(processes) as pool:", "    oops\n    with Pool(processes) as pool:"
    )
    assert "oops" in source
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


def test_grader_preflight_no_discriminating_seed_refused_up_front(tmp_path):
    """Observed runs too short for any seed to show every deviation stop the batch with status 3, grading no one."""
    submitted = _two_students(tmp_path)
    settings = {**support.UNTIMED_SETTINGS, "speedup": {**support.UNTIMED_SETTINGS["speedup"], "generations": 2}}
    done = support.grade(submitted, tmp_path / "grades", "--categories", CATEGORIES, settings=settings)
    assert done.returncode == 3, done.stderr[-2000:]
    assert "cannot grade: no seed for the observed runs" in done.stderr and "speedup.generations" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "grades").glob("*/results.json"))


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


def _edit_cell(notebook, grade_id: str, edit) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            edit(cell)
    nbformat.write(nb, notebook)


def _replace(old: str, new: str):
    def edit(cell):
        assert old in cell.source, f"{old!r} is not in the cell"
        cell.source = cell.source.replace(old, new)

    return edit


def _points(value: int):
    def edit(cell):
        cell.metadata["nbgrader"]["points"] = value

    return edit


MISMATCHES = {
    "argument renamed": (
        "source",
        "evolve_parallel",
        _replace("processes: int | None = None", "workers: int | None = None"),
        "cannot take processes, which the grader passes",
    ),
    "default changed": (
        "source",
        "evolve_serial",
        _replace("sigma: float = 1.0", "sigma: float = 0.5"),
        "no longer matches the stub students got",
    ),
    "points changed": (
        "release",
        "test_speedup",
        _points(10),
        "test_speedup changed (points 15 in the source, 10 released)",
    ),
    "setup edited": (
        "source",
        "practical_setup",
        _replace("import os", "import os, sys"),
        "practical_setup cell differs",
    ),
    "helper edited": ("release", "evolution.py", None, "evolution.py differs from"),
}


@pytest.mark.parametrize("mistake", MISMATCHES)
def test_grader_preflight_reference_out_of_step_with_the_release_named(tmp_path, monkeypatch, mistake):
    """A source edited without releasing again (a stub's signature, a graded cell's points, the setup cell, the
    helper) is one sentence saying to run make assignment; the course as committed passes."""
    course = {"source": tmp_path / "source", "release": tmp_path / "release"}
    shutil.copytree(paths.SOURCE_DIR, course["source"])
    shutil.copytree(paths.RELEASE_DIR, course["release"])
    monkeypatch.setattr(paths, "SOURCE_DIR", course["source"])
    monkeypatch.setattr(paths, "RELEASE_DIR", course["release"])
    plan = observe.Plan.draw(0)
    assert reference.release_problem(plan) is None

    side, target, edit, expected = MISMATCHES[mistake]
    if edit is None:
        (course[side] / target).write_text((course[side] / target).read_text() + "\n# edited\n")
    else:
        _edit_cell(course[side] / paths.NOTEBOOK, target, edit)
    problem = reference.release_problem(plan)
    assert problem and expected in problem and "\n" not in problem, problem
    assert "make assignment" in problem or "restore the assignment's signature" in problem, problem


BROKEN_REFERENCES = {
    "fails from generation 1": (
        "        history.append(returns)\n",
        "        history.append(returns)\n        if generation >= 1:\n            returns = not_defined_in_generation_one\n",
        "evolve_serial raised NameError: name 'not_defined_in_generation_one' is not defined",
    ),
    "selects the worst": ("np.argmax(returns)", "np.argmin(returns)", "LOWEST return of the last generation"),
}


@pytest.mark.parametrize("mistake", BROKEN_REFERENCES)
def test_grader_preflight_reference_failing_a_full_run_named(tmp_path, monkeypatch, mistake):
    """A reference whose evolve_serial breaks after its first generation, or selects the worst candidate, fails the
    up-front check (the run a serial grade makes, all its generations) with one plain sentence."""
    old, new, expected = BROKEN_REFERENCES[mistake]
    broken = tmp_path / "reference.ipynb"
    shutil.copy(paths.reference_notebook(), broken)
    _edit_cell(broken, "evolve_serial", _replace(old, new))
    monkeypatch.setattr(paths, "reference_notebook", lambda: broken)
    monkeypatch.setattr(observe, "SPEEDUP", dataclasses.replace(observe.SPEEDUP, candidates_per_worker=4))
    checked = observe.Reference(tmp_path / "reference", observe.Plan.draw(0))
    try:
        problem = reference.runs_problem(checked, ("serial",), cores=2)
    finally:
        checked.collector.close()
    assert problem and expected in problem and "generations=3" in problem, problem
    assert "\n" not in problem and "{" not in problem and "fix it there" in problem, problem

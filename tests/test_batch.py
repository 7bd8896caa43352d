"""The batch layer around grading one student: which folders are graded, Ctrl-C, the summary, the exit status.

grade_student is replaced by a stub that writes a hand-made results.json, so nothing is run."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder import batch, cli, paths, results, workspace
from autograder.categories import CATEGORIES, POINTS
from autograder.cores import Cores
from autograder.grade import Graded

CATS = ("serial", "parallel")


def results_doc(student: str, score: float, output: str = "passed") -> dict:
    tests = [
        {
            "name": f"test_{c}_x: does x",
            "score": score / 2,
            "max_score": POINTS[c],
            "status": "passed" if score else "failed",
            "output": output,
            "tags": [c],
            "visibility": "visible",
        }
        for c in CATS
    ]
    return {
        "score": score,
        "tests": tests,
        "extra_data": {"student_id": student, "grading_key": "k", "category_scores": {c: score / 2 for c in CATS}},
    }


def fake_grader(
    monkeypatch,
    interrupt_at: str | None = None,
    zero: tuple[str, ...] = (),
    fail: tuple[str, ...] = (),
    not_judged: tuple[str, ...] = (),
):
    graded = []

    def grade_student(student, notebook, out_dir, categories, reference):
        if student == interrupt_at:
            raise KeyboardInterrupt
        graded.append((student, notebook))
        if student in fail:
            raise RuntimeError("the reference solution's evolve_parallel failed when timed beside this submission")
        doc = results_doc(
            student,
            0 if student in zero else 30,
            "evolve_serial still raises NotImplementedError" if student in zero else "passed",
        )
        doc["extra_data"]["speedup_inconclusive"] = "the machine was busy" if student in not_judged else None
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(doc))
        return Graded(student, doc["score"], doc["extra_data"]["category_scores"], {"serial": 0.1})

    monkeypatch.setattr(batch, "grade_student", grade_student)

    def fake_batch(*_):
        return SimpleNamespace(
            warning="",
            reference=SimpleNamespace(measured=[]),
            close=lambda: None,
            for_job=fake_batch,
            cores=Cores([0]),
        )

    monkeypatch.setattr(batch, "preflight", lambda workdir, categories, **where: fake_batch())
    monkeypatch.setattr(batch, "grading_key", lambda notebook, categories: "never-the-same")
    monkeypatch.setattr(batch.gradebook, "rebuild", lambda path, rows, policy: path.write_text(str(len(rows))))
    return graded


def notebook(submitted: Path, student: str, name: str = paths.NOTEBOOK) -> None:
    folder = submitted / student / paths.ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text('{"cells": []}')


def test_batch_reports_folders_it_cannot_grade_and_grades_the_rest(tmp_path, monkeypatch, capsys):
    """Folders named like the batch's outputs, hidden folders, files and symlinks are listed, not graded;
    a renamed notebook is graded and said so; a missing one is listed; exit status 1 names them."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student in ("alice", "grades.csv", "Gradebook.db", ".ipynb_checkpoints"):
        notebook(submitted, student)
    notebook(submitted, "bob", "neuroevolution (1).ipynb")
    (submitted / "carol" / paths.ASSIGNMENT).mkdir(parents=True)
    (submitted / "stray.zip").write_bytes(b"PK")
    (submitted / "linked").symlink_to(submitted / "alice")
    graded = fake_grader(monkeypatch)

    status = cli.main(
        ["grade", "--submitted", str(submitted), "--output", str(output), "--categories", "serial,parallel"]
    )
    out = capsys.readouterr().out
    assert status == 1, "folders left ungraded must make the exit status 1"
    assert [s for s, _ in graded] == ["alice", "bob", "carol"]
    assert dict(graded)["bob"].name == "neuroevolution (1).ipynb", "the renamed notebook was not the one graded"
    for name, why in (
        ("grades.csv", "batch's own output"),
        ("Gradebook.db", "batch's own output"),
        (".ipynb_checkpoints", "hidden"),
        ("stray.zip", "a file"),
        ("linked", "symbolic link"),
    ):
        line = next((x for x in out.splitlines() if f"not graded  {name}:" in x), "")
        assert why in line, f"{name} is not reported as {why!r}:\n{out}"
    assert "renamed     bob: renamed: graded 'neuroevolution/neuroevolution (1).ipynb'" in out, out
    assert "missing     carol: no notebook" in out and "the folder is empty" in out, out
    assert (output / "grades.csv").is_file() and not (output / "grades.csv").is_dir()


FORMULA_NAMES = ('=HYPERLINK("evil.example","click")', "+1+1", "-2+3", "@SUM(1)", "\t=1")


def test_batch_refuses_folders_a_spreadsheet_would_run_as_formulas(tmp_path, monkeypatch, capsys):
    """Folders whose name starts like a formula are listed with what to do, never graded nor in grades.csv;
    a '-' or '@' inside a name is fine."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student in ("alice@uni.edu", "jean-luc", *FORMULA_NAMES):
        notebook(submitted, student)
    assert sorted(batch.survey(submitted).refused) == sorted(FORMULA_NAMES)
    graded = fake_grader(monkeypatch)

    status = cli.main(
        ["grade", "--submitted", str(submitted), "--output", str(output), "--categories", "serial,parallel"]
    )
    out = capsys.readouterr().out
    assert status == 1, "folders left ungraded must make the exit status 1"
    assert [s for s, _ in graded] == ["alice@uni.edu", "jean-luc"]
    for name in FORMULA_NAMES:
        line = next((x for x in out.splitlines() if f"not graded  {name}:" in x), "")
        assert f"starts with {name[0]!r}, which a spreadsheet runs as a formula" in line, out
        assert "rename the folder to the student's id" in line, out
    assert [r["student_id"] for r in csv.DictReader((output / "grades.csv").open())] == ["alice@uni.edu", "jean-luc"]


def test_batch_grades_csv_writes_formula_cells_as_text():
    """grades.csv puts a quote before an id or timestamp a spreadsheet would run; a negative score stays a number."""
    doc = results_doc("x", 30)
    odd = {**doc, "score": -3, "extra_data": {**doc["extra_data"], "timestamp": "=1+1"}}
    rows = list(csv.DictReader(io.StringIO(results.grades_csv([(name, odd) for name in FORMULA_NAMES]))))
    assert sorted(r["student_id"] for r in rows) == sorted("'" + name for name in FORMULA_NAMES), rows
    assert {(r["timestamp"], r["raw_score"], r["score"]) for r in rows} == {("'=1+1", "-3.0", "-3.0")}, rows


def test_batch_ctrl_c_prints_one_line_and_exports_everyone_graded_so_far(tmp_path, monkeypatch, capsys):
    """Ctrl-C during the third of four students: status 130, one line on stderr, grades.csv holds the first two,
    and the same command then grades the rest."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student in ("s1", "s2", "s3", "s4"):
        notebook(submitted, student)
    fake_grader(monkeypatch, interrupt_at="s3")
    argv = ["grade", "--submitted", str(submitted), "--output", str(output), "--categories", "serial,parallel"]
    assert cli.main(argv) == 130
    captured = capsys.readouterr()
    lines = [x for x in captured.err.splitlines() if "interrupted" in x]
    assert lines == ["interrupted after 2 of 4; run the same command to resume"], captured.err
    assert "Traceback" not in captured.err
    rows = list(csv.DictReader((output / "grades.csv").open()))
    assert [r["student_id"] for r in rows] == ["s1", "s2"], rows
    assert (output / "gradebook.db").read_text() == "2"

    fake_grader(monkeypatch)
    assert cli.main(argv) == 0
    assert [r["student_id"] for r in csv.DictReader((output / "grades.csv").open())] == ["s1", "s2", "s3", "s4"]


def test_batch_stop_with_jobs_ends_the_other_students_runs(tmp_path, monkeypatch, capsys):
    """With --jobs 2, a stop while both students are graded tells the other thread's runs to end at once (they
    raise KeyboardInterrupt there): status 130 in seconds, neither student graded; a run asked for afterwards
    is refused before anything is made."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student in ("s1", "s2"):
        notebook(submitted, student)
    fake_grader(monkeypatch)
    both_started, seen = threading.Barrier(2, timeout=10), {}

    def grade_student(student, notebook, out_dir, categories, reference):
        both_started.wait()
        if student == "s1":
            raise KeyboardInterrupt
        seen["stopped"] = workspace.STOPPING.wait(timeout=10)
        raise KeyboardInterrupt  # what run_call does once the batch stops

    monkeypatch.setattr(batch, "grade_student", grade_student)
    argv = ["grade", "--submitted", str(submitted), "--output", str(output), "--categories", "serial", "--jobs", "2"]
    monkeypatch.setattr(cli.quotas, "jobs_cap", lambda quota, per_job: 2)  # whatever CPUs this machine has
    monkeypatch.setattr(workspace, "STOPPING", threading.Event())  # this test's own
    start = time.monotonic()
    assert cli.main(argv) == 130
    assert seen == {"stopped": True} and time.monotonic() - start < 10
    assert "interrupted after 0 of 2" in capsys.readouterr().err
    template = tmp_path / "template"
    template.mkdir()
    with pytest.raises(KeyboardInterrupt):
        workspace.run_call(template, "evolve_serial", {}, wall_seconds=1, start_method=None)
    assert not list(template.iterdir()) and not list(tmp_path.glob("run-*"))


def test_batch_summary_wording_for_zero_scores_and_inconclusive_timing(tmp_path):
    """The summary says how many points an inconclusive speedup got, and why a submission scored 0."""
    output = tmp_path / "out"
    report = batch.Report(
        [
            Graded("ann", 85, {"speedup": 0}, inconclusive=True),
            Graded("bea", 100, {"speedup": 15}, inconclusive=True),
            Graded("zed", 0, {}, doc=results_doc("zed", 0, "evolve_serial still raises X\nmore")),
        ],
        3,
        tuple(CATEGORIES),
        output=output,
    )
    text = batch.summary(report)
    assert "ann: speedup inconclusive, 0/15 awarded" in text, text
    assert "bea: speedup inconclusive, 15/15 awarded" in text, text
    assert "(points awarded)" not in text
    assert "scored 0    zed: every test failed, mostly with: evolve_serial still raises X" in text, text


@pytest.mark.parametrize("command", ["grade", "collect", "feedback", "export"])
def test_batch_cli_help_documents_exit_status(command, capsys):
    """Every subcommand's --help ends with what its exit status means."""
    with pytest.raises(SystemExit) as done:
        cli.main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "exit status:" in text and "  0 " in text and "  2 " in text, text


GRADE_TWO = ("serial,parallel",)


def _grade_argv(submitted: Path, output: Path, *extra: str) -> list[str]:
    return ["grade", "--submitted", str(submitted), "--output", str(output), "--categories", *GRADE_TWO, *extra]


def test_batch_empty_submitted_folder_refused_with_one_line(tmp_path, monkeypatch, capsys):
    """An empty submitted folder grades nobody, writes nothing and says in one line to collect first."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    submitted.mkdir()
    graded = fake_grader(monkeypatch)
    assert cli.main(_grade_argv(submitted, output)) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [
        f"python -m autograder grade: error: no submissions in {submitted}: run make collect FROM=... first"
    ]
    assert not graded and not output.exists()


def test_batch_second_grade_on_the_same_output_refused(tmp_path, monkeypatch, capsys):
    """While one grade holds the output (its flock, or a live pid in the lock file) a second one, a --student
    regrade included, is refused in one line naming the pid and grades nobody; a dead pid's lock is taken over."""
    import subprocess
    import sys

    from autograder import output_lock

    submitted, output = tmp_path / "submitted", tmp_path / "out"
    notebook(submitted, "alice")
    graded = fake_grader(monkeypatch)
    with output_lock.hold(output):
        for extra in ((), ("--student", "alice")):
            assert cli.main(_grade_argv(submitted, output, *extra)) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"is being graded by another grade (pid {os.getpid()}" in err[0], err
    assert not graded and not (output / output_lock.LOCK_NAME).exists(), "the lock outlived its holder"

    lock = output / output_lock.LOCK_NAME
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(f"{sleeper.pid}\n")
        assert cli.main(_grade_argv(submitted, output)) == 2
        assert f"(pid {sleeper.pid}" in capsys.readouterr().err and not graded
    finally:
        sleeper.kill()
        sleeper.wait()
    lock.write_text(f"{sleeper.pid}\n")  # reaped: no process has that pid now
    assert cli.main(_grade_argv(submitted, output)) == 0
    assert f"left by pid {sleeper.pid}, no longer running" in capsys.readouterr().err
    assert [s for s, _ in graded] == ["alice"] and not lock.exists()


def test_batch_late_policy_applied_to_the_scores_and_listed(tmp_path, monkeypatch, capsys):
    """A late submission's total in the summary, results.json and grades.csv is after the course's penalty, and
    the summary lists it; a late policy nbgrader_config.py cannot give stops the batch with status 3."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student, stamp in (("ann", "2025-03-14 20:00:00.000000 UTC"), ("bob", "2025-03-15 09:00:00.000000 UTC")):
        notebook(submitted, student)
        (submitted / student / paths.ASSIGNMENT / "timestamp.txt").write_text(stamp)
    config = tmp_path / "nbgrader_config.py"
    config.write_text(
        "c = get_config()\nc.LatePolicy.duedate = '2025-03-14 23:59 UTC'\nc.LatePolicy.penalty_per_day = 0.5\n"
    )
    monkeypatch.setattr(paths, "COURSE_CONFIG", config)
    fake_grader(monkeypatch)
    assert cli.main(_grade_argv(submitted, output)) == 0
    out = capsys.readouterr().out
    assert "bob: late by 9 h 1 min: -15 points (50%)" in out, out
    totals = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.startswith(("ann ", "bob "))}
    assert totals == {"ann": "30", "bob": "15"}, out
    rows = {r["student_id"]: r for r in csv.DictReader((output / "grades.csv").open())}
    assert (rows["bob"]["raw_score"], rows["bob"]["late_submission_penalty"], rows["bob"]["score"]) == (
        "30.0",
        "15.0",
        "15.0",
    )
    assert json.loads((output / "bob" / "results.json").read_text())["score"] == 15

    config.write_text("c = get_config()\nc.LatePolicy.duedate = 'next friday'\n")
    graded = fake_grader(monkeypatch)
    assert cli.main([*_grade_argv(submitted, output), "--force"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "c.LatePolicy.duedate" in err[0] and not graded, err


def test_batch_only_regrades_inconclusive_timings_or_grader_errors(tmp_path, monkeypatch, capsys):
    """--only inconclusive regrades just the students whose speedup was not judged, --only errors just those whose
    last grading was a grader error (both as with --force); with nobody to regrade it says so and exits 0."""
    submitted, output = tmp_path / "submitted", tmp_path / "out"
    for student in ("ann", "bob", "cat", "dan"):
        notebook(submitted, student)
    fake_grader(monkeypatch, fail=("cat",), not_judged=("bob", "dan"))
    assert cli.main(_grade_argv(submitted, output)) == 1
    out = capsys.readouterr().out
    assert "make grade ONLY=errors" in out, out

    graded = fake_grader(monkeypatch, not_judged=("dan",))
    assert cli.main(_grade_argv(submitted, output, "--only", "inconclusive")) == 0
    assert [s for s, _ in graded] == ["bob", "dan"]
    graded = fake_grader(monkeypatch)
    assert cli.main(_grade_argv(submitted, output, "--only", "errors")) == 0
    assert [s for s, _ in graded] == ["cat"] and not (output / "cat" / results.ERROR_FILE).exists()
    capsys.readouterr()
    assert cli.main(_grade_argv(submitted, output, "--only", "errors")) == 0
    assert "nothing to regrade: no students whose last grading ended in a grader error" in capsys.readouterr().out

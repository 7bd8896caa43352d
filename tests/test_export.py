"""`export`: the per-part table, an LMS file filled from a roster, and nbgrader's own export reading our gradebook."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import cli, paths, spreadsheet
from autograder.categories import CATEGORIES, POINTS
from autograder.term import gradebook

ROOT = paths.ROOT


def graded(output: Path, student: str, scores: dict[str, float]) -> dict:
    doc = {
        "score": sum(scores.values()),
        "tests": [],
        "extra_data": {
            "student_id": student,
            "timestamp": "2025-03-01 12:00:00.000000 UTC",
            "categories": list(scores),
            "category_scores": scores,
        },
    }
    (output / student).mkdir(parents=True, exist_ok=True)
    (output / student / "results.json").write_text(json.dumps(doc))
    return doc


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_export_per_part_table(tmp_path, capsys):
    """One row per student, a column per part; a submitted student not graded yet keeps a row, marked."""
    output, submitted = tmp_path / "grades", tmp_path / "submitted"
    graded(output, "1001", dict(POINTS))
    graded(output, "1002", {"serial": 25, "parallel": 10})
    (submitted / "1003").mkdir(parents=True)
    assert cli.main(["export", "--output", str(output), "--submitted", str(submitted)]) == 0
    table = {r["student_id"]: r for r in rows(output / "export.csv")}
    assert list(next(iter(table.values()))) == [
        "student_id",
        "timestamp",
        *CATEGORIES,
        "raw_score",
        "late_penalty",
        "score",
        "max_score",
        "status",
        "late",
        "written_rng (by hand, of 5)",
    ]
    assert table["1001"]["agent"] == "20" and table["1001"]["score"] == "100" and table["1001"]["status"] == "graded"
    assert (
        table["1002"]["parallel"] == "10"
        and table["1002"]["agent"] == ""
        and table["1002"]["status"] == "graded: serial,parallel"
    )
    assert table["1003"]["score"] == "" and table["1003"]["status"] == "not graded"
    assert (
        table["1001"]["written_rng (by hand, of 5)"] == "ungraded"
        and table["1003"]["written_rng (by hand, of 5)"] == ""
    )
    assert "3 students, 2 graded" in capsys.readouterr().out


def test_export_per_part_table_shows_hand_grades_apart(tmp_path):
    """A score given by hand in the formgrader is in export.csv in its own column; the autograded score is
    unchanged by it, and a student whose answer is not read yet says so."""
    from nbgrader.api import Gradebook

    output, submitted = tmp_path / "grades", tmp_path / "submitted"
    docs = [(s, graded(output, s, dict(POINTS))) for s in ("alice", "bob")]
    gradebook.rebuild(output / "gradebook.db", docs)
    with Gradebook(f"sqlite:///{output / 'gradebook.db'}") as gb:
        gb.find_grade("written_rng", gradebook.NOTEBOOK_NAME, paths.ASSIGNMENT, "alice").manual_score = 4.0
        gb.db.commit()
    assert cli.main(["export", "--output", str(output), "--submitted", str(submitted)]) == 0
    table = {r["student_id"]: r for r in rows(output / "export.csv")}
    assert table["alice"]["written_rng (by hand, of 5)"] == "4" and table["alice"]["score"] == "100"
    assert table["bob"]["written_rng (by hand, of 5)"] == "ungraded"


def test_export_fills_a_canvas_roster(tmp_path, capsys):
    """A Canvas gradebook export: identifying columns kept, other assignments dropped, this assignment's column
    filled (Points Possible row too), roster students without a submission empty, a graded student missing from
    the roster listed with status 1."""
    output = tmp_path / "grades"
    graded(output, "1001", dict(POINTS))
    graded(output, "1002", {c: 0 for c in CATEGORIES})
    graded(output, "9999", dict(POINTS))
    roster = tmp_path / "canvas.csv"
    roster.write_text(
        "\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,Quiz 1 (11),Neuroevolution (1234)\n"
        "    Points Possible,,,,,10,100\n"
        '"Doe, Jane",1001,s1,jdoe,A,9,\n"Roe, Bob",1002,s2,broe,A,7,\n"Poe, Ann",1003,s3,apoe,B,8,\n',
        encoding="utf-8",
    )
    status = cli.main(["export", "--output", str(output), "--roster", str(roster)])
    out = capsys.readouterr().out
    assert status == 1, out
    lms = rows(output / "lms-upload.csv")
    assert list(lms[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Neuroevolution (1234)"]
    by_id = {r["ID"]: r["Neuroevolution (1234)"] for r in lms}
    assert by_id == {"": "100", "1001": "100", "1002": "0", "1003": ""}, by_id
    assert "matched on 'ID'" in out and "1 without a submission" in out
    assert "graded but not in the roster" in out and "9999" in out


def test_export_writes_formula_cells_as_text(tmp_path):
    """export.csv and lms-upload.csv put a quote before ids and roster cells a spreadsheet would run;
    scores (a negative one too) stay numbers."""
    output, submitted = tmp_path / "grades", tmp_path / "submitted"
    evil = '=HYPERLINK("evil.example","click")'
    graded(output, evil, {"serial": 25})
    graded(output, "1001", {"serial": -3})
    (submitted / "@SUM(1)").mkdir(parents=True)
    assert cli.main(["export", "--output", str(output), "--submitted", str(submitted)]) == 0
    table = {r["student_id"]: r for r in rows(output / "export.csv")}
    assert sorted(table) == ["'" + evil, "'@SUM(1)", "1001"], table
    assert table["1001"]["serial"] == "-3" and table["1001"]["score"] == "-3"

    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Student,ID,Section,Neuroevolution\n\"=cmd|' /C calc'!A0\",1001,-5,\n+44 20 7946,1002,@A1,\n",
        encoding="utf-8",
    )
    assert cli.main(["export", "--output", str(output), "--roster", str(roster)]) == 1  # evil is not in the roster
    lms = rows(output / "lms-upload.csv")
    assert [(r["Student"], r["ID"], r["Section"], r["Neuroevolution"]) for r in lms] == [
        ("'=cmd|' /C calc'!A0", "1001", "-5", "-3"),
        ("'+44 20 7946", "1002", "'@A1", ""),
    ], lms


@pytest.mark.parametrize(
    "value, written",
    [
        ("=1+1", "'=1+1"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-", "'-"),
        ("-3", "-3"),
        ("+1.5", "+1.5"),
        ("-1e3", "-1e3"),
        (-3, "-3"),
        (-2.5, "-2.5"),
        (None, ""),
        ("alice@uni.edu", "alice@uni.edu"),
        ("jean-luc", "jean-luc"),
    ],
)
def test_export_cell_quotes_formulas_and_keeps_numbers(value, written):
    """Only the first character makes a formula, and a signed number is a number, not a formula."""
    assert spreadsheet.cell(value) == written


def test_export_nbgrader_export_reads_the_graders_gradebook(tmp_path):
    """`nbgrader export` run from the course folder gives the grades the grader wrote (one gradebook)."""
    grades = tmp_path / "grades"
    grades.mkdir()
    doc = {"score": 45.0, "extra_data": {"category_scores": {"serial": 25, "parallel": 20}}}
    gradebook.rebuild(grades / "gradebook.db", [("alice", doc)])
    target = tmp_path / "nbgrader-export.csv"
    env = {**os.environ, "NEUROEVO_GRADES": str(grades)}
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--to={target}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    exported = rows(target)
    assert [(r["assignment"], r["student_id"], float(r["score"])) for r in exported] == [
        (paths.ASSIGNMENT, "alice", 45.0)
    ], exported


def test_export_gradebook_keeps_hand_grades_apart_across_rebuilds(tmp_path):
    """The written answer is in the gradebook as a hand-graded cell beside the autograded 100 points: a score
    given in the formgrader survives the next `make grade`, and an answer not yet read waits for one."""
    from nbgrader.api import Gradebook

    assert gradebook.hand_graded_cells() == {"written_rng": 5.0}, "the notebook's hand-graded answer changed"
    db = tmp_path / "gradebook.db"
    doc = {"score": 45.0, "extra_data": {"category_scores": {"serial": 25, "parallel": 20}}}
    gradebook.rebuild(db, [("alice", doc)])
    with Gradebook(f"sqlite:///{db}") as gb:
        grade = gb.find_grade("written_rng", gradebook.NOTEBOOK_NAME, paths.ASSIGNMENT, "alice")
        assert grade.needs_manual_grade and grade.manual_score is None and grade.max_score == 5
        grade.manual_score = 4.0
        gb.db.commit()
    gradebook.rebuild(db, [("alice", doc), ("bob", doc)])
    with Gradebook(f"sqlite:///{db}") as gb:
        alice = gb.find_grade("written_rng", gradebook.NOTEBOOK_NAME, paths.ASSIGNMENT, "alice")
        bob = gb.find_grade("written_rng", gradebook.NOTEBOOK_NAME, paths.ASSIGNMENT, "bob")
        assert alice.manual_score == 4.0 and not alice.needs_manual_grade, "a hand grade was lost by the rebuild"
        assert bob.manual_score is None and bob.needs_manual_grade
        serial = gb.find_grade("test_serial", gradebook.NOTEBOOK_NAME, paths.ASSIGNMENT, "alice")
        assert serial.auto_score == 25 and not serial.needs_manual_grade


def test_export_nbgrader_export_before_any_grading(tmp_path):
    """Before `make grade`, `nbgrader export` from the course folder (venv not activated) gives an empty CSV,
    not a traceback about a missing folder or `alembic`."""
    path = os.pathsep.join(
        p
        for p in os.environ.get("PATH", "").split(os.pathsep)
        if Path(p).resolve() != Path(sys.executable).parent.resolve()
    )
    env = {**os.environ, "NEUROEVO_GRADES": str(tmp_path / "not-yet"), "PATH": path}
    target = tmp_path / "empty.csv"
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", f"--to={target}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert rows(target) == [] and target.read_text().startswith("assignment,duedate,timestamp,student_id")


def test_export_gradebook_stamped_with_nbgrader_s_own_schema_revision(monkeypatch):
    """The schema revision the grader reads in its own process is the one nbgrader's `alembic heads` reports, so
    `nbgrader export` and the formgrader open the rebuilt gradebook without a migration."""
    from nbgrader import api

    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert gradebook._alembic_head() == api.get_alembic_version()


def test_export_gradebook_reads_nbgrader_and_iso_timestamps():
    """The gradebook stores each submission's time as naive UTC, whichever way results.json wrote it."""
    from datetime import datetime

    noon = datetime(2025, 3, 1, 12, 0)
    assert gradebook._timestamp("2025-03-01 12:00:00.000000 UTC") == noon
    assert gradebook._timestamp("2025-03-01T13:00:00+01:00") == noon
    assert gradebook._timestamp("not a time") is None and gradebook._timestamp(None) is None


def test_export_late_penalty_agrees_everywhere(tmp_path, monkeypatch):
    """One due date and penalty in nbgrader_config.py: results.json, grades.csv, nbgrader's own export of the
    gradebook, export.csv and the LMS upload show the same penalty and score; an extension granted afterwards
    reaches all of them at the next export, nobody regraded."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    output, submitted = tmp_path / "grades", tmp_path / "submitted"
    for student, score, stamp in (
        ("alice", {"serial": 25, "parallel": 20}, "2025-03-14 20:00:00.000000 UTC"),
        ("bob", {"serial": 25, "parallel": 15}, "2025-03-16 02:59:00.000000 UTC"),
    ):
        graded(output, student, score)
        (submitted / student / paths.ASSIGNMENT).mkdir(parents=True)
        (submitted / student / paths.ASSIGNMENT / "timestamp.txt").write_text(stamp)
    config = tmp_path / "nbgrader_config.py"
    policy = "c = get_config()\nc.LatePolicy.duedate = '2025-03-14 23:59 UTC'\nc.LatePolicy.penalty_per_day = 0.1\n"
    config.write_text(policy)
    monkeypatch.setattr(paths, "COURSE_CONFIG", config)
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,SIS Login ID,Neuroevolution\nAlice,alice,\nBob,bob,\n")

    def everywhere() -> dict[str, set]:
        assert cli.main(["export", "--output", str(output), "--submitted", str(submitted)]) == 0
        assert (
            cli.main(["export", "--output", str(output), "--submitted", str(submitted), "--roster", str(roster)]) == 0
        )
        nbgrader_csv = tmp_path / "nbgrader.csv"
        with gradebook.nbgrader_stamps_in_process(), Gradebook(f"sqlite:///{output / 'gradebook.db'}") as gb:
            CsvExportPlugin(to=str(nbgrader_csv)).export(gb)
        seen: dict[str, set] = {}
        for student in ("alice", "bob"):
            doc = json.loads((output / student / "results.json").read_text())
            ours = next(r for r in rows(output / "grades.csv") if r["student_id"] == student)
            theirs = next(r for r in rows(nbgrader_csv) if r["student_id"] == student)
            table = next(r for r in rows(output / "export.csv") if r["student_id"] == student)
            upload = next(r for r in rows(output / "lms-upload.csv") if r["SIS Login ID"] == student)
            seen[student] = {
                (float(doc["score"]), float(doc["extra_data"]["late"]["penalty"])),
                (float(ours["score"]), float(ours["late_submission_penalty"])),
                (float(theirs["score"]), float(theirs["late_submission_penalty"])),
                (float(table["score"]), float(table["late_penalty"])),
                (float(upload["Neuroevolution"]), float(table["late_penalty"])),
            }
            assert ours["duedate"] == "2025-03-14 23:59:00.000000 UTC" and theirs["duedate"] == "2025-03-14 23:59:00"
        return seen

    assert everywhere() == {"alice": {(45.0, 0.0)}, "bob": {(32.0, 8.0)}}
    bob = json.loads((output / "bob" / "results.json").read_text())
    assert bob["extra_data"]["late"]["headline"] == "late by 1 d 3 h: -8 points (20%)", bob["extra_data"]["late"]
    assert next(r for r in rows(output / "export.csv") if r["student_id"] == "bob")["late"].startswith("late by")

    config.write_text(policy + "c.LatePolicy.extensions = {'bob': 2}\n")
    assert everywhere() == {"alice": {(45.0, 0.0)}, "bob": {(40.0, 0.0)}}


def test_export_roster_joined_through_any_id_column(tmp_path, capsys):
    """Ids collected from Gradescope mix SIDs with emails (and logins): each roster row is found through whichever
    column holds its student's id, emails in any case, and the output says which columns were used, with counts."""
    output = tmp_path / "grades"
    graded(output, "s1", {"serial": 25})
    graded(output, "s2", {"serial": 20})
    graded(output, "Bob.Roe@Uni.edu", {"serial": 10})
    graded(output, "apoe", {"serial": 5})
    roster = tmp_path / "canvas.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Email,Section,Neuroevolution (1234)\n"
        '"Doe, Jane",11,s1,jdoe,jane.doe@uni.edu,A,\n"Roe, Bob",12,,broe,bob.roe@uni.edu,A,\n'
        '"Poe, Ann",13,s3,apoe,ann.poe@uni.edu,B,\n"Kay, Zed",14,s2,zkay,zed.kay@uni.edu,B,\n"New, Nia",15,s4,nnew,,B,\n',
        encoding="utf-8",
    )
    assert cli.main(["export", "--output", str(output), "--roster", str(roster)]) == 0
    out = capsys.readouterr().out
    lms = {r["ID"]: r["Neuroevolution (1234)"] for r in rows(output / "lms-upload.csv")}
    assert lms == {"11": "25", "12": "10", "13": "5", "14": "20", "15": ""}, lms
    assert "matched on 'SIS User ID' (2) and 'Email' (1) and 'SIS Login ID' (1)" in out, out
    assert "not in the roster" not in out

    assert cli.main(["export", "--output", str(output), "--roster", str(roster), "--id-column", "SIS User ID"]) == 1
    out = capsys.readouterr().out
    assert "matched on 'SIS User ID' (2)" in out and "Bob.Roe@Uni.edu" in out and "apoe" in out, out

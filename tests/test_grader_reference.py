"""Grading whole submissions end to end: the reference, the untouched release and broken notebooks."""

from __future__ import annotations

import csv

import pytest
import support

from autograder import demo  # noqa: E402
from autograder.categories import CATEGORIES, POINTS  # noqa: E402

pytestmark = pytest.mark.timed  # the reference is graded with the real budgets, its speedup included


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One batch: the reference solution, the untouched release, a damaged notebook and a missing one."""
    root = tmp_path_factory.mktemp("batch")
    submitted, output = root / "submitted", root / "grades"
    support.write_student(submitted, "reference", demo.reference_source())
    support.write_student(submitted, "untouched", None)
    damaged = support.write_student(submitted, "damaged", None)
    damaged.write_text("{ this is not json", encoding="utf-8")
    (submitted / "empty" / "neuroevolution").mkdir(parents=True)
    done = support.grade(submitted, output)
    assert done.returncode == 0, done.stderr[-3000:]
    return output, done


@pytest.mark.slow
def test_grader_reference_gets_full_marks(graded):
    """The reference solution earns every point (speedup: at least 80 %, timing noise on a shared machine)."""
    output, _ = graded
    result = support.results(output, "reference")
    lost = support.losses(result)
    assert set(lost) <= {"speedup"}, support.failures(result)
    assert lost.get("speedup", 0) <= 0.2 * POINTS["speedup"], support.failures(result)


@pytest.mark.slow
def test_grader_untouched_release_gets_zero(graded):
    """The release notebook as is scores 0, every test saying NotImplementedError is still in place."""
    output, _ = graded
    result = support.results(output, "untouched")
    assert result["score"] == 0
    for test in result["tests"]:
        assert "NotImplementedError" in test["output"], test


@pytest.mark.slow
def test_grader_broken_notebooks_get_zero_with_reason(graded):
    """A damaged notebook and a missing one score 0 with a message saying what to do."""
    output, _ = graded
    for student, reason in (("damaged", "not a valid notebook"), ("empty", "no notebook")):
        result = support.results(output, student)
        assert result["score"] == 0
        assert all(reason in t["output"] for t in result["tests"]), support.failures(result)


@pytest.mark.slow
def test_grader_results_follow_gradescope_schema(graded):
    """Every test has name, score, max_score, status, output, visibility and exactly one category tag."""
    output, _ = graded
    result = support.results(output, "reference")
    assert sum(t["max_score"] for t in result["tests"]) == pytest.approx(sum(POINTS.values()))
    for test in result["tests"]:
        assert {"name", "score", "max_score", "status", "output", "tags", "visibility"} <= set(test)
        assert len(test["tags"]) == 1 and test["tags"][0] in CATEGORIES
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    for category in CATEGORIES:
        mine = [t["max_score"] for t in result["tests"] if t["tags"] == [category]]
        assert sum(mine) == pytest.approx(POINTS[category]), category


@pytest.mark.slow
def test_grader_gradebook_agrees_with_grades_csv(graded):
    """nbgrader's gradebook holds the same total per student as grades.csv."""
    from nbgrader.api import Gradebook

    from autograder.term.gradebook import nbgrader_stamps_in_process

    output, _ = graded
    rows = {r["student_id"]: float(r["score"]) for r in csv.DictReader((output / "grades.csv").open())}
    assert set(rows) == {"reference", "untouched", "damaged", "empty"}
    with nbgrader_stamps_in_process(), Gradebook(f"sqlite:///{output / 'gradebook.db'}") as gb:
        for student, score in rows.items():
            assert gb.find_submission("neuroevolution", student).score == pytest.approx(score, abs=0.01), student


@pytest.mark.slow
def test_grader_feedback_page_is_self_contained(graded):
    """feedback.html shows per-part scores, the total and an embedded fitness curve."""
    output, done = graded
    page = (output / "reference" / "feedback.html").read_text(encoding="utf-8")
    assert "Total" in page and "data:image/png;base64," in page and "speedup" in page.lower()
    assert "<script" not in page and "http" not in page.split("<body>")[1]
    assert "reference" in done.stdout and "timings" in done.stdout

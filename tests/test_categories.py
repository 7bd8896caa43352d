"""The category registry is the one place a category is declared: every place that lists or weighs
categories agrees with it."""

from __future__ import annotations

import json

import pytest

from autograder import categories, paths
from autograder.categories import ALL, CATEGORIES, POINTS, TOTAL
from autograder.observe import Plan, observe_calls
from autograder.term import feedback
from tools import release


def test_categories_each_has_its_checks_file():
    """Every declared category has autograder/checks/test_<name>.py, and no checks file lacks a category."""
    files = {p.name for p in paths.CHECKS_DIR.glob("test_*.py")}
    assert files == {c.checks_file for c in ALL}


def test_categories_runs_are_observation_runs():
    """The runs a category reads are among the observation runs the grader makes."""
    labels = set(observe_calls(Plan.draw()))
    for category in ALL:
        assert set(category.runs) <= labels, f"{category.name} reads runs the grader never makes"


def test_categories_notebook_cells_carry_the_registry_points():
    """The instructor notebook and the release give each graded test cell its category's points."""
    for notebook in (paths.SOURCE_DIR / paths.NOTEBOOK, paths.RELEASE_DIR / paths.NOTEBOOK):
        cells = {
            c["metadata"]["nbgrader"]["grade_id"]: c["metadata"]["nbgrader"].get("points")
            for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
            if c["metadata"].get("nbgrader", {}).get("grade")
        }
        assert {c.cell_id: c.points for c in ALL}.items() <= cells.items(), notebook


def test_categories_release_stamps_points_from_the_registry(tmp_path):
    """A notebook whose test cell disagrees with the registry is stamped back, and says which cell changed."""
    copy = tmp_path / paths.NOTEBOOK
    nb = json.loads((paths.SOURCE_DIR / paths.NOTEBOOK).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "test_speedup":
            cell["metadata"]["nbgrader"]["points"] = 99
    copy.write_text(json.dumps(nb), encoding="utf-8")
    assert release.stamp_points(copy, write=False) == [f"test_speedup 99 -> {POINTS['speedup']} points"]
    assert release.stamp_points(copy) and release.stamp_points(copy) == []


def test_categories_parse_names_the_choices():
    """An unknown category is refused with the list to choose from; known ones come back in grading order."""
    assert categories.parse("agent, serial") == ("serial", "agent")
    with pytest.raises(ValueError, match="choose from serial, parallel"):
        categories.parse("serial,speed")


def test_categories_feedback_titles_and_total_come_from_the_registry():
    """Feedback pages title parts and count the total from the registry."""
    tests = [
        {"name": f"test_{c.name}_x", "score": 0, "max_score": c.points, "status": "failed", "tags": [c.name]}
        for c in ALL
    ]
    doc = {"score": 0, "tests": tests, "extra_data": {}}
    page = feedback.page(doc, publish=True, agent=False)
    assert all(c.title in page for c in ALL)
    assert TOTAL == sum(c.points for c in ALL) == 100 and CATEGORIES[0] == "serial"


def test_categories_kit_check_finds_the_parts_in_registry_order():
    """The kit's check.py reads the parts from the release's graded cells: the registry's, in its order."""
    from tools import selfcheck

    sources, points = selfcheck.graded_cells(paths.RELEASE_DIR / paths.NOTEBOOK)
    assert selfcheck.test_ids(sources) == tuple(c.cell_id for c in ALL)
    assert points == {c.cell_id: c.points for c in ALL}

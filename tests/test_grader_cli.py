"""The grader's command line and its strict readers, without running any submission."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest

from autograder import cli, readback, results
from autograder.categories import CATEGORIES, POINTS


def test_grader_cli_help_documents_every_flag(capsys):
    """`grade --help` exits 0 and documents --submitted, --output, --student, --force, --categories and --seeds-from."""
    with pytest.raises(SystemExit) as done:
        cli.main(["grade", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--submitted", "--output", "--student", "--force", "--categories", "--seeds-from"):
        assert flag in text, f"{flag} is not documented in --help"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--submitted", "no-such-folder"], "no folder no-such-folder"),
        (["--student", "nobody"], "no submission for nobody"),
        (["--categories", "serial,style"], "unknown category style"),
        (["--seeds-from", "missing.json"], "cannot read --seeds-from"),
        (["--seeds-from", "garbled.json"], "is not JSON"),
        (["--seeds-from", "old-results.json"], "records no seeds (graded by an older grader?)"),
    ],
)
def test_grader_cli_bad_input_is_one_clear_line(tmp_path, capsys, monkeypatch, args, expected):
    """Bad command-line input exits with status 2 and one line on stderr, without a traceback."""
    (tmp_path / "submitted" / "alice").mkdir(parents=True)
    (tmp_path / "garbled.json").write_text("{ nope", encoding="utf-8")
    (tmp_path / "old-results.json").write_text('{"score": 1, "tests": [], "extra_data": {}}', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    argv = ["grade", "--submitted", str(tmp_path / "submitted"), "--output", str(tmp_path / "out"), *args]
    if args[0] == "--submitted":
        argv = ["grade", "--output", str(tmp_path / "out"), "--submitted", str(tmp_path / args[1])]
        expected = f"no folder {tmp_path / args[1]}"
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err and "Traceback" not in err, err


def test_grader_validate_refuses_non_finite_and_misshapen_params():
    """Parameters from the sandbox need exactly w1, b1, w2, b2 with the network's shapes and finite numbers."""
    good = {"w1": np.zeros((2, 10)).tolist(), "b1": [0.0] * 10, "w2": np.zeros((10, 1)).tolist(), "b2": [0.0]}
    assert readback.params(good)["w1"].shape == (2, 10)
    for bad in (
        {**good, "b2": [math.inf]},
        {**good, "b1": [0.0] * 9},
        {**good, "extra": [1.0]},
        {k: v for k, v in good.items() if k != "w2"},
        {**good, "b2": [True]},
        {**good, "b2": "0"},
    ):
        with pytest.raises(readback.Invalid):
            readback.params(bad)


def test_grader_validate_refuses_nan_in_json():
    """JSON's non-standard NaN/Infinity constants and absurd nesting are refused when reading sandbox output."""
    assert readback.parse_json('{"ret": 1.5}') == {"ret": 1.5}
    for text in ('{"ret": NaN}', '{"ret": -Infinity}', "[" * 100_000 + "]" * 100_000, '{"ret": '):
        with pytest.raises(readback.Invalid):
            readback.parse_json(text)


def test_grader_grades_csv_has_nbgrader_export_columns():
    """grades.csv has nbgrader's export columns and one row per student with the total score."""
    tests = [{"score": POINTS[c], "max_score": POINTS[c], "tags": [c]} for c in CATEGORIES]
    text = results.grades_csv([("bob", {"score": 42.5, "tests": tests, "extra_data": {}})])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == results.CSV_COLUMNS
    assert rows[0]["student_id"] == "bob" and float(rows[0]["score"]) == 42.5
    assert float(rows[0]["max_score"]) == sum(POINTS.values())


def test_grader_results_test_names_are_part_and_first_sentence():
    """A test's name in results.json (what Gradescope shows) is its part and its docstring's first sentence, not
    the pytest name and whole docstring; a test without a docstring gets its name in words."""
    outcome = {"category": "serial", "passed": True, "message": "", "hidden": False, "score": 5.0, "max_score": 5.0}
    doc = results.build(
        [
            {
                **outcome,
                "name": "test_serial_one",
                "doc": "Plays one episode per candidate. Checked on replays.\n\nMore.",
            },
            {**outcome, "name": "test_serial_calls_in_caller", "doc": ""},
        ],
        {},
        {},
    )
    assert [t["name"] for t in doc["tests"]] == [
        "Serial loop: Plays one episode per candidate",
        "Serial loop: Calls in caller",
    ]
    assert doc["extra_data"]["raw_score"] == doc["score"] == 10.0

"""Grading several students at once (--jobs): the same verdicts as one at a time, timed runs on reserved cores."""

from __future__ import annotations

import threading

import pytest
import support

from autograder import demo
from autograder.cores import Cores

STUDENTS = {"correct": "reference", "argmin": "argmin_selection", "stub": None}
CATEGORIES = "serial,determinism,speedup"


def _batch(tmp_path, jobs: int):
    submitted, output = tmp_path / f"submitted-{jobs}", tmp_path / f"grades-{jobs}"
    wrong = support.corpus("wrong")
    for student, source in STUDENTS.items():
        code = demo.reference_source() if source == "reference" else (wrong[source].source if source else None)
        support.write_student(submitted, student, code)
    done = support.grade(
        submitted, output, "--categories", CATEGORIES, "--jobs", str(jobs), settings=support.UNTIMED_SETTINGS
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {student: support.results(output, student) for student in STUDENTS}


def _verdicts(result: dict) -> dict[str, list[tuple[str, str]]]:
    """Each untimed test's status, by category (speedup left out: with 2 cores it needs the whole machine)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for test in result["tests"]:
        if test["tags"][0] != "speedup":
            out.setdefault(test["tags"][0], []).append((test["name"], test["status"]))
    return out


@pytest.mark.slow
def test_grading_jobs_same_verdicts_and_reserved_cores(tmp_path):
    """--jobs 1 and --jobs 2 give every student the same verdicts; timed runs ran on the cores reserved for them."""
    one, two = _batch(tmp_path, 1), _batch(tmp_path, 2)
    for student in STUDENTS:
        assert _verdicts(one[student]) == _verdicts(two[student]), student
    for results in (one, two):
        timing = results["correct"]["extra_data"]["timing"]
        assert timing["reserved"], "the timed phase reserved no cores"
        assert timing["cpus"] == sorted(timing["reserved"]), (
            f"timed runs ran on {timing['cpus']}, reserved {timing['reserved']}"
        )


def test_grading_jobs_cores_reserved_and_shared():
    """A timed phase holds its cores alone; other runs get the rest, and wait while none is left."""
    cores = Cores([0, 1, 2, 3])
    with cores.reserve(2) as timed:
        assert timed == (0, 1)
        assert cores.free() == (2, 3)
        assert cores.free(holding=timed) == (0, 1, 2, 3)
        with cores.reserve(2) as other:
            assert other == (2, 3)
            waited = []
            thread = threading.Thread(target=lambda: waited.append(cores.free()))
            thread.start()
            thread.join(0.2)
            assert thread.is_alive(), "an untimed run started while every core was reserved"
        thread.join(2)
        assert waited == [(2, 3)]
    assert cores.free() == (0, 1, 2, 3)

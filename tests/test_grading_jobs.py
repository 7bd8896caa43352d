"""Grading several students at once (--jobs): the same scores as one at a time, every timed phase alone on its cores."""

from __future__ import annotations

import threading
import time

import pytest
import support

from autograder import demo
from autograder.categories import POINTS
from autograder.cores import Cores

STUDENTS = {"correct": "reference", "turns": "lock_turn_taking_workers", "argmin": "argmin_selection", "stub": None}
"""A correct loop, one whose workers take turns (not parallel), a wrong one and an untouched stub."""
CATEGORIES = "serial,speedup"
SETTINGS = {**support.TEST_SETTINGS, "observe": {"wall_seconds": 30}, "speedup": {"wall_seconds": 30}}
"""The real timed workload and rounds (24 candidates per worker, 3 to 5 rounds): the test budgets' smaller ones
leave half-second runs that a burst of other work on a shared machine moves by more than the noise allowance."""
NOISE = 3
"""Speedup points (of 15) a correct loop may lose to noise in either batch at the real workload."""


def _batch(tmp_path, jobs: int):
    submitted, output = tmp_path / f"submitted-{jobs}", tmp_path / f"grades-{jobs}"
    corpus = {**support.corpus("wrong"), **support.corpus("hostile")}
    for student, source in STUDENTS.items():
        code = demo.reference_source() if source == "reference" else (corpus[source].source if source else None)
        support.write_student(submitted, student, code)
    done = support.grade(submitted, output, "--categories", CATEGORIES, "--jobs", str(jobs), settings=SETTINGS)
    assert done.returncode == 0, done.stderr[-3000:]
    return {student: support.results(output, student) for student in STUDENTS}


@pytest.mark.slow
@pytest.mark.timed
@pytest.mark.extended
def test_grading_jobs_same_scores_and_timed_phases_alone(tmp_path):
    """--jobs 1 and --jobs 2 give every student the same category scores (a correct loop's speedup within a few
    points of noise, never the category); every timed phase ran on its reserved cores with nothing of another
    student beside it."""
    one, two = _batch(tmp_path, 1), _batch(tmp_path, 2)
    for student in STUDENTS:
        scores = (one[student]["extra_data"]["category_scores"], two[student]["extra_data"]["category_scores"])
        why = f"{student}: --jobs 1 {scores[0]}, --jobs 2 {scores[1]}\n" + "\n".join(
            support.failures(batch[student]) for batch in (one, two)
        )
        if student == "correct":  # never the category, at most a few points of noise in either batch
            assert scores[0]["serial"] == scores[1]["serial"], why
            assert all(s["speedup"] >= POINTS["speedup"] - NOISE for s in scores), why
        else:
            assert scores[0] == scores[1], why
    assert two["turns"]["extra_data"]["category_scores"]["speedup"] == 0
    for results in (one, two):
        for student in ("correct", "turns"):
            timing = results[student]["extra_data"]["timing"]
            assert timing["cpus"] == sorted(timing["reserved"]), f"timed on {timing['cpus']}, not {timing['reserved']}"
            alone = timing["alone"]
            assert alone["alone"] and alone["others_in_flight"] == 0 and alone["others_cpu_seconds"] == 0, alone


def _untimed_until(cores: Cores, release: threading.Event) -> tuple[threading.Thread, list]:
    """Untimed work on another thread, lasting until ``release`` is set: the thread and the work it got."""
    got: list = []

    def hold() -> None:
        with cores.untimed() as work:
            got.append(work)
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread, got


def test_grading_jobs_cores_reserved_and_shared():
    """A timed phase holds its cores alone; other work gets the rest, and waits while none is left."""
    cores, release = Cores([0, 1, 2, 3]), threading.Event()
    with cores.reserve(2) as timed:
        assert timed.cpus == (0, 1)
        with cores.untimed() as work:
            assert work.cpus == (2, 3)
        with cores.reserve(2) as other:
            assert other.cpus == (2, 3)
            thread, got = _untimed_until(cores, release)
            thread.join(0.2)
            assert not got, "untimed work started while every core was reserved"
        release.set()
        thread.join(2)
        assert [w.cpus for w in got] == [(2, 3)]
    assert timed.record()["alone"] and timed.record()["others_in_flight"] == 0


def test_grading_jobs_timed_phase_waits_for_work_in_flight():
    """A timed phase starts only once untimed work already on its cores has ended; if it must give up waiting,
    its record says what ran beside it, and it is not alone."""
    cores, release = Cores([0, 1]), threading.Event()
    thread, _ = _untimed_until(cores, release)
    time.sleep(0.05)
    threading.Timer(0.3, release.set).start()
    with cores.reserve(2) as phase:
        assert not thread.is_alive(), "the timed phase started beside untimed work"
    assert phase.alone and phase.waited_seconds >= 0.2

    impatient, release = Cores([0, 1], drain_seconds=0.1), threading.Event()
    thread, _ = _untimed_until(impatient, release)
    time.sleep(0.05)
    with impatient.reserve(2) as phase:
        time.sleep(0.1)
    release.set()
    thread.join(2)
    record = phase.record()
    assert not phase.alone and record["others_in_flight"] == 1 and record["others_seconds"] > 0.05

"""Speedup category: evolve_parallel against evolve_serial, timed from outside the student's process."""

import pytest

from autograder.checks.analysis import fail
from autograder.config import SpeedupSettings


def _fail_on_problem(student: dict, consequence: str = "") -> None:
    """Fail with the first problem of the student's timed runs, if they had one."""
    if student.get("problems"):
        kind, problem = next(iter(student["problems"].items()))
        fail(f"the timed {kind} run failed{consequence}: {problem}")


def _inconclusive(timing: dict, credit) -> bool:
    """The machine could not show a speedup: award the points, unless the runs show the work stayed in one process."""
    if not timing.get("inconclusive"):
        return False
    student = timing.get("student") or {}
    _fail_on_problem(student)
    workers = ((student.get("series") or {}).get("parallel") or {}).get("worker_pids") or []
    if workers and min(workers) < 2:
        fail(f"inconclusive timing ({timing['inconclusive']}), but the timed evolve_parallel run played its "
             f"episodes in {min(workers)} worker process(es), so it cannot have been faster: test each generation "
             "with pool.map on a Pool of processes")
    credit.note(f"inconclusive: {timing['inconclusive']}; the points are awarded")
    return True


@pytest.mark.weight(12)
def test_speedup_near_reference(obs, credit):
    """evolve_parallel with 2 workers is about as much faster than evolve_serial as the reference solution."""
    timing = obs.section("speedup")
    if _inconclusive(timing, credit):
        return
    student, reference, rules = timing["student"], timing["reference"], obs.settings["speedup"]
    _fail_on_problem(student, ", so no speedup could be measured")
    mine, ref = student.get("speedup"), reference.get("speedup")
    if mine is None:
        fail("the timed runs took no measurable time; the speedup could not be measured")
    full_at = SpeedupSettings(**rules).full_marks_at(ref)
    zero_at = rules["zero_speedup"]
    detail = (f"speedup {mine:.2f}x with {rules['processes']} workers (reference solution {ref:.2f}x, "
              f"timed beside yours; full marks from {full_at:.2f}x)")
    if mine <= zero_at:
        fail(f"{detail}: no real speedup; start the Pool once per call (not once per generation), map whole "
             "generations with pool.map, and use processes, not threads")
    credit.partial((mine - zero_at) / (full_at - zero_at), detail)


@pytest.mark.weight(3)
def test_speedup_work_runs_in_parallel(obs, credit):
    """The timed evolve_parallel run did all its episodes and used more than one core (CPU time above wall time)."""
    timing = obs.section("speedup")
    if _inconclusive(timing, credit):
        return
    student, rules = timing["student"], obs.settings["speedup"]
    _fail_on_problem(student)
    played = student["series"]["parallel"]["episodes"]
    if min(played) < timing["expected_episodes"]:
        fail(f"the timed evolve_parallel run played {min(played)} episodes, expected {timing['expected_episodes']}")
    ratio = student.get("cpu_ratio")
    if ratio is None or ratio < rules["min_cpu_ratio"]:
        fail(f"the timed evolve_parallel run used {0 if ratio is None else ratio:.2f} CPU seconds per second, "
             f"expected at least {rules['min_cpu_ratio']}: the episodes did not run on several cores at once")
    credit.note(f"{ratio:.2f} CPU seconds per wall second")

"""Speedup category: evolve_parallel timed from outside, against the reference's serial time measured beside it."""

import pytest

from autograder.checks.observed import fail
from autograder.config import SpeedupSettings
from autograder.observations import without_workers


def _fail_on_problem(student: dict, consequence: str = "") -> None:
    """Fail with the first problem of the student's timed runs, if they had one."""
    if student.get("problems"):
        kind, problem = next(iter(student["problems"].items()))
        fail(f"the timed {kind} run did not count{consequence}: {problem}")


def _cpu_problem(student: dict, rules: dict, cores: int) -> str | None:
    ratio = student.get("cpu_ratio")
    if ratio is not None and ratio > cores + rules["max_cpu_slack"]:
        return (
            f"the timed evolve_parallel run reported {ratio:.2f} CPU seconds per wall second on {cores} cores, "
            "which no run can use: its timing cannot be trusted"
        )
    return None


def _superlinear(student: dict, rules: dict) -> None:
    """Fail a speedup no correct run can reach: more than the workers given (plus noise)."""
    mine = student.get("speedup")
    if isinstance(mine, (int, float)) and mine > rules["processes"] * rules["max_speedup_per_worker"]:
        fail(
            f"the timed evolve_parallel run was {mine:.2f}x faster than the serial loop with {rules['processes']} "
            "workers, which no run playing its episodes through the helper can be: the timed run did not do the "
            "work it reports"
        )


def _inconclusive(timing: dict, credit, *, scaled: bool) -> bool:
    """The machine could not judge a speedup on its own: only correct runs played by worker processes earn
    points, and (``scaled``) in proportion to the reference's speedup measured beside them."""
    if not timing.get("inconclusive"):
        return False
    student = timing.get("student") or {}
    _fail_on_problem(student)
    workers = student.get("worker_pids") or []
    if not workers or min(workers) < 2:
        fail(
            f"not judged on speed ({timing['inconclusive']}), but the timed evolve_parallel run played its "
            f"episodes in {min(workers) if workers else 0} worker process(es), so it cannot have been faster: "
            "test each generation with pool.map on a Pool of processes"
        )
    mine, ref = student.get("speedup"), (timing.get("reference") or {}).get("speedup")
    if not scaled or not isinstance(mine, (int, float)) or not isinstance(ref, (int, float)) or ref <= 0:
        measured = f"your measured speedup was {mine:.2f}x; " if isinstance(mine, (int, float)) else ""
        credit.note(
            f"not judged on speed: {timing['inconclusive']}; {measured}the timed runs were correct and used "
            "worker processes"
        )
        return True
    full_at = SpeedupSettings().full_fraction * ref
    credit.partial(
        mine / full_at,
        f"not judged on speed: {timing['inconclusive']}; your speedup {mine:.2f}x is compared with the "
        f"reference's {ref:.2f}x measured beside it (full marks from {full_at:.2f}x)",
    )
    return True


@pytest.mark.weight(12)
def test_speedup_near_reference(obs, credit):
    """evolve_parallel with 2 workers beats the reference's evolve_serial about as much as the reference's evolve_parallel does."""
    timing = obs.section("speedup")
    rules = obs.settings["speedup"]
    _superlinear(timing.get("student") or {}, rules)
    if _inconclusive(timing, credit, scaled=True):
        return
    student, reference = timing["student"], timing["reference"]
    _fail_on_problem(student, ", so no speedup could be measured")
    if without_workers(student):
        fail(
            f"the timed evolve_parallel run played its episodes in {max(student['worker_pids'])} worker "
            "process(es), so it cannot be faster than evolve_serial: test each generation with pool.map on a "
            "Pool of processes"
        )
    problem = _cpu_problem(student, rules, timing["cores"])
    if problem:
        fail(problem)
    mine, ref = student.get("speedup"), reference.get("speedup")
    if mine is None:
        fail("the timed runs took no measurable time; the speedup could not be measured")
    full_at = SpeedupSettings(**rules).full_marks_at(ref)
    zero_at = rules["zero_speedup"]
    detail = (
        f"speedup {mine:.2f}x with {rules['processes']} workers: the reference's evolve_serial time (or yours, "
        f"if shorter) over your evolve_parallel time (reference solution {ref:.2f}x over the same serial time, "
        f"timed beside yours; full marks from {full_at:.2f}x)"
    )
    if mine <= zero_at:
        fail(
            f"{detail}: no real speedup; start the Pool once per call (not once per generation), map whole "
            "generations with pool.map, and use processes, not threads"
        )
    credit.partial((mine - zero_at) / (full_at - zero_at), detail)


@pytest.mark.weight(3)
def test_speedup_work_runs_in_parallel(obs, credit):
    """The timed evolve_parallel runs were correct and used more than one core to go faster (CPU time above wall time)."""
    timing = obs.section("speedup")
    if _inconclusive(timing, credit, scaled=False):
        return
    student, rules = timing["student"], obs.settings["speedup"]
    _fail_on_problem(student)
    problem = _cpu_problem(student, rules, timing["cores"])
    if problem:
        fail(problem)
    ratio = student.get("cpu_ratio")
    if ratio is None or ratio < rules["min_cpu_ratio"]:
        fail(
            f"the timed evolve_parallel run used {0 if ratio is None else ratio:.2f} CPU seconds per second, "
            f"expected at least {rules['min_cpu_ratio']}: the episodes did not run on several cores at once"
        )
    mine = student.get("speedup")
    if isinstance(mine, (int, float)) and mine <= rules["zero_speedup"]:
        fail(
            f"the timed evolve_parallel run kept {ratio:.2f} cores busy but was no faster than the serial loop "
            f"(speedup {mine:.2f}x): its processes burned CPU without sharing the work (waiting by spinning, "
            "or taking turns on a lock); let pool.map hand each worker its share of the generation"
        )
    credit.note(f"{ratio:.2f} CPU seconds per wall second")

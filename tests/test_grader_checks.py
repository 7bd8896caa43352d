"""The agent and speedup checks on hand-made observations: the rules, without running any loop."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import collect, grade, runchecks, validate, workspace  # noqa: E402
from autograder.config import AGENT, POINTS, SPEEDUP  # noqa: E402


def observations(agent: dict | None = None, speedup: dict | None = None) -> dict:
    """A student's observations holding only the sections given."""
    return {"student": "x", "settings": grade.settings_snapshot(), "cores": 2, "calls": {}, "seconds": {},
            "not_collected": {}, "load_problem": None, "agent": agent, "speedup": speedup}


def agent_section(heldout_mean: float, *, from_first_generation: bool = False) -> dict:
    """One training run with this held-out mean."""
    attempt = {"seed": 1, "function": "evolve_parallel", "problem": None, "note": None, "heldout_mean": heldout_mean,
               "history": [[0.0] * AGENT.pop_size] * AGENT.generations, "from_first_generation": from_first_generation}
    return {"attempts": [attempt], "best": attempt, "budget": grade.settings_snapshot()["agent"], "heldout": 20}


def speedup_section(mine: float, ref: float, cpu_ratio: float = 1.8) -> dict:
    """Timed runs that measured ``mine`` for the student and ``ref`` for the reference."""
    def side(speedup: float) -> dict:
        series = {kind: {"wall": [1.0], "cpu": [1.0], "episodes": [SPEEDUP.generations * SPEEDUP.pop_size],
                         "worker_pids": [2]} for kind in ("noop", "serial", "parallel")}
        return {"series": series, "problems": {}, "speedup": speedup, "cpu_ratio": cpu_ratio, "rounds": 3}
    return {"cores": 2, "inconclusive": None, "expected_episodes": SPEEDUP.generations * SPEEDUP.pop_size,
            "student": side(mine), "reference": side(ref)}


def category_score(tmp_path: Path, obs: dict, category: str) -> float:
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    scored = runchecks.score(runchecks.run_checks(path, (category,)))
    return sum(t["score"] for t in scored if t["category"] == category)


def test_grader_checks_agent_full_marks_for_a_trained_solver(tmp_path):
    """A run that returned a trained candidate solving the held-out states earns every agent point."""
    obs = observations(agent=agent_section(95.0))
    assert category_score(tmp_path, obs, "agent") == pytest.approx(POINTS["agent"])


def test_grader_checks_agent_refuses_a_lucky_first_generation(tmp_path):
    """A solver that was one of generation 0's random candidates (the loop never moved on) loses the solve points."""
    obs = observations(agent=agent_section(95.0, from_first_generation=True))
    score = category_score(tmp_path, obs, "agent")
    assert score < POINTS["agent"] * 0.25, f"a generation-0 candidate kept {score} of {POINTS['agent']} agent points"


def test_grader_checks_agent_partial_below_threshold(tmp_path):
    """Half the solved return earns part of the solve points, not all and not none."""
    full = POINTS["agent"]
    score = category_score(tmp_path, observations(agent=agent_section(45.0)), "agent")
    assert 0.25 * full < score < full


def test_grader_checks_first_generation_candidates_are_recognised():
    """Only a candidate generation 0 actually played counts as one; a sampled neighbour does not."""
    rng = np.random.default_rng(0)
    def params() -> dict:
        return {key: rng.normal(size=shape) for key, shape in validate.PARAM_SHAPES.items()}
    played = [params() for _ in range(AGENT.pop_size + 3)]
    episodes = [workspace.Episode(pid=1, t=t, seed=5, params=p, ret=0.0) for t, p in enumerate(played)]
    assert collect.is_first_generation_candidate(played[4], episodes)
    neighbour = {key: value + 1e-9 for key, value in played[4].items()}
    assert not collect.is_first_generation_candidate(neighbour, episodes)
    assert not collect.is_first_generation_candidate(played[-1], episodes), "a later episode is not generation 0"


@pytest.mark.parametrize("mine, expected", [(1.7, 1.0), (1.05, 0.0)])
def test_grader_checks_speedup_scored_against_reference_beside_it(tmp_path, mine, expected):
    """Full speedup marks near the reference's speedup measured beside it; none without a real speedup."""
    obs = observations(speedup=speedup_section(mine, ref=1.75, cpu_ratio=1.8 if expected else 1.0))
    assert category_score(tmp_path, obs, "speedup") == pytest.approx(expected * POINTS["speedup"])


def test_grader_checks_speedup_inconclusive_is_said(tmp_path):
    """When even the reference showed no speedup the points are awarded and the output says why."""
    section = speedup_section(1.0, ref=1.0)
    section["inconclusive"] = "the reference solution reached only 1.00x"
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(observations(speedup=section)), encoding="utf-8")
    outcomes = runchecks.run_checks(path, ("speedup",))
    assert outcomes and all(o["passed"] and "inconclusive" in o["message"] for o in outcomes)


@pytest.mark.parametrize("student_parallel, rounds", [(0.55, SPEEDUP.repeats), (1.0, SPEEDUP.max_repeats)])
def test_grader_checks_speedup_rounds_interleave_and_extend(monkeypatch, student_parallel, rounds):
    """Student and reference runs alternate; a student short of full marks gets extra rounds, a fast one none."""
    order = []

    def fake_run(workdir, calls):
        kind = "noop" if not calls else calls[0]["function"].removeprefix("evolve_")
        order.append((workdir.name, kind))
        wall = {"noop": 0.1, "serial": 1.1, "parallel": student_parallel if workdir.name == "student" else 0.65}[kind]
        return {"wall": wall, "cpu": wall, "episodes": 0, "worker_pids": 0}, None

    monkeypatch.setattr(collect, "_timed_run", fake_run)
    timing = collect.timed_side_by_side(Path("student"), Path("reference"))
    assert timing["student"]["rounds"] == timing["reference"]["rounds"] == rounds
    assert timing["reference"]["speedup"] == pytest.approx(1.0 / 0.55)
    assert order[:2] == [("student", "noop"), ("reference", "noop")]
    assert order[6:8] == [("reference", "noop"), ("student", "noop")], "the second round starts with the reference"


@pytest.mark.parametrize("workers, awarded", [(2, True), (0, False)])
def test_grader_checks_speedup_inconclusive_still_needs_worker_processes(tmp_path, workers, awarded):
    """On a busy grader the points go only to runs whose episodes were played by worker processes."""
    section = speedup_section(1.0, ref=1.0)
    section["student"]["series"]["parallel"]["worker_pids"] = [workers] * 3
    section["inconclusive"] = "the reference solution reached only 1.00x"
    score = category_score(tmp_path, observations(speedup=section), "speedup")
    assert score == pytest.approx(POINTS["speedup"] if awarded else 0.0)


@pytest.mark.parametrize("method", ["spawn", None])
def test_grader_checks_timed_runs_choose_the_start_method(tmp_path, method):
    """A job's start_method becomes multiprocessing's default before the submission is imported."""
    import multiprocessing

    source = ("import multiprocessing\n\n\ndef evolve_serial(generations, pop_size, seed, sigma=1.0):\n"
              "    open('method.txt', 'w').write(multiprocessing.get_start_method())\n"
              "    return {}, []\n")
    workspace.prepare(tmp_path / "work", source)
    call = {"phase": "probe", "function": "evolve_serial", "kwargs": {"generations": 1, "pop_size": 1, "seed": 0}}
    result = workspace.run_job(tmp_path / "work", [call], wall_seconds=60, start_method=method)
    assert "probe" in result.phases, result.outcome.verdict
    expected = method or multiprocessing.get_start_method()
    assert (tmp_path / "work" / "method.txt").read_text() == expected

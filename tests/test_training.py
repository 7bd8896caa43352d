"""The agent category's training runs (``autograder/training.py``) on a stand-in collector: which runs are made."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from autograder import observe, training

PARAMS = {
    key: np.zeros(shape).tolist() for key, shape in {"w1": (2, 10), "b1": (10,), "w2": (10, 1), "b2": (1,)}.items()
}


class FakeCollector:
    """Answers training runs with a set problem per run (None: a correct run) and logs what was asked."""

    def __init__(self, problems: list, first_generation: str | None = None, broke: bool = False):
        self.plan = observe.Plan.draw(0)
        self.problems, self.first_generation, self.broke = list(problems), first_generation, broke
        self.log: list[str] = []

    def run(self, function, kwargs, *, wall_seconds):
        self.log.append("full")
        problem = self.problems.pop(0) if self.problems else None
        rules = {"sampling": problem} if self.broke else {}
        return {
            "problem": None if self.broke else problem,
            "best_problem": None,
            "history_problem": None,
            "rules": rules,
            "best": PARAMS,
            "history": [[0.0]],
        }

    def first_generation_problem(self, function, kwargs, *, wall_seconds):
        self.log.append("generation 0")
        return self.first_generation

    @contextmanager
    def placed(self, cpus=None):  # the held-out episodes' cores: any, here
        yield None


@pytest.fixture
def solved_at(monkeypatch):
    def set_threshold(value: float) -> None:
        monkeypatch.setattr(training, "AGENT", replace(training.AGENT, solved_return=value, attempts=4, min_attempts=2))

    return set_threshold


def test_agent_training_owed_run_after_a_solved_one_stops_at_generation_0(solved_at):
    """Once a run solved, the second run owed is only played up to its generation 0, and does not count as a try."""
    solved_at(-1000.0)
    collector = FakeCollector([None])
    out = training.train(collector, {}, 2)
    assert collector.log == ["full", "generation 0"]
    assert out["best"] is out["attempts"][0] and out["attempts"][1]["first_generation_only"]


def test_agent_training_planted_first_generation_discredits_the_solved_run(solved_at):
    """A generation 0 repeated under another seed, seen in the short run, leaves no agent to score."""
    solved_at(-1000.0)
    message = "a candidate of generation 0 is the very one (give or take a little noise) a run with seed 7 started from"
    out = training.train(FakeCollector([None], first_generation=message), {}, 2)
    assert out["best"] is None and out["attempts"][1]["problem"] == message


def test_agent_training_unsolved_runs_are_full_until_the_budget(solved_at):
    """While no run has solved, every run is a full one, up to the attempts budget."""
    solved_at(1000.0)
    collector = FakeCollector([])
    out = training.train(collector, {}, 2)
    assert collector.log == ["full"] * len(collector.plan.training_seeds) and out["best"] is not None


def test_agent_training_a_failed_run_ends_training(solved_at):
    """A run that fails would fail again: no more runs; a broken rule discredits the run before it too."""
    solved_at(1000.0)
    collector = FakeCollector([None, "it raised"])
    out = training.train(collector, {}, 2)
    assert collector.log == ["full", "full"] and out["best"] is out["attempts"][0]
    broken = FakeCollector([None, "broke the sampling rule"], broke=True)
    assert training.train(broken, {}, 2)["best"] is None


def observed_run(*, problem: str | None = None, broken: dict | None = None) -> dict:
    return {
        "problem": problem,
        "best_problem": None,
        "history_problem": None,
        "rules": broken or {},
        "best": PARAMS,
        "history": [[0.0]],
    }


def test_agent_training_observed_run_that_broke_a_loop_rule_trains_nothing(solved_at):
    """A loop whose observed run (chosen to show luck-dependent deviations) broke a loop rule gets no training run."""
    solved_at(-1000.0)
    collector = FakeCollector([None])
    observed = {"parallel_2": observed_run(broken={"selection": "returned a candidate outside the last generation"})}
    out = training.train(collector, observed, 2)
    assert collector.log == [] and out["best"] is None and out["observed"] == "parallel_2"
    assert "outside the last generation" in out["discredited"]


def test_agent_training_falls_back_to_serial_and_judges_its_observed_run(solved_at):
    """When evolve_parallel failed, evolve_serial trains, and its own observed run is the one that must keep the rules."""
    solved_at(-1000.0)
    observed = {"parallel_2": observed_run(problem="it crashed"), "serial_main": observed_run()}
    out = training.train(FakeCollector([None]), observed, 2)
    assert out["observed"] == "serial_main" and out["discredited"] is None and out["best"] is not None

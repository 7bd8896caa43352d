"""The agent category's runs: the student's loop trains on the grader's seeds, scored on held-out start states.

Each training run is verified like every other run, with every rule: the parameters scored
must be, bit for bit, the highest-return candidate of the run's last generation as the
recording helper saw it, reached by the assignment's loop (fresh samples around the selected
candidate, new start states each generation, no elite). A hand-made controller, a lucky
network from generation 0, or a loop of the student's own design earns no agent points.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from autograder import observe, rules
from autograder.config import AGENT
from autograder.observations import AgentObservation, Attempt


def workload(seed: int, processes: int | None) -> dict:
    """The kwargs of a training run (``processes`` None: an evolve_serial run)."""
    kwargs = {"generations": AGENT.generations, "pop_size": AGENT.pop_size, "seed": seed, "sigma": AGENT.sigma}
    return kwargs if processes is None else {**kwargs, "processes": processes}


def workers(cores: int) -> int:
    """Workers evolve_parallel trains with on a grader with ``cores`` cores."""
    return max(2, cores)


def _rank(attempt: Attempt) -> float:
    return attempt["heldout_mean"]


def _solved(best: Attempt | None) -> bool:
    return best is not None and best["heldout_mean"] >= AGENT.solved_return


def train(collector: observe.Observer, parallel_problem: str | None, cores: int) -> AgentObservation:
    """Up to ``AGENT.attempts`` runs, stopping at the first solved one or the first that fails.

    At least ``AGENT.min_attempts`` runs start, each with its own seed: a network planted in generation 0
    is the same candidate under every seed. Once a run has solved the task, the runs still owed are
    ended as soon as their generation 0 is played (they are made like the others up to then).
    """
    helper = observe.trusted_helper()
    function = "evolve_serial" if parallel_problem else "evolve_parallel"
    note = (
        "evolve_parallel failed in the observed runs, so evolve_serial trained the agent" if parallel_problem else None
    )
    needed = min(AGENT.min_attempts, AGENT.attempts)
    attempts: list[Attempt] = []
    best = None
    for seed in collector.plan.training_seeds:
        if _solved(best) and len(attempts) >= needed:
            break
        kwargs = workload(seed, None if parallel_problem else workers(cores))
        attempt: Attempt = {
            "seed": seed,
            "function": function,
            "problem": None,
            "heldout_mean": None,
            "history": None,
            "params": None,
            "note": note,
            "broke_rule": False,
            "first_generation_only": _solved(best),
        }
        attempts.append(attempt)
        if attempt["first_generation_only"]:
            attempt["problem"] = collector.first_generation_problem(function, kwargs, wall_seconds=AGENT.wall_seconds)
            attempt["broke_rule"] = attempt["problem"] is not None
            continue
        obs = collector.run(function, kwargs, wall_seconds=AGENT.wall_seconds)
        attempt["problem"] = observe.run_problem(obs, rules.LOOP_RULES)
        attempt["history"] = obs["history"]
        attempt["broke_rule"] = not obs["problem"] and any(obs["rules"].get(r) for r in rules.LOOP_RULES)
        if attempt["problem"]:  # it would fail again (and a hang would hang again): do not spend the budget on it
            break
        arrays = {key: np.array(value) for key, value in obs["best"].items()}
        returns = [float(helper.episode(arrays, s)) for s in collector.plan.heldout_seeds]
        attempt["heldout_mean"] = float(np.mean(returns))
        attempt["params"] = obs["best"]
        if best is None or _rank(attempt) > _rank(best):
            best = attempt
    if any(a["broke_rule"] for a in attempts):
        best = None  # every training run must keep the loop's rules: one that did not discredits the others
    return {"attempts": attempts, "best": best, "budget": asdict(AGENT), "heldout": len(collector.plan.heldout_seeds)}

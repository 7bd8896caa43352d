"""The agent category's runs: the student's loop trains on the grader's seeds, scored on held-out start states.

Each training run is verified like every other run, with every rule: the parameters scored
must be, bit for bit, the highest-return candidate of the run's last generation as the
recording helper saw it, reached by the assignment's loop (fresh samples around the selected
candidate, new start states each generation, no elite). A hand-made controller, a lucky
network from generation 0, or a loop of the student's own design earns no agent points. So does
a loop whose observed run broke a loop rule: that run's seed was chosen to show the deviations a
training run's seed shows only by luck (``deviations.py``), so the verdict is the same in every batch.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from autograder import observe, rules
from autograder.categories import BY_NAME, OBSERVED_PARALLEL
from autograder.config import AGENT
from autograder.observations import AgentObservation, Attempt, RunObservation

SERIAL = BY_NAME["serial"].runs[0]
"""The observed run of evolve_serial, which stands for the loop when evolve_parallel failed."""


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


def train(collector: observe.Observer, observed: dict[str, RunObservation], cores: int) -> AgentObservation:
    """Up to ``AGENT.attempts`` runs, stopping at the first solved one or the first that fails; none when the
    training function's run among the ``observed`` ones broke a loop rule.

    At least ``AGENT.min_attempts`` runs start, each with its own seed: a network planted in generation 0
    is the same candidate under every seed. Once a run has solved the task, the runs still owed are
    ended as soon as their generation 0 is played (they are made like the others up to then).
    """
    helper = observe.trusted_helper()
    parallel_problem = (observed.get(OBSERVED_PARALLEL) or {}).get("problem")
    function = "evolve_serial" if parallel_problem else "evolve_parallel"
    label = SERIAL if parallel_problem else OBSERVED_PARALLEL
    out: AgentObservation = {
        "attempts": [],
        "best": None,
        "budget": asdict(AGENT),
        "heldout": len(collector.plan.heldout_seeds),
        "observed": label,
        "discredited": _loop_problem(observed.get(label)),
    }
    if out["discredited"]:  # it would break the rule again, or pass by luck: no run can count
        return out
    note = (
        "evolve_parallel failed in the observed runs, so evolve_serial trained the agent" if parallel_problem else None
    )
    needed = min(AGENT.min_attempts, AGENT.attempts)
    attempts: list[Attempt] = out["attempts"]
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
        with collector.placed():  # the grader's own episodes: off the cores of another student's timed phase
            returns = [float(helper.episode(arrays, s)) for s in collector.plan.heldout_seeds]
        attempt["heldout_mean"] = float(np.mean(returns))
        attempt["params"] = obs["best"]
        if best is None or _rank(attempt) > _rank(best):
            best = attempt
    if any(a["broke_rule"] for a in attempts):
        best = None  # every training run must keep the loop's rules: one that did not discredits the others
    out["best"] = best
    return out


def _loop_problem(run: RunObservation | None) -> str | None:
    """How an observed run that returned an answer broke the loop's rules, or None (a run that failed outright,
    or was not made, says nothing of the loop: training runs show it)."""
    if not run or run["problem"]:
        return None
    return (
        run["best_problem"]
        or run["history_problem"]
        or next((run["rules"][r] for r in rules.LOOP_RULES if run["rules"].get(r)), None)
    )

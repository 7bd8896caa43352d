"""Agent category: the student's loop trains an agent that is scored on held-out start states."""

import pytest

from autograder.checks.observed import fail
from autograder.deviations import needing
from autograder.rules import LOOP_RULES


def _best(obs, agent: dict, what: str) -> dict:
    # Needs a discriminating run: a training run's seed shows a best-ever, elitist, argmin or non-selecting loop
    # only by luck, so the loop is judged first on the training function's observed run, chosen to show them.
    observed = obs.chosen(agent["observed"], *needing(*LOOP_RULES))
    if agent["discredited"]:
        fail(
            f"{what}: the observed run {observed} broke the loop's rules, so no agent it trains counts: "
            f"{agent['discredited']}"
        )
    if agent["best"] is None:
        problems = [a["problem"] for a in agent["attempts"] if a["problem"]]
        fail(f"{what}: " + (problems[0] if problems else "no training run finished"))
    return agent["best"]


@pytest.mark.weight(4)
def test_agent_training_returns_parameters(obs, credit):
    """A training run with the student's loop (evolve_parallel, or evolve_serial if it fails) is correct and returns its best candidate."""
    agent = obs.section("agent")
    _best(obs, agent, "no training run returned a verified agent")
    for note in {a["note"] for a in agent["attempts"] if a["note"]}:
        credit.note(note)


@pytest.mark.hidden
@pytest.mark.weight(16)
def test_agent_solves_heldout_start_states(obs, credit):
    """The trained agent's mean return on held-out start states reaches the solved threshold."""
    agent = obs.section("agent")
    best = _best(obs, agent, "no trained agent to score")
    budget, mean = agent["budget"], best["heldout_mean"]
    runs = sum(1 for a in agent["attempts"] if not a.get("first_generation_only"))
    solved = budget["solved_return"]
    credit.partial(
        1.0 if mean >= solved else max(mean, 0.0) / solved,
        f"mean return {mean:.1f} on {agent['heldout']} held-out start states (full marks from "
        f"{budget['solved_return']:.0f}), best of {runs} training run(s) of {budget['generations']} "
        f"generations x {budget['pop_size']} candidates",
    )

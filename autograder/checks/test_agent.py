"""Agent category: the student's loop trains an agent that is scored on held-out start states."""

import pytest

from autograder.checks.analysis import fail


@pytest.mark.weight(4)
def test_agent_training_returns_parameters(obs, credit):
    """Training with the student's evolve_parallel (or evolve_serial if it fails) returns valid parameters."""
    agent = obs.section("agent")
    if agent["best"] is None:
        problems = [a["problem"] for a in agent["attempts"] if a["problem"]]
        fail("no training run returned valid parameters: " + (problems[0] if problems else "no run finished"))
    for note in {a["note"] for a in agent["attempts"] if a["note"]}:
        credit.note(note)


@pytest.mark.hidden
@pytest.mark.weight(16)
def test_agent_solves_heldout_start_states(obs, credit):
    """The trained agent's mean return on held-out start states reaches the solved threshold."""
    agent = obs.section("agent")
    if agent["best"] is None:
        problems = [a["problem"] for a in agent["attempts"] if a["problem"]]
        fail("no trained agent to score: " + (problems[0] if problems else "no training run finished"))
    budget, best = agent["budget"], agent["best"]
    mean, runs = best["heldout_mean"], len(agent["attempts"])
    if best.get("from_first_generation"):
        fail(f"your best training run returned one of the candidates of generation 0 (held-out mean {mean:.1f}): "
             "sample each new generation around the best candidate of the previous one, and return the best "
             "candidate of the last generation")
    credit.partial(mean / budget["solved_return"],
                   f"mean return {mean:.1f} on {agent['heldout']} held-out start states (full marks from "
                   f"{budget['solved_return']:.0f}), best of {runs} training run(s) of {budget['generations']} "
                   f"generations x {budget['pop_size']} candidates")

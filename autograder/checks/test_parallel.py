"""Parallel category: evolve_parallel's loop, with testing spread over Pool worker processes."""

import pytest

from autograder.deviations import needing

LABEL = "parallel_2"


@pytest.mark.weight(2)
def test_parallel_returns_best_and_history(obs):
    """evolve_parallel returns (best_params, history) with the network's shapes and one list of returns per generation."""
    obs.answer(LABEL)


@pytest.mark.weight(2)
def test_parallel_one_episode_per_candidate(obs):
    """evolve_parallel plays exactly one episode per candidate per generation."""
    obs.rule(LABEL, "played")


@pytest.mark.weight(3)
def test_parallel_history_is_returns_played(obs):
    """history[g] holds the returns generation g actually got (compared as a set, order aside)."""
    obs.rule(LABEL, "history")


@pytest.mark.hidden
@pytest.mark.weight(1)
def test_parallel_returns_are_real(obs):
    """The returns the workers reported are what the trusted helper gives when the episodes are replayed."""
    obs.rule(LABEL, "returns")


@pytest.mark.weight(2)
def test_parallel_generation_shares_episode_seed(obs):
    """All candidates of a generation share one start state, drawn anew each generation in the parent."""
    obs.rule(LABEL, "seeds")


@pytest.mark.weight(3)
def test_parallel_selects_best_candidate(obs):
    """The returned best_params is the candidate with the highest return in the last generation."""
    # Needs a discriminating run: a loop returning the best candidate ever seen, keeping an elite parent,
    # selecting the lowest return or not selecting at all returns another candidate only on some seeds.
    obs.rule(obs.chosen(LABEL, *needing("selection")), "selection")


@pytest.mark.hidden
@pytest.mark.weight(3)
def test_parallel_next_generation_centred_on_best(obs):
    """Each new generation is pop_size fresh samples around the previous best, with spread sigma (no elite)."""
    # Needs a discriminating run: an elite parent, selecting the lowest return or not selecting at all moves
    # the next generation off the selected candidate only on some seeds.
    obs.rule(obs.chosen(LABEL, *needing("sampling")), "sampling")


@pytest.mark.weight(4)
def test_parallel_uses_worker_processes(obs):
    """With processes=2 the episodes run in at least two worker processes, none in the caller."""
    obs.rule(LABEL, "processes")

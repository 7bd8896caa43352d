"""Serial category: evolve_serial's generate / test / select loop, verified against the recorded episodes."""

import pytest

from autograder.deviations import needing

LABEL = "serial_main"


@pytest.mark.weight(3)
def test_serial_returns_best_and_history(obs):
    """evolve_serial returns (best_params, history) with the network's shapes and one list of returns per generation."""
    obs.answer(LABEL)


@pytest.mark.weight(3)
def test_serial_one_episode_per_candidate(obs):
    """evolve_serial plays exactly one episode per candidate per generation."""
    obs.rule(LABEL, "played")


@pytest.mark.weight(4)
def test_serial_history_is_returns_played(obs):
    """history[g] lists the returns generation g actually got, in population order."""
    obs.rule(LABEL, "history")


@pytest.mark.hidden
@pytest.mark.weight(2)
def test_serial_returns_are_real(obs):
    """The returns evolve_serial saw are what the trusted helper gives when the episodes are replayed."""
    obs.rule(LABEL, "returns")


@pytest.mark.weight(3)
def test_serial_generation_shares_episode_seed(obs):
    """All candidates of a generation share one start state, and every generation draws a new one."""
    obs.rule(LABEL, "seeds")


@pytest.mark.weight(4)
def test_serial_selects_best_candidate(obs):
    """The returned best_params is the candidate with the highest return in the last generation."""
    # Needs a discriminating run: a loop returning the best candidate ever seen, keeping an elite parent,
    # selecting the lowest return or not selecting at all returns another candidate only on some seeds.
    obs.rule(obs.chosen(LABEL, *needing("selection")), "selection")


@pytest.mark.hidden
@pytest.mark.weight(4)
def test_serial_next_generation_centred_on_best(obs):
    """Each new generation is pop_size fresh samples around the previous best, with spread sigma (no elite)."""
    # Needs a discriminating run: an elite parent, selecting the lowest return or not selecting at all moves
    # the next generation off the selected candidate only on some seeds.
    obs.rule(obs.chosen(LABEL, *needing("sampling")), "sampling")


@pytest.mark.weight(2)
def test_serial_runs_in_calling_process(obs):
    """evolve_serial plays its episodes in the calling process, without starting workers."""
    obs.rule(LABEL, "processes")

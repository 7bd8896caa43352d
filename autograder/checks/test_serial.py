"""Serial category: evolve_serial's generate / test / select loop, watched through the helper."""

import pytest

from autograder.checks.analysis import (check_centred, check_one_seed_per_generation, check_returns_are_real,
                                        check_selection, fail, generations)

PHASE, CATEGORY = "serial_main", "serial"


@pytest.mark.weight(3)
def test_serial_returns_best_and_history(obs):
    """evolve_serial returns (best_params, history) with the network's shapes and one list of returns per generation."""
    obs.answer(PHASE, CATEGORY)


@pytest.mark.weight(3)
def test_serial_one_episode_per_candidate(obs):
    """evolve_serial plays exactly one episode per candidate per generation."""
    generations(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(4)
def test_serial_history_is_returns_played(obs):
    """history[g] lists the returns generation g actually got, in population order."""
    call = obs.answer(PHASE, CATEGORY)
    for g, generation in enumerate(generations(call)):
        played = [e["ret"] for e in generation]
        if call["history"][g] != played:
            hint = (" (they are sorted: keep population order)" if sorted(played) == call["history"][g] else
                    " (they are the returns of another generation)" if call["history"][g] in
                    [[e["ret"] for e in x] for x in generations(call)] else "")
            fail(f"history[{g}] of {call['call']} is not the list of returns generation {g} got{hint}: "
                 "append the returns of each generation, in the order of its candidates")


@pytest.mark.hidden
@pytest.mark.weight(2)
def test_serial_returns_are_real(obs):
    """Every return evolve_serial saw is what the trusted helper gives when the episode is replayed."""
    check_returns_are_real(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(3)
def test_serial_generation_shares_episode_seed(obs):
    """All candidates of a generation are tested from one start state (one episode seed per generation)."""
    check_one_seed_per_generation(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(4)
def test_serial_selects_best_candidate(obs):
    """The returned best_params is the candidate with the highest return in the last generation."""
    check_selection(obs.answer(PHASE, CATEGORY))


@pytest.mark.hidden
@pytest.mark.weight(4)
def test_serial_next_generation_centred_on_best(obs):
    """Each new generation is sampled around the previous generation's best candidate with spread sigma."""
    call = obs.call(PHASE, CATEGORY)
    check_centred(call, call["kwargs"]["sigma"], obs.settings["observe"]["centre_tolerance"])


@pytest.mark.weight(2)
def test_serial_runs_in_calling_process(obs):
    """evolve_serial plays its episodes in the calling process, without starting workers."""
    call = obs.call(PHASE, CATEGORY)
    generations(call)
    others = {e["pid"] for e in call["episodes"]} - {call["caller_pid"]}
    if others:
        fail(f"{call['call']} played episodes in {len(others)} other process(es): evolve_serial must test "
             "candidates with the built-in map, in the calling process")

"""Parallel category: evolve_parallel's loop, with testing spread over Pool worker processes."""

import pytest

from autograder.checks.analysis import (check_centred, check_one_seed_per_generation, check_returns_are_real,
                                        check_selection, fail, generations)

PHASE, CATEGORY = "parallel_2", "parallel"


@pytest.mark.weight(2)
def test_parallel_returns_best_and_history(obs):
    """evolve_parallel returns (best_params, history) with the network's shapes and one list of returns per generation."""
    obs.answer(PHASE, CATEGORY)


@pytest.mark.weight(2)
def test_parallel_one_episode_per_candidate(obs):
    """evolve_parallel plays exactly one episode per candidate per generation."""
    generations(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(3)
def test_parallel_history_is_returns_played(obs):
    """history[g] holds the returns generation g actually got (compared as a set, order aside)."""
    call = obs.answer(PHASE, CATEGORY)
    for g, generation in enumerate(generations(call)):
        if sorted(call["history"][g]) != sorted(e["ret"] for e in generation):
            fail(f"history[{g}] of {call['call']} does not hold the returns generation {g} got: append the "
                 "list Pool.map returned for each generation")


@pytest.mark.hidden
@pytest.mark.weight(1)
def test_parallel_returns_are_real(obs):
    """Every return the workers reported is what the trusted helper gives when the episode is replayed."""
    check_returns_are_real(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(2)
def test_parallel_generation_shares_episode_seed(obs):
    """All candidates of a generation are tested from one start state, drawn in the parent process."""
    check_one_seed_per_generation(obs.call(PHASE, CATEGORY))


@pytest.mark.weight(3)
def test_parallel_selects_best_candidate(obs):
    """The returned best_params is the candidate with the highest return in the last generation."""
    check_selection(obs.answer(PHASE, CATEGORY))


@pytest.mark.hidden
@pytest.mark.weight(3)
def test_parallel_next_generation_centred_on_best(obs):
    """Each new generation is sampled around the previous generation's best candidate with spread sigma."""
    call = obs.call(PHASE, CATEGORY)
    check_centred(call, call["kwargs"]["sigma"], obs.settings["observe"]["centre_tolerance"])


@pytest.mark.weight(4)
def test_parallel_uses_worker_processes(obs):
    """With processes=2 the episodes run in at least two worker processes, none in the caller."""
    call = obs.call(PHASE, CATEGORY)
    generations(call)
    pids = {e["pid"] for e in call["episodes"]}
    if call["caller_pid"] in pids:
        fail(f"{call['call']} played episodes in the calling process: test the whole generation with "
             "pool.map inside `with Pool(processes) as pool:` (a ThreadPool, or the built-in map next to an "
             "unused Pool, keeps the work in one process)")
    if len(pids) < 2:
        fail(f"{call['call']} used {len(pids)} worker process: create the Pool with processes workers and let "
             "pool.map share the generation out")

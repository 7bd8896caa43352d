"""Determinism category: the seed alone fixes the result, whatever runs the episodes."""

import pytest

from autograder.checks.analysis import fail, same_answer

CATEGORY = "determinism"
WORKER_HINT = ("if the workers draw random numbers (np.random, or an rng sent to them), the result depends on "
               "how the work is split: keep every draw from rng in the parent process")


@pytest.mark.weight(5)
def test_determinism_same_seed_same_result(obs):
    """evolve_serial run twice with the same seed returns identical results."""
    a, b = obs.answer("serial_main", CATEGORY), obs.answer("serial_repeat", CATEGORY)
    if not same_answer(a, b):
        fail(f"two runs of {a['call']} returned different results: take every random number from "
             "rng = np.random.default_rng(seed) (no np.random.* calls, no unseeded episodes)")


@pytest.mark.weight(5)
def test_determinism_serial_matches_parallel(obs):
    """evolve_serial and evolve_parallel return identical results for the same arguments."""
    a, b = obs.answer("serial_main", CATEGORY), obs.answer("parallel_2", CATEGORY)
    if not same_answer(a, b):
        fail(f"{a['call']} and {b['call']} returned different results: both loops must draw the same random "
             f"numbers in the same order; {WORKER_HINT}")


@pytest.mark.weight(5)
def test_determinism_any_number_of_processes(obs):
    """evolve_parallel returns identical results with processes=1, 2 and 3."""
    phases = [f"parallel_{n}" for n in obs.settings["observe"]["parallel_processes"]]
    answers = [obs.answer(p, CATEGORY) for p in phases]
    for other in answers[1:]:
        if not same_answer(answers[0], other):
            fail(f"{answers[0]['call']} and {other['call']} returned different results: {WORKER_HINT}")


@pytest.mark.weight(5)
def test_determinism_seed_changes_result(obs):
    """evolve_serial with two different seeds returns different results."""
    a, b = obs.answer("serial_main", CATEGORY), obs.answer("serial_other", CATEGORY)
    if a["history"] == b["history"]:
        fail(f"{a['call']} and {b['call']} returned the same history: seed the generator with the seed "
             "argument, np.random.default_rng(seed), not a fixed number")

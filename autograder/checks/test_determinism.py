"""Determinism category: the seed alone fixes the result, whatever runs the episodes."""

import pytest

from autograder.checks.analysis import fail, same_answer

WORKER_HINT = (
    "if the workers draw random numbers (np.random, or an rng sent to them), the result depends on "
    "how the work is split: keep every draw from rng in the parent process"
)


def where_they_differ(a: dict, b: dict) -> str:
    """The likely cause, from the first generation whose returns differ."""
    for g, (x, y) in enumerate(zip(a["history"], b["history"], strict=False)):
        if x != y:
            if g == 0 and sorted(x) == sorted(y):
                return (
                    "generation 0 got the same returns in another order: keep the population in the order it "
                    "was created and map over it in that order"
                )
            if g == 0:
                return (
                    "generation 0 already differs: both functions must create the population and draw the "
                    f"episode seed from rng in the same order (the order is yours to choose, but the same in both); {WORKER_HINT}"
                )
            return (
                f"generations 0 to {g - 1} agree and generation {g} differs: both functions must select the "
                "same candidate (np.argmax of the returns) and sample the next generation in the same order"
            )
    return (
        "the histories agree but the returned best_params differ: return the candidate selected in the last generation"
    )


@pytest.mark.weight(5)
def test_determinism_same_seed_same_result(obs):
    """evolve_serial run twice with the same seed returns identical results."""
    a, b = obs.answer("serial_main"), obs.answer("serial_repeat")
    if not same_answer(a, b):
        fail(
            f"two runs of {a['call']} returned different results: take every random number from "
            "rng = np.random.default_rng(seed) (no np.random.* calls, no unseeded episodes, nothing kept "
            "from an earlier run)"
        )


@pytest.mark.weight(5)
def test_determinism_serial_matches_parallel(obs):
    """evolve_serial and evolve_parallel return identical results for the same arguments."""
    a, b = obs.answer("serial_main"), obs.answer("parallel_2")
    if not same_answer(a, b):
        fail(f"{a['call']} and {b['call']} returned different results: {where_they_differ(a, b)}")


@pytest.mark.weight(5)
def test_determinism_any_number_of_processes(obs):
    """evolve_parallel returns identical results with processes=1, 2 and 3."""
    labels = [f"parallel_{n}" for n in obs.settings["observe"]["parallel_processes"]]
    answers = [obs.answer(label) for label in labels]
    for other in answers[1:]:
        if not same_answer(answers[0], other):
            fail(f"{answers[0]['call']} and {other['call']} returned different results: {WORKER_HINT}")


@pytest.mark.weight(5)
def test_determinism_seed_changes_result(obs):
    """evolve_serial with two different seeds returns different results."""
    a, b = obs.answer("serial_main"), obs.answer("serial_other")
    if a["history"] == b["history"]:
        fail(
            f"{a['call']} and {b['call']} returned the same history: seed the generator with the seed "
            "argument, np.random.default_rng(seed), not a fixed number"
        )

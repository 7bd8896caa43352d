"""Determinism category: the seed alone fixes the result, whatever runs the episodes."""

import pytest

from autograder import hints
from autograder.checks.observed import fail, same_answer
from autograder.deviations import RESULTS_DIFFER, needing

DRAW_ORDER = needing(RESULTS_DIFFER)
"""Deviations these checks see only on a discriminating run: another draw order in one function must change the
results (chosen so that it changes generation 0's returns)."""


SEEDED_RUNS = ("serial_main", "serial_other")
"""The two seeds' serial runs: the later one verified shows a generation 0 that does not change with the seed."""


def seeded(obs, label: str) -> dict:
    """``obs.answer(label)``, once the serial runs show that the seed draws the candidates: a loop that starts
    every seed from the same population (a hard-coded or pre-trained one) is reproducible without any of the
    seeding this category is about, so none of its checks can pass."""
    for other in SEEDED_RUNS:
        run = (obs.data.get("runs") or {}).get(other) or {}
        if run.get("generation_0_of_seed") is not None:
            fail(
                hints.first_generation_repeated(run["call"], run["generation_0_of_seed"])
                + "; determinism is judged only once the seed draws the candidates"
            )
    return obs.answer(label)


def where_they_differ(a: dict, b: dict) -> str:
    """The message naming the likely causes, from the first generation whose returns differ."""
    first = next((g for g, (x, y) in enumerate(zip(a["history"], b["history"], strict=False)) if x != y), None)
    return hints.results_differ(a["call"], b["call"], "best_params" if first is None else "returns", first)


@pytest.mark.weight(5)
def test_determinism_same_seed_same_result(obs):
    """evolve_serial run twice with the same seed returns identical results."""
    a, b = seeded(obs, "serial_main"), seeded(obs, "serial_repeat")
    if not same_answer(a, b):
        what = "returns" if a["history"] != b["history"] else "best_params"
        fail(
            hints.not_reproducible(a["call"], a["kwargs"].get("seed"), what) + " (and nothing kept from an earlier run)"
        )


@pytest.mark.weight(5)
def test_determinism_serial_matches_parallel(obs):
    """evolve_serial and evolve_parallel return identical results for the same arguments."""
    a, b = seeded(obs, obs.chosen("serial_main", *DRAW_ORDER)), seeded(obs, obs.chosen("parallel_2", *DRAW_ORDER))
    if not same_answer(a, b):
        fail(where_they_differ(a, b))


@pytest.mark.weight(5)
def test_determinism_any_number_of_processes(obs):
    """evolve_parallel returns identical results with processes=1, 2, 3 and None (the default)."""
    labels = [f"parallel_{n}" for n in obs.settings["observe"]["parallel_processes"]]
    answers = [seeded(obs, obs.chosen(label, *DRAW_ORDER)) for label in labels]
    for other in answers[1:]:
        if not same_answer(answers[0], other):
            fail(where_they_differ(answers[0], other))


@pytest.mark.weight(5)
def test_determinism_seed_changes_result(obs):
    """evolve_serial with two different seeds returns different results."""
    a, b = seeded(obs, "serial_main"), seeded(obs, "serial_other")
    if a["history"] == b["history"]:
        fail(
            f"{a['call']} and {b['call']} returned the same history: seed the generator with the seed "
            "argument, np.random.default_rng(seed), not a fixed number"
        )

"""Speedup category: the speedup judge's two parts (``autograder/speedup_judge.py``), on the recorded settings."""

import pytest

from autograder import speedup_judge
from autograder.categories import BY_NAME, OBSERVED_PARALLEL
from autograder.checks.observed import fail
from autograder.deviations import needing
from autograder.rules import RESULT_RULES

SERIAL = BY_NAME["serial"].runs[0]


def _score(part: speedup_judge.Part, credit) -> None:
    """Award the part's fraction with its message."""
    if part.fraction <= 0:
        fail(part.message)
    if part.fraction < 1:
        credit.partial(part.fraction, part.message)
    else:
        credit.note(part.message)


def _chosen(obs) -> None:
    """The timed rounds start with the observed runs: their seed must have been chosen for the result rules (a
    timed run that returns another candidate than the selected one then breaks them and does not count)."""
    for label in (SERIAL, OBSERVED_PARALLEL):
        obs.chosen(label, *needing(*RESULT_RULES))


def _judgement(obs) -> speedup_judge.Judgement:
    return speedup_judge.judge(obs.section("speedup"), obs.settings["speedup"])


@pytest.mark.weight(speedup_judge.WEIGHTS["speed"])
def test_speedup_near_reference(obs, credit):
    """evolve_parallel with 2 workers beats the reference's evolve_serial about as much as the reference's evolve_parallel does."""
    _chosen(obs)
    _score(_judgement(obs).speed, credit)


@pytest.mark.weight(speedup_judge.WEIGHTS["parallel_work"])
def test_speedup_work_runs_in_parallel(obs, credit):
    """The timed evolve_parallel runs were correct and their episodes really ran in several processes at once."""
    _chosen(obs)
    _score(_judgement(obs).parallel_work, credit)

"""Same code, same grade: the two entries whose verdict depended most on the batch's draw, in independent batches.

Three batches (one per draw of seeds) of a best-ever loop and an elitist one, in the categories whose checks
needed a lucky draw to catch them, with the test budgets, must give each the same score in every category, each
losing exactly what it declares. The class batch grades the rest of the corpus once; ``python -m benchmarks --only
regrade`` grades all of it in independent batches, then regrades a student with ``--seeds-from`` the first batch's
results.json and compares.
"""

from __future__ import annotations

import pytest
import support

from benchmarks import regrade

DRAWS = 3
SETTINGS = regrade.RegradeSettings(
    draws=DRAWS,
    reference=False,  # the class batch grades the reference; here it would only add training runs
    categories=("serial", "parallel", "agent"),  # the luck-dependent checks; determinism's is the class batch's
)


@pytest.fixture(scope="module")
def entries() -> dict[str, support.Entry]:
    every = regrade.deterministic()
    return {name: every[name] for name in ("best_ever", "elitist_parent")}


@pytest.fixture(scope="module")
def draws(entries, tmp_path_factory) -> list[dict]:
    return [regrade.grade_draw(entries, tmp_path_factory.mktemp(f"draw{k}"), SETTINGS) for k in range(DRAWS)]


@pytest.mark.slow
@pytest.mark.extended
def test_regrade_same_code_same_scores_in_every_draw(entries, draws):
    """Every student gets the same score in every category from batches that drew their own seeds."""
    for draw in draws:
        assert draw["returncode"] == 0, draw["stderr"]
    seeds = {regrade.observed_seed(d) for d in draws}
    assert len(seeds) == DRAWS, f"the batches observed on the same seed {seeds}: they were not independent draws"
    assert regrade.differences(draws) == {}


@pytest.mark.slow
@pytest.mark.extended
def test_regrade_every_deviation_caught_in_every_draw(entries, draws):
    """Each entry loses exactly the categories it declares, with its message, in every draw."""
    wrong = []
    for draw in draws:
        wrong += [
            problem
            for name, entry in entries.items()
            if (problem := support.verdict_problem(entry, draw["results"][name], set(SETTINGS.categories)))
        ]
    assert not wrong, "\n\n".join(wrong)

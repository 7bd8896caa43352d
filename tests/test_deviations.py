"""The observed runs' seed (autograder/deviations.py): chosen so that the luck-dependent deviations always show.

The search plays the reference in the grading process on the untimed test workload; the corpus's own
deviating loops, played the same way on the chosen seed, must break exactly the rules the choice promised.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random

import pytest
import support

from autograder import demo, deviations, observe
from autograder.observe import Plan

WORKLOAD = {"generations": 3, "pop_size": 12, "sigma": 0.5}
STREAM = 3
"""A candidate stream whose first seed misses a deviation and whose second tells them all apart."""


def corpus_cells(entry: str) -> dict[str, str]:
    return demo.split_cells(support.corpus("wrong")[entry].source)


def workload(seed: int) -> dict:
    return {**WORKLOAD, "seed": seed}


def stream(k: int = STREAM):
    rng = random.Random(k)
    return (rng.randrange(2**31 - 1) for _ in itertools.count())


@pytest.fixture(scope="module")
def chosen() -> deviations.Choice:
    return deviations.choose(stream(), workload, budget=20)


def test_deviations_chosen_seed_catches_each_deviation_as_declared(chosen):
    """The choice names every deviation with the rules that catch it, and checking the seed again agrees."""
    assert chosen.caught_by == {d.name: sorted(d.caught_by) for d in deviations.DEVIATIONS}
    assert chosen.tried == 2, "the stream lost its refused first seed: pick another STREAM"
    again = deviations.verify(chosen.seed, workload(chosen.seed))
    assert again.caught_by == chosen.caught_by and again.generation_best == chosen.generation_best


def test_deviations_a_seed_that_misses_one_is_refused_by_name(chosen):
    """A seed on which some deviation would pass (the stream's first) is refused, naming what it misses."""
    first = next(stream())
    assert first != chosen.seed
    with pytest.raises(deviations.NoSeed, match="does not tell apart (best_ever|elitist_parent|argmin|draw_order)"):
        deviations.verify(first, workload(first))


@pytest.mark.parametrize(
    "entry, rules",
    [
        ("best_ever", {"selection"}),
        ("elitist_parent", {"sampling", "selection"}),
        ("argmin_selection", {"sampling", "selection"}),
        ("no_selection", {"sampling"}),
    ],
)
def test_deviations_corpus_loops_break_the_promised_rules_on_the_chosen_seed(chosen, entry, rules):
    """The corpus's deviating loops, played in the grading process on the chosen seed, break exactly those rules."""
    broken = deviations.Loop(corpus_cells(entry), entry).verdict(workload(chosen.seed))
    assert set(broken) == rules, f"{entry} broke {sorted(broken)}: {broken}"


def test_deviations_reference_keeps_every_rule_on_the_chosen_seed(chosen):
    """The reference loop itself breaks no rule on the seed chosen for the others."""
    assert deviations.Loop().verdict(workload(chosen.seed)) == {}


def test_deviations_too_few_generations_refused_up_front():
    """A workload on which no seed can show a deviation is refused at once, saying which setting to raise."""
    with pytest.raises(deviations.NoSeed, match="elitist_parent.*speedup.generations to 3"):
        deviations.choose(stream(), lambda seed: {**workload(seed), "generations": 2}, budget=50)


def test_deviations_budget_spent_fails_loudly():
    """When no seed within the budget tells every deviation apart, the search says so instead of settling."""
    with pytest.raises(deviations.NoSeed, match="none of the 1 seeds tried"):
        deviations.choose(stream(), workload, budget=1)


def test_deviations_reference_breaking_a_rule_is_a_reference_fault(monkeypatch):
    """A reference whose own run breaks a rule stops the search at the first seed: no choice could be trusted."""
    sorted_history = deviations.Loop(corpus_cells("returns_sorted"), "returns_sorted")
    monkeypatch.setattr(deviations, "Loop", lambda: sorted_history)
    with pytest.raises(deviations.ReferenceFault, match="history rule itself"):
        deviations.choose(stream(), workload, budget=5)


def test_deviations_plan_records_what_each_run_was_chosen_for(chosen):
    """The plan's record gives every observed run its seed and the deviations that seed was chosen for."""
    plan = Plan.draw(0).with_choice(chosen)
    runs = plan.record()["runs"]
    assert runs["serial_main"] == {"seed": chosen.seed, "chosen_for": list(chosen.caught_by)}
    assert runs["serial_other"]["chosen_for"] == [] and runs["serial_other"]["seed"] != chosen.seed
    assert plan.timed_seeds[0] == chosen.seed


def test_deviations_plan_round_trips_through_results(chosen, tmp_path):
    """A recorded plan read back from results.json is the same plan; records another grader cannot reuse are refused."""
    plan = Plan.draw(0).with_choice(chosen)
    record = json.loads(json.dumps(plan.record()))
    assert Plan.from_record(record, "results.json") == plan
    with pytest.raises(ValueError, match="records no seeds"):
        Plan.from_record(None, "old.json")
    with pytest.raises(ValueError, match="other settings"):
        Plan.from_record({**record, "workload": {**record["workload"], "pop_size": 7}}, "x.json")
    with pytest.raises(ValueError, match="not a whole number"):
        Plan.from_record({**record, "observe_seed": "42"}, "x.json")
    with pytest.raises(ValueError, match="not chosen"):
        Plan.from_record({**record, "chosen": None}, "x.json")


def test_deviations_regrade_checks_the_recorded_seed_again(chosen, monkeypatch):
    """A recorded plan is checked again before a regrade: what catches each deviation is this grader's finding
    (an older grading may have known fewer), how the seed was found stays the first grading's."""
    monkeypatch.setattr(Plan, "workload", lambda self, seed, processes=None: workload(seed))
    recorded = Plan.draw(0).with_choice(chosen)
    older = dataclasses.replace(
        recorded, chosen={**recorded.chosen, "caught_by": {"best_ever": ["selection"]}, "tried": 7}
    )
    again = older.verify()
    assert again.observe_seed == chosen.seed and again.chosen["caught_by"] == chosen.caught_by
    assert again.chosen["tried"] == 7 and again.record()["runs"]["parallel_2"]["chosen_for"] == list(chosen.caught_by)


def test_deviations_needing_names_what_each_rule_relies_on():
    """Each luck-dependent rule lists the deviations it needs a chosen run for; the others need none."""
    assert deviations.needing("selection") == ("elitist_parent", "best_ever", "argmin", "first_candidate")
    assert deviations.needing("sampling") == ("elitist_parent", "argmin", "first_candidate")
    assert deviations.needing(deviations.RESULTS_DIFFER) == ("draw_order",)
    assert deviations.needing("seeds", "played", "history", "processes") == ()
    assert observe.OBSERVE.seed_budget >= 100

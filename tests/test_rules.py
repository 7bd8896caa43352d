"""The loop's verdicts (autograder/rules.py) on hand-made recordings: each rule keeps a correct run and names each fault."""

from __future__ import annotations

import random

import numpy as np
import pytest

from autograder import rules
from autograder.readback import PARAM_SHAPES

G, P, SIGMA, CALLER = 3, 12, 0.5, 100


def fake_return(params: dict, seed: int) -> float:
    """A deterministic stand-in for an episode: cheap, and different for every candidate and seed."""
    return float(np.sum(params["w1"]) + 0.001 * (seed % 1000))


def fresh(rng: np.random.Generator) -> dict:
    return {key: rng.normal(size=shape) for key, shape in PARAM_SHAPES.items()}


def around(best: dict, rng: np.random.Generator, sigma: float = SIGMA) -> dict:
    return {key: value + sigma * rng.normal(size=value.shape) for key, value in best.items()}


def record(
    *,
    seed: int = 0,
    pids=(CALLER,),
    elite=False,
    fixed_seed=False,
    argmin=False,
    sigma=SIGMA,
    inject=None,
    first_parent=False,
) -> tuple[list[rules.Played], dict, list[list[float]]]:
    """A run of the loop as the recording helper would see it: (episodes, best, history).

    ``first_parent``: every generation is sampled around generation 0's best, as a loop that keeps an earlier
    generation's best as the parent does once later generations do worse."""
    rng = np.random.default_rng(seed)
    population = [fresh(rng) for _ in range(P)]
    episodes, history = [], []
    kept = None
    for g in range(G):
        if inject is not None and g == G - 1:
            population[0] = inject
        episode_seed = 7 if fixed_seed else int(rng.integers(2**31 - 1))
        returns = [fake_return(c, episode_seed) for c in population]
        episodes += [
            rules.Played(pids[i % len(pids)], episode_seed, c, r)
            for i, (c, r) in enumerate(zip(population, returns, strict=True))
        ]
        history.append(returns)
        best = population[int(np.argmin(returns) if argmin else np.argmax(returns))]
        kept = best if kept is None or not first_parent else kept
        if g + 1 < G:
            population = ([best] if elite else []) + [around(kept, rng, sigma) for _ in range(P - elite)]
    return episodes, best, history


def check(episodes, best, history, *, function="evolve_serial", processes=None, live=None, replay=fake_return):
    kwargs = {"generations": G, "pop_size": P, "seed": 1, "sigma": SIGMA}
    if processes is not None:
        kwargs["processes"] = processes
    return rules.check_run(
        call="evolve(...)",
        function=function,
        kwargs=kwargs,
        episodes=episodes,
        caller=CALLER,
        best=best,
        history=history,
        live_pids=live,
        replay=replay,
        chooser=random.Random(0),
        centre_tolerance=0.25,
    ).rules


def failing(verdicts: dict) -> set[str]:
    return {name for name, message in verdicts.items() if message}


def test_rules_correct_serial_run_keeps_every_rule():
    """A correct serial recording breaks no rule."""
    assert failing(check(*record())) == set()


def test_rules_correct_parallel_run_keeps_every_rule():
    """A correct parallel recording (two workers, history in population order) breaks no rule."""
    verdicts = check(*record(pids=(201, 202)), function="evolve_parallel", processes=2, live={CALLER, 201, 202})
    assert failing(verdicts) == set()


def test_rules_elitism_breaks_sampling():
    """A generation holding an exact copy of the selected parent is elitism, named as such."""
    verdicts = check(*record(elite=True))
    assert failing(verdicts) == {"sampling"} and "exact copy" in verdicts["sampling"]


def test_rules_parent_kept_from_an_earlier_generation_breaks_sampling():
    """A generation sampled around an earlier generation's best, not the one just selected, is named as elitism."""
    verdicts = check(*record(first_parent=True))
    assert failing(verdicts) == {"sampling"} and "earlier generation" in verdicts["sampling"]


def test_rules_fixed_episode_seed_breaks_seeds():
    """Every generation played from one start state breaks the seeds rule."""
    verdicts = check(*record(fixed_seed=True))
    assert failing(verdicts) == {"seeds"} and "start state" in verdicts["seeds"]


def test_rules_argmin_breaks_selection_and_sampling():
    """Selecting the lowest return is named in selection; the next generations sit around the worst one."""
    verdicts = check(*record(argmin=True))
    assert "LOWEST" in verdicts["selection"]
    assert "worst" in verdicts["sampling"]


def test_rules_wrong_sigma_breaks_sampling():
    """Candidates drawn with twice the spread asked for break the sampling rule."""
    verdicts = check(*record(sigma=2 * SIGMA))
    assert failing(verdicts) == {"sampling"}


def test_rules_injected_candidate_breaks_sampling():
    """A hand-made candidate slipped into the last generation is not a draw around the selected one."""
    handmade = {
        "w1": np.array([[0.0] * 10, [60.0] * 10]),
        "b1": np.zeros(10),
        "w2": np.full((10, 1), 3.0),
        "b2": np.zeros(1),
    }
    verdicts = check(*record(inject=handmade))
    assert "sampling" in failing(verdicts)


def test_rules_returned_parameters_must_be_played():
    """best_params that no candidate of the last generation had is refused, bit for bit."""
    episodes, best, history = record()
    nudged = {key: value + 1e-12 for key, value in best.items()}
    verdicts = check(episodes, nudged, history)
    assert failing(verdicts) == {"selection"} and "not tested in its last generation" in verdicts["selection"]


def test_rules_history_must_be_the_recorded_returns():
    """A sorted history is named for serial; a changed value is refused for parallel too."""
    episodes, best, history = record()
    assert "sorted" in check(episodes, best, [sorted(row) for row in history])["history"]
    changed = [row[:] for row in history]
    changed[1][0] += 1.0
    assert check(episodes, best, changed, function="evolve_parallel", processes=2)["history"]


def test_rules_forged_returns_are_caught_by_the_replay():
    """A recorded return the trusted helper does not reproduce breaks the returns rule."""
    episodes, best, history = record()
    verdicts = check(episodes, best, history, replay=lambda params, seed: fake_return(params, seed) + 1.0)
    assert "replaying" in verdicts["returns"]


def test_rules_replay_work_is_bounded():
    """The grader replays a handful of episodes per run, not every one it was shown."""
    calls = []

    def counting(params, seed):
        calls.append(seed)
        return fake_return(params, seed)

    check(*record(), replay=counting)
    assert 0 < len(calls) <= rules.REPLAY_SAMPLE + 1


def test_rules_wrong_episode_count_fails_every_rule():
    """Missing episodes make the recording unusable: every rule says how many were played."""
    episodes, best, history = record()
    verdicts = check(episodes[:-1], best, history)
    assert failing(verdicts) == set(rules.RULES) and "for 3 generations of 12" in verdicts["played"]


def test_rules_records_of_processes_that_never_ran_are_refused():
    """Episodes credited only to process ids the grader never saw are forged."""
    verdicts = check(*record(pids=(50_001, 50_002)), function="evolve_parallel", processes=2, live={CALLER, 7})
    assert "never ran" in verdicts["played"]


def test_rules_processes_rule():
    """Serial must play in the caller; parallel in two or more workers and never in the caller."""
    assert "other process" in check(*record(pids=(201,)))["processes"]
    assert "calling process" in check(*record(), function="evolve_parallel", processes=2)["processes"]
    assert "1 worker" in check(*record(pids=(201,)), function="evolve_parallel", processes=2)["processes"]
    assert check(*record(pids=(201,)), function="evolve_parallel", processes=1)["processes"] is None


def test_rules_refused_records_fail_every_rule():
    """A recording the grader had to refuse lines of (tampering) cannot be verified."""
    episodes, best, history = record()
    verdicts = rules.check_run(
        call="c",
        function="evolve_serial",
        kwargs={"generations": G, "pop_size": P, "sigma": SIGMA},
        episodes=episodes,
        caller=CALLER,
        best=best,
        history=history,
        live_pids=None,
        replay=fake_return,
        chooser=random.Random(0),
        centre_tolerance=0.25,
        refused_records=["episode record line refused: nested too deeply"],
    ).rules
    assert failing(verdicts) == set(rules.RULES) and "nested too deeply" in verdicts["played"]


@pytest.mark.parametrize("seed", range(20))
def test_rules_no_false_alarm_over_many_correct_runs(seed):
    """Correct runs with many seeds never trip the statistical sampling checks."""
    assert failing(check(*record(seed=seed))) == set()


def test_rules_handmade_first_generation_candidate_is_refused():
    """A hand-made controller slipped into generation 0 (which then wins and is evolved) is not a draw."""
    episodes, best, history = record()
    handmade = {"w1": np.zeros((2, 10)), "b1": np.zeros(10), "w2": np.zeros((10, 1)), "b2": np.zeros(1)}
    handmade["w1"][1, 0], handmade["w2"][0, 0] = 10.0, 1.0
    episodes[0] = rules.Played(episodes[0].pid, episodes[0].seed, handmade, episodes[0].ret)
    verdicts = check(episodes, best, history)
    assert "generation 0" in (verdicts["sampling"] or "")


def test_rules_standard_normal_test_accepts_real_draws():
    """Thousands of honest initialize_parameters draws all pass the draw test; constant weights do not."""
    rng = np.random.default_rng(123)
    assert all(rules.looks_standard_normal(rng.standard_normal(41)) for _ in range(5000))
    assert not rules.looks_standard_normal(np.full(41, 1.0))
    assert not rules.looks_standard_normal(np.r_[np.full(20, 3.0), rng.standard_normal(21)])


def test_rules_trained_network_is_too_large_for_a_draw():
    """A trained controller with a little noise (its sum of squares 5 times a draw's) is not a generation-0 draw."""
    rng = np.random.default_rng(5)
    trained = rng.standard_normal(41) * 2.4  # the scale of a network trained by evolution: norm about 15
    assert not rules.looks_standard_normal(trained + 0.01 * rng.standard_normal(41))
    low, high = rules.chi_square_range(41)
    assert low < 41 < high and high < 150


def test_rules_same_candidate_with_jitter_across_seeds():
    """Generation-0 candidates equal up to small noise count as the same; independent draws never do."""
    rng = np.random.default_rng(9)
    planted = rng.standard_normal(41)
    first = [rng.standard_normal(41) for _ in range(31)] + [planted + 0.01 * rng.standard_normal(41)]
    second = [planted + 0.01 * rng.standard_normal(41)] + [rng.standard_normal(41) for _ in range(31)]
    assert rules.same_candidate(first, second)
    others = [rng.standard_normal(41) for _ in range(500)]
    assert not rules.same_candidate(first, others) and not rules.same_candidate(others[:250], others[250:])

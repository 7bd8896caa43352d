"""The loop's rules, checked on one run: what it returned against what the recording helper saw.

Every run of student code is verified the same way, whatever the grader does with it next
(observe, time or train), so a run gains nothing from knowing which one it is. Each rule gives
``None`` (kept) or a message for the student. The rules:

* ``played``: one episode per candidate per generation, by processes that really ran;
* ``seeds``: one start state per generation, drawn anew each generation;
* ``returns``: the recorded returns are what the trusted helper gives (a sample the grader
  picks after the run is replayed: the grader's work per run is bounded);
* ``history``: ``history[g]`` is generation g's recorded returns (in population order for
  ``evolve_serial``; as a multiset for ``evolve_parallel``, whose play order is the workers');
* ``selection``: ``best_params`` is, bit for bit, a highest-return candidate of the last generation;
* ``sampling``: each generation is sampled around the previous generation's selected candidate
  with spread sigma, each candidate a fresh draw (no copied parent, no parent kept from an earlier
  generation: no elitism);
* ``processes``: ``evolve_serial`` plays in the calling process; ``evolve_parallel`` in two or
  more worker processes and never in the caller, each of them running while it claims to have played
  (the grader's own CPU samples, ``concurrency.py``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from autograder import hints
from autograder.readback import PARAM_SHAPES

RULES = ("played", "seeds", "returns", "history", "selection", "sampling", "processes")
RESULT_RULES = ("played", "returns", "history", "selection")
"""What makes a run's answer its own: a timed run must keep these to count."""
LOOP_RULES = ("played", "seeds", "returns", "history", "selection", "sampling")
"""The assignment's loop, wherever it runs: a training run must keep these for its agent to count."""
REPLAY_TOLERANCE = 1e-6  # returns are bit-identical in practice; this only absorbs BLAS kernel rounding
REPLAY_SAMPLE = 3
"""Episodes replayed per run besides the returned candidate's, chosen after the run."""
MAX_DRAW = 6.5
"""Largest |value| a standard normal draw may take (one in 10^10 goes further)."""
MAX_KS = 0.51
"""Largest Kolmogorov-Smirnov distance between a candidate's 41 standardised values and N(0, 1): honest
draws pass with probability 1 - 10^-9; a hand-made network (repeated or zero weights) does not."""
NORM_RANGE = (0.25, 2.5)
"""Allowed distance of one new candidate from its parent, in units of sigma * sqrt(parameters):
a fresh draw lands near 1 (a chance below 1e-8 to leave this range with 41 parameters)."""
SUM_OF_SQUARES_Z = 7.0
"""How many standard deviations (of the chi-square's normal approximation) a draw's sum of squares may stray."""
MIN_BACKING = 0.35
"""Smallest share of its claimed episode time that a process credited with episodes must have spent running or
waiting for a core, by the grader's samples (``concurrency.evidence``): about 1 for a worker that played, about
0 for one credited with episodes while it slept."""
MIN_CENTRE_SAMPLES = 8
"""Fewest candidates a generation needs for its centre to be checked: its own spread then stands in for sigma
closely enough that a correct generation strays past the chi-square bound with a chance near 1e-10."""
SAME_CANDIDATE_DISTANCE = 3.0
"""Generation-0 candidates of runs with different seeds this close are the same candidate, jitter or not."""


@dataclass
class Played:
    """One recorded episode."""

    pid: int
    seed: int | None
    params: dict[str, np.ndarray]
    ret: float


@dataclass
class Verdict:
    """Each rule's message (None: kept) and a few facts worth showing."""

    rules: dict[str, str | None] = field(default_factory=dict)
    worker_pids: int = 0
    """Distinct processes other than the caller that played episodes."""
    replayed: int = 0
    first_generation: list[np.ndarray] = field(default_factory=list)
    """Generation 0's candidates, as flat vectors: the same candidate under two seeds was not drawn from rng."""

    def first_problem(self, rules: tuple[str, ...] = RULES) -> str | None:
        return next((self.rules[r] for r in rules if self.rules.get(r)), None)


def vector(params: dict) -> np.ndarray:
    """All parameters of one candidate as one flat vector."""
    return np.concatenate([np.asarray(params[key], dtype=np.float64).ravel() for key in PARAM_SHAPES])


def _generations(episodes: list[Played], g: int, p: int, call: str) -> tuple[list[list[Played]], str | None]:
    if not episodes:
        return [], (
            f"{call} played no episode through evolution.episode: test each candidate with the "
            "helper's episode function (imported in the setup cell)"
        )
    if len(episodes) != g * p:
        return [], hints.wrong_episode_count(call, len(episodes), g, p)
    return [episodes[i * p : (i + 1) * p] for i in range(g)], None


def _winners(generation: list[Played]) -> list[int]:
    top = max(e.ret for e in generation)
    return [i for i, e in enumerate(generation) if e.ret == top]


def check_seeds(gens: list[list[Played]], call: str) -> str | None:
    seeds_per_generation = []
    for g, generation in enumerate(gens):
        seeds = {e.seed for e in generation}
        if None in seeds:
            return hints.no_episode_seed(call, g)
        if len(seeds) > 1:
            return hints.several_episode_seeds(call, g, len(seeds))
        seeds_per_generation.append(seeds.pop())
    if len(gens) >= 2 and len(set(seeds_per_generation)) <= len(gens) // 2:
        return (
            f"in {call}, the {len(gens)} generations were played from only {len(set(seeds_per_generation))} "
            "start state(s): draw a new episode seed from rng in every generation, "
            "episode_seed = int(rng.integers(2**31 - 1)), so the agent learns to drive from any start"
        )
    return None


def check_returns(sample: list[Played], replay: Callable[[dict, int], float], call: str) -> str | None:
    for e in sample:
        if e.seed is None:
            continue
        trusted = replay(e.params, e.seed)
        if abs(e.ret - trusted) > REPLAY_TOLERANCE:
            return (
                f"in {call}, an episode reported {e.ret!r} but replaying it gives {trusted!r}: returns must "
                "come from the helper's episode function, unchanged"
            )
    return None


def check_history(gens: list[list[Played]], history: list[list[float]], *, ordered: bool, call: str) -> str | None:
    played = [[e.ret for e in generation] for generation in gens]
    for g, row in enumerate(history):
        if ordered and row != played[g]:
            hint = (
                " (here they are sorted)"
                if sorted(played[g]) == row
                else " (here they are the returns of another generation)"
                if row in played
                else ""
            )
            return hints.history_not_returns(call, g) + hint
        if not ordered and sorted(row) != sorted(played[g]):
            return hints.history_not_returns(call, g)
    return None


def check_selection(last: list[Played], best: dict, call: str) -> str | None:
    """``best`` is, bit for bit, a highest-return candidate of the last generation.

    Needs a discriminating run (``deviations.py``): a loop that returns the best candidate ever seen, or keeps
    the best of an earlier generation as its parent, returns a candidate outside the last generation only when
    an earlier generation did better than the last one; one that selects the lowest return is caught whenever
    the returns differ.
    """
    chosen = vector(best)
    winners = _winners(last)
    if any(np.array_equal(chosen, vector(last[i].params)) for i in winners):
        return None
    others = [i for i, e in enumerate(last) if np.array_equal(chosen, vector(e.params))]
    lowest = min(e.ret for e in last)
    if others and last[others[0]].ret == lowest:
        return hints.selected_lowest(call)
    if others:
        return hints.selected_other_candidate(call, others[0], winners[0])
    return hints.selected_outside_last_generation(call)


def chi_square_range(n: int, z: float = SUM_OF_SQUARES_Z) -> tuple[float, float]:
    """Where the sum of squares of ``n`` standard normal draws lies but with a chance of about 1e-12 (the
    Wilson-Hilferty normal approximation of the chi-square, ``z`` standard deviations either side)."""
    spread = math.sqrt(2.0 / (9.0 * n))
    centre = 1.0 - 2.0 / (9.0 * n)
    return n * max(centre - z * spread, 0.0) ** 3, n * (centre + z * spread) ** 3


def same_candidate(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Some candidate of ``a`` lies within ``SAME_CANDIDATE_DISTANCE`` of one of ``b``: independent draws of 41
    standard normals lie about 9 apart, and closer than 3 with a chance below 1e-12 a pair."""
    if not a or not b:
        return False
    x, y = np.asarray(a), np.asarray(b)
    squared = np.sum(x * x, axis=1)[:, None] + np.sum(y * y, axis=1)[None, :] - 2.0 * x @ y.T
    return bool(np.min(squared) < SAME_CANDIDATE_DISTANCE**2)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def looks_standard_normal(values: np.ndarray) -> bool:
    """``values`` could be independent N(0, 1) draws: bounded values, a sum of squares a chi-square with
    ``values.size`` degrees of freedom reaches (a trained network is far larger than a draw), and the
    Kolmogorov-Smirnov distance."""
    if not np.all(np.abs(values) <= MAX_DRAW):
        return False
    low, high = chi_square_range(values.size)
    if not low <= float(np.sum(np.square(values))) <= high:
        return False
    x = np.sort(values)
    n = x.size
    cdf = _normal_cdf(x)
    ks = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    return ks <= MAX_KS


def check_sampling(gens: list[list[Played]], sigma: float, tolerance: float, call: str) -> str | None:
    for k, e in enumerate(gens[0] if gens else []):
        if not looks_standard_normal(vector(e.params)):
            return (
                f"in {call}, candidate {k} of generation 0 is not a draw of initialize_parameters: every "
                "candidate of the first generation must be initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng)"
            )
    steps = []
    off_centre = None
    for g in range(1, len(gens)):
        parents = [vector(e.params) for e in gens[g - 1]]
        winners = _winners(gens[g - 1])
        parent = parents[winners[0]]
        scale = sigma * np.sqrt(parent.size)
        off_centre = off_centre or _off_centre(gens[g], [parents[w] for w in winners], g, call)
        for e in gens[g]:
            child = vector(e.params)
            if any(np.array_equal(child, parents[w]) for w in winners):
                return (
                    f"in {call}, generation {g} holds an exact copy of the candidate selected in generation "
                    f"{g - 1}: the assignment's loop keeps no elite; fill every generation with pop_size "
                    "calls of sample_params(best, rng, sigma)"
                )
            distances = [np.linalg.norm(child - p) / scale for p in parents]
            nearest = int(np.argmin(distances))
            ratio = np.linalg.norm(child - parent) / scale
            if (
                nearest in winners
                and NORM_RANGE[0] <= ratio <= NORM_RANGE[1]
                and not looks_standard_normal((child - parent) / sigma)
            ):
                return (
                    f"in {call}, a candidate of generation {g} is not the selected candidate plus sigma times "
                    "standard normal noise: make every candidate sample_params(best, rng, sigma)"
                )
            if nearest not in winners and ratio > 2 and NORM_RANGE[0] <= distances[nearest] <= NORM_RANGE[1]:
                worst = nearest == int(np.argmin([x.ret for x in gens[g - 1]]))
                return hints.not_sampled_around_best(call, g) + (
                    " (here it is sampled around the worst one)" if worst else f" (here around candidate {nearest})"
                )
            if not NORM_RANGE[0] <= ratio <= NORM_RANGE[1]:
                return (
                    f"in {call}, a candidate of generation {g} lies {ratio:.2f} x sigma x sqrt(41) from the "
                    f"selected candidate, where a draw of sample_params(best, rng, sigma={sigma}) lies near 1: "
                    "make every candidate a fresh sample around the selected one, with the sigma passed in"
                )
            steps.append((child - parent) / sigma)
    if off_centre or not steps:
        return off_centre
    pooled = np.concatenate(steps)
    mean, spread = float(np.mean(pooled)), float(np.std(pooled))
    if abs(spread - 1.0) > tolerance:
        return (
            f"in {call}, new candidates lie {spread:.2f} x sigma from the selected one on average per "
            f"parameter, expected about 1 x sigma (sigma={sigma}): pass sigma to sample_params and sample "
            "each new candidate from the selected one, not from the previous sample"
        )
    if abs(mean) > tolerance:
        return (
            f"in {call}, new candidates are shifted by {mean:.2f} x sigma from the selected one: "
            "sample around the selected candidate"
        )
    return None


def _off_centre(children: list[Played], selected: list[np.ndarray], g: int, call: str) -> str | None:
    """Generation ``g`` is not centred on a candidate ``selected`` in generation g-1 (its message), or None.

    ``pop_size`` fresh samples around the selected candidate average to it plus noise of their own spread over
    sqrt(pop_size), so ``pop_size * |mean - selected|^2 / spread^2`` is about a chi-square draw, whatever sigma
    the loop used (a wrong sigma is the spread checks' to name). A generation sampled around another candidate,
    such as the best of an earlier generation kept as the parent (elitism by return), stands far outside that
    range: its children sit near the selected one one by one, both being samples around the same earlier
    candidate, and only their mean shows it. Needs a discriminating run (``deviations.py``): the parent kept
    differs from the selected one only when a generation does worse than an earlier one.
    """
    if len(children) < MIN_CENTRE_SAMPLES:
        return None
    points = np.array([vector(e.params) for e in children])
    centre = points.mean(axis=0)
    spread = float(np.sqrt(np.mean(np.square(points - centre)) * len(children) / (len(children) - 1)))
    offset = min(float(np.linalg.norm(centre - s)) for s in selected)
    if spread == 0 or len(children) * (offset / spread) ** 2 <= chi_square_range(centre.size)[1]:
        return None
    return hints.not_sampled_around_best(call, g) + (
        f" (here around a candidate of an earlier generation: the mean of its candidates lies {offset / spread:.1f} "
        f"spreads from the candidate selected in generation {g - 1}, where samples around it would average within "
        f"about {math.sqrt(centre.size / len(children)):.1f}; keeping the best candidate of an earlier generation "
        "as the parent is elitism, which the assignment's loop does not do)"
    )


def check_processes(
    episodes: list[Played],
    caller: int | None,
    function: str,
    processes: int | None,
    call: str,
    evidence: dict | None = None,
) -> str | None:
    pids = {e.pid for e in episodes}
    if evidence and (evidence.get("impossible_share") or 0) > 0.01:
        return (
            f"{call}: episodes are recorded at times the run was not running: play every episode with the "
            "helper's episode function and leave its records alone"
        )
    if evidence and evidence.get("backing") is not None and evidence["backing"] < MIN_BACKING:
        return (
            f"{call}: episodes are credited to worker processes that were not running while they claim to have "
            f"played them (one ran for {evidence['backing']:.0%} of that time, by the grader's own CPU samples): "
            "let the Pool's workers play the episodes, with pool.map"
        )
    if function == "evolve_serial":
        others = pids - {caller}
        if others:
            return (
                f"{call} played episodes in {len(others)} other process(es): evolve_serial must test "
                "candidates with the built-in map, in the calling process"
            )
        return None
    if caller in pids:
        return (
            f"{call} played episodes in the calling process: test the whole generation with "
            "pool.map inside `with Pool(processes) as pool:` (a ThreadPool, or the built-in map next to an "
            "unused Pool, keeps the work in one process)"
        )
    if (processes is None or processes >= 2) and len(pids) < 2:
        return (
            f"{call} used {len(pids)} worker process: create the Pool with processes workers and let "
            "pool.map share the generation out"
        )
    return None


def check_run(
    *,
    call: str,
    function: str,
    kwargs: dict,
    episodes: list[Played],
    caller: int | None,
    best: dict | None,
    history: list[list[float]] | None,
    live_pids: set[int] | None,
    replay: Callable[[dict, int], float],
    chooser: random.Random,
    centre_tolerance: float,
    refused_records: list[str] = (),
    evidence: dict | None = None,
) -> Verdict:
    """Check one run against every rule (``best``/``history`` None: the call returned nothing valid).

    ``refused_records`` are the grader's notes on record lines or files it could not accept: the
    recording was tampered with, so no rule can be checked on it.
    """
    verdict = Verdict(rules=dict.fromkeys(RULES))
    g, p = kwargs["generations"], kwargs["pop_size"]
    gens, problem = _generations(episodes, g, p, call)
    if refused_records:
        problem = (
            f"{call}: the episode records could not be used ({refused_records[0]}): play episodes only "
            "through the helper's episode function and leave its record folder alone"
        )
    claimed = {e.pid for e in episodes}
    if not problem and live_pids and not claimed & live_pids:
        # None of the processes the records name was ever seen running (a short-lived worker may be
        # missed between two looks, so one real process among them is enough).
        ghosts = claimed
        if ghosts:
            problem = (
                f"{call}: episodes are recorded for process id(s) {sorted(ghosts)[:3]} that never ran in "
                "the run: play every episode with the helper's episode function, in real processes"
            )
    verdict.worker_pids = len({e.pid for e in episodes} - {caller})
    if problem:
        verdict.rules = dict.fromkeys(RULES, problem)
        return verdict
    verdict.rules["played"] = None
    verdict.first_generation = [vector(e.params) for e in gens[0]]
    verdict.rules["seeds"] = check_seeds(gens, call)
    last = gens[-1]
    sample = [last[i] for i in _winners(last)][:1]
    rest = [e for e in episodes if all(e is not s for s in sample)]
    sample += chooser.sample(rest, min(REPLAY_SAMPLE, len(rest)))
    verdict.replayed = len(sample)
    verdict.rules["returns"] = check_returns(sample, replay, call)
    missing = f"{call} returned no valid (best_params, history)"
    verdict.rules["history"] = (
        check_history(gens, history, ordered=function == "evolve_serial", call=call) if history is not None else missing
    )
    verdict.rules["selection"] = check_selection(last, best, call) if best is not None else missing
    verdict.rules["sampling"] = check_sampling(gens, kwargs["sigma"], centre_tolerance, call)
    verdict.rules["processes"] = check_processes(
        episodes, caller, function, kwargs.get("processes"), call, evidence if function == "evolve_parallel" else None
    )
    return verdict

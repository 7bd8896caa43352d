"""Reading observations for the grading tests: failing early with the collection message."""

from __future__ import annotations

import numpy as np
import pytest

KEYS = ("w1", "b1", "w2", "b2")
REPLAY_TOLERANCE = 1e-6  # returns are bit-identical in practice; this only absorbs BLAS kernel rounding


def fail(message: str):
    pytest.fail(message, pytrace=False)


def vector(params: dict) -> np.ndarray:
    """All parameters of one candidate as one flat vector."""
    return np.concatenate([np.asarray(params[key], dtype=np.float64).ravel() for key in KEYS])


class Observed:
    """One student's observations with accessors that fail a test with the right message."""

    def __init__(self, data: dict):
        self.data = data

    def _category(self, category: str) -> None:
        if self.data.get("load_problem"):
            fail(self.data["load_problem"])
        missing = self.data.get("not_collected", {}).get(category)
        if missing:
            fail(missing)

    def call(self, phase: str, category: str) -> dict:
        """The observation of one call; fails the test if the call produced nothing usable."""
        self._category(category)
        call = self.data["calls"].get(phase)
        if call is None:
            fail(f"{phase} was not observed")
        if call["problem"]:
            fail(call["problem"])
        return call

    def answer(self, phase: str, category: str) -> dict:
        """A call whose best_params and history are both valid."""
        call = self.call(phase, category)
        if call["best_problem"] or call["history_problem"]:
            fail(call["best_problem"] or call["history_problem"])
        return call

    def section(self, name: str) -> dict:
        """The speedup or agent observations."""
        self._category(name)
        return self.data[name]

    @property
    def settings(self) -> dict:
        return self.data["settings"]


def generations(call: dict) -> list[list[dict]]:
    """The call's episodes in play order, cut into generations; fails unless there are G x P."""
    g, p = call["kwargs"]["generations"], call["kwargs"]["pop_size"]
    episodes = call["episodes"]
    if not episodes:
        fail(f"{call['call']} played no episode through evolution.episode: test each candidate with the "
             "helper's episode function (imported in the setup cell)")
    if len(episodes) != g * p:
        fail(f"{call['call']} played {len(episodes)} episodes, expected {g} x {p} = {g * p}: "
             "one episode per candidate per generation, no more and no fewer")
    return [episodes[i * p:(i + 1) * p] for i in range(g)]


def selected(generation: list[dict]) -> list[int]:
    """Indices of the candidates with the highest return (ties all count)."""
    returns = [e["ret"] for e in generation]
    top = max(returns)
    return [i for i, r in enumerate(returns) if r == top]


def same_answer(a: dict, b: dict) -> bool:
    """Identical histories and identical best parameters, bit for bit."""
    return a["history"] == b["history"] and all(
        np.array_equal(np.asarray(a["best"][k]), np.asarray(b["best"][k])) for k in KEYS)


def check_one_seed_per_generation(call: dict) -> None:
    for g, generation in enumerate(generations(call)):
        seeds = {e["seed"] for e in generation}
        if None in seeds:
            fail(f"in {call['call']}, generation {g} was played without an episode seed (episode(params) with "
                 "seed=None gives each candidate a random start state): draw one seed per generation from rng "
                 "and pass it as episode(params, seed=...)")
        if len(seeds) > 1:
            fail(f"in {call['call']}, the {len(generation)} candidates of generation {g} were played from "
                 f"{len(seeds)} different start states: draw the episode seed once per generation, before "
                 "testing, so every candidate is compared on the same start state")


def check_returns_are_real(call: dict) -> None:
    checked = 0
    for e in call["episodes"]:
        if e["replayed"] is None:
            continue
        checked += 1
        if abs(e["ret"] - e["replayed"]) > REPLAY_TOLERANCE:
            fail(f"in {call['call']}, an episode reported {e['ret']!r} but replaying it gives {e['replayed']!r}: "
                 "returns must come from the helper's episode function, unchanged")
    if not checked:
        fail(f"no episode of {call['call']} could be replayed (none had a seed)")


def check_selection(call: dict) -> None:
    last = generations(call)[-1]
    best = vector(call["best"])
    winners = selected(last)
    if any(np.array_equal(best, vector(last[i]["params"])) for i in winners):
        return
    others = [i for i, e in enumerate(last) if np.array_equal(best, vector(e["params"]))]
    returns = sorted(e["ret"] for e in last)
    if others and last[others[0]]["ret"] == returns[0]:
        fail(f"{call['call']} returned the candidate with the LOWEST return of the last generation: "
             "select with argmax (returns are rewards, higher is better)")
    if others:
        fail(f"{call['call']} returned candidate {others[0]} of the last generation, but candidate {winners[0]} "
             "had the highest return: return the candidate selected in the last generation")
    fail(f"{call['call']} returned parameters that were not played in its last generation: return the best "
         "candidate of the last generation (not of an earlier one, and not a new sample)")


def check_centred(call: dict, sigma: float, tolerance: float) -> None:
    gens = generations(call)
    if len(gens) < 2:
        fail("the observed run has a single generation; the grader needs at least two")
    steps = []
    for g in range(1, len(gens)):
        parents = [vector(e["params"]) for e in gens[g - 1]]
        winners = selected(gens[g - 1])
        for e in gens[g]:
            child = vector(e["params"])
            nearest = int(np.argmin([np.linalg.norm(child - p) for p in parents]))
            if nearest not in winners and sigma * np.sqrt(child.size) < 0.5 * np.linalg.norm(child - parents[winners[0]]):
                worst = nearest == int(np.argmin([x["ret"] for x in gens[g - 1]]))
                fail(f"in {call['call']}, generation {g} is not sampled around the best candidate of generation "
                     f"{g - 1} but around {'the worst one' if worst else f'candidate {nearest}'}: pass the "
                     "candidate with the highest return to sample_params")
            steps.append((child - parents[winners[0]]) / sigma)
    steps = np.concatenate(steps)
    mean, spread = float(np.mean(steps)), float(np.std(steps))
    if abs(spread - 1.0) > tolerance:
        fail(f"in {call['call']}, new candidates lie {spread:.2f} x sigma from the selected one on average per "
             f"parameter, expected about 1 x sigma (sigma={sigma}): pass sigma to sample_params and sample "
             "each new candidate from the selected one, not from the previous sample")
    if abs(mean) > tolerance:
        fail(f"in {call['call']}, new candidates are shifted by {mean:.2f} x sigma from the selected one: "
             "sample around the selected candidate")

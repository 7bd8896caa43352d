"""The observed runs' seed, chosen so that every deviation whose detection depends on the seed is caught.

Most mistakes in the loop show in any run: one start state for every generation, a copied elite,
sorted history, a wrong sigma, episodes played in the caller. A few show only when the run's
returns fall a certain way, so with a seed drawn at random the same code would be caught in one
batch and pass in the next. These are :data:`DEVIATIONS`:

* ``best_ever``: returning the best candidate ever seen instead of the last generation's selected
  one breaks the selection rule only when an earlier generation did better than the last;
* ``elitist_parent``: keeping the best candidate seen so far as the parent (and returning it) leaves
  the assignment's path only after a generation does worse than an earlier one; then the sampling
  rule sees the next generation centred off the candidate just selected, and the selection rule
  sees the returned candidate outside the last generation if that generation did not beat it;
* ``argmin``: selecting the lowest return breaks the selection and sampling rules only when the
  lowest return is not also the highest;
* ``draw_order``: an ``evolve_parallel`` that draws from ``rng`` in another order than
  ``evolve_serial`` fails the determinism checks only when that order changes generation 0's returns.

Before any student's run, :func:`choose` plays the reference solution's ``evolve_serial`` in the
grading process on fresh seeds, each time with the helper's calls altered as one deviating loop
would make them (``sample_params`` around another parent, another candidate returned, one draw
more before generation 0), checks each altered run with ``rules.check_run``, and keeps the first
seed on which every deviation breaks exactly the rules listed for it. The seeds stay fresh draws,
unknown to any submission; what no longer varies from batch to batch is which deviations the
observed runs catch. The reference is deterministic given the seed, so the choice holds for every
loop that makes the reference's draws in the reference's order (the order the notebook shows); a
loop with its own order of draws walks another path from the same seed.

Checks that rely on a chosen run say so and ask for it (``checks/observed.py``: ``Observed.chosen``).
"""

from __future__ import annotations

import builtins
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from autograder import extract, paths, rules
from autograder.config import OBSERVE

RESULTS_DIFFER = "results_differ"
"""Not a rule: what the determinism checks see, two runs with the same arguments returning different histories."""


def _as_selected(generations: list[list[rules.Played]], selected: dict) -> dict:
    return selected


def _best_seen(generations: list[list[rules.Played]], selected: dict) -> dict:
    """The highest-return candidate of every generation so far (the first one, when several share it)."""
    played = [e for generation in generations for e in generation]
    return max(played, key=lambda e: e.ret).params


def _worst_of_last(generations: list[list[rules.Played]], selected: dict) -> dict:
    """The lowest-return candidate of the latest generation, as ``np.argmin`` picks it."""
    last = generations[-1]
    return last[int(np.argmin([e.ret for e in last]))].params


@dataclass(frozen=True)
class Deviation:
    """A way to get the loop wrong that only some seeds show, and what shows it on a chosen seed."""

    name: str
    loop: str
    """What the deviating loop does."""
    caught_by: tuple[str, ...]
    """The rules its run breaks on a chosen seed, all of them and no other (or :data:`RESULTS_DIFFER`)."""
    min_generations: int
    """Generations a run needs before any seed can show it."""
    parent: Callable[[list[list[rules.Played]], dict], dict] = _as_selected
    """The candidate the next generation is sampled around, given the generations so far and the selected one."""
    returned: Callable[[list[list[rules.Played]], dict], dict] = _as_selected
    """The candidate returned, given every generation and the one the reference returned."""
    draws_first: bool = False
    """One draw from rng before generation 0, as a loop that draws its episode seed first makes it."""


DEVIATIONS = (
    Deviation(
        "best_ever",
        "returns the best candidate of all generations instead of the last generation's selected one",
        ("selection",),
        2,
        returned=_best_seen,
    ),
    Deviation(
        "elitist_parent",
        "keeps the best candidate seen so far as the parent, and returns it",
        ("sampling", "selection"),
        3,
        parent=_best_seen,
        returned=_best_seen,
    ),
    Deviation(
        "argmin",
        "selects the candidate with the lowest return",
        ("sampling", "selection"),
        2,
        parent=_worst_of_last,
        returned=_worst_of_last,
    ),
    Deviation(
        "draw_order",
        "draws in another order than evolve_serial (here the first episode seed before generation 0)",
        (RESULTS_DIFFER,),
        1,
        draws_first=True,
    ),
)
BY_NAME = {d.name: d for d in DEVIATIONS}


def needing(*what: str) -> tuple[str, ...]:
    """The deviations that checks of these rules (or of :data:`RESULTS_DIFFER`) catch only on a chosen run."""
    return tuple(d.name for d in DEVIATIONS if set(d.caught_by) & set(what))


class NoSeed(Exception):
    """No seed tried tells every deviation apart (or the settings make it impossible): the message says why."""


class ReferenceFault(Exception):
    """The reference solution cannot be run in the grading process, or breaks a rule itself."""


@dataclass
class Choice:
    """The chosen seed and why it discriminates."""

    seed: int
    caught_by: dict[str, list[str]]
    """Each deviation and what catches it on this seed (the rules its altered run broke)."""
    generation_best: list[float]
    """The reference run's best return per generation on this seed."""
    tried: int
    """Seeds tried, this one included."""
    seconds: float

    def record(self) -> dict:
        return {
            "caught_by": self.caught_by,
            "generation_best": self.generation_best,
            "tried": self.tried,
            "seconds": round(self.seconds, 3),
        }


class _Enough(Exception):
    """The run has played every episode it was allowed."""


class _AlteredHelper:
    """The trusted helper as one in-process run of the reference sees it, some of its calls altered.

    Every episode is recorded as the sandbox's recording helper records it, and its return is kept
    in ``returns`` (shared by the runs of one seed): runs that share candidates play them once.
    """

    def __init__(self, trusted, deviation: Deviation | None, pop_size: int, returns: dict, limit: int | None):
        self._trusted = trusted
        self._deviation = deviation
        self._pop_size = pop_size
        self._returns = returns
        self._limit = limit
        self._drew_first = False
        self.played: list[rules.Played] = []

    def __getattr__(self, name: str):
        return getattr(self._trusted, name)

    def generations(self) -> list[list[rules.Played]]:
        """The complete generations played so far."""
        p = self._pop_size
        return [self.played[i : i + p] for i in range(0, len(self.played) - p + 1, p)]

    def initialize_parameters(self, i_size, h_size, o_size, rng=None):
        if self._deviation is not None and self._deviation.draws_first and not self._drew_first:
            self._drew_first = True
            rng.integers(2**31 - 1)
        return self._trusted.initialize_parameters(i_size, h_size, o_size, rng=rng)

    def episode(self, params, seed=None):
        if self._limit is not None and len(self.played) >= self._limit:
            raise _Enough
        arrays = {key: np.array(params[key], dtype=np.float64) for key in rules.PARAM_SHAPES}
        key = (seed, *(arrays[k].tobytes() for k in rules.PARAM_SHAPES))
        if key not in self._returns:
            self._returns[key] = float(self._trusted.episode(arrays, seed))
        self.played.append(rules.Played(0, seed, arrays, self._returns[key]))
        return self._returns[key]

    def sample_params(self, best, rng, sigma=1.0):
        parent = best if self._deviation is None else self._deviation.parent(self.generations(), best)
        return self._trusted.sample_params(parent, rng, sigma)


@dataclass
class Trace:
    """One in-process run: what it played and what it returned (None: stopped early)."""

    played: list[rules.Played]
    generations: list[list[rules.Played]]
    best: dict | None
    history: list[list[float]]
    """What the run returned (what it played, when it was stopped early)."""


class ReferenceLoop:
    """The reference solution's ``evolve_serial``, run in the grading process on the trusted helper."""

    def __init__(self):
        try:
            setup = extract.cells_by_grade_id(extract.read_notebook(paths.setup_notebook()), (extract.SETUP_ID,))
            stubs = extract.cells_by_grade_id(extract.read_notebook(paths.reference_notebook()), extract.STUB_IDS)
        except extract.NotebookError as exc:
            raise ReferenceFault(str(exc)) from None
        missing = setup.missing + stubs.missing
        if missing:
            raise ReferenceFault(f"no cell with grade_id {', '.join(missing)}")
        source = extract.build_module(setup.cells[extract.SETUP_ID], stubs.cells)
        try:
            self._code = compile(source, str(paths.reference_notebook()), "exec")
        except SyntaxError as exc:
            raise ReferenceFault(f"its cells do not compile: {exc}") from None
        from autograder.observe import trusted_helper

        self._trusted = trusted_helper()

    def run(self, workload: dict, deviation: Deviation | None, returns: dict, limit: int | None = None) -> Trace:
        """``evolve_serial(**workload)`` with the helper altered as ``deviation`` alters it (None: as it is)."""
        helper = _AlteredHelper(self._trusted, deviation, workload["pop_size"], returns, limit)

        def importer(name, *args, **kwargs):
            return helper if name == "evolution" else builtins.__import__(name, *args, **kwargs)

        namespace = {"__name__": "reference_in_process", "__builtins__": {**vars(builtins), "__import__": importer}}
        try:
            exec(self._code, namespace)
            best, history = namespace["evolve_serial"](**workload)
        except _Enough:  # only generation 0 was wanted: what was played is the history
            best, history = None, None
        except Exception as exc:  # the grader's own solution failed: nothing can be graded
            raise ReferenceFault(f"evolve_serial raised {type(exc).__name__}: {exc}") from None
        generations = helper.generations()
        if best is not None and deviation is not None:
            best = deviation.returned(generations, best)
        played = [[e.ret for e in g] for g in generations]
        return Trace(helper.played, generations, best, played if history is None else history)


SCREENED = 4
"""Candidate seeds drawn at a time. Generation 0 of each is played first and the rest of their runs in order of
generation 0's best return, highest first: an early high return is what lets a later generation do worse, which
``best_ever`` and ``elitist_parent`` need, so the seed kept is usually the first one played in full."""


class _Candidate:
    """One candidate seed: the reference's run on it and each deviation's altered run, episodes played once."""

    def __init__(self, loop: ReferenceLoop, seed: int, workload: dict):
        self.loop, self.seed, self.workload = loop, seed, workload
        self.returns: dict = {}

    def first_generation_best(self) -> float:
        trace = self.loop.run(self.workload, None, self.returns, limit=self.workload["pop_size"])
        return max(trace.history[0])

    def replay(self, params: dict, seed: int) -> float:
        key = (seed, *(np.asarray(params[k], dtype=np.float64).tobytes() for k in rules.PARAM_SHAPES))
        return self.returns[key]  # every episode a traced run played is kept

    def broken(self, trace: Trace) -> dict[str, str]:
        """The rules ``trace`` breaks, with their messages, checked as a student's run is."""
        verdict = rules.check_run(
            call=f"evolve_serial(seed={self.seed}) of the reference",
            function="evolve_serial",
            kwargs=self.workload,
            episodes=trace.played,
            caller=0,
            best=trace.best,
            history=trace.history,
            live_pids=None,
            replay=self.replay,
            chooser=random.Random(self.seed),
            centre_tolerance=OBSERVE.centre_tolerance,
        )
        return {rule: message for rule, message in verdict.rules.items() if message}

    def tell_apart(self) -> tuple[dict[str, list[str]] | None, list[float], str | None]:
        """(what catches each deviation, the reference's best return per generation, the first deviation
        this seed does not tell apart); the first is None when there is one."""
        plain = self.loop.run(self.workload, None, self.returns)
        generation_best = [max(row) for row in plain.history]
        broken = self.broken(plain)
        if broken:
            rule, message = next(iter(broken.items()))
            raise ReferenceFault(f"it breaks the {rule} rule itself: {message}")
        caught: dict[str, list[str]] = {}
        for deviation in DEVIATIONS:
            if deviation.caught_by == (RESULTS_DIFFER,):  # generation 0 is where another draw order shows first
                trace = self.loop.run(self.workload, deviation, self.returns, limit=self.workload["pop_size"])
                got = [RESULTS_DIFFER] if trace.history[:1] != plain.history[:1] else []
            else:
                got = sorted(self.broken(self.loop.run(self.workload, deviation, self.returns)))
            if set(got) != set(deviation.caught_by):
                return None, generation_best, deviation.name
            caught[deviation.name] = got
        return caught, generation_best, None


def _impossible(workload: dict) -> None:
    short = [d.name for d in DEVIATIONS if workload["generations"] < d.min_generations]
    if short:
        needed = max(BY_NAME[name].min_generations for name in short)
        raise NoSeed(
            f"the observed runs have {workload['generations']} generation(s): no seed can tell apart "
            f"{', '.join(short)}, which need(s) {needed}; set speedup.generations to {needed} or more"
        )


def choose(candidates: Iterator[int], workload_of: Callable[[int], dict], budget: int) -> Choice:
    """The first seed from ``candidates`` (at most ``budget`` of them) that tells every deviation apart.

    ``workload_of(seed)``: the observed runs' arguments. Raises :class:`NoSeed` when none does,
    :class:`ReferenceFault` when the reference cannot run or breaks a rule itself.
    """
    start = time.perf_counter()
    _impossible(workload_of(0))
    loop = ReferenceLoop()
    tried, missed = 0, {}
    while tried < budget:
        group = [_Candidate(loop, next(candidates), {}) for _ in range(min(SCREENED, budget - tried))]
        for candidate in group:
            candidate.workload = workload_of(candidate.seed)
        order = sorted(((c.first_generation_best(), k) for k, c in enumerate(group)), reverse=True)
        for _, k in order:
            tried += 1
            caught, generation_best, missing = group[k].tell_apart()
            if caught is not None:
                return Choice(group[k].seed, caught, generation_best, tried, time.perf_counter() - start)
            missed[missing] = missed.get(missing, 0) + 1
    counts = ", ".join(f"{name} on {n}" for name, n in missed.items())
    raise NoSeed(
        f"none of the {tried} seeds tried tells every deviation apart (missed: {counts}); the observed "
        "workload may be too small to show them (more candidates or generations), or the budget too low "
        "(observe.seed_budget)"
    )


def verify(seed: int, workload: dict) -> Choice:
    """``seed``'s choice, checked again (a regrade with recorded seeds): :class:`NoSeed` if it no longer holds."""
    start = time.perf_counter()
    _impossible(workload)
    caught, generation_best, missing = _Candidate(ReferenceLoop(), seed, workload).tell_apart()
    if caught is None:
        raise NoSeed(f"seed {seed} does not tell apart {missing} ({BY_NAME[missing].loop}) with this grader")
    return Choice(seed, caught, generation_best, 1, time.perf_counter() - start)

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
* ``first_candidate``: never selecting (sampling around, or returning, a generation's first
  candidate) is caught only when that candidate is not also the generation's best;
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
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from autograder import paths, rules
from autograder.batched import batch_returns
from autograder.config import OBSERVE

RESULTS_DIFFER = "results_differ"
"""Not a rule: what the determinism checks see, two runs with the same arguments returning different histories."""


def _as_selected(generations: list[list[rules.Played]], selected: dict) -> dict:
    return selected


def _best_seen(generations: list[list[rules.Played]], selected: dict) -> dict:
    """The highest-return candidate of every generation so far (the first one, when several share it)."""
    played = [e for generation in generations for e in generation]
    return max(played, key=lambda e: e.ret).params


def _first_of_last(generations: list[list[rules.Played]], selected: dict) -> dict:
    """The first candidate of the latest generation, whatever its return."""
    return generations[-1][0].params


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


DEVIATIONS = (  # in the order a candidate seed is tried on them: the likeliest to be missed, and cheapest, first
    Deviation(
        "elitist_parent",
        "keeps the best candidate seen so far as the parent, and returns it",
        ("sampling", "selection"),
        3,
        parent=_best_seen,
        returned=_best_seen,
    ),
    Deviation(
        "best_ever",
        "returns the best candidate of all generations instead of the last generation's selected one",
        ("selection",),
        2,
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
        "first_candidate",
        "never selects: samples around, and returns, each generation's first candidate",
        ("sampling", "selection"),
        2,
        parent=_first_of_last,
        returned=_first_of_last,
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


class _Returns:
    """The episode returns of one candidate seed's runs, kept so that runs sharing candidates play them once.

    ``batched``: a generation is played all at once with numpy (``batched.py``, several times faster than one
    episode at a time, and equal to the helper's returns bit for bit where it has been compared); the returns
    a choice rests on are then played again with the helper (:meth:`confirm`). Otherwise the helper plays all.
    """

    def __init__(self, trusted, batched: bool):
        self._trusted = trusted
        self._batched = batched
        self._known: dict = {}

    @staticmethod
    def _key(params: dict, seed) -> tuple:
        return (seed, *(np.asarray(params[k], dtype=np.float64).tobytes() for k in rules.PARAM_SHAPES))

    def play(self, population: list[dict], seed) -> None:
        """Play every candidate of ``population`` not played yet from ``seed``."""
        todo = list({self._key(p, seed): p for p in population if self._key(p, seed) not in self._known}.values())
        if self._batched and todo:
            got = batch_returns(todo, seed, self._trusted)
        else:
            got = [self._trusted.episode(p, seed) for p in todo]
        self._known.update((self._key(p, seed), float(r)) for p, r in zip(todo, got, strict=True))

    def __call__(self, params: dict, seed) -> float:
        """The return of ``params`` from ``seed``."""
        if self._key(params, seed) not in self._known:
            self.play([params], seed)
        return self._known[self._key(params, seed)]

    def confirm(self, episodes: list[rules.Played]) -> bool:
        """These episodes' returns are the helper's own, bit for bit."""
        unique = {self._key(e.params, e.seed): e for e in episodes}.values()
        return all(float(self._trusted.episode(e.params, e.seed)) == self(e.params, e.seed) for e in unique)


class _AlteredHelper:
    """The trusted helper as one in-process run of the reference sees it, some of its calls altered.

    Every episode is recorded as the sandbox's recording helper records it. The candidates made since the
    last episode (a generation, in the reference's order) are played together when the first of them is.
    """

    def __init__(
        self,
        trusted,
        deviation: Deviation | None,
        pop_size: int,
        returns: _Returns,
        limit: int | None,
        moved_by: int | None,
    ):
        self._trusted = trusted
        self._deviation = deviation
        self._pop_size = pop_size
        self._returns = returns
        self._limit = limit
        self._moved_by = moved_by
        self._drew_first = False
        self._made: list[dict] = []
        self.moved = False
        """Some generation was sampled around another parent than the selected candidate."""
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
        self._made.append(self._trusted.initialize_parameters(i_size, h_size, o_size, rng=rng))
        return self._made[-1]

    def episode(self, params, seed=None):
        if self._limit is not None and len(self.played) >= self._limit:
            raise _Enough
        if self._moved_by is not None and len(self.played) >= self._moved_by and not self.moved:
            raise _Enough  # the run follows the reference's path to the end: the sampling rule cannot see it
        if self._made:
            self._returns.play([*self._made, params], seed)
            self._made = []
        arrays = {key: np.array(params[key], dtype=np.float64) for key in rules.PARAM_SHAPES}
        self.played.append(rules.Played(0, seed, arrays, self._returns(arrays, seed)))
        return self.played[-1].ret

    def sample_params(self, best, rng, sigma=1.0):
        parent = best if self._deviation is None else self._deviation.parent(self.generations(), best)
        self.moved = self.moved or not np.array_equal(rules.vector(parent), rules.vector(best))
        self._made.append(self._trusted.sample_params(parent, rng, sigma))
        return self._made[-1]


@dataclass
class Trace:
    """One in-process run: what it played and what it returned (None: stopped early)."""

    played: list[rules.Played]
    generations: list[list[rules.Played]]
    best: dict | None
    history: list[list[float]]
    """What the run returned (what it played, when it was stopped early)."""


class Loop:
    """A loop's ``evolve_serial`` (the reference solution's, unless other cells are given), run in the grading
    process on the trusted helper: only the grader's own code runs this way."""

    def __init__(self, cells: dict[str, str] | None = None, origin: str | None = None):
        """``cells``: solution cells by grade_id (None: the reference's); ``origin``: where they come from."""
        from autograder import extract  # here, not at the top: the checks import this module for its names only

        origin = origin or str(paths.reference_notebook())
        try:
            setup = extract.cells_by_grade_id(extract.read_notebook(paths.setup_notebook()), (extract.SETUP_ID,))
            if cells is None:
                found = extract.cells_by_grade_id(extract.read_notebook(paths.reference_notebook()), extract.STUB_IDS)
                cells = found.cells if not found.missing else None
        except extract.NotebookError as exc:
            raise ReferenceFault(str(exc)) from None
        if setup.missing or not cells or "evolve_serial" not in cells:
            raise ReferenceFault(f"{origin} or the setup notebook lacks a cell (grade_id evolve_serial or setup)")
        try:
            self._code = compile(extract.build_module(setup.cells[extract.SETUP_ID], cells), origin, "exec")
        except SyntaxError as exc:
            raise ReferenceFault(f"its cells do not compile: {exc}") from None
        from autograder.observe import trusted_helper

        self.trusted = trusted_helper()

    def verdict(self, workload: dict) -> dict[str, str]:
        """The rules one run of ``evolve_serial(**workload)`` breaks, with their messages (none for the reference)."""
        returns = _Returns(self.trusted, batched=True)
        return broken(self.run(workload, None, returns), workload, returns)

    def run(self, workload: dict, deviation: Deviation | None, returns: _Returns, limit: int | None = None) -> Trace:
        """``evolve_serial(**workload)`` with the helper altered as ``deviation`` alters it (None: as it is).

        ``limit``: stop after that many episodes. A deviation that must break the sampling rule is stopped
        before the last generation if it has not yet moved a parent: its best is then None.
        """
        moved_by = None
        if deviation is not None and "sampling" in deviation.caught_by:
            moved_by = (workload["generations"] - 1) * workload["pop_size"]
        helper = _AlteredHelper(self.trusted, deviation, workload["pop_size"], returns, limit, moved_by)

        def importer(name, *args, **kwargs):
            return helper if name == "evolution" else builtins.__import__(name, *args, **kwargs)

        namespace = {"__name__": "loop_in_process", "__builtins__": {**vars(builtins), "__import__": importer}}
        try:
            exec(self._code, namespace)
            best, history = namespace["evolve_serial"](**workload)
        except _Enough:  # only generation 0 was wanted: what was played is the history
            best, history = None, None
        except Exception as exc:  # the grader's own loop failed: nothing can be graded
            raise ReferenceFault(f"evolve_serial raised {type(exc).__name__}: {exc}") from None
        generations = helper.generations()
        if best is not None and deviation is not None:
            best = deviation.returned(generations, best)
        played = [[e.ret for e in g] for g in generations]
        return Trace(helper.played, generations, best, played if history is None else history)


def broken(trace: Trace, workload: dict, replay: Callable[[dict, int], float]) -> dict[str, str]:
    """The rules ``trace`` breaks, with their messages, checked as a student's run is."""
    verdict = rules.check_run(
        call=f"evolve_serial(seed={workload['seed']}) played in the grading process",
        function="evolve_serial",
        kwargs=workload,
        episodes=trace.played,
        caller=0,
        best=trace.best,
        history=trace.history,
        live_pids=None,
        replay=replay,
        chooser=random.Random(workload["seed"]),
        centre_tolerance=OBSERVE.centre_tolerance,
    )
    return {rule: message for rule, message in verdict.rules.items() if message}


class _Candidate:
    """One candidate seed: the reference's run on it and each deviation's altered run, episodes played once."""

    def __init__(self, loop: Loop, seed: int, workload: dict, batched: bool = True):
        self.loop, self.seed, self.workload = loop, seed, workload
        self.returns = _Returns(loop.trusted, batched)
        self._plain: Trace | None = None
        self._traces: list[Trace] = []

    def broken(self, trace: Trace) -> dict[str, str]:
        return broken(trace, self.workload, self.returns)

    def plain(self) -> Trace:
        """The reference's own run on this seed, which must keep every rule (else no verdict can be trusted)."""
        if self._plain is None:
            self._plain = self._run(None)
            faults = self.broken(self._plain)
            if faults:
                rule, message = next(iter(faults.items()))
                raise ReferenceFault(f"it breaks the {rule} rule itself: {message}")
        return self._plain

    def caught(self, deviation: Deviation) -> list[str]:
        """What catches ``deviation`` on this seed: the rules its altered run breaks, or :data:`RESULTS_DIFFER`
        when its generation 0 differs from the reference's (where another draw order shows first)."""
        if deviation.caught_by == (RESULTS_DIFFER,):
            trace = self._run(deviation, limit=self.workload["pop_size"])
            return [RESULTS_DIFFER] if trace.history[:1] != self.plain().history[:1] else []
        trace = self._run(deviation)
        return [] if trace.best is None else sorted(self.broken(trace))

    def _run(self, deviation: Deviation | None, limit: int | None = None) -> Trace:
        self._traces.append(self.loop.run(self.workload, deviation, self.returns, limit))
        return self._traces[-1]

    def decisive(self) -> list[rules.Played]:
        """The episodes every verdict of this seed's runs rests on: each generation's highest and lowest return."""
        out = []
        for trace in self._traces:
            for generation in trace.generations:
                out += [max(generation, key=lambda e: e.ret), min(generation, key=lambda e: e.ret)]
        return out

    def tell_apart(self) -> tuple[dict[str, list[str]] | None, str | None]:
        """(what catches each deviation, the first deviation this seed does not tell apart); the first is None
        when there is one. Deviations are tried in :data:`DEVIATIONS` order, the likeliest to be missed first."""
        caught: dict[str, list[str]] = {}
        for deviation in DEVIATIONS:
            got = self.caught(deviation)
            if set(got) != set(deviation.caught_by):
                return None, deviation.name
            caught[deviation.name] = got
            self.plain()
        return caught, None

    def generation_best(self) -> list[float]:
        return [max(row) for row in self.plain().history]


def _impossible(workload: dict) -> None:
    short = [d.name for d in DEVIATIONS if workload["generations"] < d.min_generations]
    if short:
        needed = max(BY_NAME[name].min_generations for name in short)
        raise NoSeed(
            f"the observed runs have {workload['generations']} generation(s): no seed can tell apart "
            f"{', '.join(short)}, which need(s) {needed}; set speedup.generations to {needed} or more"
        )


def _try(loop: Loop, seed: int, workload: dict, first: bool) -> tuple[dict | None, str | None, list[float] | None]:
    """(what catches each deviation on ``seed`` or None, the first deviation missed, the reference's best returns).

    The runs are played with numpy batches; a seed that tells every deviation apart is kept only once the
    helper itself gives the returns its verdicts rest on, else it is tried again with the helper alone.
    ``first``: check the reference's own run before anything else, so that a reference breaking a rule stops
    the search at once (a ReferenceFault), whatever the deviations would have shown.
    """
    candidate = _Candidate(loop, seed, workload)
    if first:
        candidate.plain()
    caught, missing = candidate.tell_apart()
    if caught is not None and not candidate.returns.confirm(candidate.decisive()):
        candidate = _Candidate(loop, seed, workload, batched=False)
        caught, missing = candidate.tell_apart()
    return caught, missing, None if caught is None else candidate.generation_best()


def choose(candidates: Iterator[int], workload_of: Callable[[int], dict], budget: int) -> Choice:
    """The first seed from ``candidates`` (at most ``budget`` of them) that tells every deviation apart.

    ``workload_of(seed)``: the observed runs' arguments. Raises :class:`NoSeed` when none does,
    :class:`ReferenceFault` when the reference cannot run or breaks a rule itself.
    """
    start = time.perf_counter()
    _impossible(workload_of(0))
    loop = Loop()
    missed: dict[str, int] = {}
    tried = 0
    for seed in itertools.islice(candidates, budget):
        tried += 1
        caught, missing, generation_best = _try(loop, seed, workload_of(seed), first=tried == 1)
        if caught is not None:
            return Choice(seed, caught, generation_best, tried, time.perf_counter() - start)
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
    caught, missing, generation_best = _try(Loop(), seed, workload, first=True)
    if caught is None:
        raise NoSeed(f"seed {seed} does not tell apart {missing} ({BY_NAME[missing].loop}) with this grader")
    return Choice(seed, caught, generation_best, 1, time.perf_counter() - start)

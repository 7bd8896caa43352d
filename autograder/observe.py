"""Collect one submission's observations: fresh sandboxed runs, each read back and verified.

Every run is one call of the student's ``evolve_serial`` or ``evolve_parallel`` in a new
folder, with a workload and a seed from the batch's :class:`Plan`, checked against the rules of
``rules.py``. The serial, parallel and determinism categories read the observation runs;
``timing.py`` and ``training.py`` make the speedup and agent runs the same way. The result is
plain JSON-able data; every problem becomes a message in it, nothing a submission does raises here.
"""

from __future__ import annotations

import importlib.util
import itertools
import multiprocessing
import random
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from autograder import concurrency, deviations, extract, hints, messages, paths, readback, rules, workspace
from autograder.config import AGENT, OBSERVE, SANDBOX, SETTINGS_ENV, SPEEDUP
from autograder.cores import Cores, Work
from autograder.observations import RunObservation

_TRUSTED = None


def trusted_helper():
    """The trusted evolution module, imported into the grading process once."""
    global _TRUSTED
    if _TRUSTED is None:
        spec = importlib.util.spec_from_file_location("_autograder_trusted_evolution", paths.helper_module())
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TRUSTED = module
    return _TRUSTED


def start_method() -> str | None:
    """``fork`` wherever it exists, for every run alike (so no run differs from another in it).

    Under ``spawn`` or ``forkserver`` (Python 3.14's Linux default) every new Pool spends most
    of a second importing numpy and gymnasium in its workers, longer than the timed work; the
    student's own checks run the notebook under every start method instead.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


@dataclass
class Plan:
    """The seeds of one batch's runs, drawn when the batch starts: no run can know them in advance.

    The observed runs' seed (also the first timed round's) is then chosen among further draws by
    :meth:`choose`: the first whose runs tell apart every deviation a random seed shows only by luck
    (``deviations.py``), so the same code gets the same verdicts in every batch.
    """

    observe_seed: int
    other_seed: int
    timed_seeds: list[int]
    training_seeds: list[int]
    heldout_seeds: list[int]
    check_seed: int
    """Seeds the grader's own choices after a run (which episodes it replays)."""
    candidates_seed: int
    """Seeds the stream of candidates for the observed runs' seed."""
    chosen: dict | None = None
    """How ``observe_seed`` was chosen (``deviations.Choice.record``); None while it is a plain draw."""

    @classmethod
    def draw(cls, seed: int | None = None) -> Plan:
        rng = random.Random(secrets.randbits(64) if seed is None else seed)

        def seeds(n: int) -> list[int]:
            return [rng.randrange(2**31 - 1) for _ in range(n)]

        observe, other = seeds(2)
        return cls(
            observe,
            other,
            [observe, *seeds(SPEEDUP.max_repeats - 1)],  # the observed runs are the first timed round
            seeds(AGENT.attempts),
            seeds(AGENT.heldout_episodes),
            rng.randrange(2**63),
            rng.randrange(2**63),
        )

    def workload(self, seed: int, processes: int | None = None) -> dict:
        """The kwargs of an observed or timed run (one workload for both)."""
        kwargs = {
            "generations": SPEEDUP.generations,
            "pop_size": SPEEDUP.pop_size,
            "seed": seed,
            "sigma": SPEEDUP.sigma,
        }
        return kwargs if processes is None else {**kwargs, "processes": processes}

    def choose(self) -> Plan:
        """This plan with the observed runs' seed chosen to tell every deviation apart (``deviations.choose``);
        raises ``deviations.NoSeed`` when no candidate within ``OBSERVE.seed_budget`` does."""
        rng = random.Random(self.candidates_seed)
        fresh = (rng.randrange(2**31 - 1) for _ in itertools.count())
        candidates = (seed for seed in fresh if seed != self.other_seed)  # seed_changes_result needs two seeds
        return self.with_choice(deviations.choose(candidates, self.workload, OBSERVE.seed_budget))

    def verify(self) -> Plan:
        """This recorded plan, once its observed seed is checked to tell every deviation apart with this grader
        (``deviations.verify``; raises ``deviations.NoSeed`` when it does not). What catches each deviation is
        this grader's finding (it may know more deviations than the first grading); how the seed was found
        (seeds tried, seconds) stays the first grading's."""
        choice = deviations.verify(self.observe_seed, self.workload(self.observe_seed))
        found = {k: (self.chosen or {}).get(k, v) for k, v in choice.record().items() if k in ("tried", "seconds")}
        return replace(self.with_choice(choice), chosen={**choice.record(), **found})

    def with_choice(self, choice: deviations.Choice) -> Plan:
        """This plan observing on ``choice``'s seed."""
        return replace(
            self,
            observe_seed=choice.seed,
            timed_seeds=[choice.seed, *self.timed_seeds[1:]],
            chosen=choice.record(),
        )

    def chosen_for(self, seed: int) -> list[str]:
        """The deviations a run with ``seed`` was chosen to tell apart (none for a seed drawn, not chosen)."""
        return list(self.chosen["caught_by"]) if self.chosen and seed == self.observe_seed else []

    def record(self) -> dict:
        """The plan as results.json and observations.json keep it: every run's seed and what it was chosen
        for, and all a regrade needs (:meth:`from_record`)."""
        calls = observe_calls(self)
        return {
            "workload": {k: v for k, v in self.workload(0).items() if k != "seed"},
            "runs": {
                label: {"seed": kwargs["seed"], "chosen_for": self.chosen_for(kwargs["seed"])}
                for label, (_, kwargs) in calls.items()
            },
            **{f.name: getattr(self, f.name) for f in fields(self)},
        }

    @classmethod
    def from_record(cls, record, source: str) -> Plan:
        """The plan of an earlier grading (``record()``'s dict read from ``source``), for a regrade with the same
        seeds; ValueError saying what to do when it cannot be used here."""
        again = "grade without --seeds-from to draw new seeds"
        if not isinstance(record, dict):
            raise ValueError(f"{source} records no seeds (graded by an older grader?): {again}")
        try:
            values = {
                "observe_seed": readback.integer(record.get("observe_seed"), "observe_seed"),
                "other_seed": readback.integer(record.get("other_seed"), "other_seed"),
                "check_seed": readback.integer(record.get("check_seed"), "check_seed"),
                "candidates_seed": readback.integer(record.get("candidates_seed"), "candidates_seed"),
            }
            for name in ("timed_seeds", "training_seeds", "heldout_seeds"):
                listed = record.get(name)
                if not isinstance(listed, list):
                    raise readback.Invalid(f"{name} is not a list")
                values[name] = [readback.integer(v, f"{name}[{i}]") for i, v in enumerate(listed)]
        except readback.Invalid as exc:
            raise ValueError(f"the seeds recorded in {source} cannot be read ({exc}): {again}") from None
        plan = cls(**values, chosen=record.get("chosen") if isinstance(record.get("chosen"), dict) else None)
        here = {k: v for k, v in plan.workload(0).items() if k != "seed"}
        wanted = {
            "timed_seeds": SPEEDUP.max_repeats,
            "training_seeds": AGENT.attempts,
            "heldout_seeds": AGENT.heldout_episodes,
        }
        if record.get("workload") != here or any(len(values[k]) < n for k, n in wanted.items()):
            raise ValueError(
                f"the seeds recorded in {source} were drawn for other settings (observed workload "
                f"{record.get('workload')}, this grader's {here}): grade with the settings of the first grading "
                f"({SETTINGS_ENV}), or {again}"
            )
        if plan.chosen is None:
            raise ValueError(f"the observed seed recorded in {source} was not chosen to tell deviations apart: {again}")
        return replace(plan, **{k: values[k][:n] for k, n in wanted.items()})


def observe_calls(plan: Plan) -> dict[str, tuple[str, dict]]:
    """The observation runs: label -> (function, kwargs)."""
    calls = {
        "serial_main": ("evolve_serial", plan.workload(plan.observe_seed)),
        "serial_repeat": ("evolve_serial", plan.workload(plan.observe_seed)),
        "serial_other": ("evolve_serial", plan.workload(plan.other_seed)),
    }
    for n in OBSERVE.parallel_processes:  # None is passed as such: the call the message shows is the one made
        calls[f"parallel_{n}"] = ("evolve_parallel", {**plan.workload(plan.observe_seed), "processes": n})
    return calls


def describe_call(function: str, kwargs: dict) -> str:
    """``evolve_parallel(generations=3, ...)`` as a student would write the call."""
    return f"{function}({', '.join(f'{key}={value!r}' for key, value in kwargs.items())})"


@dataclass
class Observer:
    """Makes and verifies the sandboxed runs of one submission (or of the reference)."""

    workdir: Path
    plan: Plan
    cores: Cores | None = None
    """Where untimed runs take cores no timed phase holds, waiting while there are none (None: any core)."""
    replayed: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        self.template = self.workdir / "template"
        self.chooser = random.Random(self.plan.check_seed)
        self.session: workspace.Session | None = None
        self.start_methods: set[str] = set()
        """How this submission's evolve_parallel started its workers, when not by fork (seen from outside)."""
        self.lock = threading.Lock()
        """Runs made side by side share the generation-0 register below."""
        self.first_generations: dict[int, list[np.ndarray]] = {}
        """Generation 0's candidates of every verified run, by seed."""

    def close(self) -> None:
        """End the sandbox session (its zygote and anything left of its runs)."""
        if self.session is not None:
            self.session.close()
            workspace.release_runs_folder(self.session.runs)
            self.session = None

    def load(self, notebook: Path) -> str | None:
        """Build the template folder from ``notebook``; a message for the student if that fails."""
        try:
            setup = extract.cells_by_grade_id(extract.read_notebook(paths.setup_notebook()), (extract.SETUP_ID,))
            nb = extract.read_notebook(notebook)
            stubs = extract.cells_by_grade_id(nb, extract.STUB_IDS)
        except extract.NotebookError as exc:
            return str(exc)
        if stubs.missing:
            return (
                f"the notebook has no cell with grade_id {', '.join(stubs.missing)}: write your code in the "
                "cells you were given (do not delete or re-create them), or restore them from the release"
            )
        self.template.mkdir(parents=True, exist_ok=True)
        workspace.prepare(self.template, extract.build_module(setup.cells[extract.SETUP_ID], stubs.cells))
        if SANDBOX.sessions:
            self.session = workspace.session(self.template)
        return None

    def run(
        self,
        function: str | None,
        kwargs: dict,
        *,
        wall_seconds: float,
        check: bool = True,
        cpus: tuple[int, ...] | None = None,
        method: str | None = None,
        fresh: bool = False,
    ) -> RunObservation:
        """One fresh run of ``function(**kwargs)``, read back and (``check``) verified: an observation.

        ``fresh``: in a new interpreter rather than a fork of the session's zygote.
        ``cpus``: the cores of a timed phase; other runs take the cores no timed phase holds.
        """
        # The read-back and the checks (episode replays) are the grader's own CPU work: placed with the run,
        # so that none of it lands on the cores of another student's timed phase (``--jobs``).
        with self.placed(cpus) as work:
            result = self._call(function, kwargs, work, wall_seconds=wall_seconds, method=method, fresh=fresh)
            return self._observation(result, function, kwargs, wall_seconds, check)

    def _observation(
        self, result: workspace.RunResult, function: str | None, kwargs: dict, wall_seconds: float, check: bool
    ) -> RunObservation:
        """A run's result read back and (``check``) verified."""
        if function == "evolve_parallel":
            self.start_methods.update(result.outcome.start_methods)
        outcome = result.outcome
        obs: RunObservation = {
            "call": describe_call(function or "import", kwargs),
            "function": function,
            "kwargs": kwargs,
            "problem": call_problem(result, function, kwargs, wall_seconds),
            "caller_pid": None,
            "best": None,
            "best_problem": None,
            "history": None,
            "history_problem": None,
            "rules": {},
            "worker_pids": 0,
            "garbled": result.garbled[:5],
            "wall": outcome.wall_seconds,
            "cpu": outcome.cpu_seconds,
            "kernel_caps": outcome.kernel_caps,
            "cpus": outcome.cpus,
            "start_methods": outcome.start_methods,
            "evidence": None,
            "generation_0_of_seed": None,
        }
        if obs["problem"] or not function:
            return obs
        data = result.result
        caller = result.import_info.get("pid") if isinstance(result.import_info.get("pid"), int) else None
        obs["caller_pid"] = caller
        answer = data.get("result") if isinstance(data.get("result"), dict) else {}
        if "shape_error" in answer:
            obs["problem"] = f"{function} {answer['shape_error']}"
            return obs
        obs["best"], obs["best_problem"] = best_params(answer.get("best"), function)
        obs["history"], obs["history_problem"] = history(
            answer.get("history"), function, kwargs["generations"], kwargs["pop_size"]
        )
        if function == "evolve_parallel" and result.episodes:
            obs["evidence"] = concurrency.evidence(
                result.episodes, outcome.cpu_samples, pop_size=kwargs["pop_size"], caller=caller
            )
        if not check:
            return obs
        # One call per run: every episode the run recorded is the call's (no time window a patched clock could shift).
        played = [rules.Played(e.pid, e.seed, e.params, e.ret) for e in result.episodes]
        best = {k: np.array(v) for k, v in obs["best"].items()} if obs["best"] else None
        verdict = rules.check_run(
            call=obs["call"],
            function=function,
            kwargs=kwargs,
            episodes=played,
            caller=caller,
            best=best,
            history=obs["history"],
            live_pids=set(outcome.inner_pids),
            replay=self.replay,
            chooser=self.chooser,
            centre_tolerance=OBSERVE.centre_tolerance,
            refused_records=[n for n in result.garbled if not n.startswith(("import.json", "result.json"))],
            evidence=obs["evidence"],
        )
        obs["rules"], obs["worker_pids"] = verdict.rules, verdict.worker_pids
        with self.lock:
            repeated = self._first_generation_seen(kwargs.get("seed"), verdict.first_generation)
        obs["generation_0_of_seed"] = repeated
        if repeated and not obs["rules"]["sampling"]:
            obs["rules"]["sampling"] = hints.first_generation_repeated(obs["call"], repeated)
        return obs

    def _call(
        self,
        function: str | None,
        kwargs: dict,
        work: Work,
        *,
        wall_seconds: float,
        method: str | None = None,
        fresh: bool = False,
        stop_after_episodes: int | None = None,
    ) -> workspace.RunResult:
        """The sandboxed run itself on the cores :meth:`placed` gave ``work`` (None: any), read back; its CPU time
        is noted on ``work``."""
        result = workspace.run_call(
            self.template,
            function,
            kwargs,
            wall_seconds=wall_seconds,
            start_method=method or start_method(),
            expected_episodes=kwargs.get("generations", 0) * kwargs.get("pop_size", 0),
            session=None if fresh else self.session,
            cpus=work.cpus,
            stop_after_episodes=stop_after_episodes,
        )
        work.cpu_seconds = result.outcome.cpu_seconds
        return result

    @contextmanager
    def placed(self, cpus: tuple[int, ...] | None = None) -> Iterator[Work]:
        """Where a block of work runs: on a timed phase's ``cpus`` when given, else as untimed work (never on the
        cores of a timed phase, nor while one waits for them; any core without a :class:`Cores`)."""
        if cpus is not None or self.cores is None:
            yield Work(cpus, 0.0)
            return
        with self.cores.untimed() as work:
            yield work

    def first_generation_problem(self, function: str, kwargs: dict, *, wall_seconds: float) -> str | None:
        """Start ``function(**kwargs)`` and end it once generation 0 is played: the sampling rule's message
        if one of its candidates is one a run with another seed started from, else None.

        The run is made like every other (nothing tells it apart until it is ended), so a loop that plants
        a chosen network in generation 0 of runs of this shape shows it here at a fraction of a full run.
        A run that fails before playing generation 0 tells nothing: None.
        """
        pop_size = kwargs["pop_size"]
        with self.placed() as work:
            result = self._call(function, kwargs, work, wall_seconds=wall_seconds, stop_after_episodes=pop_size)
        if result.garbled or len(result.episodes) < pop_size:
            return None
        first = [rules.vector(e.params) for e in result.episodes[:pop_size]]
        with self.lock:
            repeated = self._first_generation_seen(kwargs.get("seed"), first)
        if repeated is None:
            return None
        return hints.first_generation_repeated(describe_call(function, kwargs), repeated)

    def _first_generation_seen(self, seed: int | None, candidates: list[np.ndarray]) -> int | None:
        """Another seed whose run had one of these generation-0 candidates, or one within a little jitter of
        it (remembering these), or None."""
        other = next(
            (s for s, seen in self.first_generations.items() if s != seed and rules.same_candidate(candidates, seen)),
            None,
        )
        if seed is not None:
            self.first_generations.setdefault(seed, []).extend(candidates)
        return other

    def observe(
        self,
        labels: list[str],
        earlier: dict[str, RunObservation] | None = None,
        *,
        cpus: tuple[int, ...] | None = None,
    ) -> dict[str, RunObservation]:
        """The observation runs named in ``labels`` (``cpus``: a timed phase's cores, for runs it times).

        A function that failed (raised, crashed, hung) in an ``earlier`` run or one of these is not
        run again: it would fail again, and a hang would cost its whole time limit each time.
        """
        calls = observe_calls(self.plan)
        failed = {run["function"]: run for run in (earlier or {}).values() if run["problem"]}
        out: dict[str, RunObservation] = {}
        beside = None
        if "serial_repeat" in labels and "evolve_serial" not in failed:
            # The repeat runs in a new interpreter, not a fork of the session's: whatever a fork shares
            # with its zygote (str hash seed, memory layout) must not make an unseeded loop look seeded.
            # Needing no session, it runs beside the session's runs (none of them is timed).
            function, kwargs = calls["serial_repeat"]
            beside = ThreadPoolExecutor(1, thread_name_prefix="fresh-run")
            fresh = beside.submit(self.run, function, kwargs, wall_seconds=OBSERVE.wall_seconds, fresh=True)
        try:
            for label in labels:
                function, kwargs = calls[label]
                if label == "serial_repeat" and beside is not None:
                    continue
                if function in failed:
                    out[label] = {**failed[function], "call": describe_call(function, kwargs), "kwargs": kwargs}
                    continue
                out[label] = self.run(function, kwargs, wall_seconds=OBSERVE.wall_seconds, cpus=cpus)
                if out[label]["problem"]:
                    failed[function] = out[label]
        finally:
            if beside is not None:
                out["serial_repeat"] = fresh.result()
                beside.shutdown()
        return {label: out[label] for label in labels}

    def replay(self, params: dict, seed: int) -> float:
        """The trusted return of ``params`` from start state ``seed``."""
        key = (seed, *(np.asarray(params[k]).tobytes() for k in readback.PARAM_SHAPES))
        if key not in self.replayed:
            self.replayed[key] = float(trusted_helper().episode(params, seed))
        return self.replayed[key]


def call_problem(result: workspace.RunResult, function: str | None, kwargs: dict, wall_seconds: float) -> str | None:
    """Why the run produced no result, for the student; None when it did."""
    info = result.import_info
    doing = f"running {describe_call(function, kwargs)}" if function else "importing your cells"
    if info is None:
        if any(note.startswith("import.json") for note in result.garbled):
            return f"the grader could not read back the run ({result.garbled[0]})"
        return messages.run_failure(result.outcome, "importing your cells", wall_seconds)
    if isinstance(info.get("error"), dict):
        return "your cells could not be run: " + messages.exception(info["error"], "your cells")
    if not function:
        return None
    data = result.result
    if data is None:
        unreadable = [note for note in result.garbled if note.startswith("result.json")]
        if unreadable:
            return f"the result of {describe_call(function, kwargs)} could not be read back ({unreadable[0]})"
        return messages.run_failure(result.outcome, doing, wall_seconds)
    if isinstance(data.get("error"), dict):
        return messages.exception(data["error"], function)
    if not isinstance(data.get("result"), dict):
        return f"{function} returned nothing the grader could read"
    return None


def best_params(info, function: str) -> tuple[dict | None, str | None]:
    """The returned best parameters as nested lists, or why they are not valid."""
    what = f"the best_params {function} returned"
    if not isinstance(info, dict) or info.get("type") != "dict":
        kind = info.get("type") if isinstance(info, dict) else "?"
        return None, f"{what} is a {kind}, expected a dict like initialize_parameters returns"
    arrays = info.get("arrays") if isinstance(info.get("arrays"), dict) else {}
    missing = [key for key in readback.PARAM_SHAPES if key not in arrays]
    if missing:
        return None, f"{what} has no {', '.join(missing)}: return the parameters of the selected candidate"
    values = {}
    for key, shape in readback.PARAM_SHAPES.items():
        entry = arrays[key] if isinstance(arrays[key], dict) else {}
        if entry.get("error"):
            return None, f"{what}: {key} is a {entry.get('type')}, not an array of numbers"
        if tuple(entry.get("shape") or ()) != shape:
            return None, f"{what}: {key} has shape {tuple(entry.get('shape') or ())}, expected {shape}"
        values[key] = entry.get("values")
    try:
        return {key: array.tolist() for key, array in readback.params(values, "best_params").items()}, None
    except readback.Invalid as exc:
        return None, f"{what}: {exc}"


def history(info, function: str, generations: int, pop_size: int) -> tuple[list | None, str | None]:
    """The returned history as a list of lists of floats, or why it is not valid."""
    what = f"the history {function} returned"
    if not isinstance(info, dict) or info.get("type") not in ("list", "tuple"):
        kind = info.get("type") if isinstance(info, dict) else "?"
        return None, f"{what} is a {kind}, expected a list with one list of returns per generation"
    rows = info.get("rows") if isinstance(info.get("rows"), list) else []
    if len(rows) != generations:
        return None, f"{what} has {len(rows)} entries for {generations} generations: append one list per generation"
    out = []
    for g, row in enumerate(rows):
        if not isinstance(row, dict) or "values" not in row:
            return None, f"{what}: history[{g}] is not a list of numbers"
        try:
            values = readback.finite_list(row["values"], f"history[{g}]")
        except readback.Invalid as exc:
            return None, f"{what}: {exc}"
        if len(values) != pop_size:
            return None, f"{what}: history[{g}] has {len(values)} returns, expected one per candidate ({pop_size})"
        out.append(values)
    return out, None


def run_problem(obs: RunObservation, rules: tuple[str, ...] = rules.RULES) -> str | None:
    """The first reason this run does not count: it failed, returned nothing valid, or broke a rule."""
    return (
        obs["problem"]
        or obs["best_problem"]
        or obs["history_problem"]
        or next((obs["rules"][r] for r in rules if obs["rules"].get(r)), None)
    )


class Reference:
    """The reference solution, loaded once per batch (and grading job) and timed beside every submission."""

    def __init__(self, workdir: Path, plan: Plan, cores: Cores | None = None):
        self.collector = Observer(Path(workdir), plan, cores)
        self.problem: str | None = None
        self.loaded = False
        self.measured: list[dict] = []
        """Each submission's reference measurement, in grading order (written to reference-timing.json)."""

    def ready(self) -> str | None:
        """Load the reference into its template folder, once; why it failed, or None.

        (The batch checks once, up front, that it passes every run a submission gets: ``reference.py``.)"""
        if not self.loaded:
            self.loaded = True
            self.problem = self.collector.load(paths.reference_notebook())
        return self.problem

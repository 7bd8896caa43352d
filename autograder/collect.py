"""Collect one student's observations: sandboxed runs read back, validated and replayed.

The result is a plain JSON-able dict the grading tests (``autograder/checks``) read. Every
problem becomes a message in it; nothing a submission does raises here.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from autograder import extract, messages, paths, validate, workspace
from autograder.config import AGENT, CATEGORIES, OBSERVE, SANDBOX, SPEEDUP

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


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def heldout_seeds() -> list[int]:
    """Start states the trained agent is scored on (never used for training)."""
    return [900_001 + 37 * i for i in range(AGENT.heldout_episodes)]


def training_seeds() -> list[int]:
    """Seeds the grader passes to the student's loop, one per attempt."""
    return [31_337 + 1_000 * k for k in range(AGENT.attempts)]


def observe_calls() -> dict[str, list[dict]]:
    """The calls of the two observation runs, keyed by run."""
    base = {"generations": OBSERVE.generations, "pop_size": OBSERVE.pop_size, "sigma": OBSERVE.sigma}
    serial = [
        {"phase": "serial_main", "function": "evolve_serial", "kwargs": {**base, "seed": OBSERVE.seed}},
        {"phase": "serial_repeat", "function": "evolve_serial", "kwargs": {**base, "seed": OBSERVE.seed}},
        {"phase": "serial_other", "function": "evolve_serial", "kwargs": {**base, "seed": OBSERVE.other_seed}},
    ]
    parallel = [{"phase": f"parallel_{n}", "function": "evolve_parallel",
                 "kwargs": {**base, "seed": OBSERVE.seed, "processes": n}} for n in OBSERVE.parallel_processes]
    return {"serial": serial, "parallel": parallel}


def describe_call(call: dict) -> str:
    """``evolve_parallel(generations=3, ...)`` as a student would write the call."""
    args = ", ".join(f"{key}={value!r}" for key, value in call["kwargs"].items())
    return f"{call['function']}({args})"


class Collector:
    """Runs the sandboxed jobs of one submission and turns them into observations."""

    def __init__(self, workdir: Path, categories: tuple[str, ...], reference: "Reference | None" = None):
        self.workdir = Path(workdir)
        self.categories = categories
        self.reference = reference
        self.replayed: dict[tuple, float] = {}

    # --- loading -------------------------------------------------------------------------

    def load(self, notebook: Path) -> str | None:
        """Build the sandbox folder from ``notebook``; a message for the student if that fails."""
        try:
            setup = extract.cells_by_grade_id(extract.read_notebook(paths.setup_notebook()), (extract.SETUP_ID,))
            nb = extract.read_notebook(notebook)
        except extract.NotebookError as exc:
            return str(exc)
        stubs = extract.cells_by_grade_id(nb, extract.STUB_IDS)
        if stubs.missing:
            return (f"the notebook has no cell with grade_id {', '.join(stubs.missing)}: write your code in the "
                    "cells you were given (do not delete or re-create them), or restore them from the release")
        workspace.prepare(self.workdir, extract.build_module(setup.cells[extract.SETUP_ID], stubs.cells))
        return None

    # --- serial, parallel, determinism -----------------------------------------------------

    def observe(self, run_name: str) -> tuple[dict[str, dict], float]:
        """Run one observation job; per-call observations and the seconds it took."""
        start = time.perf_counter()
        calls = observe_calls()[run_name]
        result = workspace.run_job(self.workdir, calls, wall_seconds=OBSERVE.wall_seconds)
        observed = {call["phase"]: self._call_observation(call, result) for call in calls}
        return observed, time.perf_counter() - start

    def _call_observation(self, call: dict, result: workspace.RunResult) -> dict:
        phase = call["phase"]
        obs: dict = {"call": describe_call(call), "function": call["function"], "kwargs": call["kwargs"],
                     "problem": None, "caller_pid": None, "best": None, "best_problem": None,
                     "history": None, "history_problem": None, "episodes": [], "garbled": result.garbled[:5]}
        obs["problem"] = call_problem(result, call, OBSERVE.wall_seconds)
        data = result.phases.get(phase)
        if obs["problem"] or data is None:
            return obs
        try:
            obs["caller_pid"] = validate.integer(data.get("pid"), "pid")
        except validate.Invalid:
            pass
        answer = data.get("result") if isinstance(data.get("result"), dict) else {}
        if "shape_error" in answer:
            obs["problem"] = f"{call['function']} {answer['shape_error']}"
            return obs
        kwargs = call["kwargs"]
        obs["best"], obs["best_problem"] = best_params(answer.get("best"), call["function"])
        obs["history"], obs["history_problem"] = history(answer.get("history"), call["function"],
                                                         kwargs["generations"], kwargs["pop_size"])
        obs["episodes"] = [self._episode(e) for e in workspace.in_window(result.episodes, data)]
        return obs

    def _episode(self, e: workspace.Episode) -> dict:
        return {"pid": e.pid, "seed": e.seed, "ret": e.ret, "replayed": self.replay(e.params, e.seed),
                "params": {key: value.tolist() for key, value in e.params.items()}}

    def replay(self, params: dict, seed: int | None) -> float | None:
        """The trusted return of ``params`` from start state ``seed`` (None for an unseeded episode)."""
        if seed is None:
            return None
        key = (seed, *(params[k].tobytes() for k in validate.PARAM_SHAPES))
        if key not in self.replayed:
            self.replayed[key] = float(trusted_helper().episode(params, seed))
        return self.replayed[key]

    # --- speedup -------------------------------------------------------------------------

    def time_beside(self, reference: "Reference") -> dict:
        """This submission's timed runs interleaved with the reference's (see ``timed_side_by_side``)."""
        timing = timed_side_by_side(self.workdir, reference.workdir)
        reference.measured.append({"speedup": timing["reference"]["speedup"], "rounds": timing["reference"]["rounds"],
                                   "series": timing["reference"]["series"]})
        return timing

    # --- agent ---------------------------------------------------------------------------

    def train(self, parallel_problem: str | None) -> dict:
        """Train with the student's loop on the grader's seeds; score on held-out start states here."""
        cores = usable_cores()
        base = {"generations": AGENT.generations, "pop_size": AGENT.pop_size, "sigma": AGENT.sigma}
        attempts, best = [], None
        for seed in training_seeds():
            serial_call = {"function": "evolve_serial", "kwargs": {**base, "seed": seed}}
            if parallel_problem:  # it failed or hung in the observation run: do not wait for it again
                call = {"phase": "train", **serial_call}
            else:
                call = {"phase": "train", "function": "evolve_parallel",
                        "kwargs": {**base, "seed": seed, "processes": max(2, cores)}, "fallback": serial_call}
            # Recorded, so the grader knows which candidates generation 0 held (the student's history may be wrong).
            result = workspace.run_job(self.workdir, [call], wall_seconds=SANDBOX.agent_wall_seconds)
            attempt = {"seed": seed, "function": None, "problem": call_problem(result, call, SANDBOX.agent_wall_seconds),
                       "note": None, "heldout_mean": None, "history": None, "from_first_generation": False}
            data = result.phases.get("train") or {}
            attempt["function"] = data.get("function") if isinstance(data.get("function"), str) else None
            if attempt["function"] == "evolve_serial" and not parallel_problem and data.get("errors"):
                attempt["note"] = ("evolve_parallel failed, so evolve_serial trained the agent: "
                                   + messages.exception(data["errors"][0], "evolve_parallel"))
            if not attempt["problem"]:
                answer = data.get("result") if isinstance(data.get("result"), dict) else {}
                params, problem = best_params(answer.get("best"), attempt["function"] or "evolve_serial")
                attempt["history"], _ = history(answer.get("history"), "", AGENT.generations, AGENT.pop_size)
                if problem:
                    attempt["problem"] = problem
                else:
                    helper = trusted_helper()
                    arrays = {key: np.array(value) for key, value in params.items()}
                    returns = [float(helper.episode(arrays, s)) for s in heldout_seeds()]
                    attempt["heldout_mean"] = float(np.mean(returns))
                    attempt["from_first_generation"] = is_first_generation_candidate(arrays, result.episodes)
            attempts.append(attempt)
            if attempt["heldout_mean"] is not None and (best is None or _rank(attempt) > _rank(best)):
                best = attempt
            # A failed run would fail again (and a hang would hang again): do not spend the budget on it.
            if attempt["problem"] or (best and _rank(best) >= (True, AGENT.solved_return)):
                break
        return {"attempts": attempts, "best": best, "budget": asdict(AGENT), "heldout": len(heldout_seeds())}


def call_problem(result: workspace.RunResult, call: dict, wall_seconds: float) -> str | None:
    """Why ``call`` produced no result, for the student; None when it did."""
    phase, function = call["phase"], call["function"]
    info = result.import_info
    if info is None:
        return messages.run_failure(result.outcome, "importing your cells", wall_seconds)
    if isinstance(info.get("error"), dict):
        return "your cells could not be run: " + messages.exception(info["error"], "your cells")
    data = result.phases.get(phase)
    if data is not None:
        error = data.get("error")
        if isinstance(error, dict):
            name = data.get("function") if isinstance(data.get("function"), str) else function
            return messages.exception(error, name)
        if not isinstance(data.get("result"), dict):
            return f"{function} returned nothing the grader could read"
        return None
    unreadable = [note for note in result.garbled if note.startswith(f"{phase}.json:")]
    if unreadable:
        return f"the result of {describe_call(call)} could not be read back ({unreadable[0]})"
    if phase in result.started:
        return messages.run_failure(result.outcome, f"running {describe_call(call)}", wall_seconds)
    return "not run: " + messages.run_failure(result.outcome, "running an earlier call", wall_seconds)


def best_params(info, function: str) -> tuple[dict | None, str | None]:
    """The returned best parameters as nested lists, or why they are not valid."""
    what = f"the best_params {function} returned"
    if not isinstance(info, dict) or info.get("type") != "dict":
        kind = info.get("type") if isinstance(info, dict) else "?"
        return None, f"{what} is a {kind}, expected a dict like initialize_parameters returns"
    arrays = info.get("arrays") if isinstance(info.get("arrays"), dict) else {}
    missing = [key for key in validate.PARAM_SHAPES if key not in arrays]
    if missing:
        return None, f"{what} has no {', '.join(missing)}: return the parameters of the selected candidate"
    values = {}
    for key, shape in validate.PARAM_SHAPES.items():
        entry = arrays[key] if isinstance(arrays[key], dict) else {}
        if entry.get("error"):
            return None, f"{what}: {key} is a {entry.get('type')}, not an array of numbers"
        if tuple(entry.get("shape") or ()) != shape:
            return None, f"{what}: {key} has shape {tuple(entry.get('shape') or ())}, expected {shape}"
        values[key] = entry.get("values")
    try:
        return {key: array.tolist() for key, array in validate.params(values, "best_params").items()}, None
    except validate.Invalid as exc:
        return None, f"{what}: {exc}"


def history(info, function: str, generations: int, pop_size: int) -> tuple[list | None, str | None]:
    """The returned history as a list of lists of floats, or why it is not valid."""
    what = f"the history {function} returned".replace("  ", " ")
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
            values = validate.finite_list(row["values"], f"history[{g}]")
        except validate.Invalid as exc:
            return None, f"{what}: {exc}"
        if len(values) != pop_size:
            return None, f"{what}: history[{g}] has {len(values)} returns, expected one per candidate ({pop_size})"
        out.append(values)
    return out, None


def is_first_generation_candidate(params: dict[str, np.ndarray], episodes: list[workspace.Episode]) -> bool:
    """``params`` is one of the candidates generation 0 tested (the first ``pop_size`` episodes played).

    A correct loop returns a candidate sampled in the last generation, never an initial one;
    a loop that never leaves generation 0 can only return one of those (a lucky random network).
    """
    first = episodes[:AGENT.pop_size] if AGENT.generations > 1 else []
    return any(all(np.array_equal(params[key], e.params[key]) for key in params) for e in first)


def _rank(attempt: dict) -> tuple[bool, float]:
    """Runs that returned a trained candidate come first, then the higher held-out mean."""
    return (not attempt["from_first_generation"], attempt["heldout_mean"])


# --- timing: each submission side by side with the reference solution -----------------------


def timing_jobs() -> dict[str, list[dict]]:
    """The three timed jobs: an empty one (start-up cost), evolve_serial, evolve_parallel."""
    kwargs = {"generations": SPEEDUP.generations, "pop_size": SPEEDUP.pop_size, "seed": 11, "sigma": OBSERVE.sigma}
    return {
        "noop": [],
        "serial": [{"phase": "timed", "function": "evolve_serial", "kwargs": kwargs, "keep": "summary"}],
        "parallel": [{"phase": "timed", "function": "evolve_parallel", "keep": "summary",
                      "kwargs": {**kwargs, "processes": SPEEDUP.processes}}],
    }


def timing_start_method() -> str | None:
    """``fork`` wherever it exists, for the timed runs only.

    Under ``spawn`` or ``forkserver`` (Python 3.14's Linux default) every new Pool spends
    most of a second importing numpy and gymnasium in its workers, longer than the timed work
    itself, and no submission could show a speedup. The observed runs keep the platform's default.
    """
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


def _timed_run(workdir: Path, calls: list[dict]) -> tuple[dict | None, str | None]:
    """One timed run: wall and CPU seconds measured outside the child, episodes and workers it played."""
    result = workspace.run_job(workdir, calls, wall_seconds=SPEEDUP.wall_seconds, start_method=timing_start_method())
    found = call_problem(result, calls[0], SPEEDUP.wall_seconds) if calls else (
        None if result.import_info and "error" not in result.import_info
        else call_problem(result, {"phase": "-", "function": "import"}, SPEEDUP.wall_seconds))
    if found:
        return None, found
    caller = result.import_info.get("pid")
    return {"wall": result.outcome.wall_seconds, "cpu": result.outcome.cpu_seconds,
            "episodes": len(result.episodes),
            "worker_pids": len({e.pid for e in result.episodes if e.pid != caller})}, None


def _empty_side(skip_parallel: str | None = None) -> dict:
    series = {kind: {"wall": [], "cpu": [], "episodes": [], "worker_pids": []} for kind in timing_jobs()}
    return {"series": series, "problems": {"parallel": skip_parallel} if skip_parallel else {},
            "expected_episodes": SPEEDUP.generations * SPEEDUP.pop_size}


def _measure_round(sides: dict[str, tuple[Path, dict]], order: list[str]) -> None:
    """One round: each job kind run for every side back to back, so a burst of other work hits both."""
    for kind, calls in timing_jobs().items():
        for name in order:
            workdir, side = sides[name]
            if side["problems"]:
                continue
            sample, problem = _timed_run(workdir, calls)
            if problem:
                side["problems"][kind] = problem
                continue
            for key, value in sample.items():
                side["series"][kind][key].append(value)


def _summarised(side: dict) -> dict:
    side.update(summarise(side["series"]) if not side["problems"] else {"speedup": None, "cpu_ratio": None})
    side["rounds"] = len(side["series"]["noop"]["wall"])
    return side


def timed_side_by_side(student_dir: Path, reference_dir: Path, skip_parallel: str | None = None) -> dict:
    """Time a submission and the reference in interleaved rounds; more rounds while the student falls short.

    Both speedups come from the same rounds, so load on the machine moves them together. After
    ``SPEEDUP.repeats`` rounds, a student below full marks (or a reference below
    ``min_reference_speedup``) gets up to ``SPEEDUP.max_repeats`` rounds in all: a short burst of
    other work costs a correct submission nothing, a slow one stays slow.
    """
    student, reference = _empty_side(skip_parallel), _empty_side()
    sides = {"student": (student_dir, student), "reference": (reference_dir, reference)}
    for round_ in range(SPEEDUP.max_repeats):
        _measure_round(sides, ["student", "reference"] if round_ % 2 == 0 else ["reference", "student"])
        if reference["problems"] or student["problems"]:
            break  # nothing more to learn: the failure is reported instead
        if round_ + 1 < SPEEDUP.repeats:
            continue
        mine, ref = summarise(student["series"])["speedup"], summarise(reference["series"])["speedup"]
        if ref is not None and ref >= SPEEDUP.min_reference_speedup and (
                mine is not None and mine >= SPEEDUP.full_marks_at(ref)):
            break
    return {"student": _summarised(student), "reference": _summarised(reference)}


def summarise(series: dict) -> dict:
    """Median compute seconds (noop subtracted), the speedup and the parallel run's CPU per wall second."""
    med = {kind: {k: workspace.median(v) for k, v in s.items() if k in ("wall", "cpu")} for kind, s in series.items()}
    serial = med["serial"]["wall"] - med["noop"]["wall"]
    parallel = med["parallel"]["wall"] - med["noop"]["wall"]
    cpu = med["parallel"]["cpu"] - med["noop"]["cpu"]
    ok = serial > 0 and parallel > 0
    return {"serial_seconds": serial, "parallel_seconds": parallel,
            "speedup": serial / parallel if ok else None, "cpu_ratio": cpu / parallel if parallel > 0 else None}


class Reference:
    """The reference solution, loaded once per batch and timed beside every submission."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.problem: str | None = None
        self.loaded = False
        self.measured: list[dict] = []
        """Each submission's reference measurement, in grading order (written to reference-timing.json)."""

    def ready(self) -> str | None:
        """Load the reference into its sandbox folder once; why it failed, or None."""
        if not self.loaded:
            self.problem = Collector(self.workdir, CATEGORIES).load(paths.reference_notebook())
            self.loaded = True
        return self.problem

"""Grade one submission: collect its observations, run the checks, score, write its results."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import (
    deviations,
    interrupts,
    observe,
    paths,
    quotas,
    results,
    scoring,
    speedup_judge,
    stamps,
    timing,
    training,
)
from autograder import reference as reference_check
from autograder.categories import ALL, BY_NAME, OBSERVED_PARALLEL, POINTS
from autograder.config import AGENT, OBSERVE, SANDBOX, SPEEDUP
from autograder.cores import Cores, usable_cores
from autograder.messages import first_line
from autograder.observations import Observations, RunObservation, SpeedupObservation
from autograder.sandbox import SandboxError, accounts, guard, isolation_mode, isolation_warning
from autograder.sandbox.cgroups import controller
from autograder.sandbox.process import PROCESS
from autograder.workspace import remove_tree


class GraderFault(RuntimeError):
    """The grader itself cannot grade (not the student's fault): the student is left ungraded."""


@dataclass
class Graded:
    """What the batch summary needs about one student."""

    student: str
    score: float | None
    category_scores: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    skipped: bool = False
    error: str | None = None
    inconclusive: bool = False
    doc: dict | None = field(default=None, repr=False)
    """Its results.json as written (or as kept from an earlier grading)."""


def settings_snapshot() -> dict:
    """Every setting that changes a grade, as plain data."""
    return {
        "observe": asdict(OBSERVE),
        "speedup": asdict(SPEEDUP),
        "agent": asdict(AGENT),
        "sandbox": asdict(SANDBOX),
        "points": POINTS,
    }


def grader_digest() -> str:
    """A hash of the grader's own sources and trusted inputs: any edit to them regrades everyone."""
    digest = hashlib.sha256()
    files = sorted(Path(paths.ROOT / "autograder").rglob("*.py")) + [paths.helper_module(), paths.reference_notebook()]
    for path in files:
        digest.update(str(path.relative_to(paths.ROOT)).encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


def grading_key(notebook: Path, categories: tuple[str, ...]) -> str:
    """Changes whenever the notebook, the grader's sources, the settings or the categories change."""
    digest = hashlib.sha256()
    try:
        digest.update(notebook.read_bytes() if notebook.is_file() and not notebook.is_symlink() else b"<none>")
    except OSError:
        digest.update(b"<unreadable>")
    digest.update(json.dumps([grader_digest(), settings_snapshot(), list(categories)], sort_keys=True).encode())
    return digest.hexdigest()


@dataclass
class Batch:
    """What every submission of a batch shares: the seeds, the reference, how runs are isolated."""

    plan: observe.Plan
    reference: observe.Reference
    isolation: dict
    cores: Cores = field(default_factory=Cores)

    def for_job(self, workdir: Path) -> Batch:
        """The same batch for another grading job (``--jobs``): its own reference, timed on its own cores."""
        return Batch(self.plan, observe.Reference(workdir, self.plan, self.cores), self.isolation, self.cores)

    @property
    def warning(self) -> str:
        return self.isolation.get("warning", "")

    def close(self) -> None:
        """End the reference's sandbox session."""
        self.reference.collector.close()


def preflight(
    workdir: Path,
    categories: tuple[str, ...],
    seed: int | None = None,
    *,
    private: tuple[Path, ...] = (),
    protected: tuple[Path, ...] = (),
    plan: observe.Plan | None = None,
) -> Batch:
    """Check once, before any student, that the grader can grade; raise GraderFault with what to do if not.

    ``private``: folders of this batch no run may read (submissions, results) besides the grader's own
    secrets; ``protected``: folders no run may change besides the grader's code and environment.
    ``plan``: the seeds of an earlier grading, to regrade the same way (None: drawn afresh from ``seed``).
    """
    try:
        mode = isolation_mode()
        warning = isolation_warning()
        secured = guard.secure([*paths.private_folders(), *private], [*paths.protected_folders(), *protected], workdir)
    except (SandboxError, guard.Exposed) as exc:
        raise GraderFault(str(exc)) from None
    done = secured.describe()
    if done and mode == PROCESS:  # file modes are the boundary there: part of its warning
        warning = f"{warning}\n{done}" if warning else done
    elif done:  # under bubblewrap, a hardening done once on a new checkout: said, not a warning
        print(f"note: {done}", file=sys.stderr, flush=True)
    caps = controller()
    if not caps.available:
        note = (
            "WARNING: no control group for the runs (" + caps.problem + "): memory shared between a "
            "run's processes and its total task count are only watched, not enforced by the kernel, and "
            "CPU time is the launcher's count. Grade as root on Linux for kernel-enforced caps."
        )
        warning = f"{warning}\n{note}" if warning else note
    quota = quotas.read()
    for problem in quotas.problems(quota, cpus_needed=SPEEDUP.processes, memory_needed=SANDBOX.memory_bytes):
        warning = f"{warning}\nWARNING: {problem}" if warning else f"WARNING: {problem}"
    plan = observed_seed(plan or observe.Plan.draw(seed), recorded=plan is not None)
    # A CPU quota below the affinity mask (a container's share of a big host): time on as many cores as it pays for.
    cores = Cores(usable_cores()[: max(1, math.floor(quota.effective_cpus))])
    reference = observe.Reference(workdir / "reference", plan, cores)
    problem = reference_check.problem(reference, categories, len(cores.all))
    if problem:
        reference.collector.close()  # its sandbox session too: nothing of the batch outlives the fault
        raise GraderFault(problem)
    isolation = {
        "mode": mode,
        "account_per_run": accounts.is_root(),
        "kernel_caps": caps.available,
        "machine": quota.as_dict(),
        "warning": warning,
    }
    return Batch(plan, reference, isolation, cores)


def observed_seed(plan: observe.Plan, *, recorded: bool) -> observe.Plan:
    """``plan`` observing on a seed that tells every deviation apart: chosen now, or (``recorded``, a regrade)
    the first grading's, checked again. A GraderFault when there is none: no verdict could be trusted."""
    try:
        return plan.verify() if recorded else plan.choose()
    except deviations.ReferenceFault as exc:
        raise GraderFault(f"the reference solution in {paths.reference_notebook()} does not run: {exc}") from None
    except deviations.NoSeed as exc:
        if recorded:
            raise GraderFault(f"the recorded seeds cannot be used again: {exc}; grade without --seeds-from") from None
        raise GraderFault(f"no seed for the observed runs: {exc}") from None


def collect_observations(
    student: str, notebook: Path, workdir: Path, categories: tuple[str, ...], batch: Batch
) -> Observations:
    """Everything the grading tests read about one submission."""
    collector = observe.Observer(workdir, batch.plan, batch.cores)
    try:
        return _observe(student, notebook, collector, categories, batch)
    finally:
        with interrupts.deferred():  # a second stop must not leave the session's zygote running
            collector.close()


def _observe(
    student: str, notebook: Path, collector: observe.Observer, categories: tuple[str, ...], batch: Batch
) -> Observations:
    cores = len(batch.cores.all)
    obs: Observations = {
        "student": student,
        "settings": settings_snapshot(),
        "cores": cores,
        "plan": batch.plan.record(),
        "runs": {},
        "speedup": None,
        "agent": None,
        "seconds": {},
    }
    obs["load_problem"] = collector.load(notebook)
    if obs["load_problem"]:
        return obs
    wanted = set(categories)
    if "speedup" in wanted and cores >= 2:
        problem = batch.reference.ready()  # before reserving: loading it runs on the free cores
        if problem:  # the grader's own solution failed: no grade can be trusted
            raise GraderFault(f"the reference solution could not be loaded ({first_line(problem)}): grade again")
        # The observed serial and parallel runs are the first timed round: they run on the cores the
        # speedup phase reserves, and the reference is timed beside them right after.
        with batch.cores.reserve(SPEEDUP.processes) as phase:
            _observe_runs(collector, obs, {"serial", "parallel"}, phase.cpus)
            start = time.perf_counter()
            obs["speedup"] = speedup_observation(collector, batch.reference, obs["runs"], phase.cpus)
            obs["seconds"]["speedup"] = time.perf_counter() - start
        # Measured once the phase is over: whatever untimed work ran beside it on its cores.
        obs["speedup"]["alone"] = phase.record()
        if not phase.alone:
            obs["speedup"]["inconclusive"] = speedup_judge.not_alone(obs["speedup"]["alone"])
    elif "speedup" in wanted:
        obs["speedup"] = timing.empty_observation(cores)
        obs["speedup"]["inconclusive"] = speedup_judge.too_few_cores(cores)
    _observe_runs(collector, obs, wanted, None)
    if "agent" in wanted:
        start = time.perf_counter()
        obs["agent"] = training.train(collector, obs["runs"], cores)
        obs["seconds"]["agent"] = obs["seconds"].get("agent", 0.0) + time.perf_counter() - start
    return obs


def _observe_runs(
    collector: observe.Observer, obs: Observations, wanted: set[str], cpus: tuple[int, ...] | None
) -> None:
    """Make the observation runs of the ``wanted`` categories not made yet, timing each category's share."""
    for category in (c for c in ALL if c.runs and c.name in wanted):
        todo = [label for label in category.runs if label not in obs["runs"]]
        if not todo:
            continue
        start = time.perf_counter()
        obs["runs"].update(collector.observe(todo, obs["runs"], cpus=cpus))
        obs["seconds"][category.name] = time.perf_counter() - start


def speedup_observation(
    collector: observe.Observer,
    reference: observe.Reference,
    runs: dict[str, RunObservation],
    cpus: tuple[int, ...],
) -> SpeedupObservation:
    """Timed runs of the submission next to the reference's on the reserved ``cpus``, or why there are none."""
    observed = {"serial": runs[BY_NAME["serial"].runs[0]], "parallel": runs[OBSERVED_PARALLEL]}
    for kind, run in observed.items():
        if run["problem"]:
            function = timing.FUNCTIONS[kind]
            out = timing.empty_observation(len(cpus))
            out["student"] = {"problems": {function: f"{function} failed in the observed run: {run['problem']}"}}
            return out
    out = timing.measure(collector, reference.collector, cpus, observed)
    for kind, problem in out["reference"]["problems"].items():
        # It passed every run up front: failing now, beside this submission, is most likely a busy machine.
        call = timing.FUNCTIONS[kind] or "import"
        raise GraderFault(
            f"the reference solution's {call} failed when timed beside this submission: {first_line(problem)}"
        )
    reference.measured.append(
        {"speedup": out["reference"].get("speedup"), "rounds": out["rounds"], "series": out["reference"]["series"]}
    )
    return out


def grade_student(student: str, notebook: Path, out_dir: Path, categories: tuple[str, ...], batch: Batch) -> Graded:
    """Grade one submission and write its observations.json and results.json (the batch adds the staff's page)."""
    key = grading_key(notebook, categories)
    scratch = batch.reference.collector.workdir.parent / f"student-{hashlib.sha256(student.encode()).hexdigest()[:12]}"
    try:
        obs = collect_observations(student, notebook, scratch, categories, batch)
    finally:
        remove_tree(scratch)
    obs_path = out_dir / "observations.json"
    results.write_atomic(obs_path, json.dumps(obs))
    start = time.perf_counter()
    with batch.cores.untimed():  # the checks' own interpreter stays off a timed phase's cores too
        scored = scoring.score(scoring.run_checks(obs_path, categories))
    check_seconds = time.perf_counter() - start
    extra = {
        "student_id": student,
        "grading_key": key,
        "categories": list(categories),
        "timestamp": stamps.submission_time(notebook.parent)[0],
        "check_seconds": round(check_seconds, 3),
        "isolation": {k: v for k, v in batch.isolation.items() if k != "warning"} | {"warning": bool(batch.warning)},
        "timing": timing_summary(obs),
        # Why the speedup was not judged (a busy or too small machine), for `make grade ONLY=inconclusive`.
        "speedup_inconclusive": (obs.get("speedup") or {}).get("inconclusive"),
        "fitness": fitness(obs),
        "agent_params": agent_params(obs),
        "plan": obs["plan"],
    }
    doc = results.build(scored, extra, obs["seconds"])
    results.write_atomic(out_dir / "results.json", json.dumps(doc, indent=1))  # last: marks the student done
    inconclusive = bool((obs.get("speedup") or {}).get("inconclusive"))
    return Graded(
        student, doc["score"], doc["extra_data"]["category_scores"], obs["seconds"], inconclusive=inconclusive, doc=doc
    )


def timing_summary(obs: dict) -> dict | None:
    """The student's and the reference's timings, for the feedback page (None when nothing was timed)."""
    timed = obs.get("speedup")
    if not timed or not timed.get("rounds"):
        return None
    keys = ("serial_seconds", "parallel_seconds", "speedup", "speedup_rounds")
    return {
        "student": {k: timed["student"].get(k) for k in keys} | {"interval": speedup_judge.interval(timed["student"])},
        "reference": {k: timed["reference"].get(k) for k in keys}
        | {"interval": speedup_judge.interval(timed["reference"])},
        # Every timed run's wall and CPU seconds, by round, and each round's evidence of parallel work: a
        # regrade under other settings needs nothing else.
        "samples": {
            side: {"series": timed[side].get("series"), "evidence": _evidence_figures(timed[side])}
            for side in ("student", "reference")
        },
        "startup_seconds": timed.get("startup_seconds"),
        "timeline": {side: _first_timeline(timed[side]) for side in ("student", "reference")},
        "inconclusive": timed.get("inconclusive"),
        "judgement": speedup_judge.judge(timed, obs["settings"]["speedup"]).record(),
        "rounds": timed["rounds"],
        "cpus": timed.get("cpus", []),
        "reserved": timed.get("reserved", []),
        "alone": timed.get("alone"),
    }


def _evidence_figures(side: dict) -> list[dict | None]:
    """Each round's evidence without its timeline (the feedback page draws one: ``timeline``)."""
    return [
        {k: v for k, v in e.items() if k != "timeline"} if isinstance(e, dict) else None
        for e in side.get("evidence") or []
    ]


def _first_timeline(side: dict) -> dict | None:
    """One generation of the first timed evolve_parallel run, as the feedback page's chart draws it."""
    return next((e["timeline"] for e in side.get("evidence") or [] if isinstance(e, dict) and e.get("timeline")), None)


def fitness(obs: dict) -> dict | None:
    """The history to draw as a fitness curve: the best training run's, else the observed serial run's."""
    best = (obs.get("agent") or {}).get("best")
    if best and best.get("history"):
        return {"history": best["history"], "label": f"your best training run ({best['function']})"}
    main = obs["runs"].get("serial_main") or {}
    if main.get("history"):
        return {"history": main["history"], "label": f"the observed run {main['call']}"}
    return None


def agent_params(obs: dict) -> dict | None:
    best = (obs.get("agent") or {}).get("best")
    return best.get("params") if best else None

"""Grade one submission (collect, check, score, write) and whole batches of them."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import collect, feedback, results, runchecks
from autograder.config import AGENT, GRADER_VERSION, OBSERVE, POINTS, SANDBOX, SPEEDUP


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


def settings_snapshot() -> dict:
    """Every setting that changes a grade, as plain data."""
    return {"observe": asdict(OBSERVE), "speedup": asdict(SPEEDUP), "agent": asdict(AGENT),
            "sandbox": asdict(SANDBOX), "points": POINTS}


def grading_key(notebook: Path, categories: tuple[str, ...]) -> str:
    """Changes whenever the notebook, the grader version, the settings or the categories change."""
    digest = hashlib.sha256()
    digest.update(notebook.read_bytes() if notebook.is_file() else b"<no notebook>")
    digest.update(json.dumps([GRADER_VERSION, settings_snapshot(), list(categories)], sort_keys=True).encode())
    return digest.hexdigest()


def submission_timestamp(notebook: Path) -> str | None:
    """nbgrader's timestamp.txt beside the submitted notebook, if there is one."""
    stamp = notebook.parent / "timestamp.txt"
    try:
        return stamp.read_text(encoding="utf-8").strip()[:64] or None
    except OSError:
        return None


def collect_observations(student: str, notebook: Path, workdir: Path, categories: tuple[str, ...],
                         reference: collect.Reference | None) -> dict:
    """Everything the grading tests read about one submission."""
    collector = collect.Collector(workdir, categories)
    obs: dict = {"student": student, "settings": settings_snapshot(), "cores": collect.usable_cores(),
                 "calls": {}, "speedup": None, "agent": None, "seconds": {}, "not_collected": {}}
    obs["load_problem"] = collector.load(notebook)
    if obs["load_problem"]:
        return obs
    wanted = set(categories)
    if wanted & {"serial", "determinism"}:
        calls, obs["seconds"]["serial"] = collector.observe("serial")
        obs["calls"].update(calls)
    if wanted & {"parallel", "determinism"}:
        calls, obs["seconds"]["parallel"] = collector.observe("parallel")
        obs["calls"].update(calls)
    obs["seconds"]["determinism"] = 0.0  # reuses the serial and parallel runs
    parallel_problem = (obs["calls"].get("parallel_2") or {}).get("problem")
    serial_problem = (obs["calls"].get("serial_main") or {}).get("problem")
    if "speedup" in wanted:
        start = time.perf_counter()
        obs["speedup"] = speedup_observation(collector, reference, serial_problem, parallel_problem)
        obs["seconds"]["speedup"] = time.perf_counter() - start
    if "agent" in wanted:
        start = time.perf_counter()
        obs["agent"] = collector.train(parallel_problem)
        obs["seconds"]["agent"] = time.perf_counter() - start
    return obs


def speedup_observation(collector, reference, serial_problem, parallel_problem) -> dict:
    """Timed runs of the submission next to the reference's, or why the result is inconclusive."""
    cores = collect.usable_cores()
    out = {"cores": cores, "inconclusive": None, "expected_episodes": SPEEDUP.generations * SPEEDUP.pop_size,
           "student": {}, "reference": {}}
    if serial_problem:
        out["student"] = {"problems": {"serial": f"evolve_serial failed in the observation run: {serial_problem}"}}
        return out
    if parallel_problem:
        out["student"] = {"problems": {"parallel": f"evolve_parallel failed in the observation run: {parallel_problem}"}}
        return out
    if cores < 2:
        out["inconclusive"] = f"fewer than 2 cores ({cores}) available to the grader"
        return out
    problem = reference.ready()
    if problem:  # the grader's own solution failed: no grade can be trusted
        raise GraderFault(f"the reference solution could not be loaded: {problem}")
    timing = collector.time_beside(reference)
    out["student"], out["reference"] = timing["student"], timing["reference"]
    if out["reference"].get("problems"):
        raise GraderFault(f"the reference solution could not be timed: {out['reference']['problems']}")
    if (out["reference"].get("speedup") or 0) < SPEEDUP.min_reference_speedup:
        out["inconclusive"] = (f"the reference solution, timed beside yours, reached only "
                               f"{out['reference'].get('speedup') or 0:.2f}x on the grading machine "
                               "(other work is probably using its cores)")
    return out


def grade_student(student: str, notebook: Path, out_dir: Path, categories: tuple[str, ...],
                  reference: collect.Reference | None) -> Graded:
    """Grade one submission and write results.json, observations.json and feedback.html."""
    key = grading_key(notebook, categories)
    with tempfile.TemporaryDirectory(prefix="neuroevo-grade-") as tmp:
        obs = collect_observations(student, notebook, Path(tmp) / "work", categories, reference)
    obs_path = out_dir / "observations.json"
    results.write_atomic(obs_path, json.dumps(obs))
    start = time.perf_counter()
    scored = runchecks.score(runchecks.run_checks(obs_path, categories))
    check_seconds = time.perf_counter() - start
    extra = {"student_id": student, "grading_key": key, "grader_version": GRADER_VERSION,
             "categories": list(categories), "timestamp": submission_timestamp(notebook),
             "check_seconds": round(check_seconds, 3)}
    doc = results.build(scored, extra, obs["seconds"])
    history, label = feedback_history(obs)
    results.write_atomic(out_dir / "feedback.html", feedback.page(student, doc, history, label, speedup_lines(obs)))
    results.write_atomic(out_dir / "results.json", json.dumps(doc, indent=1))  # last: marks the student done
    inconclusive = bool((obs.get("speedup") or {}).get("inconclusive"))
    return Graded(student, doc["score"], doc["extra_data"]["category_scores"], obs["seconds"], inconclusive=inconclusive)


def feedback_history(obs: dict) -> tuple[list | None, str]:
    best = (obs.get("agent") or {}).get("best")
    if best and best.get("history"):
        return best["history"], f"your best training run (seed {best['seed']}, {best['function']})"
    main = obs["calls"].get("serial_main") or {}
    if main.get("history"):
        return main["history"], f"the observed run {main['call']}"
    return None, ""


def speedup_lines(obs: dict) -> dict | None:
    timing = obs.get("speedup")
    if not timing:
        return None
    if timing.get("inconclusive"):
        return {"result": "inconclusive: " + timing["inconclusive"]}
    mine, ref = timing["student"].get("speedup"), timing["reference"].get("speedup")
    fmt = lambda x: f"{x:.2f}x" if isinstance(x, (int, float)) else "not measured"  # noqa: E731
    return {"your speedup": fmt(mine), "reference solution": fmt(ref),
            "workload": f"{SPEEDUP.generations} generations x {SPEEDUP.pop_size} candidates, "
                        f"{SPEEDUP.processes} workers, median of {timing['student'].get('rounds', SPEEDUP.repeats)} runs "
                        "interleaved with the reference's"}

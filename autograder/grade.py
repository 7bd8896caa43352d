"""Grade one submission (collect, check, score, write) and whole batches of them."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import collect, feedback, gradebook, paths, results, runchecks
from autograder.config import AGENT, CATEGORIES, GRADER_VERSION, OBSERVE, POINTS, SANDBOX, SPEEDUP


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


# --- batches -----------------------------------------------------------------------------


def find_students(submitted: Path) -> list[str]:
    """Every student folder in nbgrader's submitted layout (with or without a notebook)."""
    return sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))


def rebuild_outputs(output: Path, students: list[str]) -> list[tuple[str, dict]]:
    """grades.csv and gradebook.db from the results.json of ``students``."""
    rows = [(s, r) for s in students if (r := results.read_results(output / s / "results.json"))]
    results.write_atomic(output / "grades.csv", results.grades_csv(rows))
    gradebook.rebuild(output / "gradebook.db", rows)
    return rows


class Progress:
    """One status line per student on stderr."""

    def __init__(self, total: int, max_score: float):
        self.total, self.max_score, self.done, self.start = total, max_score, 0, time.perf_counter()

    def update(self, graded: Graded) -> None:
        self.done += 1
        state = ("unchanged, kept" if graded.skipped else f"GRADER ERROR: {graded.error}" if graded.error
                 else f"{graded.score:g}/{self.max_score:g}")
        bar = "#" * (20 * self.done // self.total)
        print(f"[{bar:<20}] {self.done}/{self.total} {graded.student}: {state} "
              f"({time.perf_counter() - self.start:.0f} s)", file=sys.stderr, flush=True)


def grade_batch(submitted: Path, output: Path, students: list[str], categories: tuple[str, ...],
                force: bool) -> list[Graded]:
    """Grade ``students``, skipping those already graded with the same key, then rebuild the outputs."""
    output.mkdir(parents=True, exist_ok=True)
    graded: list[Graded] = []
    progress = Progress(len(students), sum(POINTS[c] for c in categories))
    with tempfile.TemporaryDirectory(prefix="neuroevo-reference-") as ref_dir:
        reference = collect.Reference(Path(ref_dir) / "work")
        for student in students:
            notebook = paths.submission_notebook(submitted, student)
            previous = results.read_results(output / student / "results.json")
            if (not force and previous
                    and previous.get("extra_data", {}).get("grading_key") == grading_key(notebook, categories)):
                item = Graded(student, previous["score"], previous["extra_data"].get("category_scores", {}),
                              skipped=True)
            else:
                try:
                    item = grade_student(student, notebook, output / student, categories, reference)
                except Exception as exc:  # a grader fault: report it, keep grading the others
                    item = Graded(student, None, error=f"{type(exc).__name__}: {exc}")
            graded.append(item)
            progress.update(item)
        if reference.measured:
            results.write_atomic(output / "reference-timing.json", json.dumps(reference.measured, indent=1))
    rebuild_outputs(output, find_students(submitted))
    return graded


def summary(graded: list[Graded], categories: tuple[str, ...]) -> str:
    """The final table (stdout): scores per category and total, then seconds per category."""
    header = ["student", *categories, "total"]
    lines = ["  ".join(f"{h:>11}" for h in header)]
    for g in graded:
        cells = [g.student[:11]] + [f"{g.category_scores.get(c, 0):g}/{POINTS[c]}" for c in categories]
        cells.append("ERROR" if g.error else f"{g.score:g}" + (" (kept)" if g.skipped else ""))
        lines.append("  ".join(f"{c:>11}" for c in cells))
    unsure = [g.student for g in graded if g.inconclusive]
    if unsure:
        lines.append(f"\nwarning: speedup inconclusive (points awarded) for {', '.join(unsure)}: "
                     "grade again on a quiet machine with --force for a real measurement")
    timed = [g for g in graded if g.seconds]
    if timed:
        lines.append("")
        lines.append("timings (seconds per newly graded submission, mean):")
        for c in categories:
            values = [g.seconds.get(c, 0.0) for g in timed]
            lines.append(f"  {c:<12} {sum(values) / len(values):7.2f}")
        totals = [sum(g.seconds.values()) for g in timed]
        lines.append(f"  {'all':<12} {sum(totals) / len(totals):7.2f}  (median {sorted(totals)[len(totals) // 2]:.2f})")
    return "\n".join(lines)

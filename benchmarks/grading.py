"""Grading throughput: seconds the autograder spends per submission, per category.

Copies the demo submissions to a temporary folder, runs the grader's command line on them
(``python -m autograder grade --submitted DIR --output DIR``), and reads the ``results.json``
it writes per student: the whole run's wall time per submission, and the seconds the grader
recorded per category (``extra_data.category_seconds``). With ``--before REV`` the grader of
that git revision (checked out in a temporary worktree) grades the same submissions in
alternation with this one, round after round, so both are measured under the same load; the
spread of the speedup credit across rounds is reported for each. A projection for a class
(200 and 1,000 students on 2, 16 and 64 cores, and on Gradescope, one container per
submission) follows from the measured seconds per submission.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.paths import ROOT
from benchmarks.common import Report, median

SKIPPED = "skipped: grader not available"


@dataclass
class GradingSettings:
    """What the grading benchmark runs."""

    submitted: Path = ROOT / "submitted"
    """Folder of submissions in nbgrader's layout (copied, never written)."""
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "autograder"])
    """The grader's command line, before ``grade --submitted ... --output ...``."""
    max_students: int | None = None
    """Grade only this many students (the first, sorted); None: all of them."""
    timeout_seconds: float = 1800.0
    """Give up on the grader after this long."""
    before: str | None = None
    """A git revision whose grader is measured beside this one (None: this one only)."""
    rounds: int = 1
    """Gradings of the submissions per grader (alternating when ``before`` is set)."""

    @classmethod
    def quick(cls) -> GradingSettings:
        return cls(max_students=1, timeout_seconds=300.0)


def students(submitted: Path) -> list[str]:
    """Student ids with a ``<id>/neuroevolution/neuroevolution.ipynb`` under ``submitted``."""
    if not submitted.is_dir():
        return []
    return sorted(p.parent.parent.name for p in submitted.glob("*/neuroevolution/neuroevolution.ipynb"))


def grader_available(command: list[str]) -> str:
    """Empty if ``command grade --help`` works, else why not."""
    try:
        done = subprocess.run([*command, "grade", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    return ""


def category_seconds(results: dict) -> dict[str, float]:
    """Seconds per category the grader recorded in one student's results.json."""
    return {
        category: float(seconds)
        for category, seconds in results.get("extra_data", {}).get("category_seconds", {}).items()
    }


def _grade_once(command: list[str], cwd: Path, ids: list[str], source: Path, timeout: float) -> dict:
    """Grade copies of ``ids`` once with the grader in ``cwd``: wall time, results per student, exit status."""
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        submitted, output = Path(tmp) / "submitted", Path(tmp) / "grades"
        for student in ids:
            shutil.copytree(source / student, submitted / student)
        start = time.perf_counter()
        done = _run_grader(
            [*command, "grade", "--submitted", str(submitted), "--output", str(output), "--force"], cwd, timeout
        )
        wall = time.perf_counter() - start
        results = {}
        for student in ids:
            path = output / student / "results.json"
            results[student] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {"wall": wall, "results": results, "returncode": done.returncode, "stderr": done.stderr[-500:]}


STOP_GRACE_SECONDS = 60
"""How long a grader that overran is given to stop after SIGTERM (it unmounts and removes its scratch folder)
before it is killed."""


def _run_grader(argv: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """``argv`` run to the end, or stopped with SIGTERM after ``timeout`` seconds (then TimeoutExpired).

    Not SIGKILL at once, as ``subprocess.run`` would: a grader killed outright leaves its runs folders
    mounted until the next batch releases them.
    """
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def speedup_credit(results: dict) -> float:
    return sum(t["score"] for t in results.get("tests", []) if t.get("tags") == ["speedup"])


def projection(seconds_per_submission: float) -> list[list[object]]:
    """Hours for 200 and 1,000 students on C cores with ``--jobs C // 2`` (a timed phase holds 2 cores), then
    on Gradescope, where every submission gets a container of its own: the container-hours billed."""
    rows = []
    for cores in (2, 16, 64):
        jobs = max(1, cores // 2)
        rows.append([f"{cores} cores, --jobs {jobs}"] + [n * seconds_per_submission / jobs / 3600 for n in (200, 1000)])
    rows.append(
        [f"Gradescope, 1 container each ({seconds_per_submission:.0f} s per student), container-hours"]
        + [n * seconds_per_submission / 3600 for n in (200, 1000)]
    )
    return rows


def run(settings: GradingSettings) -> list[Report]:
    """Grade copies of the demo submissions (beside an earlier grader with ``before``) and report per phase."""
    s = settings
    report = Report(
        name="grading",
        title="Grading throughput: seconds per submission (median over submissions and rounds)",
        columns=["grader", "category", "median s/submission", "max s", "submissions"],
    )
    ids = students(s.submitted)[: s.max_students]
    why = grader_available(s.command) if ids else f"no submissions under {s.submitted}"
    if why:
        report.rows.append(["this", "grading", SKIPPED, "-", 0])
        report.notes.append(f"{SKIPPED} ({why})")
        report.data = {"skipped": why}
        return [report]

    trees = {"this": ROOT}
    with tempfile.TemporaryDirectory(prefix="bench-before-") as before_dir:
        if s.before:
            added = subprocess.run(
                ["git", "worktree", "add", "--detach", before_dir, s.before], cwd=ROOT, capture_output=True, text=True
            )
            if added.returncode != 0:
                report.notes.append(f"--before {s.before}: {added.stderr.strip()[-200:]}; measuring this grader only")
            else:
                trees = {"before": Path(before_dir), "this": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        try:
            for _ in range(s.rounds):
                for name, tree in trees.items():
                    runs[name].append(_grade_once(s.command, tree, ids, s.submitted, s.timeout_seconds))
        except subprocess.TimeoutExpired:
            report.rows.append(["-", "grading", f"skipped: grader took over {s.timeout_seconds:g} s", "-", len(ids)])
            report.data = {"skipped": "timeout"}
            return [report]
        finally:
            if "before" in trees:
                subprocess.run(["git", "worktree", "remove", "--force", before_dir], cwd=ROOT, capture_output=True)

    data: dict = {"students": ids, "rounds": s.rounds, "before": s.before, "graders": {}}
    for name, gradings in runs.items():
        by_category: dict[str, list[float]] = {}
        totals, credits, per_student = [], {}, {}
        for grading in gradings:
            for student, results in grading["results"].items():
                if results is None:
                    continue
                seconds = category_seconds(results)
                for category, value in seconds.items():
                    by_category.setdefault(category, []).append(value)
                totals.append(sum(seconds.values()))
                per_student.setdefault(student, []).append(sum(seconds.values()))
                credits.setdefault(student, []).append(speedup_credit(results))
        for category, values in by_category.items():
            report.rows.append([name, category, median(values), max(values), len(values)])
        for student, values in per_student.items():
            report.rows.append([name, f"all categories: {student}", median(values), max(values), len(values)])
        walls = [g["wall"] / len(ids) for g in gradings]
        report.rows.append([name, "whole run / submission", median(walls), max(walls), len(ids)])
        spread = {k: (min(v), max(v)) for k, v in credits.items()}
        report.notes.append(
            f"{name}: speedup credit per student over {len(gradings)} round(s), min-max: "
            + ", ".join(f"{k} {a:g}-{b:g}" for k, (a, b) in spread.items())
        )
        data["graders"][name] = {
            "category_seconds": by_category,
            "wall_per_submission": walls,
            "speedup_credit": credits,
            "seconds_per_student": per_student,
            "returncodes": [g["returncode"] for g in gradings],
        }
        if name == "this" and totals:
            per = median(walls)
            for row in projection(per):
                report.notes.append(f"projection, {row[0]}: 200 students {row[1]:.2f} h, 1,000 students {row[2]:.2f} h")
            data["projection_hours"] = projection(per)
    report.data = data
    return [report]

"""Grading throughput: seconds the autograder spends per submission, per category.

Copies the demo submissions to a temporary folder, runs the grader's command line on them
once (``python -m autograder grade --submitted DIR --output DIR``), and reads the
``results.json`` it writes per student: the whole run's wall time per submission, and the
seconds the grader recorded per category (``extra_data.category_seconds``).
"""

from __future__ import annotations

import json
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


def run(settings: GradingSettings) -> list[Report]:
    """Grade a copy of the demo submissions once and report the time per submission; one report."""
    s = settings
    report = Report(
        name="grading",
        title="Grading throughput: seconds per submission",
        columns=["category", "median s/submission", "max s", "submissions"],
    )
    ids = students(s.submitted)[: s.max_students]
    why = grader_available(s.command) if ids else f"no submissions under {s.submitted}"
    if why:
        report.rows.append(["grading", SKIPPED, "-", 0])
        report.notes.append(f"{SKIPPED} ({why})")
        report.data = {"skipped": why}
        return [report]

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        submitted, output = Path(tmp) / "submitted", Path(tmp) / "grades"
        for student in ids:
            shutil.copytree(s.submitted / student, submitted / student)
        start = time.perf_counter()
        try:
            done = subprocess.run(
                [*s.command, "grade", "--submitted", str(submitted), "--output", str(output)],
                capture_output=True,
                text=True,
                timeout=s.timeout_seconds,
                cwd=ROOT,
            )
        except subprocess.TimeoutExpired:
            report.rows.append(["grading", f"skipped: grader took over {s.timeout_seconds:g} s", "-", len(ids)])
            report.notes.append(f"the grader did not finish {len(ids)} submission(s) in {s.timeout_seconds:g} s")
            report.data = {"skipped": "timeout"}
            return [report]
        wall = time.perf_counter() - start
        per_student = {}
        for student in ids:
            path = output / student / "results.json"
            per_student[student] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    graded = {k: v for k, v in per_student.items() if v is not None}
    by_category: dict[str, list[float]] = {}
    for results in graded.values():
        for category, seconds in category_seconds(results).items():
            by_category.setdefault(category, []).append(seconds)
    for category, values in by_category.items():
        report.rows.append([category, median(values), max(values), len(values)])
    report.rows.append(["whole run / submission", wall / len(ids), float("nan"), len(ids)])
    if not by_category:
        report.notes.append("the results carry no extra_data.category_seconds: only the whole run is timed")
    if done.returncode != 0 or len(graded) < len(ids):
        report.notes.append(
            f"grader exit status {done.returncode}, results for {len(graded)} of {len(ids)} "
            f"students; its last words: {(done.stderr.strip().splitlines() or [''])[-1]}"
        )
    report.data = {
        "wall_seconds": wall,
        "students": ids,
        "returncode": done.returncode,
        "category_seconds": {k: category_seconds(v) for k, v in graded.items()},
        "scores": {k: v.get("score") for k, v in graded.items()},
    }
    return [report]

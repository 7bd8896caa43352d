"""Grade whole batches: find the students, grade each one, rebuild the batch's exports, summarise."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from autograder import collect, gradebook, paths, results
from autograder.config import POINTS
from autograder.grade import Graded, grade_student, grading_key



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

"""results.json (Gradescope's schema) per student, and grades.csv rebuilt from them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from autograder.categories import CATEGORIES, TOTAL, title
from autograder.paths import ASSIGNMENT
from autograder.spreadsheet import csv_text

CSV_COLUMNS = (
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide grades from the course staff's group
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build(scored: list[dict], extra: dict, seconds: dict[str, float]) -> dict:
    """The results.json document for one student."""
    tests = []
    for category in CATEGORIES:
        mine = [t for t in scored if t["category"] == category]
        for t in mine:
            tests.append(
                {
                    "name": test_title(category, t["name"], t["doc"]),
                    "score": t["score"],
                    "max_score": t["max_score"],
                    "status": "passed" if t["passed"] else "failed",
                    "output": t["message"] or ("passed" if t["passed"] else "failed"),
                    "tags": [category],
                    "visibility": "after_published" if t["hidden"] else "visible",
                    "execution_time": round(seconds.get(category, 0.0) / len(mine), 3),
                }
            )
    by_category = category_scores(tests)
    total = round(sum(t["score"] for t in tests), 2)
    return {
        "score": total,
        "output": summary_text(tests, None),
        "visibility": "visible",
        "execution_time": round(sum(seconds.values()), 3),
        "tests": tests,
        "extra_data": {
            **extra,
            "raw_score": total,
            "category_scores": {c: s for c, (s, _) in by_category.items()},
            "category_seconds": {c: round(v, 3) for c, v in seconds.items()},
        },
    }


def test_title(category: str, name: str, doc: str) -> str:
    """A test's name as Gradescope and the pages show it: its part, then its docstring's first sentence
    (``Serial loop: evolve_serial plays exactly one episode per candidate per generation``)."""
    first = " ".join(doc.split("\n\n")[0].split()).split(". ")[0].rstrip(".")
    if not first:  # no docstring: the test's name in words
        first = name.removeprefix("test_").removeprefix(f"{category}_").replace("_", " ").capitalize()
    return f"{title(category)}: {first}"


def summary_text(tests: list[dict], late: dict | None) -> str:
    """results.json's top ``output``: the points per part, the total, and any late penalty with the score."""
    by_category = category_scores(tests)
    raw = round(sum(t["score"] for t in tests), 2)
    maximum = sum(m for _, m in by_category.values()) or TOTAL
    lines = [f"Part {c}: {s:g}/{m:g}" for c, (s, m) in by_category.items()]
    lines.append(f"Total: {raw:g}/{maximum:g}")
    if late and late.get("status") in ("late", "within grace"):
        lines.append(f"Submitted {late['headline']}")
        if late.get("penalty"):
            lines.append(f"Score after the late penalty: {raw - late['penalty']:g}/{maximum:g}")
    return "\n".join(lines)


def raw_score(doc: dict) -> float:
    """The tests' points, before any late penalty (``score`` itself in a results.json no penalty touched)."""
    extra = doc.get("extra_data") or {}
    return round(float(extra["raw_score"] if "raw_score" in extra else doc.get("score") or 0), 2)


def set_late(doc: dict, late: dict) -> None:
    """Record ``late`` (``term/late.py``) in ``doc``: ``score`` becomes the raw score less its penalty."""
    raw = raw_score(doc)
    extra = doc.setdefault("extra_data", {})
    extra["raw_score"] = raw
    extra["late"] = late
    doc["score"] = round(raw - float(late.get("penalty") or 0), 2)
    if doc.get("tests"):
        doc["output"] = summary_text(doc["tests"], late)


def category_scores(tests: list[dict]) -> dict[str, tuple[float, float]]:
    """(score, max score) per category present in ``tests``, in category order."""
    out = {}
    for category in CATEGORIES:
        mine = [t for t in tests if t["tags"] == [category]]
        if mine:
            out[category] = (round(sum(t["score"] for t in mine), 2), round(sum(t["max_score"] for t in mine), 2))
    return out


def speedup_not_judged(doc: dict | None) -> str | None:
    """Why a results.json's speedup was not judged (inconclusive timing), or None when it was."""
    extra = (doc or {}).get("extra_data") or {}
    timing = extra.get("timing") if isinstance(extra.get("timing"), dict) else {}
    return extra.get("speedup_inconclusive") or timing.get("inconclusive") or None


ERROR_FILE = "grader-error.json"
"""In a student's output folder while their last grading ended in a grader error (for ``--only errors``)."""
ONLY = {
    "inconclusive": "students whose speedup was not judged (a busy machine)",
    "errors": "students whose last grading ended in a grader error",
}


def select(output: Path, students: list[str], only: str) -> list[str]:
    """The ``students`` that ``--only`` picks: see ONLY."""
    if only == "errors":
        return [s for s in students if (output / s / ERROR_FILE).is_file()]
    return [s for s in students if speedup_not_judged(read_results(output / s / "results.json"))]


def read_results(path: Path) -> dict | None:
    """A results.json written by this grader, or None if absent or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("tests"), list) else None


def grades_csv(rows: list[tuple[str, dict]]) -> str:
    """grades.csv text (nbgrader's export columns) for ``(student_id, results)`` pairs."""
    table = [CSV_COLUMNS]
    for student, results in sorted(rows):
        extra = results.get("extra_data", {})
        late = extra.get("late") or {}
        score = round(float(results["score"]), 2)
        penalty = round(float(late.get("penalty") or 0), 2)
        table.append(
            [
                ASSIGNMENT,
                late.get("assignment_due") or "",
                extra.get("timestamp") or "",
                student,
                "",
                "",
                "",
                round(float(extra.get("raw_score", score + penalty)), 2),
                penalty,
                score,
                float(TOTAL),
            ]
        )
    return csv_text(table)

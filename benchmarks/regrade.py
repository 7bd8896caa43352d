"""Same code, same grade: the corpus's deterministic entries graded in several independent batches.

``python -m benchmarks --only regrade`` (``--quick``: two draws of the entries whose verdict once
depended on the draw). Each draw is one batch, ``python -m autograder grade``, of every corpus entry
whose verdict depends on its code alone (:func:`deterministic`), beside the reference solution, in
the untimed categories. Every batch draws its own seeds and chooses its own observed seed
(``autograder/deviations.py``); an entry whose score in some category differs from one draw to
another got a grade that depended on the draw. The test budgets (``tests/corpus/support.py``) are
used unless ``full`` is set, so a draw of the whole corpus takes minutes, not an hour.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from autograder.paths import ROOT
from autograder.sandbox import isolation_mode
from autograder.sandbox.cgroups import controller
from benchmarks.common import Report

sys.path.insert(0, str(ROOT / "tests" / "corpus"))
import support  # noqa: E402  (the corpus and its loader live with the tests)

CATEGORIES = ("serial", "parallel", "determinism", "agent")
"""What a batch grades: everything but the timed speedup, whose score moves with the machine's load."""
REFERENCE = "reference_solution"
DRAW_DEPENDENT_ONCE = ("best_ever", "elitist_parent", "argmin_selection", "draw_order_differs")
"""Entries whose verdict depended on the batch's draw before the observed seed was chosen (the quick subset)."""


@dataclass
class RegradeSettings:
    draws: int = 3
    """Independent batches."""
    entries: tuple[str, ...] | None = None
    """Corpus entries to grade (None: every deterministic one)."""
    full: bool = False
    """Grade with the real settings rather than the test budgets."""
    jobs: int = 2
    """Students graded at once in each batch."""
    timeout_seconds: float = 3600.0
    budgets: dict | None = None
    """Grader settings for the batches (None: the test budgets, or the real settings with ``full``)."""
    reference: bool = True
    """Grade the reference solution beside the entries."""
    categories: tuple[str, ...] = CATEGORIES
    """Categories graded (never the timed speedup)."""

    @classmethod
    def quick(cls) -> RegradeSettings:
        return cls(draws=2, entries=DRAW_DEPENDENT_ONCE)


def deterministic() -> dict[str, support.Entry]:
    """Corpus entries graded on this machine whose verdict in :data:`CATEGORIES` depends on their code alone:
    none that may or may not lose points there (MAY_LOSE), none needing isolation or kernel caps this machine
    lacks."""
    entries = {}
    for kind in ("wrong", "correct", "hostile"):
        entries.update(support.corpus(kind))
    return {
        name: e
        for name, e in entries.items()
        if not set(e.may_lose) & set(CATEGORIES)
        and (not e.needs_isolation or isolation_mode() == "bubblewrap")
        and (not e.needs_kernel_caps or controller().available)
    }


def grade_draw(entries: dict[str, support.Entry], root: Path, settings: RegradeSettings, *extra: str) -> dict:
    """One batch of ``entries`` and the reference under ``root``: each student's results.json, the wall time."""
    from autograder import demo

    submitted, output = root / "submitted", root / "grades"
    students = [*entries, REFERENCE] if settings.reference else list(entries)
    for name, entry in entries.items():
        support.write_student(submitted, name, entry.source)
    if settings.reference:
        support.write_student(submitted, REFERENCE, demo.reference_source())
    start = time.perf_counter()
    done = support.grade(
        submitted,
        output,
        "--categories",
        ",".join(settings.categories),
        "--jobs",
        str(settings.jobs),
        *extra,
        settings=settings.budgets or (None if settings.full else support.UNTIMED_SETTINGS),
        timeout=settings.timeout_seconds,
        env={"TMPDIR": str(root)},
    )
    wall = time.perf_counter() - start
    results = {}
    for student in students:
        path = output / student / "results.json"
        results[student] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    return {"wall": wall, "returncode": done.returncode, "stderr": done.stderr[-2000:], "results": results}


def category_scores(results: dict | None) -> dict[str, float] | None:
    return None if results is None else results["extra_data"]["category_scores"]


def differences(draws: list[dict]) -> dict[str, dict[str, list]]:
    """Per student, the categories whose score is not the same in every draw, with the score of each draw (a
    student left ungraded in some draw differs in every category)."""
    out: dict[str, dict[str, list]] = {}
    for student in draws[0]["results"]:
        scores = [category_scores(d["results"].get(student)) for d in draws]
        for category in CATEGORIES:
            values = [None if s is None else s.get(category) for s in scores]
            if len(set(values)) > 1:
                out.setdefault(student, {})[category] = values
    return out


def observed_seed(draw: dict) -> int:
    """The seed a batch chose for its observed runs (every student of a batch shares it)."""
    graded = next(r for r in draw["results"].values() if r)
    return graded["extra_data"]["plan"]["observe_seed"]


def regrade_with_seeds(first: dict, entries: dict[str, support.Entry], root: Path, settings: RegradeSettings) -> dict:
    """Grade the first graded student of the ``first`` draw again with ``--seeds-from`` its results.json: the
    seeds recorded (``extra_data.plan``) and the category scores must come back the same."""
    student, results = next((k, v) for k, v in first["results"].items() if v)
    root.mkdir(parents=True)
    recorded = root / "results.json"
    recorded.write_text(json.dumps(results), encoding="utf-8")
    alone = {student: entries[student]} if student in entries else {}
    again = grade_draw(alone, root, replace(settings, reference=student == REFERENCE), "--seeds-from", str(recorded))
    regraded = again["results"].get(student)
    same_plan = bool(regraded) and regraded["extra_data"]["plan"] == results["extra_data"]["plan"]
    same_scores = bool(regraded) and category_scores(regraded) == category_scores(results)
    verdict = f"{student}: same seeds {'yes' if same_plan else 'NO'}, same scores {'yes' if same_scores else 'NO'}" + (
        "" if again["returncode"] == 0 else f" (exit {again['returncode']}: {again['stderr'][-300:]})"
    )
    return {"student": student, "same_plan": same_plan, "same_scores": same_scores, "verdict": verdict}


def run(settings: RegradeSettings) -> list[Report]:
    s = settings
    chosen = deterministic()
    entries = {name: chosen[name] for name in s.entries} if s.entries else chosen
    report = Report(
        name="regrade",
        title=f"Same code, same grade: {len(entries)} corpus entries and the reference graded in {s.draws} "
        f"independent batches ({'real settings' if s.full else 'test budgets'}; scores of the first draw)",
        columns=["student", *CATEGORIES, "same in every draw"],
    )
    with tempfile.TemporaryDirectory(prefix="bench-regrade-") as tmp:
        draws = [grade_draw(entries, Path(tmp) / f"draw-{k}", s) for k in range(s.draws)]
        again = regrade_with_seeds(draws[0], entries, Path(tmp) / "seeds-from", s)
    differ = differences(draws)
    for student in [*entries, REFERENCE]:
        scores = category_scores(draws[0]["results"].get(student)) or {}
        report.rows.append([student, *(scores.get(c, "-") for c in CATEGORIES), "no" if student in differ else "yes"])
    searches = [d["results"][REFERENCE]["extra_data"]["plan"]["chosen"] for d in draws if d["results"][REFERENCE]]
    report.notes.append(
        f"{len(differ)} of {len(entries) + 1} students got a category score that depends on the draw"
        + (": " + "; ".join(f"{k} {v}" for k, v in differ.items()) if differ else "")
    )
    report.notes.append(f"regraded with --seeds-from the first draw's results.json: {again['verdict']}")
    report.notes.append(
        "observed seeds: "
        + ", ".join(str(observed_seed(d)) for d in draws)
        + "; seed search per batch: "
        + ", ".join(f"{c['tried']} tried in {c['seconds']:.1f} s" for c in searches)
        + "; batch wall: "
        + ", ".join(f"{d['wall']:.0f} s" for d in draws)
    )
    report.data = {
        "settings": {"draws": s.draws, "full": s.full, "jobs": s.jobs, "entries": sorted(entries)},
        "differences": differ,
        "seeds_from": again,
        "draws": [
            {
                "wall": d["wall"],
                "returncode": d["returncode"],
                "scores": {k: category_scores(v) for k, v in d["results"].items()},
                "search": d["results"][REFERENCE]["extra_data"]["plan"]["chosen"] if d["results"][REFERENCE] else None,
            }
            for d in draws
        ],
    }
    return [report]

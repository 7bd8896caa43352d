"""Hostile and broken submissions, graded in one batch beside a correct one.

Each ``tests/hostile/<name>.py`` holds the source of the two solution cells, a docstring
saying what it does, ``LOSES`` (categories it must lose points in; a speedup loss only counts
when the grading machine could measure one, see ``speedup_inconclusive``), optionally ``MAY_LOSE``
(categories it may also lose points in), ``MESSAGE`` (a fragment its results.json must show)
and ``NEEDS_ISOLATION`` (only graded when bubblewrap isolates the runs: without it the
entry would really read the solutions, or signal the grader). Notebook-level faults are
built here. The batch must grade every student, give the correct one full marks, leave no
process behind and let no submission write outside its sandbox.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).resolve().parent / "hostile"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

from autograder import demo, paths  # noqa: E402
from autograder.config import CATEGORIES  # noqa: E402
from autograder.sandbox import isolation_mode  # noqa: E402
from support import losses  # noqa: E402  (points lost per category, as the corpus test counts them)

MARKER = "HOSTILE_WAS_HERE"
REQUIRED = {"hang_in_serial", "segfault_in_parallel", "sys_exit_at_import", "os_exit_at_import", "memory_hog_serial",
            "fork_bomb", "output_flood", "returns_generators", "returns_nans", "returns_wrong_types",
            "unpicklable_worker_results", "snoop_and_tamper", "patch_clock", "patch_helper", "fake_worker_pids"}


@dataclass
class Entry:
    """One hostile submission and the verdict it must get."""

    source: str | None
    """Source of the solution cells (None: the notebook is built by ``build`` instead)."""
    loses: tuple[str, ...]
    """Categories that must lose points."""
    may_lose: tuple[str, ...] = ()
    """Categories that may also lose points."""
    message: str = ""
    """Fragment (case-insensitive) the failed tests' messages must contain."""
    needs_isolation: bool = False
    """Graded only when runs are isolated by bubblewrap."""
    doc: str = ""
    """What the submission does."""
    build: object = None
    """For notebook-level faults: writes the student's folder (submitted_dir, student)."""


def load_entry(path: Path) -> Entry:
    """An entry from a corpus file: its code without the docstring and the verdict assignments."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    settings: dict = {}
    kept = []
    for node in tree.body:
        if node is tree.body[0] and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        target = getattr(node.targets[0], "id", "") if isinstance(node, ast.Assign) else ""
        if target in ("LOSES", "MAY_LOSE", "MESSAGE", "NEEDS_ISOLATION"):
            settings[target] = ast.literal_eval(node.value)
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        kept.append("\n".join(lines[start:node.end_lineno]))
    return Entry(source="\n\n\n".join(kept) + "\n", loses=tuple(settings.get("LOSES", ())),
                 may_lose=tuple(settings.get("MAY_LOSE", ())), message=settings.get("MESSAGE", ""),
                 needs_isolation=settings.get("NEEDS_ISOLATION", False), doc=ast.get_docstring(tree) or "")


def _notebook_path(submitted: Path, student: str) -> Path:
    path = paths.submission_notebook(submitted, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _without_cell(grade_id: str):
    def build(submitted: Path, student: str) -> None:
        nb = demo.with_solution(demo.reference_source())
        nb.cells = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") != grade_id]
        nbformat.write(nb, _notebook_path(submitted, student))
    return build


def _metadata_stripped(submitted: Path, student: str) -> None:
    nb = demo.with_solution(demo.reference_source())
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    nbformat.write(nb, _notebook_path(submitted, student))


def _raw_file(content: bytes):
    def build(submitted: Path, student: str) -> None:
        _notebook_path(submitted, student).write_bytes(content)
    return build


def _no_notebook(submitted: Path, student: str) -> None:
    _notebook_path(submitted, student)  # the folder only
    (paths.submission_notebook(submitted, student).parent / "my_answers.py").write_text("print('oops')\n")


ALL = tuple(CATEGORIES)
NOTEBOOK_FAULTS = {
    "notebook_not_json": Entry(None, ALL, message="not a valid notebook", build=_raw_file(b'{"cells": [ oops')),
    "notebook_empty_file": Entry(None, ALL, message="not a valid notebook", build=_raw_file(b"")),
    "notebook_missing": Entry(None, ALL, message="no notebook", build=_no_notebook),
    "notebook_cell_deleted": Entry(None, ALL, message="evolve_parallel", build=_without_cell("evolve_parallel")),
    "notebook_metadata_stripped": Entry(None, ALL, message="grade_id", build=_metadata_stripped),
}


def corpus() -> dict[str, Entry]:
    """Every hostile entry, files first, then the notebook-level faults."""
    entries = {path.stem: load_entry(path) for path in sorted(HOSTILE.glob("*.py"))}
    entries.update(NOTEBOOK_FAULTS)
    return entries


def messages(result: dict) -> str:
    """Every failed test's name and message."""
    return "\n".join(f"- [{t['tags'][0]}] {t['name']}: {t.get('output', '')}" for t in result["tests"]
                     if t["score"] < t["max_score"])


def speedup_inconclusive(result: dict) -> bool:
    """The grading machine was too busy to measure a speedup, so the speedup points were awarded."""
    return any("inconclusive" in t.get("output", "") for t in result["tests"] if t["tags"] == ["speedup"])


def live_pids() -> set[int]:
    """Every process on the machine now."""
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit()}


def run_trace(token: str, roots: list[Path], before: set[int]) -> list[str]:
    """Processes alive now but not ``before`` that belong to the batch: ``token`` or a batch folder in
    their environment or command line (other work on the machine is left out)."""
    needles = [token.encode()] + [str(r).encode() for r in roots]
    found = []
    for entry in map(str, live_pids() - before):
        if int(entry) == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            blob = Path(f"/proc/{entry}/environ").read_bytes() + Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if stat[0] not in ("Z", "X") and any(n in blob for n in needles):
            found.append(f"pid {entry}: {Path(f'/proc/{entry}/cmdline').read_bytes()[:200]!r}")
    return found


def test_hostile_corpus_is_well_formed():
    """Every corpus file parses, says what it does, names valid categories and covers the required cases."""
    entries = corpus()
    assert REQUIRED <= set(entries), f"missing hostile cases: {sorted(REQUIRED - set(entries))}"
    for name, entry in entries.items():
        assert entry.doc or entry.build, f"{name}: add a docstring saying what the submission does"
        assert set(entry.loses) | set(entry.may_lose) <= set(CATEGORIES), f"{name}: unknown category"
        if entry.source is not None:
            compile(entry.source, name, "exec")
            assert set(demo.split_cells(entry.source)) == {"evolve_serial", "evolve_parallel"}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc to look for leftover processes")
def test_hostile_batch_is_survived(tmp_path):
    """One batch: hostile students get their verdicts, the correct one full marks, nothing leaks or survives."""
    isolated = isolation_mode() == "bubblewrap"
    entries = {name: e for name, e in corpus().items() if isolated or not e.needs_isolation}
    submitted, output, scratch = tmp_path / "submitted", tmp_path / "grades", tmp_path / "scratch"
    scratch.mkdir()
    for name, entry in entries.items():
        if entry.build:
            entry.build(submitted, name)
        else:
            demo.write_submission(submitted, name, demo.with_solution(entry.source))
    demo.write_submission(submitted, "correct_student", demo.with_solution(demo.reference_source()))

    token = f"hostile-batch-{uuid.uuid4().hex}"
    before = live_pids()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch), "HOSTILE_BATCH": token}
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted),
                           "--output", str(output)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1800)
    leftovers = run_trace(token, [tmp_path], before)
    assert leftovers == [], "processes started by the grader are still running:\n" + "\n".join(leftovers)
    assert "Traceback" not in done.stderr, f"the grader crashed:\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"the batch failed (status {done.returncode}):\n{done.stderr[-4000:]}"

    correct = json.loads((output / "correct_student" / "results.json").read_text())
    assert losses(correct) == {}, f"the correct student lost points:\n{messages(correct)}"

    wrong = []
    for name, entry in entries.items():
        result_path = output / name / "results.json"
        if not result_path.is_file():
            wrong.append(f"{name}: no results.json")
            continue
        result = json.loads(result_path.read_text())
        lost = set(losses(result))
        required = set(entry.loses) - ({"speedup"} if speedup_inconclusive(result) else set())
        if not required <= lost <= set(entry.loses) | set(entry.may_lose):
            wrong.append(f"{name}: lost points in {sorted(lost)}, expected {sorted(entry.loses)}"
                         f" (may also lose {sorted(entry.may_lose)})\n{messages(result)[:1500]}")
        elif entry.message.lower() not in messages(result).lower():
            wrong.append(f"{name}: no message mentions {entry.message!r}\n{messages(result)[:1500]}")
    assert not wrong, "\n\n".join(wrong)

    tampered = [str(p) for p in [*tmp_path.rglob(MARKER), Path("/tmp") / MARKER, ROOT / MARKER] if p.exists()]
    assert tampered == [], f"a submission wrote outside its sandbox: {tampered}"
    csv = (output / "grades.csv").read_text()
    assert all(name in csv for name in [*entries, "correct_student"]), "grades.csv is missing students"

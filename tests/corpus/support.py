"""The grader's test corpora: submissions written as students write them, each with the verdict it must get.

Each file of ``tests/corpus/wrong/`` (mistakes students make), ``tests/corpus/correct/`` (correct
variants) and ``tests/hostile/`` (attacks and crashes) holds the source of the two solution cells,
a docstring saying what it does and, as plain assignments: ``LOSES`` (categories it must lose
points in), ``MAY_LOSE`` (categories it may also lose points in), ``MESSAGE`` (a fragment its
results must show), ``NEEDS_ISOLATION`` (graded only when bubblewrap isolates the runs) and
``NEEDS_KERNEL_CAPS`` (only when the runs get control groups).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
FOLDERS = {"wrong": TESTS / "corpus" / "wrong", "correct": TESTS / "corpus" / "correct", "hostile": TESTS / "hostile"}
SETTINGS = ("LOSES", "MAY_LOSE", "MESSAGE", "NEEDS_ISOLATION", "NEEDS_KERNEL_CAPS")

TEST_SETTINGS = {
    # Small workloads and budgets so that a batch of fifty students takes minutes, and a hang seconds.
    "observe": {"wall_seconds": 10},
    "speedup": {"candidates_per_worker": 12, "repeats": 1, "max_repeats": 2, "wall_seconds": 10},
    "agent": {"attempts": 2, "generations": 4, "pop_size": 16, "wall_seconds": 15, "solved_return": -1000.0},
    # A third of the memory cap: a memory hog reaches it in a third of the time, even on a busy machine.
    "sandbox": {"memory_bytes": 2**30},
}
"""Test-only grader settings (``$NEUROEVO_GRADER_SETTINGS``): the agent threshold is out of reach of no
verified run, so a correct loop always earns the agent points and a refused one never does."""

TIMED_SETTINGS = {
    **TEST_SETTINGS,
    "speedup": {**TEST_SETTINGS["speedup"], "repeats": 2, "max_repeats": 3},
}
"""For batches whose speedup verdicts are asserted: each run counts at its fastest round, and one round more
than the other batches' makes a burst of other work on this machine less likely to decide a verdict (the real
settings time 3 to 5 rounds of twice the work)."""

UNTIMED_SETTINGS = {
    **TEST_SETTINGS,
    "observe": {**TEST_SETTINGS["observe"], "parallel_processes": [2, 1, None]},
    "speedup": {**TEST_SETTINGS["speedup"], "candidates_per_worker": 6},
    "agent": {**TEST_SETTINGS["agent"], "pop_size": 8},
}
"""For batches that time nothing: half the candidates again (still 41 parameters x 12 candidates a generation
for the sampling rules), where a timed batch needs enough work per worker to show a speedup; and one run
fewer for determinism (processes=3 left out: 1 already differs from 2 for a loop that samples in its workers)."""


@dataclass
class Entry:
    """One corpus submission and the verdict it must get."""

    name: str
    source: str | None
    loses: tuple[str, ...] = ()
    may_lose: tuple[str, ...] = ()
    message: str = ""
    needs_isolation: bool = False
    needs_kernel_caps: bool = False
    doc: str = ""
    build: object = None
    """For notebook-level faults: writes the student's folder itself, as ``build(submitted, student)``."""


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
        if target in SETTINGS:
            settings[target] = ast.literal_eval(node.value)
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        kept.append("\n".join(lines[start:node.end_lineno]))
    return Entry(path.stem, "\n\n\n".join(kept) + "\n", tuple(settings.get("LOSES", ())),
                 tuple(settings.get("MAY_LOSE", ())), settings.get("MESSAGE", ""),
                 settings.get("NEEDS_ISOLATION", False), settings.get("NEEDS_KERNEL_CAPS", False),
                 ast.get_docstring(tree) or "")


def corpus(kind: str) -> dict[str, Entry]:
    """Every entry of one corpus folder (``wrong``, ``correct`` or ``hostile``), by name."""
    return {path.stem: load_entry(path) for path in sorted(FOLDERS[kind].glob("*.py"))}


def write_student(submitted: Path, student: str, source: str | None) -> Path:
    """A submission whose solution cells hold ``source`` (None: the release notebook untouched)."""
    from autograder import demo

    return demo.write_submission(submitted, student, demo.with_solution(source))


def grade(submitted: Path, output: Path, *extra: str, timeout: float = 1800, settings: dict | None = None,
          env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m autograder grade`` as an instructor would (``settings``: test-only budgets)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if settings is not None:
        environment["NEUROEVO_GRADER_SETTINGS"] = json.dumps(settings)
    return subprocess.run([sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted),
                           "--output", str(output), *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def mounts_under(root: Path) -> set[str]:
    """Mount points at or below ``root``, from /proc/self/mountinfo (which holds real paths)."""
    top = os.path.realpath(root)
    found = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                point = line.split()[4].replace("\\040", " ")
                if point == top or point.startswith(top.rstrip("/") + "/"):
                    found.add(point)
    except OSError:
        pass
    return found


def grader_entries_under(root: Path) -> set[str]:
    """Everything below ``root`` named like the grader's temporary folders (``paths.TEMP_PREFIX``), however deep."""
    from autograder.paths import TEMP_PREFIX

    found = set()
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if name.startswith(TEMP_PREFIX):
                found.add(os.path.join(folder, name))
        dirs[:] = [d for d in dirs if not d.startswith(TEMP_PREFIX)]  # one finding per leftover tree
    return found


def leftovers(*roots: Path) -> set[str]:
    """What the grader left below ``roots``: mount points, and files or folders named like its own."""
    found = set()
    for root in roots:
        found |= {f"mounted: {m}" for m in mounts_under(root)}
        found |= {f"left: {e}" for e in grader_entries_under(root)}
    return found


def results(output: Path, student: str) -> dict:
    return json.loads((output / student / "results.json").read_text(encoding="utf-8"))


def losses(result: dict) -> dict[str, float]:
    """Points lost per category (categories with no loss left out)."""
    lost: dict[str, float] = {}
    for test in result["tests"]:
        gap = test["max_score"] - test["score"]
        if gap > 1e-9:
            lost[test["tags"][0]] = lost.get(test["tags"][0], 0.0) + gap
    return lost


def failures(result: dict) -> str:
    """The failed tests' categories, names and messages, for assertion messages."""
    return "\n".join(f"- [{t['tags'][0]}] {t['name']}: {t['output'][:400]}" for t in result["tests"]
                     if t["score"] < t["max_score"])


def speedup_not_judged(result: dict) -> bool:
    """The grading machine was too busy to judge a speedup."""
    return any("not judged" in t.get("output", "") or "fewer than 2 cores" in t.get("output", "")
               for t in result["tests"] if t["tags"] == ["speedup"])


def verdict_problem(entry: Entry, result: dict, graded: set[str], *, check_message: bool = True) -> str | None:
    """Why ``result`` is not the verdict ``entry`` must get in the ``graded`` categories, or None.

    ``check_message``: the entry's MESSAGE must be among the failures (it may belong to a category
    not graded in this batch: pass False then)."""
    lost = set(losses(result))
    required = set(entry.loses) & graded
    if "speedup" in required and speedup_not_judged(result) and not (lost & {"speedup"}):
        required.discard("speedup")  # a timing-only loss cannot show on a machine too busy to judge
    allowed = required | set(entry.may_lose)
    if not required <= lost <= allowed:
        return (f"{entry.name}: lost points in {sorted(lost)}, expected {sorted(required)}"
                f" (may also lose {sorted(set(entry.may_lose))})\n{failures(result)}")
    if check_message and entry.message and required and entry.message.lower() not in failures(result).lower():
        return f"{entry.name}: no message mentions {entry.message!r}\n{failures(result)}"
    return None


def seal_gradescope_source(source: Path) -> subprocess.CompletedProcess:
    """What setup.sh does when Gradescope builds the image: the grader's private folders closed before any run."""
    done = subprocess.run(
        [sys.executable, "-m", "autograder.gradescope_run", "--seal"], cwd=source, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-1500:]
    return done

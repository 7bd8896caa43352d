"""Helpers for the grader's tests: build submissions from corpus files, run the grader, read results."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRONG = Path(__file__).resolve().parent / "wrong"
sys.path.insert(0, str(ROOT))

from autograder import demo  # noqa: E402


def corpus_entry(path: Path) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """(code without its docstring and LOSES/MAY_LOSE lines, categories it must lose points in,
    description, categories it may also lose points in)."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    doc, loses, may_lose, kept = ast.get_docstring(tree) or "", (), (), []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            continue
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "LOSES":
            loses = tuple(ast.literal_eval(node.value))
            continue
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MAY_LOSE":
            may_lose = tuple(ast.literal_eval(node.value))
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        kept.append("\n".join(lines[start:node.end_lineno]))
    return "\n\n\n".join(kept) + "\n", loses, doc, may_lose


def corpus() -> dict[str, tuple[str, tuple[str, ...], str, tuple[str, ...]]]:
    """Every wrong submission of the corpus, by name."""
    return {path.stem: corpus_entry(path) for path in sorted(WRONG.glob("*.py"))}


def write_student(submitted: Path, student: str, source: str | None) -> Path:
    """A submission whose solution cells hold ``source`` (None: the release notebook untouched)."""
    return demo.write_submission(submitted, student, demo.with_solution(source))


def grade(submitted: Path, output: Path, *extra: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    """Run ``python -m autograder grade`` as an instructor would."""
    return subprocess.run([sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted),
                           "--output", str(output), *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


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
    """The failed tests' names and messages, for assertion messages."""
    return "\n".join(f"- {t['name']}: {t['output'][:300]}" for t in result["tests"] if t["status"] != "passed")

"""Run the grading tests on one student's observations and turn outcomes into points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder import paths
from autograder.categories import BY_NAME, CATEGORIES, POINTS


class CheckError(RuntimeError):
    """The grading tests themselves could not run (a grader fault, not the student's)."""


def run_checks(observations: Path, categories: tuple[str, ...] = CATEGORIES) -> list[dict]:
    """Per-test outcomes (see ``checks/conftest.py``) of the categories asked for."""
    with tempfile.TemporaryDirectory(prefix=f"{paths.TEMP_PREFIX}checks-") as tmp:
        report = Path(tmp) / "report.json"
        files = [str(paths.CHECKS_DIR / BY_NAME[c].checks_file) for c in categories]
        argv = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(paths.CHECKS_DIR / "pytest.ini"),
            "--rootdir",
            str(paths.CHECKS_DIR),
            *files,
            "--observations",
            str(observations),
            "--report",
            str(report),
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(paths.ROOT), os.environ.get("PYTHONPATH", "")])}
        done = subprocess.run(argv, capture_output=True, text=True, cwd=paths.ROOT, env=env, timeout=600)
        if done.returncode not in (0, 1) or not report.is_file():
            raise CheckError(f"pytest exited with status {done.returncode}: {(done.stdout + done.stderr)[-2000:]}")
        outcomes = json.loads(report.read_text(encoding="utf-8"))
        faults = [o for o in outcomes if o.get("grader_fault")]
        if faults:  # no verdict at all rather than one a discriminating run did not back
            raise CheckError(f"{faults[0]['name']}: {faults[0]['message']}")
        return outcomes


def score(outcomes: list[dict]) -> list[dict]:
    """Each outcome with ``score`` and ``max_score``: its weight's share of the category's POINTS."""
    scored = []
    for category in CATEGORIES:
        tests = [o for o in outcomes if o["category"] == category]
        total = sum(o["weight"] for o in tests)
        for o in tests:
            max_score = round(POINTS[category] * o["weight"] / total, 4)
            scored.append({**o, "max_score": max_score, "score": round(max_score * o["fraction"], 4)})
    return scored

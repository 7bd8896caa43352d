"""`make gradescope`: the bundle's layout, and its run_autograder grading the demo students in an emulated
/autograder (AUTOGRADER_ROOT) with the same scores as `make grade`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import support

from autograder.paths import ROOT
from tools import gradescope

# One student short of full marks (sent renamed) and one with nothing done: both paths, in little time.
DEMOS = ("demo-partly-wrong", "demo-untouched-stub")
# A deterministic category: both ways of grading must agree exactly (timed ones would be noisy), and
# one category keeps the test short; the pipeline around it is the same for all five.
CATEGORIES = "serial"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "gradescope-autograder.zip"
    assert gradescope.main(["--out", str(out)]) == 0
    return out


def test_gradescope_bundle_layout(bundle):
    """setup.sh and run_autograder at the top level, executable; the grader, helper, release and reference
    notebooks and the lock file inside; no caches, grades, submissions or tests."""
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
    for script in ("setup.sh", "run_autograder"):
        assert script in names and modes[script] & 0o111, f"{script} is missing or not executable"
    for needed in (
        "autograder/__main__.py",
        "autograder/gradescope_run.py",
        "assignment/neuroevolution/evolution.py",
        "assignment/neuroevolution/neuroevolution.ipynb",
        "solutions/neuroevolution/neuroevolution.ipynb",
        "assignment/neuroevolution/hints.py",
        "solutions/neuroevolution/hints.py",
        "requirements.lock",
    ):
        assert needed in names, f"the bundle lacks {needed}"
    leaked = [n for n in names if "__pycache__" in n or n.startswith(("grades/", "submitted/", "tests/", ".venv/"))]
    assert not leaked, f"the bundle carries {leaked[:5]}"


def test_gradescope_setup_seals_the_reference_before_any_run(bundle, tmp_path):
    """setup.sh's seal step leaves the reference and the grader's code readable by root alone (mode 0700), and says
    so; sealing again changes nothing."""
    source = tmp_path / "source"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(source)
    assert "gradescope_run --seal" in (source / "setup.sh").read_text()
    for folder in ("solutions", "autograder"):
        os.chmod(source / folder, 0o755)  # as an unzip with the usual umask leaves them
    done = support.seal_gradescope_source(source)
    assert "solutions" in done.stdout, done.stdout + done.stderr
    for folder in ("solutions", "autograder"):
        assert (source / folder).stat().st_mode & 0o777 == 0o700, f"{folder} is still open to other users"
    again = support.seal_gradescope_source(source)
    assert again.stdout.strip().endswith("already"), again.stdout


@pytest.mark.slow
@pytest.mark.extended
def test_gradescope_run_autograder_matches_make_grade(bundle, tmp_path):
    """Each demo student graded by run_autograder in an emulated /autograder gets make grade's scores; a renamed
    notebook is accepted with a note; test outputs hold no grader paths."""
    expected_dir = tmp_path / "grades"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "grade",
            "--submitted",
            str(ROOT / "submitted"),
            "--output",
            str(expected_dir),
            "--categories",
            CATEGORIES,
            *[arg for s in DEMOS for arg in ("--student", s)],
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    support.seal_gradescope_source(root / "source")
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "AUTOGRADER_PYTHON": sys.executable,
        "NEUROEVO_CATEGORIES": CATEGORIES,
    }
    for number, student in enumerate(DEMOS):
        shutil.rmtree(root / "submission", ignore_errors=True)
        shutil.rmtree(root / "results", ignore_errors=True)
        (root / "submission").mkdir(parents=True)
        name = "neuroevolution (1).ipynb" if student == "demo-partly-wrong" else "neuroevolution.ipynb"
        shutil.copy(
            ROOT / "submitted" / student / "neuroevolution" / "neuroevolution.ipynb", root / "submission" / name
        )
        (root / "submission_metadata.json").write_text(
            json.dumps(
                {
                    "users": [{"name": "A Student", "email": f"s{number}@example.edu", "sid": student}],
                    "created_at": "2025-03-01T12:00:00.000000-08:00",
                }
            )
        )
        run = subprocess.run(
            ["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=900
        )
        assert run.returncode == 0, f"run_autograder failed for {student}:\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}"
        got = json.loads((root / "results" / "results.json").read_text())
        want = json.loads((expected_dir / student / "results.json").read_text())
        assert got["score"] == want["score"], f"{student}: Gradescope {got['score']}, make grade {want['score']}"
        assert got["extra_data"]["category_scores"] == want["extra_data"]["category_scores"]
        assert got["extra_data"]["timestamp"] == "2025-03-01 20:00:00.000000 UTC"
        assert [t["score"] for t in got["tests"]] == [t["score"] for t in want["tests"]]
        assert not [t for t in got["tests"] if str(root) in t["output"] or "/tmp/" in t["output"]]
        if name != "neuroevolution.ipynb":
            assert got["output"].startswith("Note: graded 'neuroevolution (1).ipynb'"), got["output"][:200]
        assert not (root / "results" / "observations.json").exists()


@pytest.mark.slow
@pytest.mark.extended
def test_gradescope_run_autograder_without_a_notebook_still_writes_results(bundle, tmp_path):
    """A submission with no notebook gets a results.json that says so (0 points), not an autograder failure."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
    support.seal_gradescope_source(root / "source")
    (root / "submission").mkdir()
    (root / "submission" / "answers.py").write_text("print('hi')\n")
    env = {
        **os.environ,
        "AUTOGRADER_ROOT": str(root),
        "AUTOGRADER_PYTHON": sys.executable,
        "NEUROEVO_CATEGORIES": "serial",
    }
    run = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-1500:]
    got = json.loads((root / "results" / "results.json").read_text())
    assert got["score"] == 0 and got["output"].startswith("Note: no neuroevolution.ipynb in the submission")

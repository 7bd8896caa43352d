"""Gradescope's container as a hostile student meets it: run_autograder as root, bubblewrap failing.

Each file of ``tests/escapes/`` is a submission that attacks the grader from inside its runs,
the way a student can: it finds the grader through ``/proc`` (``_prelude.py``, put before each)
and tries to rewrite the checks, read the reference, forge results.json and kill the grader, or
outlive it. Every one is graded in an emulated ``/autograder`` of its own (``AUTOGRADER_ROOT``),
with a ``bwrap`` first on PATH that fails the way Docker's default profile makes it fail, so the
grader falls back to its process mode with one unprivileged account per run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import support

from autograder.paths import ROOT
from tools import gradescope

ESCAPES = Path(__file__).resolve().parent / "escapes"
PRELUDE = (ESCAPES / "_prelude.py").read_text(encoding="utf-8")
FAILING_BWRAP = """#!/bin/sh
echo "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces." >&2
exit 1
"""
MARKER_COMM = "neuroevo-escape"

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="Gradescope's grader runs as root on Linux"
)


HOSTILE_TOO = ("kill_everything", "cache_between_runs", "keyring_channel")
"""Hostile entries graded under bubblewrap in the class batch that also need the account per run here."""
HOSTILE_CATEGORIES = "serial,determinism"


def escapes() -> dict[str, str]:
    """Each escape's solution-cell source, its prelude first."""
    out = {}
    for path in sorted(ESCAPES.glob("[!_]*.py")):
        entry = support.load_entry(path)
        out[path.stem] = PRELUDE + "\n\n" + entry.source
    return out


def hostile_too() -> dict[str, support.Entry]:
    entries = support.corpus("hostile")
    return {name: entries[name] for name in HOSTILE_TOO}


def tree_digest(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (the venv left out) with the hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink() and ".venv" not in p.parts
    }


def reference_lines() -> list[str]:
    """Distinctive lines of the reference solution: none may reach a student."""
    import nbformat

    notebook = nbformat.read(ROOT / "solutions" / "neuroevolution" / "neuroevolution.ipynb", as_version=4)
    lines = []
    for cell in notebook.cells:
        text = cell.source
        if "### BEGIN SOLUTION" in text:
            body = text.split("### BEGIN SOLUTION", 1)[1].split("### END SOLUTION", 1)[0]
            lines += [line.strip() for line in body.splitlines() if len(line.strip()) >= 25]
    assert lines, "the reference notebook has no solution lines to look for"
    return lines


def processes_of(root: Path) -> list[int]:
    """Processes whose environment names ``root``: the grader graded with TMPDIR inside it, and so every run."""
    marker = str(root).encode()
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker in Path(f"/proc/{entry}/environ").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


def left_in_shared_folders() -> list[str]:
    """What an escape left in the folders every user may write, or a POSIX message queue it made."""
    import ctypes
    import glob

    left = [p for root in ("/tmp", "/var/tmp", "/dev/shm", "/run/lock") for p in glob.glob(f"{root}/neuroevo-escape-*")]
    try:
        fd = ctypes.CDLL(None, use_errno=True).mq_open(b"/neuroevo-escape", 0)  # O_RDONLY: is it there?
    except AttributeError:
        fd = -1
    if fd >= 0:
        left.append("POSIX message queue /neuroevo-escape")
    return left


def processes_named(comm: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == comm:
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "gradescope-autograder.zip"
    assert gradescope.main(["--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def container(bundle):
    """Grades one submission with run_autograder in an emulated /autograder of its own, bubblewrap failing."""
    base = Path(tempfile.mkdtemp(prefix="gradescope-escapes-", dir="/tmp"))
    os.chmod(base, 0o755)  # reachable like /autograder is: the attacks must meet the grader's defences
    bin_dir = base / "bin"
    bin_dir.mkdir()
    (bin_dir / "bwrap").write_text(FAILING_BWRAP)
    (bin_dir / "bwrap").chmod(0o755)

    def grade(name: str, source: str, categories: str = "serial") -> dict:
        root = base / name
        with zipfile.ZipFile(bundle) as zf:
            zf.extractall(root / "source")
        support.seal_gradescope_source(root / "source")
        (root / "submission").mkdir(parents=True)
        (root / "tmp").mkdir()
        support.write_student(root / "staging", "s", source)
        shutil.copy(root / "staging" / "s" / "neuroevolution" / "neuroevolution.ipynb", root / "submission")
        (root / "submission_metadata.json").write_text(json.dumps({"users": [{"sid": "s1"}]}))
        before = tree_digest(root / "source")
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "AUTOGRADER_ROOT": str(root),
            "AUTOGRADER_PYTHON": sys.executable,
            "NEUROEVO_CATEGORIES": categories,
            "NEUROEVO_GRADER_SETTINGS": json.dumps(support.UNTIMED_SETTINGS),
            "TMPDIR": str(root / "tmp"),
        }
        env.pop("NEUROEVO_SANDBOX", None)
        run = subprocess.run(
            ["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=600
        )
        time.sleep(1.0)  # a daemon that outlived the grader would rewrite results.json by now
        results = root / "results" / "results.json"
        return {
            "run": run,
            "results": results.read_text() if results.is_file() else None,
            "source_changed": sorted(k for k, v in tree_digest(root / "source").items() if before.get(k) != v),
            "escapees": processes_named(MARKER_COMM) + processes_of(root),
            "tmp_left": sorted(p.name for p in (root / "tmp").iterdir()),
            "shared_left": left_in_shared_folders(),
        }

    try:
        yield grade
    finally:
        for pid in processes_named(MARKER_COMM):
            os.kill(pid, 9)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def escaped(container):
    """Every escape graded, two at a time."""
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(container, name, source) for name, source in escapes().items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def hostile_graded(container):
    """The hostile entries that need an account per run, graded two at a time."""
    with ThreadPoolExecutor(2) as pool:
        futures = {
            name: pool.submit(container, name, entry.source, HOSTILE_CATEGORIES)
            for name, entry in hostile_too().items()
        }
        return {name: future.result() for name, future in futures.items()}


def test_gradescope_escapes_cover_the_known_attacks():
    """The corpus holds an escape for each attack that once beat a root grader without bubblewrap."""
    assert set(escapes()) >= {
        "rewrite_grader_checks",
        "read_the_reference",
        "forge_results_then_kill_grader",
        "escape_and_outlive",
        "outlast_the_sweep",
    }


@pytest.mark.parametrize("name", sorted(n.stem for n in ESCAPES.glob("[!_]*.py")))
def test_gradescope_escape_earns_nothing_and_changes_nothing(escaped, name):
    """run_autograder exits 0 with a results.json of 0 points that matches what it printed; the grader's files
    are byte-identical; no reference line reaches the student; no process of the run outlives the grade."""
    got = escaped[name]
    run = got["run"]
    assert run.returncode == 0, (
        f"{name}: run_autograder exited {run.returncode}\n{run.stdout[-1500:]}\n{run.stderr[-1500:]}"
    )
    assert got["results"] is not None, f"{name}: no results.json"
    doc = json.loads(got["results"])
    assert doc.get("output") != "forged" and doc["score"] == 0, f"{name}: scored {doc['score']}: {doc.get('output')}"
    assert f": {doc['score']:g}" in run.stdout.strip().splitlines()[-1], "results.json differs from what was printed"
    assert not got["source_changed"], f"{name} changed the grader's files: {got['source_changed'][:5]}"
    assert "BEGIN SOLUTION" not in got["results"]
    leaked = [line for line in reference_lines() if line in got["results"]]
    assert not leaked, f"{name}: the reference reached results.json: {leaked[:3]}"
    assert not got["escapees"], f"{name}: processes {got['escapees']} outlived the grader"
    assert not got["shared_left"], f"{name} left {got['shared_left'][:5]} for later runs"
    assert not [n for n in got["tmp_left"] if not n.startswith("pytest")], f"{name} left {got['tmp_left']} in TMPDIR"
    assert "not in bubblewrap namespaces" in run.stderr, "the grader did not fall back to one account per run"


def test_gradescope_escape_reference_attempt_found_nothing(escaped):
    """The reading escape ran and reached nothing: its message says it found nothing to read."""
    doc = json.loads(escaped["read_the_reference"]["results"])
    outputs = " ".join(t.get("output", "") for t in doc["tests"])
    assert "nothing found" in outputs, outputs[:1500]


@pytest.mark.extended  # the class batch grades them under bubblewrap in make test
@pytest.mark.parametrize("name", HOSTILE_TOO)
def test_gradescope_hostile_entry_gets_its_verdict_with_an_account_per_run(hostile_graded, name):
    """Hostile entries that need isolation get, in the container, the verdict they get under bubblewrap; the grader's
    files are unchanged and nothing of theirs outlives the grade."""
    got, entry = hostile_graded[name], hostile_too()[name]
    run = got["run"]
    assert run.returncode == 0, f"{name}: run_autograder exited {run.returncode}\n{run.stderr[-1500:]}"
    problem = support.verdict_problem(entry, json.loads(got["results"]), set(HOSTILE_CATEGORIES.split(",")))
    assert problem is None, problem
    assert not got["source_changed"], f"{name} changed the grader's files: {got['source_changed'][:5]}"
    assert not got["escapees"] and not [n for n in got["tmp_left"] if not n.startswith("pytest")]

"""Shared grading batches: every corpus submission graded once per session, read by many tests.

Grading is the slow part of the suite, so the corpora (wrong, correct, hostile, broken notebooks,
odd folder names) are graded together: one batch for the categories that do not time anything,
one for the speedup category, both with test-only budgets (``support.TEST_SETTINGS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import support

from autograder import demo, paths  # noqa: E402
from autograder.sandbox import isolation_mode  # noqa: E402
from autograder.sandbox.cgroups import controller  # noqa: E402

CORRECT_STUDENT = "correct_student"
UNGRADABLE = {"grades.csv": "named like the batch's own output", ".hidden-student": "hidden"}
"""Student folders no batch may grade, and a fragment of what the summary must say about each."""


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


def _duplicated_cell(submitted: Path, student: str) -> None:
    nb = demo.with_solution(demo.reference_source())
    stub = next(
        c
        for c in demo.release_notebook().cells
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "evolve_serial"
    )
    at = next(
        i
        for i, c in enumerate(nb.cells)
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "evolve_serial"
    )
    nb.cells.insert(at, stub)  # the untouched stub first, the answer in a copy below it
    nbformat.write(nb, _notebook_path(submitted, student))


def _metadata_stripped(submitted: Path, student: str) -> None:
    nb = demo.with_solution(demo.reference_source())
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)
    nbformat.write(nb, _notebook_path(submitted, student))


def _raw_file(content: bytes):
    def build(submitted: Path, student: str) -> None:
        _notebook_path(submitted, student).write_bytes(content)

    return build


def _linked_to(target: Path):
    def build(submitted: Path, student: str) -> None:
        _notebook_path(submitted, student).symlink_to(target)

    return build


def _no_notebook(submitted: Path, student: str) -> None:
    _notebook_path(submitted, student)  # the folder only
    (paths.submission_notebook(submitted, student).parent / "my_answers.py").write_text("print('oops')\n")


ALL = ("serial", "parallel", "determinism", "speedup", "agent")
OBSERVED_RUN_FAILS = ("returns_wrong_types", "segfault_in_parallel")
"""Speedup-batch entries whose observed runs fail (the one evolve_serial, the other evolve_parallel)."""
NOTEBOOK_FAULTS = {
    "notebook_not_json": support.Entry(
        "notebook_not_json", None, ALL, message="not a valid notebook", build=_raw_file(b'{"cells": [ oops')
    ),
    "notebook_empty_file": support.Entry(
        "notebook_empty_file", None, ALL, message="not a valid notebook", build=_raw_file(b"")
    ),
    "notebook_missing": support.Entry("notebook_missing", None, ALL, message="no notebook", build=_no_notebook),
    "notebook_cell_deleted": support.Entry(
        "notebook_cell_deleted", None, ALL, message="evolve_parallel", build=_without_cell("evolve_parallel")
    ),
    "notebook_metadata_stripped": support.Entry(
        "notebook_metadata_stripped", None, ALL, message="grade_id", build=_metadata_stripped
    ),
    "notebook_cell_duplicated": support.Entry(
        "notebook_cell_duplicated", None, ALL, message="two cells carry grade_id evolve_serial", build=_duplicated_cell
    ),
    "notebook_linked_to_solutions": support.Entry(
        "notebook_linked_to_solutions", None, ALL, message="symbolic link", build=_linked_to(paths.reference_notebook())
    ),
    "notebook_linked_to_secret": support.Entry(
        "notebook_linked_to_secret", None, ALL, message="symbolic link", build=_linked_to(Path("/etc/shadow"))
    ),
}


def gradable(entry: support.Entry) -> bool:
    """The entry's verdict can be checked here (isolation and kernel caps where it needs them)."""
    return (not entry.needs_isolation or isolation_mode() == "bubblewrap") and (
        not entry.needs_kernel_caps or controller().available
    )


def all_entries() -> dict[str, support.Entry]:
    """Every corpus entry graded on this machine, notebook faults included."""
    entries = {}
    for kind in ("wrong", "correct", "hostile"):
        entries.update(support.corpus(kind))
    entries.update(NOTEBOOK_FAULTS)
    return {name: e for name, e in entries.items() if gradable(e)}


def live_pids() -> set[int]:
    return {int(entry) for entry in os.listdir("/proc") if entry.isdigit()} if Path("/proc").is_dir() else set()


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


@dataclass
class Graded:
    """A graded batch, as the tests read it."""

    entries: dict[str, support.Entry]
    categories: set[str]
    output: Path
    stdout: str
    stderr: str
    returncode: int
    seconds: float
    leftovers: list[str] = field(default_factory=list)
    root: Path | None = None

    def result(self, student: str) -> dict:
        return support.results(self.output, student)


def _grade(
    root: Path,
    entries: dict[str, support.Entry],
    categories: str,
    *,
    odd_folders: bool,
    jobs: int = 1,
    settings: dict = support.TEST_SETTINGS,
) -> Graded:
    submitted, output, scratch = root / "submitted", root / "grades", root / "scratch"
    scratch.mkdir(parents=True)
    for name, entry in entries.items():
        if entry.build:
            entry.build(submitted, name)
        else:
            support.write_student(submitted, name, entry.source)
    support.write_student(submitted, CORRECT_STUDENT, demo.reference_source())
    if odd_folders:
        for name in UNGRADABLE:
            support.write_student(submitted, name, demo.reference_source())
    token = f"grading-batch-{uuid.uuid4().hex}"
    before = live_pids()
    start = time.perf_counter()
    done = support.grade(
        submitted,
        output,
        "--categories",
        categories,
        "--jobs",
        str(jobs),
        settings=settings,
        env={"TMPDIR": str(scratch), "GRADING_BATCH": token},
    )
    seconds = time.perf_counter() - start
    return Graded(
        entries,
        set(categories.split(",")),
        output,
        done.stdout,
        done.stderr,
        done.returncode,
        seconds,
        run_trace(token, [root], before),
        root,
    )


SAMPLE = {
    # correct variants a grader could mistake for wrong ones
    "spawn_pool",
    "other_draw_order",
    # mistakes students make, one per check that catches them
    "argmin_selection",
    "best_ever",
    "draw_order_differs",
    "sampling_in_workers",
    "unseeded_episodes",
    "lambda_in_pool_map",
    "sigma_ignored",
    # crashes, hangs, floods and attacks, one per defence
    "hang_in_serial",
    "segfault_in_parallel",
    "returns_wrong_types",
    "sys_exit_at_import",
    "memory_hog_serial",
    "fork_bomb",
    "output_flood",
    "snoop_and_tamper",
    "patch_clock",
    "patch_helper",
    "lingering_thread",
    "handmade_controller",
    "pretrained_population",
    "kill_everything",
    *NOTEBOOK_FAULTS,  # refused at intake: they cost no run
}
"""The corpus entries ``make test`` grades in the class batch: one of each kind, so that a broken defence shows
within minutes. ``make test-extended`` grades every entry (the tests' ``[whole]`` variants)."""

SPEEDUP_SAMPLE = {
    "imap_in_order",
    "spawn_pool",  # workers start slowly under spawn (macOS, Windows): that start-up must not cost the points
    *OBSERVED_RUN_FAILS,
    # no real parallel work, each in its own way
    "threads_instead_of_processes",
    "whole_generation_to_one_worker",
    "lock_turn_taking_workers",
    "slowed_serial_fake_parallel",
}
"""The entries ``make test`` grades in the speedup batch (beside the reference as a student): two correct variants
and a sample of the wrong ones."""

CORPUS = [pytest.param("sample"), pytest.param("whole", marks=pytest.mark.extended)]


def _corpus(request, sample: set[str]) -> dict[str, support.Entry]:
    entries = all_entries()
    return entries if request.param == "whole" else {n: e for n, e in entries.items() if n in sample}


@pytest.fixture(scope="session", params=CORPUS)
def class_batch(request, tmp_path_factory) -> Graded:
    """The corpus entries (a sample, or all of them), the correct student and the ungradable folders, graded in
    every untimed category.

    Two students at a time: nothing here is timed, and much of a hostile entry's grading is waiting
    (sleeps, hangs to the time limit), which the other job fills."""
    return _grade(
        tmp_path_factory.mktemp("class"),
        _corpus(request, SAMPLE),
        "serial,parallel,determinism,agent",
        odd_folders=True,
        jobs=2,
        settings=support.UNTIMED_SETTINGS,
    )


@pytest.fixture(scope="session", params=CORPUS)
def speedup_batch(request, tmp_path_factory) -> Graded:
    """The entries a timing can tell apart, and the correct ones, graded in the speedup category only.

    An entry whose observed serial or parallel run already fails loses the speedup points before anything
    is timed (``grade.speedup_observation``): two cheap ones stand for them all."""
    entries = {
        name: e
        for name, e in _corpus(request, SPEEDUP_SAMPLE).items()
        if e.source is not None
        and (
            name in support.corpus("correct")
            or name in OBSERVED_RUN_FAILS
            or ("speedup" in e.loses and not {"serial", "parallel"} & set(e.loses))
        )
    }
    return _grade(
        tmp_path_factory.mktemp("speedup"), entries, "speedup", odd_folders=False, settings=support.TIMED_SETTINGS
    )


LONGEST_FIRST = ("test_hostile.py", "test_notebooks.py", "test_gradescope_escapes.py", "test_grader_preflight.py")
"""The files whose tests take longest (corpus batches, lesson notebooks, Gradescope containers), longest first."""


def pytest_collection_modifyitems(items):
    """The longest files go first, so that under ``make test``'s workers (one file each) the other files fill
    the remaining workers while they run, instead of one of them starting last and running alone."""
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every other order is kept


# ---------------------------------------------------------------- nothing left behind

LEFTOVERS = pytest.StashKey[dict]()


def _controller(config) -> bool:
    """The process that runs the session: pytest alone, or pytest-xdist's controller (not one of its workers)."""
    return not hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)  # after pytest's own set-up of its temporary folders
def pytest_configure(config):
    """Give the run a temporary folder of its own and note what is mounted or left below it and below pytest's.

    Every grader the tests start, in-process or not, on any xdist worker, inherits this TMPDIR: what
    other work on the machine does in the shared temporary folder cannot be taken for this run's.
    """
    if not _controller(config):
        return
    basetemp = config._tmp_path_factory.getbasetemp()  # first: pytest keeps its folders where it always does
    session_tmp = Path(tempfile.mkdtemp(prefix="pytest-grader-tmp-"))
    os.chmod(session_tmp, 0o711)  # like /tmp: runs' accounts pass through to their folders in a batch's scratch
    os.environ["TMPDIR"] = str(session_tmp)
    tempfile.tempdir = None  # read $TMPDIR again
    roots = (session_tmp, basetemp)
    config.stash[LEFTOVERS] = {"tmp": session_tmp, "roots": roots, "before": support.leftovers(*roots)}


@pytest.hookimpl(trylast=True)  # after pytest-xdist has stopped its workers
def pytest_sessionfinish(session, exitstatus):
    """Fail the run if the mount table or the temporary folders differ from before it: a grader left its
    scratch mounted or on disk. The leftover mounts are then detached, so that a failing run does not pile
    them up on the machine."""
    config = session.config
    if not _controller(config) or LEFTOVERS not in config.stash:
        return
    noted = config.stash[LEFTOVERS]
    new = sorted(support.leftovers(*noted["roots"]) - noted["before"])
    if not new:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # after the progress line
        reporter.write_sep("=", "the test run left grader folders or mounts behind", red=True)
        for line in new:
            reporter.write_line(line)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    for line in new:
        if line.startswith("mounted: "):
            subprocess.run(["umount", "-l", line.removeprefix("mounted: ")], capture_output=True)


def pytest_unconfigure(config):
    if _controller(config) and LEFTOVERS in config.stash:
        shutil.rmtree(config.stash[LEFTOVERS]["tmp"], ignore_errors=True)

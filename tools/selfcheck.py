"""Student self-check: run the visible tests of the notebook and print the points per part.

In the student kit this file is ``check.py`` (``python check.py``); in the course repository it
is ``python -m tools.selfcheck [NOTEBOOK]`` (``make check``). It needs only the standard library,
``nbformat``, ``nbclient``, a Python kernel (``ipykernel``) and ``hints.py``.

It runs, in a fresh kernel in the notebook's own folder, only what the grader runs: the locked
setup cell, your two solution cells (``evolve_serial``, ``evolve_parallel``) and the five graded
test cells (``--part NAME``: only that part's), found by their nbgrader ``grade_id``. Anything else
in the notebook is ignored, so a helper defined elsewhere fails here just as it would in grading.
Each part is worth the points its test cell carries. The speedup test compares your speedup with the machine's own, measured beside
it; when the machine cannot show a speedup it says "not judged here", which earns no points here
and is no failure either (the grader measures it on its own machine). A speedup measured too low,
or left unjudged by busy cores, is measured again, three times in all, since a burst of other work
can spoil one timing. Run on the instructor's notebook, it first drops the hidden tests with nbgrader's
``ClearHiddenTests``, as ``generate_assignment`` does, so it checks only what students see.

Before any kernel starts, it runs the notebook's first code cell, which checks with the standard library
alone that the lesson's modules sit beside the notebook and that the packages are recent enough, and stops
with that cell's advice (the one install command) when something is missing.

Exit status: 0 when no visible test failed, 1 when one did, 2 when the notebook cannot be read or
run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import hints  # the student kit: hints.py sits beside this script
except ImportError:
    try:
        from autograder import hints  # the course repository
    except ImportError:
        hints = None  # a kit folder missing its hints.py: main() says so

HERE = Path(__file__).resolve().parent
NOTEBOOK_NAME = "neuroevolution.ipynb"
SETUP_ID = "practical_setup"
SURROUNDINGS_ID = "check_surroundings"  # the first code cell: checks the notebook's folder and packages
NEEDS_SOMETHING = 3  # the exit status of that cell's check, run alone, when something is missing
STUB_IDS = ("evolve_serial", "evolve_parallel")
TEST_PREFIX = "test_"  # the graded test cells, one per part: test_<part>, in the notebook's order
CELL_TIMEOUT = 120  # seconds per cell; the visible tests need a few seconds each
TIMING_IDS = ("test_speedup",)  # cells whose verdict depends on wall-clock time
TIMING_ATTEMPTS = 3
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HIDDEN_MARKER = "HIDDEN TESTS"  # the words both of nbgrader's hidden-region markers share
STUB_LEFT = re.compile(r"^\s*raise NotImplementedError", re.M)
# What a worker started by spawn or forkserver prints when a notebook's function was sent to it.
LOST_FUNCTION = re.compile(r"Can't get attribute '([\w.]+)' on <module '__main__'")


class NotebookError(Exception):
    """The notebook cannot be checked; the message says what to do."""


@dataclass
class CellRun:
    """What one executed cell produced."""

    grade_id: str
    """The cell's nbgrader grade_id."""
    error: tuple[str, str] | None = None
    """(exception name, message) if the cell raised, else None."""
    traceback: str = ""
    """The traceback as plain text, colours removed."""
    printed: list[str] = field(default_factory=list)
    """Non-empty lines the cell printed."""
    lost: list[str] = field(default_factory=list)
    """Functions the kernel's workers reported they could not find in ``__main__`` (the same for every cell)."""


def default_notebook() -> Path:
    """The notebook beside this script (the kit), else the release of the course repository."""
    beside = HERE / NOTEBOOK_NAME
    return beside if beside.is_file() else HERE.parent / "assignment" / "neuroevolution" / NOTEBOOK_NAME


def surroundings_problem(notebook: Path) -> str | None:
    """What the notebook's first cell says it still needs to run here (its modules beside it, packages recent
    enough, with the command that installs them), or None when nothing is missing or the cell cannot tell.

    That cell needs only the standard library, so it runs in a plain child of this Python, in the notebook's
    folder, before any kernel: its advice then names the install command for this Python.
    """
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        source = next(
            cell["source"]
            for cell in cells
            if cell.get("cell_type") == "code"
            and cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == SURROUNDINGS_ID
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return None  # unreadable (graded_cells says so) or an older notebook without the check
    source = "".join(source) if isinstance(source, list) else str(source)
    verdict = f"\nraise SystemExit(0 if what_to_do() is None else {NEEDS_SOMETHING})\n"
    try:
        done = subprocess.run(
            [sys.executable, "-c", source + verdict], cwd=notebook.parent, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    said = [line for line in done.stdout.splitlines() if line.strip()]
    return said[0] if done.returncode == NEEDS_SOMETHING and said else None


def graded_cells(notebook: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The sources of the setup, solution and test cells by grade_id, and each test cell's points.

    Raises NotebookError if the notebook is unreadable or misses one of these cells.
    """
    import nbformat

    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable
        raise NotebookError(
            f"{notebook.name} is not a readable notebook ({type(exc).__name__}: {exc}): "
            "restore it from your last working copy"
        ) from None
    nb = without_hidden_tests(nb, notebook.name)
    sources, points = {}, {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if cell.cell_type != "code" or not isinstance(grade_id, str) or grade_id in sources:
            continue
        if grade_id in (SETUP_ID, *STUB_IDS):
            sources[grade_id] = cell.source
        elif grade_id.startswith(TEST_PREFIX) and meta.get("grade"):  # the parts, as the release stamps them
            sources[grade_id] = cell.source
            points[grade_id] = int(meta.get("points", 0))
    missing = [grade_id for grade_id in (SETUP_ID, *STUB_IDS) if grade_id not in sources]
    if not points:
        missing.append(f"{TEST_PREFIX}<part>")
    if missing:
        raise NotebookError(
            f"{notebook.name} has no cell with grade_id {', '.join(missing)}: copy the missing "
            "cells back from a fresh copy of the assignment"
        )
    return sources, points


def without_hidden_tests(nb, name: str):
    """``nb`` without its hidden-test regions, as nbgrader releases it; a student's copy has none.

    nbgrader is needed only for a notebook that holds such regions (the instructor's), so the kit's
    self-check runs without it.
    """
    if not any(HIDDEN_MARKER in cell.source for cell in nb.cells):
        return nb
    try:
        from nbgrader.preprocessors import ClearHiddenTests
    except ImportError:
        raise NotebookError(
            f"{name} holds the instructor's hidden tests, which only nbgrader can remove: "
            "check the released notebook instead"
        ) from None
    try:
        nb, _ = ClearHiddenTests().preprocess(nb, {})
    except RuntimeError as exc:  # unbalanced markers, or a hidden region outside a graded cell
        raise NotebookError(f"{name}: {exc}") from None
    return nb


def test_ids(sources: dict[str, str]) -> tuple[str, ...]:
    """The graded test cells among ``sources``, in the notebook's order: one per part."""
    return tuple(grade_id for grade_id in sources if grade_id.startswith(TEST_PREFIX))


def build_check_notebook(sources: dict[str, str], tests: tuple[str, ...] | None = None):
    """A notebook of the setup, solution and ``tests`` cells (default: all), in the notebook's order, each tagged
    with its grade_id."""
    import nbformat

    check = nbformat.v4.new_notebook()
    check.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    chosen = test_ids(sources) if tests is None else tests
    for grade_id in (SETUP_ID, *STUB_IDS, *(test for test in test_ids(sources) if test in chosen)):
        cell = nbformat.v4.new_code_cell(sources[grade_id])
        cell.metadata["grade_id"] = grade_id
        check.cells.append(cell)
    return check


def grade_id_of(cell) -> str | None:
    """A cell's grade_id: nbgrader's metadata, or the plain key the check notebook uses."""
    return cell.metadata.get("grade_id") or cell.metadata.get("nbgrader", {}).get("grade_id")


def printed_text(cell) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.output_type == "stream")


def needs_another_try(cell) -> bool:
    """A timing cell that measured too low a speedup, or that busy cores kept from a verdict: another run may do
    better.

    A failure to run at all, or a timing not judged because worker start-up outweighs the work, would not
    change on a retry.
    """
    too_slow = any(
        output.output_type == "error" and hints.is_too_slow(output.get("evalue", ""))
        for output in cell.get("outputs", [])
    )
    printed = printed_text(cell)
    return too_slow or (hints.is_not_judged(printed) and not hints.is_slow_worker_start(printed))


def run_notebook(
    nb,
    folder: Path,
    *,
    timeout: int = CELL_TIMEOUT,
    env: dict[str, str] | None = None,
    attempts_allowed: int = TIMING_ATTEMPTS,
    kernel_stderr=subprocess.DEVNULL,
) -> dict[str, int]:
    """Run every code cell of ``nb`` in place, in a new kernel started in ``folder``, past errors.

    A timing cell (``TIMING_IDS``) that failed, or that busy cores kept from a verdict, runs again,
    up to ``attempts_allowed`` times in all: another program's burst of work can spoil one
    measurement, rarely every one. ``env`` replaces the kernel's environment variables; ``kernel_stderr``
    receives what the kernel and its workers write there (cell output arrives separately). Returns the
    attempts each timing cell needed. Raises DeadKernelError if the kernel dies.
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(folder)}},
    )
    client.reset_execution_trackers()
    attempts = {}
    options = {"stderr": kernel_stderr}
    if env is not None:
        options["env"] = env
    with client.setup_kernel(**options):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if grade_id_of(cell) in TIMING_IDS:
                attempts[grade_id_of(cell)] = 1
                while needs_another_try(cell) and attempts[grade_id_of(cell)] < attempts_allowed:
                    cell.outputs = []
                    client.execute_cell(cell, index)
                    attempts[grade_id_of(cell)] += 1
    return attempts


def kernel_env(folder: Path, scratch: Path) -> dict[str, str]:
    """The kernel's environment: hints.py importable even when the notebook's folder lacks it."""
    env = dict(os.environ)
    if not (folder / "hints.py").is_file():
        shutil.copy(hints.__file__, scratch / "hints.py")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(scratch), env.get("PYTHONPATH")]))
    return env


def execute(check, folder: Path) -> list[CellRun]:
    """Run every cell of ``check`` in ``folder`` and collect what each one raised and printed."""
    from nbclient.exceptions import DeadKernelError

    with tempfile.TemporaryDirectory(prefix="selfcheck-") as scratch:
        log = Path(scratch) / "kernel-stderr.txt"
        # The kernel's own log lines are noise, but a worker that cannot find a function may say so only there.
        with open(log, "w+", encoding="utf-8", errors="replace") as stderr:
            try:
                attempts = run_notebook(check, folder, env=kernel_env(folder, Path(scratch)), kernel_stderr=stderr)
            except DeadKernelError:
                attempts = {}  # the cells that did not run have no outputs: reported below as not run
        # Depending on the Jupyter version, the workers' error lands in the kernel's log or under a cell.
        said = log.read_text(encoding="utf-8", errors="replace") + "".join(printed_text(cell) for cell in check.cells)
        lost = sorted(set(LOST_FUNCTION.findall(said)))
    runs = []
    for cell in check.cells:
        run = CellRun(cell.metadata["grade_id"], lost=lost)
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                run.printed.extend(line for line in output.text.splitlines() if line.strip())
            elif output.output_type == "error":
                run.error = (output.ename, output.evalue)
                run.traceback = ANSI.sub("", "\n".join(output.traceback))
        if cell.get("execution_count") is None and not cell.get("outputs"):
            run.error = ("NotRun", "the kernel stopped before this cell ran (it crashed or ran out of memory)")
        if attempts.get(run.grade_id, 1) > 1:
            run.printed.append(f"(measured {attempts[run.grade_id]} times: timings are noisy when other programs run)")
        runs.append(run)
    return runs


def explain(run: CellRun, stubs_left: list[str]) -> str:
    """One line saying why a cell failed, in the test's own words where it has some."""
    name, message = run.error
    if name == "NotImplementedError":
        culprit = [stub for stub in STUB_IDS if stub in run.traceback] or stubs_left or list(STUB_IDS)
        return hints.not_implemented(culprit[0])
    if name == "KeyboardInterrupt":
        if run.lost:
            return hints.lost_in_workers(run.lost, multiprocessing.get_start_method())
        return hints.timed_out(CELL_TIMEOUT)
    if name == "NameError":
        return hints.undefined_name(message)
    lines = message.strip().splitlines()
    if name == "AssertionError" and lines:  # the test's own words, its first line the most specific
        return lines[0]
    if hints.is_pickling_error(name, message):
        return hints.cannot_pickle("your code", name, message).replace("\n", ". ")
    return f"{name}: {lines[0]}" if lines else f"{name} (no message)"


def report(runs: list[CellRun], sources: dict[str, str], points: dict[str, int], out=None) -> bool:
    """Print the per-part summary of the test cells that ran to ``out`` (default: standard output); True when no
    test failed."""
    out = out or sys.stdout
    by_id = {run.grade_id: run for run in runs}
    checked = [grade_id for grade_id in points if grade_id in by_id]
    raised = [run.traceback for run in runs if run.error and run.error[0] == "NotImplementedError"]
    # A stub counts as unfilled when its cell still has the raise line and a test ran into it.
    stubs_left = [
        stub for stub in STUB_IDS if STUB_LEFT.search(sources[stub]) and any(stub in traceback for traceback in raised)
    ]
    for stub in stubs_left:
        print(hints.not_implemented(stub), file=out)
    for grade_id in (SETUP_ID, *STUB_IDS):
        run = by_id[grade_id]
        if run.error:
            print(f"the {grade_id} cell itself failed: {explain(run, stubs_left)}", file=out)
    total, failed, not_judged = 0, False, []
    width = max(len(grade_id) for grade_id in points) - len(TEST_PREFIX)
    for grade_id in checked:
        run, worth, part = by_id[grade_id], points[grade_id], grade_id.removeprefix(TEST_PREFIX)
        label = f"Part {part + ':':<{width + 1}}"
        judged = [line for line in run.printed if hints.is_not_judged(line)]
        if run.error:
            failed = True
            print(f"{label}   0/{worth}   {explain(run, stubs_left)}", file=out)
        elif judged:
            not_judged.append((part, worth))
            print(f"{label}   -/{worth}   {judged[0]}", file=out)
        else:
            total += worth
            print(f"{label} {worth:>3}/{worth}", file=out)
            for line in run.printed[:3]:
                print(f"    {line}", file=out)
    # Points not judged here are neither won nor lost: the total counts only what this machine could judge.
    maximum = sum(points[grade_id] for grade_id in checked) - sum(worth for _, worth in not_judged)
    line = f"Total: {total}/{maximum}"
    if not_judged:
        line += " judged on this machine"
    if len(checked) < len(points):
        line += f" (parts checked: {', '.join(grade_id.removeprefix(TEST_PREFIX) for grade_id in checked)})"
    print(line, file=out)
    if not_judged:
        left = ", ".join(f"{part} ({worth} points)" for part, worth in not_judged)
        print(
            f"{hints.NOT_JUDGED.capitalize()}: {left}, for the reason on its line above; the grader measures it on "
            "its own machine, so these points are neither won nor lost yet",
            file=out,
        )
    return not failed


def main(argv: list[str] | None = None) -> int:
    in_kit = Path(__file__).name == "check.py"
    parser = argparse.ArgumentParser(
        prog="python check.py" if in_kit else "python -m tools.selfcheck",
        description="Run the setup cell, your two solution cells and the visible tests of the notebook "
        "in a fresh kernel, and print your points per part.",
    )
    parser.add_argument(
        "notebook",
        nargs="?",
        type=Path,
        default=None,
        help=f"the notebook to check (default: {NOTEBOOK_NAME} beside this script, "
        "else the release in the course repository)",
    )
    parser.add_argument(
        "--part",
        action="append",
        metavar="PART",
        help="check only this part: serial, parallel, determinism, speedup or agent (repeat the flag for several; "
        "default: every part)",
    )
    args = parser.parse_args(argv)
    notebook = (args.notebook or default_notebook()).resolve()
    if not notebook.is_file():
        print(f"error: no notebook at {notebook}: pass the path of your {NOTEBOOK_NAME}", file=sys.stderr)
        return 2
    problem = surroundings_problem(notebook)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if hints is None:
        print(f"error: no hints.py beside {Path(__file__).name}: unzip the student kit again", file=sys.stderr)
        return 2
    try:
        sources, points = graded_cells(notebook)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # the kit's requirements are not installed in this Python
        print(
            f"error: {exc.name or exc} is not installed for {sys.executable}: "
            "install the kit's requirements (pip install -r requirements.txt) in the environment you run this with",
            file=sys.stderr,
        )
        return 2
    parts = [grade_id.removeprefix(TEST_PREFIX) for grade_id in test_ids(sources)]
    unknown = [part for part in args.part or () if part not in parts]
    if unknown:
        print(
            f"error: no part {', '.join(unknown)} in {notebook.name}: choose from {', '.join(parts)}", file=sys.stderr
        )
        return 2
    tests = tuple(TEST_PREFIX + part for part in args.part) if args.part else None
    if not (notebook.parent / "evolution.py").is_file():
        print(f"error: no evolution.py beside {notebook}: keep the notebook in the folder it came in", file=sys.stderr)
        return 2
    print(f"checking {notebook} (setup, solution and test cells only)", flush=True)
    start = time.perf_counter()
    try:
        runs = execute(build_check_notebook(sources, tests), notebook.parent)
    except Exception as exc:  # the kernel could not start at all
        print(
            f"error: could not start a Python kernel ({type(exc).__name__}: {exc}): install the requirements "
            "(pip install -r requirements.txt) in the environment you run this with",
            file=sys.stderr,
        )
        return 2
    passed = report(runs, sources, points)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

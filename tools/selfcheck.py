"""Student self-check: ``python -m tools.selfcheck [NOTEBOOK]`` (``make check``).

Runs, in a fresh kernel in the notebook's own folder, only what the grader runs: the locked setup
cell, your two solution cells (``evolve_serial``, ``evolve_parallel``) and the five visible test
cells, found by their nbgrader ``grade_id``. Anything else in the notebook is ignored, so a
helper defined elsewhere fails here just as it would in grading. Hidden tests, if the notebook
holds any, are left out. The speedup test judges your speedup against the machine's own, measured
beside it, and says "inconclusive" rather than fail when other programs keep the cores busy; a
failed speedup test is still measured again (three times in all), since a burst of other work can
spoil one timing. Prints one line per part with its points and, for a failed part, the test's own
message, then the total.

Exit status: 0 when every visible test passed, 1 when one failed, 2 when the notebook cannot be
read or run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.config import CATEGORIES, POINTS  # noqa: E402
from autograder.extract import SETUP_ID, STUB_IDS, NotebookError, cells_by_grade_id, read_notebook  # noqa: E402

DEFAULT_NOTEBOOK = ROOT / "assignment" / "neuroevolution" / "neuroevolution.ipynb"
TEST_IDS = tuple(f"test_{category}" for category in CATEGORIES)
CELL_TIMEOUT = 120  # seconds per cell; the visible tests need a few seconds each
TIMING_IDS = ("test_speedup",)  # cells whose verdict depends on wall-clock time
TIMING_ATTEMPTS = 3
HIDDEN_BLOCK = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[^\n]*\n?", re.M | re.S)
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STUB_LEFT = re.compile(r"^\s*raise NotImplementedError", re.M)


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


def strip_hidden_tests(source: str) -> str:
    """``source`` without its ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` blocks."""
    return HIDDEN_BLOCK.sub("", source)


def build_check_notebook(notebook: Path):
    """A notebook of the setup, solution and visible test cells, in grading order.

    Raises NotebookError if the notebook is unreadable or misses one of these cells.
    """
    import nbformat

    found = cells_by_grade_id(read_notebook(notebook), (SETUP_ID, *STUB_IDS, *TEST_IDS))
    if found.missing:
        raise NotebookError(f"{notebook.name} has no cell with grade_id {', '.join(found.missing)}: "
                            "copy the missing cells back from a fresh download of the assignment")
    check = nbformat.v4.new_notebook()
    check.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for grade_id in (SETUP_ID, *STUB_IDS, *TEST_IDS):
        source = found.cells[grade_id]
        if grade_id in TEST_IDS:
            source = strip_hidden_tests(source)
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["grade_id"] = grade_id
        check.cells.append(cell)
    return check, found.cells


def grade_id_of(cell) -> str | None:
    """A cell's grade_id: nbgrader's metadata, or the plain key the self-check notebook uses."""
    return cell.metadata.get("grade_id") or cell.metadata.get("nbgrader", {}).get("grade_id")


def has_error(cell) -> bool:
    return any(output.output_type == "error" for output in cell.get("outputs", []))


def run_notebook(nb, folder: Path, *, timeout: int = CELL_TIMEOUT) -> dict[str, int]:
    """Run every code cell of ``nb`` in place, in a new kernel started in ``folder``, past errors.

    A failed timing cell (``TIMING_IDS``) runs again, up to ``TIMING_ATTEMPTS`` times in all:
    another program's burst of work can spoil one measurement, never every one. Returns the
    attempts each timing cell needed. Raises DeadKernelError if the kernel dies.
    """
    from nbclient import NotebookClient

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            interrupt_on_timeout=True, resources={"metadata": {"path": str(folder)}})
    client.reset_execution_trackers()
    attempts = {}
    # The kernel's own log lines (start-up warnings) are noise; cell output arrives separately.
    with client.setup_kernel(stderr=subprocess.DEVNULL):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if grade_id_of(cell) in TIMING_IDS:
                attempts[grade_id_of(cell)] = 1
                while has_error(cell) and attempts[grade_id_of(cell)] < TIMING_ATTEMPTS:
                    cell.outputs = []
                    client.execute_cell(cell, index)
                    attempts[grade_id_of(cell)] += 1
    return attempts


def execute(check, folder: Path) -> list[CellRun]:
    """Run every cell of ``check`` in ``folder`` and collect what each one raised and printed."""
    from nbclient.exceptions import DeadKernelError

    try:
        attempts = run_notebook(check, folder)
    except DeadKernelError:
        attempts = {}  # the cells that did not run have no outputs: reported below as not run
    runs = []
    for cell in check.cells:
        run = CellRun(cell.metadata["grade_id"])
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
    """One line saying why a test cell failed, in the test's own words where it has some."""
    name, message = run.error
    if name == "NotImplementedError":
        culprit = [stub for stub in STUB_IDS if stub in run.traceback] or stubs_left or list(STUB_IDS)
        return f"{culprit[0]} still raises NotImplementedError: replace that line with your code"
    if name == "KeyboardInterrupt":
        return f"timed out after {CELL_TIMEOUT} s: does every loop in your functions end?"
    if name == "NameError":
        return f"{message}: define it inside one of your two solution cells (only they and the setup cell are run)"
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"{name}: {first_line}" if first_line else f"{name} (no message)"


def report(runs: list[CellRun], sources: dict[str, str], out=None) -> bool:
    """Print the per-part summary to ``out`` (default: standard output); True when every test passed."""
    out = out or sys.stdout
    by_id = {run.grade_id: run for run in runs}
    raised = [run.traceback for run in runs if run.error and run.error[0] == "NotImplementedError"]
    # A stub counts as unfilled when its cell still has the raise line and a test ran into it.
    stubs_left = [stub for stub in STUB_IDS
                  if STUB_LEFT.search(sources[stub]) and any(stub in traceback for traceback in raised)]
    for stub in stubs_left:
        print(f"{stub}: still raises NotImplementedError (write your solution in its cell)", file=out)
    for grade_id in (SETUP_ID, *STUB_IDS):
        run = by_id[grade_id]
        if run.error:
            print(f"the {grade_id} cell itself failed: {explain(run, stubs_left)}", file=out)
    total = 0
    width = max(len(category) for category in CATEGORIES)
    for category, grade_id in zip(CATEGORIES, TEST_IDS):
        run, points = by_id[grade_id], POINTS[category]
        passed = run.error is None
        total += points if passed else 0
        print(f"Part {category + ':':<{width + 1}} {points if passed else 0:>3}/{points}"
              + ("" if passed else f"   {explain(run, stubs_left)}"), file=out)
        for line in run.printed[:3] if passed else []:
            print(f"    {line}", file=out)
    maximum = sum(POINTS.values())
    print(f"Total: {total}/{maximum}", file=out)
    return total == maximum


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.selfcheck",
        description="Run the setup cell, your two solution cells and the visible tests of a notebook "
                    "in a fresh kernel, and print your points per part.",
    )
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK,
                        help=f"the notebook to check (default: {DEFAULT_NOTEBOOK.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    notebook = args.notebook.resolve()
    if not notebook.is_file():
        print(f"error: no notebook at {notebook}: pass the path of your neuroevolution.ipynb", file=sys.stderr)
        return 2
    try:
        check, sources = build_check_notebook(notebook)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (notebook.parent / "evolution.py").is_file():
        print(f"error: no evolution.py beside {notebook}: keep the notebook in the folder it was released in",
              file=sys.stderr)
        return 2
    print(f"checking {notebook} (setup, solution and visible test cells only)", flush=True)
    start = time.perf_counter()
    try:
        runs = execute(check, notebook.parent)
    except Exception as exc:  # the kernel could not start at all
        print(f"error: could not run a Python kernel ({type(exc).__name__}: {exc}): run `make install`",
              file=sys.stderr)
        return 2
    passed = report(runs, sources)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

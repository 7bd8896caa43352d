"""The notebooks run: the instructor source top to bottom, the release up to its stubs, and the self-check."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.extract import cells_by_grade_id, read_notebook  # noqa: E402
from tools import selfcheck  # noqa: E402
from tools.selfcheck import CellRun  # noqa: E402

SOURCE_DIR = ROOT / "solutions" / "neuroevolution"
RELEASE_DIR = ROOT / "assignment" / "neuroevolution"
NOTEBOOK = "neuroevolution.ipynb"
CELL_TIMEOUT = 600


@pytest.fixture
def agents_dir(tmp_path, monkeypatch) -> Path:
    """Saved agents go to a private folder (kernels and self-checks inherit the variable)."""
    folder = tmp_path / "agents"
    monkeypatch.setenv("NEUROEVO_AGENTS_DIR", str(folder))
    return folder


def copy_folder(source: Path, tmp_path: Path) -> Path:
    """A scratch copy of an assignment folder, without saved agents or caches."""
    target = tmp_path / source.parent.name / source.name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("agents", "__pycache__", ".ipynb_checkpoints"))
    return target


def execute(folder: Path) -> nbformat.NotebookNode:
    """Run the folder's notebook top to bottom in a fresh kernel started in that folder, past errors.

    The speedup cell gets the self-check's retries: a busy machine spoils a timing, not three.
    """
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    selfcheck.run_notebook(nb, folder, timeout=CELL_TIMEOUT)
    return nb


def errors(nb: nbformat.NotebookNode) -> list[tuple[int, nbformat.NotebookNode]]:
    """(cell index, error output) for every cell that raised, in notebook order."""
    return [(index, out) for index, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for out in cell.outputs if out.output_type == "error"]


def run_selfcheck(notebook: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.selfcheck", str(notebook)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_notebooks_solution_runs_top_to_bottom(tmp_path, agents_dir):
    """The instructor notebook, hidden tests included, runs without an error and saves the trained agent."""
    folder = copy_folder(SOURCE_DIR, tmp_path)
    nb = execute(folder)
    failed = [f"cell {index}: {out.ename}: {out.evalue}" for index, out in errors(nb)]
    assert not failed, f"the solutions notebook raised errors: {failed}"
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    for line in ("evolve_serial: visible checks passed", "evolve_parallel: visible checks passed",
                 "determinism: visible checks passed", "agent: best run reached the flag"):
        assert line in printed, f"the test cells did not print {line!r}"
    assert (agents_dir / "agent-1.npz").is_file(), "the notebook did not save the trained agent as agent 1"
    assert not (folder / "agents").exists(), "the notebook saved agents beside it despite NEUROEVO_AGENTS_DIR"


@pytest.mark.slow
def test_notebooks_release_runs_until_the_stubs(tmp_path, agents_dir):
    """The student notebook runs the whole lesson; its first error is the stubs' NotImplementedError."""
    folder = copy_folder(RELEASE_DIR, tmp_path)
    nb = execute(folder)
    ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells]
    raised = errors(nb)
    assert raised, "the release notebook ran without any error: are the stubs still stubs?"
    index, first = raised[0]
    assert first.ename == "NotImplementedError", \
        f"the release notebook's first error, in cell {index}, is {first.ename}: {first.evalue}"
    assert index > ids.index("evolve_parallel"), f"cell {index}, before the stubs, raised NotImplementedError"


# An evolve_parallel that never starts a worker: the speedup cell must not give it the points.
SERIAL_IN_DISGUISE = (
    "def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):\n"
    "    return evolve_serial(generations, pop_size, seed, sigma)\n"
)


@pytest.mark.slow
def test_notebooks_speedup_cell_fails_a_serial_evolve_parallel(tmp_path, agents_dir):
    """The visible speedup cell fails an evolve_parallel that just calls evolve_serial, naming the fix."""
    folder = copy_folder(SOURCE_DIR, tmp_path)
    found = cells_by_grade_id(read_notebook(folder / NOTEBOOK), ("practical_setup", "evolve_serial", "test_speedup"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    # Cells without a grade_id: the speedup cell runs once, without the self-check's retries.
    for source in (found.cells["practical_setup"], found.cells["evolve_serial"], SERIAL_IN_DISGUISE,
                   selfcheck.strip_hidden_tests(found.cells["test_speedup"])):
        nb.cells.append(nbformat.v4.new_code_cell(source))
    selfcheck.run_notebook(nb, folder, timeout=CELL_TIMEOUT)
    *setup, speedup_cell = nb.cells
    earlier = [out for cell in setup for out in cell.outputs if out.output_type == "error"]
    assert not earlier, f"a cell before the speedup cell failed: {earlier[0].ename}: {earlier[0].evalue}"
    printed = "".join(out.get("text", "") for out in speedup_cell.outputs)
    if "inconclusive" in printed:
        pytest.skip(f"the machine's cores were too busy to judge a speedup: {printed.splitlines()[0]}")
    raised = [out for out in speedup_cell.outputs if out.output_type == "error"]
    assert raised, f"the speedup cell gave the points to an evolve_parallel that runs serially: {printed}"
    assert raised[0].ename == "AssertionError" and "one pool.map" in raised[0].evalue \
        and "this machine" in raised[0].evalue, \
        f"the speedup cell failed without saying what to fix: {raised[0].ename}: {raised[0].evalue}"


@pytest.mark.slow
def test_notebooks_selfcheck_gives_the_solution_full_marks(tmp_path, agents_dir):
    """The self-check on the reference solution prints 100/100 and exits 0."""
    folder = copy_folder(SOURCE_DIR, tmp_path)
    result = run_selfcheck(folder / NOTEBOOK)
    assert result.returncode == 0 and "Total: 100/100" in result.stdout, \
        f"self-check on the solution: exit {result.returncode}\n{result.stdout}{result.stderr}"
    assert "BEGIN HIDDEN TESTS" not in result.stdout


@pytest.mark.slow
def test_notebooks_selfcheck_fails_clearly_on_the_release(tmp_path, agents_dir):
    """The self-check on the untouched release exits 1, names the stubs and gives 0/100, no traceback."""
    folder = copy_folder(RELEASE_DIR, tmp_path)
    result = run_selfcheck(folder / NOTEBOOK)
    assert result.returncode == 1, f"self-check on the release exited {result.returncode}\n{result.stdout}{result.stderr}"
    assert "evolve_serial: still raises NotImplementedError" in result.stdout
    assert "evolve_parallel: still raises NotImplementedError" in result.stdout
    assert "Total: 0/100" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_notebooks_selfcheck_drops_hidden_tests():
    """Hidden-test blocks, indented or not, are removed before the self-check runs a test cell."""
    source = ("x = 1\n### BEGIN HIDDEN TESTS\nassert secret()\n### END HIDDEN TESTS\n"
              "if x:\n    ### BEGIN HIDDEN TESTS\n    assert other()\n    ### END HIDDEN TESTS\nprint(x)\n")
    assert selfcheck.strip_hidden_tests(source) == "x = 1\nif x:\nprint(x)\n"


def test_notebooks_selfcheck_report_shows_each_failure_in_one_line(capsys):
    """A failing part shows the test's own message, a stub left alone says so, and the total adds up."""
    runs = [CellRun("practical_setup"), CellRun("evolve_serial"), CellRun("evolve_parallel"),
            CellRun("test_serial", printed=["evolve_serial: visible checks passed"]),
            CellRun("test_parallel", error=("NotImplementedError", ""), traceback="Cell In[3], line 16, in evolve_parallel(...)"),
            CellRun("test_determinism", error=("AssertionError", "evolve_parallel returned different returns\nmore")),
            CellRun("test_speedup"), CellRun("test_agent", error=("NameError", "name 'helper' is not defined"))]
    sources = {"practical_setup": "", "evolve_serial": "def evolve_serial(): pass",
               "evolve_parallel": "def evolve_parallel():\n    raise NotImplementedError()"}
    assert selfcheck.report(runs, sources) is False
    out = capsys.readouterr().out
    assert "evolve_parallel: still raises NotImplementedError" in out
    assert "Part serial:       25/25" in out
    assert "Part parallel:      0/20   evolve_parallel still raises NotImplementedError" in out
    assert "AssertionError: evolve_parallel returned different returns" in out and "more" not in out
    assert "define it inside one of your two solution cells" in out
    assert "Total: 40/100" in out

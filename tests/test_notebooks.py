"""The lesson runs as students get it, under every start method, and its visible tests teach.

The notebook runs as students get it: from a student kit folder, or in place in a copy of the
release folder (notebook, evolution.py, parallel_demos.py, hints.py, images), which must need
nothing the kit adds. The kernel's start method is set by an IPython start-up file, so the
notebook itself is the one students run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from autograder import demo, hints, paths
from tools import release, selfcheck, student_kit
from tools.selfcheck import CellRun

NOTEBOOK = "neuroevolution.ipynb"
CELL_LIMIT = 120  # seconds: no cell of the lesson may take longer, under any start method


@pytest.fixture
def agents_dir(tmp_path, monkeypatch) -> Path:
    """Saved agents go to a private folder (kernels and self-checks inherit the variable)."""
    folder = tmp_path / "agents"
    monkeypatch.setenv("NEUROEVO_AGENTS_DIR", str(folder))
    return folder


@pytest.fixture
def kit(tmp_path) -> Path:
    """A fresh student kit folder, built from the committed release."""
    folder, _ = student_kit.write_kit(student_kit.kit_files(), tmp_path / "dist")
    return folder


@pytest.fixture
def release_copy(tmp_path) -> Path:
    """A copy of the committed release folder, nothing added: where an instructor opens the lesson in place."""
    folder = tmp_path / "assignment" / paths.ASSIGNMENT
    release.write(release.release_files(paths.RELEASE_DIR, release.ignored_patterns()), folder, [])
    return folder


def fill_in(folder: Path, source: str | None = None) -> Path:
    """Put the reference solution (or ``source``: both cells) into the kit's notebook, as a student would."""
    path = folder / NOTEBOOK
    nbformat.write(demo.with_solution(source or demo.reference_source()), path)
    return path


def start_method(monkeypatch, tmp_path, method: str) -> None:
    """Kernels started from now on use ``method`` (an IPython start-up file sets it; workers never run it)."""
    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-start-method.py").write_text(
        f"import multiprocessing\nmultiprocessing.set_start_method({method!r}, force=True)\n"
    )
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))


def seconds(cell) -> float:
    """How long a cell ran, from the timestamps nbclient records."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    parse = lambda stamp: datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def printed(nb) -> str:
    return "".join(selfcheck.printed_text(cell) for cell in nb.cells if cell.cell_type == "code")


def errors(nb) -> list[str]:
    return [
        f"cell {index}: {out.ename}: {out.evalue[:300]}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "error"
    ]


def graded_notebook(notebook: Path, *grade_ids: str) -> nbformat.NotebookNode:
    """A notebook of the setup cell and the given cells of ``notebook``, tagged like the self-check's."""
    sources, _ = selfcheck.graded_cells(notebook)
    nb = selfcheck.build_check_notebook(sources)
    nb.cells = [cell for cell in nb.cells if cell.metadata["grade_id"] in ("practical_setup", *grade_ids)]
    return nb


def speedup_verdict(nb) -> str:
    """What the speedup cell concluded: "passed", "not judged" or "too slow" (its own assertion)."""
    cell = next(
        cell for cell in nb.cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_speedup"
    )
    raised = [out for out in cell.outputs if out.output_type == "error"]
    if raised:
        assert raised[0].ename == "AssertionError" and raised[0].evalue.startswith("evolve_parallel was only"), (
            f"the speedup cell broke: {raised[0].ename}: {raised[0].evalue}"
        )
        return "too slow"
    out = selfcheck.printed_text(cell)
    assert ("speedup: visible checks passed" in out) != hints.is_not_judged(out), (
        f"the speedup cell must either pass or say it was not judged: {out}"
    )
    return "passed" if "passed" in out else "not judged"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "where"),
    [
        ("spawn", "release_copy"),  # macOS and Windows laptops: the method most cells could break under
        pytest.param("forkserver", "kit", marks=pytest.mark.extended),
        pytest.param("fork", "kit", marks=pytest.mark.extended),
    ],
)
def test_notebooks_lesson_runs_under_every_start_method(method, where, agents_dir, tmp_path, monkeypatch, request):
    """The release notebook with correct stubs runs top to bottom, no cell above 120 s, under each start method,
    from a kit folder and in place in the release folder (under spawn, where workers import Part 1's module)."""
    import multiprocessing

    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"this system has no {method} start method")
    folder = request.getfixturevalue(where)
    start_method(monkeypatch, tmp_path, method)
    nb = nbformat.read(fill_in(folder), as_version=4)
    selfcheck.run_notebook(nb, folder, timeout=2 * CELL_LIMIT, attempts_allowed=1)
    # Whether a speedup shows depends on the machine's load (the kit's self-check test judges the
    # verdict); here the cell must only run to a verdict.
    verdict = speedup_verdict(nb)
    raised = [error for error in errors(nb) if not (verdict == "too slow" and "evolve_parallel was only" in error)]
    assert not raised, f"under {method} the lesson raised: {raised}"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in code), "some cells did not run"
    slow = [
        (index, round(seconds(cell)))
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and seconds(cell) > CELL_LIMIT
    ]
    assert not slow, f"cells above {CELL_LIMIT} s under {method} (index, seconds): {slow}"
    out = printed(nb)
    assert f"this kernel starts workers with: {method}" in out, "the start-up file did not set the start method"
    for line in (
        "evolve_serial: visible checks passed",
        "evolve_parallel: visible checks passed",
        "determinism: visible checks passed",
        "agent: best run reached the flag",
    ):
        assert line in out, f"under {method} the test cells did not print {line!r}"
    assert "best return per generation: [-31.56, -0.31, -10.65]" in out, "the sanity values in the lesson are stale"
    assert "evolve_parallel gives the same history: True" in out
    assert "items the parent's list parallel_demos.seen received: 0" in out
    assert (agents_dir / "agent-1.npz").is_file(), "the notebook did not save the trained agent as agent 1"


PLAYED_HERE = {
    # never starts a worker
    "serial": (
        "def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):\n"
        "    return evolve_serial(generations, pop_size, seed, sigma)\n"
    ),
    # workers that are threads of the notebook's process: the interpreter lock lets one play at a time
    "threads": (
        "from multiprocessing.pool import ThreadPool\n\n"
        "def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):\n"
        "    rng = np.random.default_rng(seed)\n"
        "    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]\n"
        "    history = []\n"
        "    with ThreadPool(processes) as pool:\n"
        "        for generation in range(generations):\n"
        "            episode_seed = int(rng.integers(2**31 - 1))\n"
        "            returns = pool.map(partial(episode, seed=episode_seed), population)\n"
        "            history.append(returns)\n"
        "            best = population[int(np.argmax(returns))]\n"
        "            if generation + 1 < generations:\n"
        "                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]\n"
        "    return best, history\n"
    ),
}
"""evolve_parallel cells that play every episode in the notebook's own process."""


@pytest.mark.slow
@pytest.mark.parametrize("disguise", ["serial", "threads"])
def test_notebooks_speedup_cell_fails_a_loop_that_plays_in_the_notebook(disguise, kit, agents_dir):
    """The visible speedup cell fails an evolve_parallel that plays its episodes in the notebook's own process
    (evolve_serial under another name, or a thread pool), on any machine, and names the fix."""
    notebook = fill_in(kit)
    nb = graded_notebook(notebook, "evolve_serial", "evolve_parallel", "test_speedup")
    nb.cells[2].source = PLAYED_HERE[disguise]
    for cell in nb.cells:
        cell.metadata.pop("grade_id")  # run once, without the self-check's retries
    selfcheck.run_notebook(nb, kit, timeout=2 * CELL_LIMIT)
    *setup, speedup_cell = nb.cells
    earlier = [out for cell in setup for out in cell.outputs if out.output_type == "error"]
    assert not earlier, f"a cell before the speedup cell failed: {earlier[0].ename}: {earlier[0].evalue}"
    raised = [out for out in speedup_cell.outputs if out.output_type == "error"]
    out = selfcheck.printed_text(speedup_cell)
    assert raised, f"the speedup cell did not fail an evolve_parallel that plays in the notebook ({disguise}): {out}"
    assert (
        raised[0].ename == "AssertionError" and "played here" in raised[0].evalue and "pool.map" in raised[0].evalue
    ), f"the speedup cell failed without saying what to fix: {raised[0].ename}: {raised[0].evalue}"


def cells_with(source: str, old: str, new: str, count: int = -1) -> str:
    """The reference solution's two cells with ``old`` replaced by ``new`` (which must occur), ``count`` times."""
    assert old in source, f"{old!r} is not in the reference solution"
    return source.replace(old, new, count)


@pytest.mark.slow
def test_notebooks_visible_tests_name_the_cause_without_cascading(kit, agents_dir):
    """A lambda costs the parallel test only, with the pickling hint; a selection bug gets the selection hint."""
    reference = demo.reference_source()
    # 1. A lambda in pool.map: the parallel cell fails with the hint, determinism is judged with threads.
    lambda_source = cells_with(
        reference,
        "pool.map(partial(episode, seed=episode_seed), population)",
        "pool.map(lambda params: episode(params, seed=episode_seed), population)",
    )
    nb = graded_notebook(
        fill_in(kit, lambda_source), "evolve_serial", "evolve_parallel", "test_parallel", "test_determinism"
    )
    selfcheck.run_notebook(nb, kit, timeout=2 * CELL_LIMIT)
    parallel, determinism = nb.cells[-2:]
    raised = [out for out in parallel.outputs if out.output_type == "error"]
    assert raised and raised[0].ename == "AssertionError" and hints.PICKLING in raised[0].evalue, (
        f"a lambda should fail the parallel test with the pickling hint, got {[(o.ename, o.evalue) for o in raised]}"
    )
    assert not [out for out in determinism.outputs if out.output_type == "error"], (
        f"the determinism test failed on a lambda, which only the parallel test grades: {errors(nb)}"
    )
    assert hints.judged_with_threads("evolve_parallel") in selfcheck.printed_text(determinism)

    # 2. Returning the best candidate of all generations: the selection hint, not a generic one.
    best_of_all = cells_with(
        reference,
        "        best = population[int(np.argmax(returns))]\n",
        "        best = population[int(np.argmax(returns))]\n"
        "        if generation == 0 or max(returns) > best_return:\n"
        "            kept, best_return = best, max(returns)\n",
        count=1,
    )  # in evolve_serial only
    best_of_all = cells_with(best_of_all, "    return best, history", "    return kept, history", count=1)
    nb = graded_notebook(fill_in(kit, best_of_all), "evolve_serial", "evolve_parallel", "test_serial")
    selfcheck.run_notebook(nb, kit, timeout=2 * CELL_LIMIT)
    raised = [out for out in nb.cells[-1].outputs if out.output_type == "error"]
    assert raised and raised[0].evalue == hints.selected_outside_last_generation("evolve_serial"), (
        f"a best-of-all-generations loop should get the selection hint, got {[(o.ename, o.evalue) for o in raised]}"
    )


@pytest.mark.slow
def test_notebooks_visible_tests_read_the_cause_from_behaviour(kit, agents_dir):
    """A pool per generation passes the parallel test with a note on its cost; numpy's global generator in
    evolve_parallel alone gets the one cause its runs show (not reproducible), not a list of possible ones."""
    reference = demo.reference_source()
    pool_per_generation = cells_with(
        reference,
        "    with Pool(processes) as pool:  # start the workers once, not once per generation\n"
        "        for generation in range(generations):\n"
        "            episode_seed = int(rng.integers(2**31 - 1))\n"
        "            returns = pool.map(",
        "    for generation in range(generations):\n"
        "        episode_seed = int(rng.integers(2**31 - 1))\n"
        "        with Pool(processes) as pool:\n"
        "            returns = pool.map(",
    )
    nb = graded_notebook(fill_in(kit, pool_per_generation), "evolve_serial", "evolve_parallel", "test_parallel")
    selfcheck.run_notebook(nb, kit, timeout=2 * CELL_LIMIT)
    assert not errors(nb), errors(nb)
    assert hints.pool_per_generation("evolve_parallel", 4, 4) in selfcheck.printed_text(nb.cells[-1])

    parallel_at = reference.index("def evolve_parallel(")
    global_draws = reference[:parallel_at] + cells_with(
        reference[parallel_at:], "int(rng.integers(2**31 - 1))", "int(np.random.randint(2**31 - 1))"
    )
    nb = graded_notebook(fill_in(kit, global_draws), "evolve_serial", "evolve_parallel", "test_determinism")
    selfcheck.run_notebook(nb, kit, timeout=2 * CELL_LIMIT)
    raised = [out for out in nb.cells[-1].outputs if out.output_type == "error"]
    assert raised and raised[0].evalue == hints.not_reproducible("evolve_parallel", 3, "returns"), (
        f"expected the not-reproducible hint, got {[(o.ename, o.evalue) for o in raised]}"
    )


def test_notebooks_first_cell_alone_says_to_unzip_the_kit(tmp_path):
    """The release notebook alone in a folder: its first cell says in one sentence to unzip the kit (or run the
    Colab cell), then the start method and CPUs, with no traceback, in a kernel and in a Python without packages."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(paths.RELEASE_DIR / NOTEBOOK, alone / NOTEBOOK)
    nb = nbformat.read(alone / NOTEBOOK, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first.metadata["nbgrader"]["grade_id"] == selfcheck.SURROUNDINGS_ID, "the first code cell is not the check"
    nb.cells = [first]
    selfcheck.run_notebook(nb, alone, timeout=60)
    assert not errors(nb), errors(nb)
    missing = "evolution.py, parallel_demos.py, hints.py are not in the notebook's folder"
    advice, workers = selfcheck.printed_text(first).splitlines()
    assert advice == (
        f"{missing} ({alone.resolve()}): unzip the student kit next to the notebook (on Google Colab: run the next "
        "cell), then run this cell again."
    )
    assert re.fullmatch(
        rf"This kernel starts workers with '(fork|spawn|forkserver)' and may use {len(os.sched_getaffinity(0))} "
        rf"of the machine's {os.cpu_count()} logical CPUs\.",
        workers,
    ), workers
    # Python's standard library alone (-S: no site-packages), as where nothing is installed yet.
    bare = subprocess.run(
        [sys.executable, "-S", "-c", first.source], cwd=alone, capture_output=True, text=True, timeout=30
    )
    assert bare.returncode == 0 and not bare.stderr, f"the first cell failed without packages:\n{bare.stderr}"
    assert bare.stdout.startswith(f"{missing} ({alone.resolve()}): unzip the student kit next to the notebook, then")


def test_notebooks_selfcheck_report_shows_each_failure_in_one_line(capsys):
    """A failing part shows the test's own message, an unjudged speedup is no full marks, the total adds up."""
    runs = [
        CellRun("practical_setup"),
        CellRun("evolve_serial"),
        CellRun("evolve_parallel"),
        CellRun("test_serial", printed=["evolve_serial: visible checks passed"]),
        CellRun(
            "test_parallel", error=("NotImplementedError", ""), traceback="Cell In[3], line 16, in evolve_parallel(...)"
        ),
        CellRun("test_determinism", error=("AssertionError", "evolve_parallel returned different returns\nmore")),
        CellRun("test_speedup", printed=["4 generations of 32 ...", hints.speedup_not_judged("busy")]),
        CellRun("test_agent", error=("NameError", "name 'helper' is not defined")),
    ]
    sources = {
        "practical_setup": "",
        "evolve_serial": "def evolve_serial(): pass",
        "evolve_parallel": "def evolve_parallel():\n    raise NotImplementedError()",
    }
    points = {"test_serial": 25, "test_parallel": 20, "test_determinism": 20, "test_speedup": 15, "test_agent": 20}
    assert selfcheck.report(runs, sources, points) is False
    out = capsys.readouterr().out
    assert hints.not_implemented("evolve_parallel") in out
    assert "Part serial:       25/25" in out
    assert f"Part parallel:      0/20   {hints.not_implemented('evolve_parallel')}" in out
    assert "Part determinism:   0/20   evolve_parallel returned different returns" in out and "more" not in out
    assert re.search(r"Part speedup: +-/15 +speedup not judged here: busy", out), out
    assert "15/15" not in out, "an unjudged speedup was shown as full marks"
    assert hints.undefined_name("name 'helper' is not defined") in out
    assert "Total: 25/85 judged on this machine" in out and "Not judged here: speedup (15 points)" in out


def test_notebooks_selfcheck_names_a_function_the_workers_could_not_find():
    """A cell that timed out while the kernel's workers could not find a notebook function is explained by that
    function, __main__, the start method and the fix, not as an endless loop."""
    worker_said = "AttributeError: Can't get attribute 'play' on <module '__main__' (built-in)>\n"
    assert selfcheck.LOST_FUNCTION.findall(worker_said) == ["play"]
    run = CellRun("test_parallel", error=("KeyboardInterrupt", ""), lost=["play"])
    line = selfcheck.explain(run, [])
    assert "play" in line and "__main__" in line and "partial(episode, seed=...)" in line, line
    assert "loop that never ends" not in line
    assert selfcheck.explain(CellRun("test_parallel", error=("KeyboardInterrupt", "")), []) == hints.timed_out(
        selfcheck.CELL_TIMEOUT
    )


def test_notebooks_stub_docstrings_leave_no_doubt():
    """The released stubs state the draw order rule, the seed idiom, where helpers go and what None means."""
    sources, _ = selfcheck.graded_cells(paths.RELEASE_DIR / NOTEBOOK)
    serial, parallel = sources["evolve_serial"], sources["evolve_parallel"]
    assert "raise NotImplementedError()" in serial and "raise NotImplementedError()" in parallel
    assert "int(rng.integers(2**31 - 1))" in serial
    assert "any order of draws" in serial and "same draws in the same order" in serial
    assert "top level of this cell" in serial and "top level" in parallel
    assert "partial(episode, seed=episode_seed)" in parallel and "spawn" in parallel and "notebook cell" in parallel
    assert "lambda" in parallel and "inside" in parallel
    assert "os.cpu_count()" in parallel and "logical CPU" in parallel


def test_notebooks_selfcheck_leaves_the_hidden_tests_out():
    """On the instructor's notebook the self-check runs the visible tests only, as the release has them."""
    source, _ = selfcheck.graded_cells(paths.reference_notebook())
    released, _ = selfcheck.graded_cells(paths.RELEASE_DIR / NOTEBOOK)
    tests = [grade_id for grade_id in source if grade_id.startswith("test_")]
    assert len(tests) == 5 and not any(selfcheck.HIDDEN_MARKER in source[grade_id] for grade_id in tests)
    assert [source[grade_id].strip() for grade_id in tests] == [released[grade_id].strip() for grade_id in tests], (
        "the self-check's view of the instructor's tests differs from the release's"
    )


def test_notebooks_selfcheck_without_nbgrader_refuses_hidden_tests(monkeypatch):
    """In the kit, where nbgrader is absent, a notebook holding hidden tests is refused with a clear message."""
    import builtins

    real_import = builtins.__import__

    def no_nbgrader(name, *args, **kwargs):
        if name.startswith("nbgrader"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nbgrader)
    with pytest.raises(selfcheck.NotebookError, match="hidden tests"):
        selfcheck.graded_cells(paths.reference_notebook())
    sources, _ = selfcheck.graded_cells(paths.RELEASE_DIR / NOTEBOOK)  # a student's copy needs no nbgrader
    assert "raise NotImplementedError()" in sources["evolve_serial"]

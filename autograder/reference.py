"""The reference solution, checked once before any student is graded.

A batch graded against a broken reference is wrong for everyone: every speedup is judged
beside it, and a reference that no longer matches the release grades students on a task
they were not given. So before the first student :func:`problem` makes sure that

- the release students got still matches the instructor's source: the same helper modules,
  the same stub signatures (accepting every argument the grader passes), the same graded cells
  and setup cell, the points the grader gives (``release_problem``, no run needed);
- the reference passes every run a submission of this batch gets: each function at each
  workload the graded categories use (every generation count, never a shortened run), verified
  by the same rules, and ``evolve_serial`` and ``evolve_parallel`` agree on the same arguments.

Each run is one the batch would make anyway in kind and shape, once: not a whole extra grading
(no repeats, no pytest checks, no held-out scoring). Every problem comes back as one plain
sentence saying what to fix.
"""

from __future__ import annotations

import ast

import nbformat

from autograder import extract, observe, paths, training
from autograder.categories import ALL, BY_NAME, POINTS
from autograder.config import AGENT, OBSERVE, SPEEDUP
from autograder.messages import first_line

GRADED_KEYS = ("grade", "solution", "locked", "points")
"""nbgrader metadata that decides what is graded and for how much."""


def _shown(path) -> str:
    try:
        return str(path.relative_to(paths.ROOT))
    except ValueError:
        return str(path)


# --- the release against the source -------------------------------------------------------


def _cells(nb) -> dict[str, nbformat.NotebookNode]:
    out = {}
    for cell in nb.cells:
        gid = (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")
        if gid:
            out.setdefault(gid, cell)
    return out


def _graded(cell) -> dict:
    return {k: (cell.get("metadata", {}).get("nbgrader") or {}).get(k) for k in GRADED_KEYS}


def _signature(source: str, name: str) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _signature_text(node: ast.FunctionDef) -> str:
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"({ast.unparse(node.args)}){returns}"


def _accepts(node: ast.FunctionDef, names: list[str]) -> list[str]:
    """The keyword arguments among ``names`` that ``node``'s signature cannot take."""
    if node.args.kwarg:
        return []
    params = {a.arg for a in node.args.args + node.args.kwonlyargs}
    return [name for name in names if name not in params]


def grader_arguments(plan: observe.Plan) -> dict[str, list[str]]:
    """The keyword arguments the grader calls each stub with."""
    return {
        "evolve_serial": list(plan.workload(0)),
        "evolve_parallel": list(plan.workload(0, SPEEDUP.processes)),
    }


def release_problem(plan: observe.Plan) -> str | None:
    """Why the release no longer matches the instructor's source (one sentence), or None."""
    source_nb = paths.reference_notebook()
    release_nb = paths.RELEASE_DIR / paths.NOTEBOOK
    redo = "run make assignment to release the source again (or undo the edit)"
    for module in paths.LESSON_MODULES:
        released, original = paths.RELEASE_DIR / module, paths.SOURCE_DIR / module
        if released.is_file() and original.is_file() and released.read_bytes() != original.read_bytes():
            return f"{_shown(released)} differs from {_shown(original)}, so students run another {module}: {redo}"
    notebooks = {}
    for role, path in (("the reference solution", source_nb), ("the release", release_nb)):
        if role == "the release" and not path.is_file():
            notebooks[role] = None  # not generated yet: the grader uses the source's setup cell and helper
            continue
        try:
            notebooks[role] = _cells(extract.read_notebook(path))
        except extract.NotebookError as exc:
            why = first_line(exc).split("; ")[0]
            return f"{role} {_shown(path)} cannot be read ({why}): restore it from version control"
    source, release = notebooks["the reference solution"], notebooks["the release"]
    for gid, names in grader_arguments(plan).items():
        node = _signature(source[gid].source, gid) if gid in source else None
        if node is None:
            return (
                f"{_shown(source_nb)} has no cell with grade_id {gid} defining {gid}: restore it from version control"
            )
        missing = _accepts(node, names)
        if missing:
            return (
                f"the reference's {gid}{_signature_text(node)} cannot take {', '.join(missing)}, which the grader "
                f"passes: restore the assignment's signature in {_shown(source_nb)}"
            )
        stub = _signature(release[gid].source, gid) if release and gid in release else None
        if release is not None and stub is None:
            return f"the release has no {gid} stub: {redo}"
        if stub is not None and _signature_text(stub) != _signature_text(node):
            return (
                f"the reference's {gid}{_signature_text(node)} no longer matches the stub students got, "
                f"{gid}{_signature_text(stub)}: {redo}"
            )
    if release is None:
        return None
    setup = source.get(extract.SETUP_ID)
    if setup is not None and setup.source != getattr(release.get(extract.SETUP_ID), "source", None):
        return f"the release's {extract.SETUP_ID} cell differs from the source's: {redo}"
    for gid in sorted(set(source) | set(release)):
        if gid not in release or gid not in source:
            return f"the graded cell {gid} is missing from {'the release' if gid in source else 'the source'}: {redo}"
        was, now = _graded(source[gid]), _graded(release[gid])
        if was != now:
            changed = ", ".join(
                f"{k} {was[k]} in the source, {now[k]} released" for k in GRADED_KEYS if was[k] != now[k]
            )
            return f"the graded cell {gid} changed ({changed}): {redo}"
    for category in ALL:
        points = (release.get(category.cell_id, {}).get("metadata", {}).get("nbgrader") or {}).get("points")
        if points != POINTS[category.name]:
            return (
                f"the release's {category.cell_id} cell is worth {points} points but the grader gives "
                f"{POINTS[category.name]} (autograder/categories.py): {redo}"
            )
    return None


# --- the reference's runs -----------------------------------------------------------------


def check_runs(plan: observe.Plan, categories: tuple[str, ...], cores: int) -> list[tuple[str, dict, float]]:
    """(function, kwargs, wall seconds) of one run per function and workload the ``categories`` use."""
    calls = observe.observe_calls(plan)
    wanted: list[tuple[str, dict, float]] = []
    for name in categories:
        for label in BY_NAME[name].runs:
            function, kwargs = calls[label]
            wanted.append((function, kwargs, OBSERVE.wall_seconds))
    if "speedup" in categories:  # the timed runs: the observed workload, on the timed workers
        wanted.append(("evolve_serial", plan.workload(plan.timed_seeds[0]), SPEEDUP.wall_seconds))
        wanted.append(("evolve_parallel", plan.workload(plan.timed_seeds[0], SPEEDUP.processes), SPEEDUP.wall_seconds))
    if "agent" in categories:
        kwargs = training.workload(plan.training_seeds[0], training.workers(cores))
        wanted.append(("evolve_parallel", kwargs, AGENT.wall_seconds))
    out, shapes = [], set()
    for function, kwargs, wall in wanted:
        shape = (function, kwargs["generations"], kwargs["pop_size"], kwargs["sigma"])
        if shape not in shapes:
            shapes.add(shape)
            out.append((function, kwargs, wall))
    return out


def runs_problem(reference: observe.Reference, categories: tuple[str, ...], cores: int) -> str | None:
    """Why the reference fails the runs a submission of this batch gets (one sentence), or None."""
    where = _shown(paths.reference_notebook())
    loaded = reference.ready()
    if loaded:
        return f"the reference solution in {where} cannot be loaded ({first_line(loaded)}): fix it there"
    made = {}
    for function, kwargs, wall in check_runs(reference.collector.plan, categories, cores):
        run = reference.collector.run(function, kwargs, wall_seconds=wall)
        problem = observe.run_problem(run)
        if problem:
            said = first_line(problem)
            said = said if run["call"] in said else f"{run['call']}: {said}"
            return (
                f"the reference solution in {where} fails a run every submission gets: {said}; "
                "fix it there, then grade again"
            )
        made[(function, kwargs["generations"], kwargs["pop_size"], kwargs["seed"])] = run
    for (function, *shape), run in made.items():
        other = made.get(("evolve_parallel", *shape)) if function == "evolve_serial" else None
        if other and (run["history"] != other["history"] or run["best"] != other["best"]):
            return (
                f"the reference solution in {where} returns different results from {run['call']} and "
                f"{other['call']}, which must agree: fix it there, then grade again"
            )
    return None


def problem(reference: observe.Reference, categories: tuple[str, ...], cores: int) -> str | None:
    """Why nobody can be graded against this reference and release (one sentence), or None."""
    return release_problem(reference.collector.plan) or runs_problem(reference, categories, cores)

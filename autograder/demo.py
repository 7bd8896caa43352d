"""Build submissions from the release notebook: the demo students under ``submitted/`` and
the notebooks the grader's own tests grade.

``python -m autograder.demo --submitted submitted`` rewrites the demo students.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import nbformat

from autograder import extract, paths

DEMO_PARTLY_WRONG = """
def evolve_serial(generations: int, pop_size: int, seed: int, sigma: float = 1.0) -> tuple[dict, list[list[float]]]:
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = [episode(candidate, seed=episode_seed) for candidate in population]
        history.append(returns)
        best = population[int(np.argmax(returns))]
        population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_parallel(generations: int, pop_size: int, seed: int, sigma: float = 1.0,
                    processes: int | None = None) -> tuple[dict, list[list[float]]]:
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:  # the workers start, but nothing is sent to them
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = list(map(partial(episode, seed=episode_seed), population))
            history.append(returns)
            best = population[int(np.argmax(returns))]
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history
"""


def release_notebook() -> nbformat.NotebookNode:
    """The notebook students get: the release copy, or the source with solutions cleared as nbgrader does."""
    release = paths.RELEASE_DIR / paths.NOTEBOOK
    if release.is_file():
        return nbformat.read(release, as_version=4)
    from nbgrader.preprocessors import ClearSolutions

    nb = nbformat.read(paths.reference_notebook(), as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    return nb


def reference_source() -> str:
    """The reference solution's two cells, solution markers removed."""
    cells = extract.cells_by_grade_id(extract.read_notebook(paths.reference_notebook()), extract.STUB_IDS).cells
    text = "\n\n\n".join(cells[gid] for gid in extract.STUB_IDS)
    return (
        "\n".join(
            line for line in text.splitlines() if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
        )
        + "\n"
    )


def split_cells(source: str) -> dict[str, str]:
    """Source of the two solution cells: each stub's ``def`` in its own cell, anything else in the first."""
    tree = ast.parse(source)
    lines = source.splitlines()
    cells = {gid: [] for gid in extract.STUB_IDS}
    for node in tree.body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        text = "\n".join(lines[start : node.end_lineno])
        gid = node.name if isinstance(node, ast.FunctionDef) and node.name in cells else extract.STUB_IDS[0]
        cells[gid].append(text)
    return {gid: "\n\n\n".join(parts) + "\n" for gid, parts in cells.items()}


def with_solution(source: str | None) -> nbformat.NotebookNode:
    """The release notebook with its solution cells replaced by ``source`` (None: left as released)."""
    nb = release_notebook()
    if source is None:
        return nb
    cells = split_cells(source)
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and gid in cells:
            cell.source = cells[gid]
    return nb


def write_submission(submitted: Path, student: str, nb: nbformat.NotebookNode) -> Path:
    """Write ``nb`` where nbgrader's submitted layout puts ``student``'s notebook."""
    path = paths.submission_notebook(submitted, student)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


DEMO_STUDENTS = {
    "demo-full-marks": reference_source,
    "demo-partly-wrong": lambda: DEMO_PARTLY_WRONG.lstrip(),
    "demo-untouched-stub": lambda: None,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--submitted",
        type=Path,
        default=paths.ROOT / "submitted",
        help="folder the demo students are written to (default: submitted/ of the project)",
    )
    args = parser.parse_args(argv)
    for student, source in DEMO_STUDENTS.items():
        print(write_submission(args.submitted, student, with_solution(source())))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""nbgrader's gradebook rebuilt from the per-student results, so `nbgrader export` and the
formgrader show the same scores as grades.csv.

The notebook's answers graded by hand (the written question) are in it too, apart from the
autograded points: a rebuild keeps every score an instructor has already given in the formgrader,
and marks the others as waiting for a manual grade."""

from __future__ import annotations

import contextlib
import functools
import os
import tempfile
import warnings
from datetime import datetime
from pathlib import Path

from autograder import paths
from autograder.categories import CATEGORIES, POINTS
from autograder.paths import ASSIGNMENT, NOTEBOOK

NOTEBOOK_NAME = NOTEBOOK.removesuffix(".ipynb")


def grade_cell_id(category: str) -> str:
    """The grade_id of the notebook's graded test cell for ``category``."""
    return f"test_{category}"


def hand_graded_cells(notebook: Path | None = None) -> dict[str, float]:
    """grade_id -> points of the trusted notebook's answers graded by hand (nbgrader's graded markdown answers)."""
    import nbformat

    nb = nbformat.read(notebook or paths.setup_notebook(), as_version=4)
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution") and meta.get("grade_id"):
            cells[meta["grade_id"]] = float(meta.get("points", 0))
    return cells


def manual_scores(path: Path, cells) -> dict[tuple[str, str], float]:
    """(student_id, grade_id) -> the score given by hand in the gradebook at ``path`` to each of ``cells``."""
    from nbgrader.api import Gradebook

    if not Path(path).is_file():
        return {}
    given = {}
    with nbgrader_stamps_in_process(), warnings.catch_warnings(), Gradebook(f"sqlite:///{path}") as gb:
        warnings.simplefilter("ignore")
        for student in gb.students:
            for cell in cells:
                try:
                    grade = gb.find_grade(cell, NOTEBOOK_NAME, ASSIGNMENT, student.id)
                except Exception:  # nbgrader's MissingEntry: no submission, or a cell that gradebook lacked
                    continue
                if grade.manual_score is not None:
                    given[(student.id, cell)] = float(grade.manual_score)
    return given


def rebuild(
    path: Path, rows: list[tuple[str, dict]], hand_graded: dict[str, float] | None = None, *, policy=None
) -> None:
    """Write a fresh gradebook at ``path`` holding every ``(student_id, results)`` pair.

    ``hand_graded`` (default: the trusted notebook's) are the answers graded by hand: scores already given
    to them in the gradebook at ``path`` are kept, the others wait for a manual grade. The course's due
    date (``policy``, a ``late.LatePolicy``), each student's extension and each late penalty go in too,
    so ``nbgrader export`` shows the penalties and scores grades.csv shows.
    """
    from nbgrader.api import Gradebook  # seconds to import: only when a gradebook is written

    path = Path(path)
    hand_graded = hand_graded_cells() if hand_graded is None else hand_graded
    kept = manual_scores(path, hand_graded)
    fd, tmp = tempfile.mkstemp(prefix=".gradebook.", suffix=".db", dir=path.parent)
    os.close(fd)
    try:
        with nbgrader_stamps_in_process(), warnings.catch_warnings(), Gradebook(f"sqlite:///{tmp}") as gb:
            warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy session warnings, harmless here
            due = policy.assignment_due if policy is not None else None
            gb.update_or_create_assignment(ASSIGNMENT, **({"duedate": due} if due else {}))
            gb.update_or_create_notebook(NOTEBOOK_NAME, ASSIGNMENT)
            for category in CATEGORIES:
                gb.update_or_create_grade_cell(
                    grade_cell_id(category), NOTEBOOK_NAME, ASSIGNMENT, max_score=POINTS[category], cell_type="code"
                )
            for cell, points in hand_graded.items():
                gb.update_or_create_grade_cell(cell, NOTEBOOK_NAME, ASSIGNMENT, max_score=points, cell_type="markdown")
                gb.update_or_create_solution_cell(cell, NOTEBOOK_NAME, ASSIGNMENT)
            for student, results in sorted(rows):
                gb.update_or_create_student(student)
                extra = results.get("extra_data", {})
                stamp = _timestamp(extra.get("timestamp"))
                when = {"timestamp": stamp} if stamp else {}
                if due and policy.extensions.get(student):
                    when["extension"] = policy.extension(student)
                gb.add_submission(ASSIGNMENT, student, **when)
                submitted = gb.find_submission_notebook(NOTEBOOK_NAME, ASSIGNMENT, student)
                submitted.late_submission_penalty = float((extra.get("late") or {}).get("penalty") or 0.0)
                scores = extra.get("category_scores", {})
                for category in CATEGORIES:
                    grade = gb.find_grade(grade_cell_id(category), NOTEBOOK_NAME, ASSIGNMENT, student)
                    grade.auto_score = float(scores.get(category, 0.0))
                    grade.needs_manual_grade = False
                for cell in hand_graded:
                    grade = gb.find_grade(cell, NOTEBOOK_NAME, ASSIGNMENT, student)
                    grade.manual_score = kept.get((student, cell))
                    grade.needs_manual_grade = grade.manual_score is None
            gb.db.commit()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _timestamp(text: str | None) -> datetime | None:
    """A results.json timestamp (nbgrader's ``2025-03-01 12:00:00.000000 UTC`` or ISO 8601) as naive UTC,
    parsed by nbgrader's own reader; None when absent or unreadable (the submission then gets none)."""
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text.strip()) if text else None
    except (ValueError, OverflowError):
        return None


@functools.cache
def _alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, read from its migration scripts in this process."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


@contextlib.contextmanager
def nbgrader_stamps_in_process():
    """While open, nbgrader stamps a new gradebook with its schema revision read in this process.

    nbgrader asks a new ``alembic`` process for that revision each time it creates a database
    (about 4 s, paid by every rebuild); it also needs the environment's ``bin`` on PATH for
    that, which `make grade` does not activate. The revision is the same for one installed
    nbgrader, so it is read once, from the same scripts."""
    from nbgrader import api

    asked = api.get_alembic_version
    api.get_alembic_version = _alembic_head
    try:
        yield
    finally:
        api.get_alembic_version = asked

"""Build the student release from the instructor source with nbgrader: ``python -m tools.release``.

``make assignment`` runs this. nbgrader's ``generate_assignment`` turns
``solutions/neuroevolution/`` into ``assignment/neuroevolution/``: solutions become
``raise NotImplementedError()`` stubs, hidden tests and outputs disappear, and the modules the
notebook imports from beside it (``evolution.py``, ``parallel_demos.py``, ``hints.py``) and the
images are copied as they are, so the release runs in place. Generation always happens in a scratch folder and only the
generated files are then written (or, with ``--check``, compared), so the output depends on the
source alone and a re-run reproduces the committed files byte for byte.

Exit status: 0 on success; 1 when ``--check`` finds the committed release stale or the release
would leak solution content; 2 when nbgrader cannot build it.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tempfile
from pathlib import Path

from autograder.categories import ALL as CATEGORIES
from autograder.paths import ASSIGNMENT as ASSIGNMENT_ID
from autograder.paths import LESSON_MODULES, NOTEBOOK, RELEASE_DIR, ROOT, SOURCE_DIR

# The files every release must hold: the notebook and the modules it imports from beside it.
REQUIRED = (NOTEBOOK, *LESSON_MODULES)
# What a release may hold: those files and the notebook's images.
ALLOWED = (*REQUIRED, "assets/*.png", "assets/*.jpg", "assets/*.gif", "assets/*.svg")
# Text that exists only in the instructor source; any of it in the release is a leak.
SOURCE_ONLY_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


class ReleaseError(Exception):
    """The release cannot be built; the message says what to do."""


class UnsafeRelease(ReleaseError):
    """The release was built but must not be published (stray files, instructor-only content)."""


def course_config():
    """The settings of ``nbgrader_config.py`` at the repository root."""
    from traitlets.config.loader import PyFileConfigLoader

    config_file = ROOT / "nbgrader_config.py"
    if not config_file.is_file():
        raise ReleaseError(f"{config_file} is missing: restore it from version control")
    return PyFileConfigLoader(config_file.name, path=str(ROOT)).load_config()


def ignored_patterns() -> list[str]:
    """The file patterns nbgrader skips when copying; left alone in the release folder too."""
    return list(course_config().CourseDirectory.ignore)


def is_ignored(relative: Path, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in patterns)


def generate(scratch: Path, *, use_gradebook: bool = False) -> Path:
    """Run nbgrader's generate_assignment with the course settings, writing into ``scratch``.

    The release is a pure function of the source, so by default no gradebook is touched (what
    ``--no-db`` does): the course's one gradebook is the grader's, rebuilt from the results by
    every ``make grade``. ``use_gradebook`` records the assignment there as well, as a plain
    ``nbgrader generate_assignment`` would. Returns the generated assignment folder.
    """
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    if not (SOURCE_DIR / NOTEBOOK).is_file():
        raise ReleaseError(f"no instructor notebook at {SOURCE_DIR / NOTEBOOK}: restore it from version control")
    config = course_config()
    config.CourseDirectory.release_directory = str(scratch)  # absolute, so it replaces root/assignment
    config.GenerateAssignment.no_database = not use_gradebook  # what `--no-db` sets
    config.SaveCells.enabled = use_gradebook
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = ASSIGNMENT_ID
    converter = GenerateAssignment(coursedir=coursedir, config=config)
    converter.force = True
    converter.create_assignment = use_gradebook
    if use_gradebook:
        from autograder.term.gradebook import _alembic_on_path

        Path(config.CourseDirectory.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with _alembic_on_path():  # nbgrader runs `alembic` from PATH to stamp a new database
            result = capture_log(converter)
    else:
        result = capture_log(converter)
    if not result["success"]:
        # The informative line is the last exception inside nbgrader's log, not its closing summary.
        lines = [line.strip() for line in (result.get("log") or "").splitlines()]
        causes = [
            line
            for line in lines
            if ": " in line
            and "NbGraderException" not in line
            and line.split(":")[0].endswith(("Error", "Exception", "Entry"))
        ]
        detail = causes[-1] if causes else "no message"
        raise ReleaseError(
            f"nbgrader generate_assignment failed ({detail}); "
            f"run `nbgrader generate_assignment {ASSIGNMENT_ID} --force` for the full log"
        )
    return scratch / ASSIGNMENT_ID


def stamp_points(notebook: Path, *, write: bool = True) -> list[str]:
    """Give each graded test cell of the instructor notebook its category's points from
    ``autograder/categories.py``, the one place they are set; returns what changed (written only if ``write``)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = {
        cell.metadata["nbgrader"].get("grade_id"): cell
        for cell in nb.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    }
    missing = [c.cell_id for c in CATEGORIES if c.cell_id not in cells]
    if missing:
        raise ReleaseError(
            f"{shown(notebook)} has no graded cell {', '.join(missing)}: every category in "
            "autograder/categories.py needs its test cell (nbgrader metadata grade_id test_<category>)"
        )
    changed = []
    for category in CATEGORIES:
        meta = cells[category.cell_id].metadata["nbgrader"]
        if meta.get("points") != category.points:
            changed.append(f"{category.cell_id} {meta.get('points')} -> {category.points} points")
            meta["points"] = category.points
    if changed and write:
        nbformat.write(nb, notebook)
    return changed


def release_files(folder: Path, patterns: list[str]) -> dict[str, bytes]:
    """Every file under ``folder`` that is not ignored, by POSIX relative path."""
    if not folder.is_dir():
        return {}
    files = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not is_ignored(relative, patterns):
            files[relative.as_posix()] = path.read_bytes()
    return files


def audit(files: dict[str, bytes]) -> None:
    """Refuse a release that holds stray files or any instructor-only content."""
    stray = [name for name in files if not any(fnmatch.fnmatch(name, pattern) for pattern in ALLOWED)]
    if stray:
        raise UnsafeRelease(
            f"the release would contain unexpected files {stray}: remove them from {SOURCE_DIR} "
            "or add them to CourseDirectory.ignore in nbgrader_config.py"
        )
    for name in REQUIRED:
        if name not in files:
            raise UnsafeRelease(f"nbgrader produced no {name}: check {SOURCE_DIR}")
    notebook_text = files[NOTEBOOK].decode("utf-8")
    leaked = [marker for marker in SOURCE_ONLY_MARKERS if marker in notebook_text]
    if leaked:
        raise UnsafeRelease(
            f"the released notebook still contains {leaked}: check the marker spelling "
            "(### BEGIN SOLUTION / ### BEGIN HIDDEN TESTS) in the source notebook"
        )


def differences(expected: dict[str, bytes], actual: dict[str, bytes]) -> list[str]:
    """Human-readable list of what differs between two releases, e.g. ``changed: evolution.py``."""
    changed = [name for name in expected if name in actual and actual[name] != expected[name]]
    missing = [name for name in expected if name not in actual]
    extra = [name for name in actual if name not in expected]
    return [
        f"{label}: {', '.join(names)}"
        for label, names in (("changed", changed), ("missing", missing), ("unexpected", extra))
        if names
    ]


def write(expected: dict[str, bytes], folder: Path, patterns: list[str]) -> list[str]:
    """Make ``folder`` hold exactly ``expected`` (ignored files such as saved agents stay).

    Returns the relative paths written or removed.
    """
    touched = []
    for name, content in expected.items():
        target = folder / name
        if not target.is_file() or target.read_bytes() != content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            touched.append(name)
    for name in release_files(folder, patterns):
        if name not in expected:
            (folder / name).unlink()
            touched.append(name)
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    return touched


def build(*, use_gradebook: bool = False) -> dict[str, bytes]:
    """Generate the release in a scratch folder and return its audited files."""
    patterns = ignored_patterns()
    with tempfile.TemporaryDirectory(prefix="release-") as scratch:
        files = release_files(generate(Path(scratch), use_gradebook=use_gradebook), patterns)
    audit(files)
    return files


def shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it, for messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.release",
        description=f"Generate {shown(RELEASE_DIR)} from {shown(SOURCE_DIR)} with nbgrader's generate_assignment.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="do not write anything; exit 1 if the committed release differs from a fresh one",
    )
    args = parser.parse_args(argv)
    where = shown(RELEASE_DIR)
    try:
        stamped = stamp_points(SOURCE_DIR / NOTEBOOK, write=not args.check)
        if stamped and args.check:
            print(
                f"{shown(SOURCE_DIR / NOTEBOOK)} disagrees with autograder/categories.py ({'; '.join(stamped)}): "
                "run `make assignment` and commit the result",
                file=sys.stderr,
            )
            return 1
        if stamped:
            print(f"{shown(SOURCE_DIR / NOTEBOOK)}: points from autograder/categories.py ({'; '.join(stamped)})")
        expected = build()
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, UnsafeRelease) else 2
    patterns = ignored_patterns()
    if args.check:
        stale = differences(expected, release_files(RELEASE_DIR, patterns))
        if stale:
            print(
                f"{where} is stale ({'; '.join(stale)}): run `make assignment` and commit the result", file=sys.stderr
            )
            return 1
        print(f"{where} is up to date with {shown(SOURCE_DIR)}")
        return 0
    touched = write(expected, RELEASE_DIR, patterns)
    summary = f"updated {', '.join(touched)}" if touched else "already up to date"
    print(f"{where}: {', '.join(expected)} ({summary})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Build the student release from the instructor source with nbgrader: ``python -m tools.release``.

``make assignment`` runs this. nbgrader's ``generate_assignment`` turns
``solutions/neuroevolution/`` into ``assignment/neuroevolution/``: solutions become
``raise NotImplementedError()`` stubs, hidden tests and outputs disappear, and the modules the
notebook imports from beside it (``evolution.py``, ``parallel_demos.py``, ``hints.py``) and the
images are copied as they are, so the release runs in place. Generation always happens in a scratch folder and only the
generated files are then written (or, with ``--check``, compared), so the output depends on the
source alone and a re-run reproduces the committed files byte for byte.

Before generating, it stamps the instructor notebook from the places each value is set: the graded
test cells' points from ``autograder/categories.py``; the first cell's package versions (the ones
the notebook checks for, and its Colab cell installs) from ``requirements.lock`` and the oldest
ones from ``pyproject.toml``; and, with ``--kit-url``, the course's link to the student kit in the
Colab cell.

Exit status: 0 on success; 1 when ``--check`` finds the committed release stale or the release
would leak solution content; 2 when nbgrader cannot build it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from autograder.categories import ALL as CATEGORIES
from autograder.paths import ASSIGNMENT as ASSIGNMENT_ID
from autograder.paths import LESSON_MODULES, NOTEBOOK, RELEASE_DIR, ROOT, SOURCE_DIR

# The files every release must hold: the notebook and the modules it imports from beside it.
REQUIRED = (NOTEBOOK, *LESSON_MODULES)
# What a release may hold: those files and the notebook's images.
ALLOWED = (*REQUIRED, "assets/*.png", "assets/*.jpg", "assets/*.gif", "assets/*.svg")
# Text that exists only in the instructor source; any of it in the release is a leak.
SOURCE_ONLY_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
# What the notebook imports from PyPI: its first cell checks for them, its Colab cell installs them, and the
# student kit pins them with the rest of what it needs.
NOTEBOOK_PACKAGES = ("numpy", "gymnasium", "matplotlib")
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
# The notebook's setup cells, by nbgrader grade_id: the first code cell, which checks where the notebook runs,
# and the Colab cell below it, which fetches the kit there.
SURROUNDINGS_ID = "check_surroundings"
COLAB_ID = "colab_kit"
PINS_BLOCK = re.compile(r"^PINNED = \{\n.*?^\}\nOLDEST = \{[^\n]*\}$", re.M | re.S)
KIT_URL_VALUE = re.compile(r'^(KIT_URL = )("[^"\n]*")', re.M)


class ReleaseError(Exception):
    """The release cannot be built; the message says what to do."""


class UnsafeRelease(ReleaseError):
    """The release was built but must not be published (stray files, instructor-only content)."""


def course_config():
    """The settings of ``nbgrader_config.py`` at the repository root."""
    from autograder import paths

    try:
        return paths.course_config()
    except FileNotFoundError as exc:
        raise ReleaseError(str(exc)) from None


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
        from autograder.term.gradebook import nbgrader_stamps_in_process

        Path(config.CourseDirectory.db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        with nbgrader_stamps_in_process():  # nbgrader stamps the new database with its schema revision
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


def notebook_pins(
    lock_text: str, requires_python: str, packages: tuple[str, ...] = NOTEBOOK_PACKAGES
) -> dict[tuple[int, int], dict[str, str]]:
    """The lock's version of each of ``packages``, by Python version: ``{(3, 10): {"numpy": "2.2.6", ...}, ...}``.

    A row holds from its Python version on, up to the next row; the last one also for Pythons newer than any
    the lock's markers name. Rows are those Python versions (from ``requires_python``'s oldest) where some
    package's pin changes.
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet

    wanted = {package.lower() for package in packages}
    found: dict[str, list[Requirement]] = {package: [] for package in wanted}
    for line in lock_text.splitlines():
        name = re.split(r"[=<>;\s\[]", line.strip(), maxsplit=1)[0].lower()
        if line[:1].isspace() or name not in wanted:
            continue
        try:
            found[name].append(Requirement(line.strip()))
        except InvalidRequirement as exc:
            raise ReleaseError(f"{LOCK.name} has a line pip cannot read ({exc}): run `make lock`") from None
    missing = sorted(name for name, lines in found.items() if not lines)
    if missing:
        raise ReleaseError(f"{LOCK.name} pins no {', '.join(missing)}: run `make lock`")
    supported = [minor for minor in range(40) if SpecifierSet(requires_python).contains(f"3.{minor}.0")]
    if not supported:
        raise ReleaseError(f"{PYPROJECT.name}'s requires-python {requires_python!r} admits no Python 3")
    # A pin can change only at a Python version some marker names; past the last one, nothing changes.
    markers = " ".join(str(r.marker) for lines in found.values() for r in lines)
    last = max([supported[0], *(int(minor) for minor in re.findall(r"[\"']3\.(\d+)", markers))])
    rows: dict[tuple[int, int], dict[str, str]] = {}
    for minor in range(supported[0], last + 1):
        python = {"python_version": f"3.{minor}", "python_full_version": f"3.{minor}.0"}
        row = {}
        for package in packages:
            versions = [
                str(spec.version)
                for r in found[package.lower()]
                if r.marker is None or r.marker.evaluate(python)
                for spec in r.specifier
                if spec.operator == "=="
            ]
            if len(versions) != 1:
                raise ReleaseError(
                    f"{LOCK.name} gives {package} {len(versions)} pinned versions for Python 3.{minor}: run `make lock`"
                )
            row[package] = versions[0]
        if not rows or row != list(rows.values())[-1]:
            rows[(3, minor)] = row
    return rows


def oldest_versions(dependencies: list[str], packages: tuple[str, ...] = NOTEBOOK_PACKAGES) -> dict[str, str]:
    """The lowest version of each of ``packages`` the project declares it works with (its ``>=`` bound)."""
    from packaging.requirements import Requirement

    bounds = {}
    for dependency in dependencies:
        requirement = Requirement(dependency)
        lowest = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if requirement.name.lower() in packages and lowest:
            bounds[requirement.name.lower()] = lowest[0]
    missing = [package for package in packages if package not in bounds]
    if missing:
        raise ReleaseError(
            f"{PYPROJECT.name} gives no lowest version (>=) for {', '.join(missing)}: add one to its dependencies"
        )
    return {package: bounds[package] for package in packages}


def pins_block(pinned: dict[tuple[int, int], dict[str, str]], oldest: dict[str, str]) -> str:
    """The PINNED and OLDEST assignments of the notebook's first cell, as Python source."""
    rows = "".join(f"    {python}: {json.dumps(pins, separators=(', ', ': '))},\n" for python, pins in pinned.items())
    return f"PINNED = {{\n{rows}}}\nOLDEST = {json.dumps(oldest, separators=(', ', ': '))}"


def course_versions() -> tuple[dict[tuple[int, int], dict[str, str]], dict[str, str]]:
    """The notebook's package versions from the course's own files: (pinned per Python, oldest supported)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the lock installs tomli there
        import tomli as tomllib

    for path in (LOCK, PYPROJECT):
        if not path.is_file():
            raise ReleaseError(f"{path} is missing: restore it from version control")
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    pinned = notebook_pins(LOCK.read_text(encoding="utf-8"), project.get("requires-python", ">=3"))
    return pinned, oldest_versions(project.get("dependencies", []))


def valid_kit_url(url: str) -> str:
    """``url`` if it can be the kit's download link (http or https, nothing to escape); "" clears it."""
    parsed = urlparse(url)
    if url and (parsed.scheme not in ("http", "https") or not parsed.netloc or re.search(r'[\s"\\]', url)):
        raise ReleaseError(
            f"--kit-url {url!r} is not a web address: give the https:// link students download "
            "neuroevolution-student.zip from (or '' for none)"
        )
    return url


def stamp_setup(notebook: Path, *, kit_url: str | None = None, write: bool = True) -> list[str]:
    """Give the notebook's first cell the course's package versions and, when ``kit_url`` is given, its Colab
    cell that link; returns what changed (written only if ``write``)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in nb.cells}
    changed = []
    wanted = [(SURROUNDINGS_ID, PINS_BLOCK, pins_block(*course_versions()), "package versions")]
    if kit_url is not None:
        wanted.append((COLAB_ID, KIT_URL_VALUE, rf"\g<1>{json.dumps(valid_kit_url(kit_url))}", "kit URL"))
    for grade_id, pattern, replacement, what in wanted:
        cell = cells.get(grade_id)
        if cell is None or not pattern.search(cell.source):
            raise ReleaseError(
                f"{shown(notebook)} has no cell with grade_id {grade_id} holding the {what}: "
                "restore that cell from version control"
            )
        source = pattern.sub(lambda match, r=replacement: match.expand(r), cell.source, count=1)
        if source != cell.source:
            changed.append(f"{grade_id}: {what}")
            cell.source = source
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
    parser.add_argument(
        "--kit-url",
        metavar="URL",
        help="the web address students download neuroevolution-student.zip from: the notebook's Colab cell "
        "fetches the kit from it (kept in the instructor notebook until changed; '' removes it)",
    )
    args = parser.parse_args(argv)
    where = shown(RELEASE_DIR)
    source = SOURCE_DIR / NOTEBOOK
    try:
        if not source.is_file():
            raise ReleaseError(f"no instructor notebook at {source}: restore it from version control")
        stamped = stamp_points(source, write=not args.check)
        stamped += stamp_setup(source, kit_url=args.kit_url, write=not args.check)
        if stamped and args.check:
            print(
                f"{shown(source)} disagrees with autograder/categories.py, requirements.lock, pyproject.toml or "
                f"--kit-url ({'; '.join(stamped)}): run `make assignment` and commit the result",
                file=sys.stderr,
            )
            return 1
        if stamped:
            print(f"{shown(source)}: stamped {'; '.join(stamped)}")
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

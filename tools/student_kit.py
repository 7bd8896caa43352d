"""Build the student kit: ``python -m tools.student_kit`` (``make student-kit``).

Writes ``dist/neuroevolution-student/`` and ``dist/neuroevolution-student.zip``, one flat folder
holding everything a student needs and nothing else:

- the release, from ``assignment/neuroevolution/`` (run ``make assignment`` first when
  ``solutions/`` changed): the notebook, its images and the modules it imports from beside it,
  ``evolution.py``, ``parallel_demos.py`` (the functions Part 1 sends to worker processes) and
  ``hints.py`` (the student-facing messages the tests and the grader share);
- ``README.md``, from ``kit/``;
- ``check.py`` (``tools/selfcheck.py``), the standalone self-check;
- ``render.py``;
- ``requirements.txt``: the lock's pinned versions of the packages the kit needs, with their
  dependencies, taken from ``requirements.lock``.

The builder refuses to write a kit that holds solution or hidden-test markers, or that imports
the grader. The zip is reproducible: same inputs, same bytes.

Exit status: 0 on success, 1 when the kit would be unsafe or an input is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import zipfile
from pathlib import Path

from autograder.paths import ROOT
from tools import release

KIT_NAME = "neuroevolution-student"
DIST = ROOT / "dist"
KIT_SOURCES = ROOT / "kit"
LOCK = release.LOCK
# File in the kit -> where it comes from in the repository (the release is added separately).
COPIED = {
    "README.md": KIT_SOURCES / "README.md",
    "check.py": ROOT / "tools" / "selfcheck.py",
    "render.py": ROOT / "render.py",
}
# What the kit installs: the notebook's libraries, render.py's, the self-check's, and JupyterLab to open the notebook.
REQUIREMENT_ROOTS = (
    *release.NOTEBOOK_PACKAGES,
    "pygame-ce",
    "pillow",
    "nbformat",
    "nbclient",
    "ipykernel",
    "jupyterlab",
)
# Text no kit file may hold: instructor-only regions, and imports of the grader's own modules.
FORBIDDEN = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
GRADER_IMPORT = re.compile(r"^\s*(from|import)\s+(autograder|tools|solutions)\b", re.M)
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # a fixed timestamp, so the zip depends only on its contents


class KitError(Exception):
    """The kit cannot be built safely; the message says what to do."""


def kit_requirements(lock_text: str, roots: tuple[str, ...] = REQUIREMENT_ROOTS) -> str:
    """The lock's requirement lines for ``roots`` and everything they depend on, in lock order.

    ``lock_text`` is a ``uv export`` requirements file: each ``name==version [; marker]`` line is
    followed by ``# via`` comments naming the packages that need it. A package belongs to the kit
    when it is a root or one of the packages that need it belongs to the kit.
    """
    entries = []  # (name, requirement line, names of the packages that need it)
    for line in lock_text.splitlines():
        stripped = line.strip()
        if stripped and not line[0].isspace() and not stripped.startswith(("#", "-")):
            entries.append((re.split(r"[=<>;\s\[]", stripped, maxsplit=1)[0].lower(), stripped, set()))
        elif stripped.startswith("#") and entries:
            parent = stripped.lstrip("#").strip().removeprefix("via").strip()
            if parent:
                entries[-1][2].add(parent.split()[0].lower())
    wanted = {root.lower() for root in roots}
    missing = wanted - {name for name, _, _ in entries}
    if missing:
        raise KitError(f"{LOCK.name} pins no {', '.join(sorted(missing))}: run `make lock`")
    grew = True
    while grew:
        grew = False
        for name, _, parents in entries:
            if name not in wanted and parents & wanted:
                wanted.add(name)
                grew = True
    lines = [line for name, line, _ in entries if name in wanted]
    return (
        "# The course's pinned versions (from its requirements.lock): pip install -r requirements.txt\n"
        + "\n".join(lines)
        + "\n"
    )


def kit_files() -> dict[str, bytes]:
    """Every file of the kit, by its path inside the kit folder."""
    files = release.release_files(release.RELEASE_DIR, release.ignored_patterns())
    missing = [name for name in release.REQUIRED if name not in files]
    if missing:
        raise KitError(f"{release.RELEASE_DIR} lacks {', '.join(missing)}: run `make assignment`")
    for name, source in COPIED.items():
        if not source.is_file():
            raise KitError(f"{source} is missing: restore it from version control")
        files[name] = source.read_bytes()
    files["requirements.txt"] = kit_requirements(LOCK.read_text(encoding="utf-8")).encode()
    return dict(sorted(files.items()))


def audit(files: dict[str, bytes]) -> None:
    """Refuse a kit holding instructor-only text or code that needs the grader."""
    for name, content in files.items():
        if not name.endswith((".py", ".ipynb", ".md", ".txt")):
            continue
        text = content.decode("utf-8")
        found = [marker for marker in FORBIDDEN if marker in text]
        if found:
            raise KitError(
                f"{name} would give students {found[0]!r} content: rebuild the release with "
                "`make assignment` and keep such text out of the kit's files"
            )
        if name.endswith(".py") and GRADER_IMPORT.search(text.replace("from autograder import hints", "")):
            raise KitError(f"{name} imports the course repository's own modules, which the kit does not hold")


def write_kit(files: dict[str, bytes], dist: Path = DIST) -> tuple[Path, Path]:
    """Write the kit folder and its zip under ``dist``, replacing earlier ones; returns both paths."""
    folder, archive = dist / KIT_NAME, dist / f"{KIT_NAME}.zip"
    if folder.exists():
        shutil.rmtree(folder)
    for name, content in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, content in files.items():
            info = zipfile.ZipInfo(f"{KIT_NAME}/{name}", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zipped.writestr(info, content)
    return folder, archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.student_kit",
        description="Build the student kit (the release, Part 1's module, the self-check, render.py and the "
        "pinned requirements) as a folder and a zip.",
    )
    parser.add_argument(
        "--dist", type=Path, default=DIST, help=f"folder to write {KIT_NAME}/ and {KIT_NAME}.zip into (default: dist/)"
    )
    args = parser.parse_args(argv)
    try:
        files = kit_files()
        audit(files)
    except KitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    args.dist.mkdir(parents=True, exist_ok=True)
    folder, archive = write_kit(files, args.dist)
    print(f"wrote {folder} ({len(files)} files) and {archive} ({archive.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

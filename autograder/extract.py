"""Turn a notebook's graded cells into an importable Python module.

Only the cells the grader asks for, found by their nbgrader ``grade_id``, go into the
module: whatever else a student added, moved or deleted in the notebook is ignored. A
module on disk (not ``__main__``) is what lets ``Pool`` pickle the student's functions by
reference under every start method.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 32 * 2**20
"""Largest notebook read (the release is about 100 KiB; outputs with images stay far below this)."""

SETUP_ID = "practical_setup"
STUB_IDS = ("evolve_serial", "evolve_parallel")


class NotebookError(Exception):
    """The file is not a notebook the grader can read; the message says what to do."""


@dataclass
class Extracted:
    """The sources found in one notebook, by ``grade_id``; ``missing`` lists ids not found."""

    cells: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    """Ids carried by more than one code cell."""


def _read_regular(path: Path) -> bytes:
    """The bytes of ``path``, refusing a symbolic link (it would read whatever it points to) or a special file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise NotebookError(
            f"no notebook at {path.name}: submit neuroevolution.ipynb in the neuroevolution folder"
        ) from None
    except OSError as exc:
        if path.is_symlink():
            raise NotebookError(
                f"{path.name} is a symbolic link, not a notebook: submit the file itself "
                "(a link points to a file on your own computer, which the grader does not read)"
            ) from None
        raise NotebookError(f"{path.name} cannot be read ({exc.strerror}): submit it again") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError(f"{path.name} is not a regular file: submit the notebook file itself")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(
                f"{path.name} is {info.st_size / 2**20:.0f} MiB, more than the "
                f"{MAX_NOTEBOOK_BYTES // 2**20} MiB allowed: clear the outputs (Kernel > Restart & "
                "Clear Output), save and submit again"
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            return fh.read(MAX_NOTEBOOK_BYTES + 1)
    finally:
        os.close(fd)


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read and validate ``path`` as a v4 notebook, or raise :class:`NotebookError`."""
    path = Path(path)
    if path.is_symlink():
        _read_regular(path)  # raises with the link message
    for folder in (path.parent, path.parent.parent):
        if folder.is_symlink():
            raise NotebookError(
                f"the folder {folder.name} is a symbolic link: submit the notebook itself, in a real folder"
            )
    data = _read_regular(path)
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # JSON errors, wrong encodings, wrong versions
        raise NotebookError(
            f"{path.name} is not a valid notebook ({type(exc).__name__}: {exc}); "
            "re-download it or restore it from a checkpoint, then submit again"
        ) from None
    return nb


def cells_by_grade_id(nb: nbformat.NotebookNode, grade_ids: tuple[str, ...], *, strict: bool = True) -> Extracted:
    """The source of the code cell carrying each nbgrader ``grade_id``.

    ``strict``: two cells with the same id raise :class:`NotebookError` (which one is the answer
    cannot be known); otherwise the first one wins and the id is listed in ``duplicated``.
    """
    found = Extracted()
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if cell.get("cell_type") != "code" or gid not in grade_ids:
            continue
        if gid in found.cells:
            found.duplicated.append(gid)
            continue
        source = cell.get("source", "")
        found.cells[gid] = "".join(source) if isinstance(source, list) else str(source)
    found.missing = [gid for gid in grade_ids if gid not in found.cells]
    if strict and found.duplicated:
        gid = found.duplicated[0]
        raise NotebookError(
            f"two cells carry grade_id {gid}: keep your code in one of them and delete the "
            "other (a copied cell keeps the original's grade_id)"
        )
    return found


def build_module(setup_source: str, stub_sources: dict[str, str]) -> str:
    """Module text: the trusted setup cell, then each stub cell in ``STUB_IDS`` order."""
    parts = ["# Generated by the autograder from the submitted notebook.", setup_source]
    for gid in STUB_IDS:
        if gid in stub_sources:
            parts.append(f"# --- cell {gid} ---\n{stub_sources[gid]}")
    return "\n\n".join(parts) + "\n"


def write_module(notebook: Path, setup_notebook: Path, out: Path) -> Extracted:
    """Write the module for ``notebook`` to ``out``, with the setup cell taken from ``setup_notebook``.

    Returns what was found in ``notebook``; raises :class:`NotebookError` if either cannot be read.
    """
    setup = cells_by_grade_id(read_notebook(setup_notebook), (SETUP_ID,))
    if setup.missing:
        raise NotebookError(f"{setup_notebook} has no cell with grade_id {SETUP_ID!r}")
    stubs = cells_by_grade_id(read_notebook(notebook), STUB_IDS)
    Path(out).write_text(build_module(setup.cells[SETUP_ID], stubs.cells), encoding="utf-8")
    return stubs

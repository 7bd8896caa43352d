"""Grades out of the grader: a per-part table, or an LMS gradebook file filled from a roster.

``python -m autograder export`` (``make export``) writes ``OUTPUT/export.csv``: one row per
student with a column per part, and one per answer graded by hand in the formgrader. ``--roster
FILE`` (a gradebook exported from Canvas, Moodle, ...) writes ``OUTPUT/lms-upload.csv`` instead: the roster's identifying columns, in its order, and
this assignment's score column; roster students without a submission keep an empty score, and
graded students missing from the roster are listed, never dropped silently. Every cell is
written through ``spreadsheet.csv_text``, so no id or roster cell opens as a formula.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from autograder import paths
from autograder.categories import CATEGORIES, TOTAL
from autograder.results import read_results, write_atomic
from autograder.spreadsheet import csv_text

# Columns an LMS uses to recognise a student (Canvas, Moodle, Blackboard, Gradescope rosters).
IDENTIFYING = {
    "student",
    "name",
    "full name",
    "id",
    "sis user id",
    "sis login id",
    "integration id",
    "root account",
    "section",
    "first name",
    "last name",
    "surname",
    "email",
    "email address",
    "id number",
    "username",
    "user id",
    "student id",
    "student_id",
    "sid",
    "first_name",
    "last_name",
    "login id",
}


class ExportError(Exception):
    """The export cannot be written; the message says what to do."""


@dataclass
class Written:
    path: Path
    rows: int
    graded: int
    not_in_roster: list[str] = field(default_factory=list)
    roster_without_grade: int = 0
    id_column: str | None = None
    """The roster column(s) students were found through, with how many each: "'SIS User ID' (28) and ..."."""
    column: str | None = None

    def describe(self) -> str:
        if self.id_column is None:
            return f"wrote {self.path}: {self.rows} students, {self.graded} graded, a column per part"
        lines = [
            f"wrote {self.path}: {self.rows} roster students, {self.graded} with a score in column "
            f"{self.column!r} (students matched on {self.id_column}); "
            f"{self.roster_without_grade} without a submission keep an empty score"
        ]
        if self.not_in_roster:
            lines.append(
                f"warning: graded but not in the roster, so not in this file: {', '.join(self.not_in_roster)} "
                "(their grades are in export.csv; check the ids they were collected under)"
            )
        return "\n".join(lines)


def graded_results(output: Path) -> dict[str, dict]:
    return {p.parent.name: doc for p in sorted(Path(output).glob("*/results.json")) if (doc := read_results(p))}


@dataclass
class HandGrades:
    """The answers graded by hand (nbgrader's formgrader) and the scores given so far."""

    cells: dict[str, float] = field(default_factory=dict)
    """grade_id -> points of each hand-graded answer."""
    given: dict[tuple[str, str], float] = field(default_factory=dict)
    """(student_id, grade_id) -> the score given by hand."""

    @classmethod
    def read(cls, output: Path) -> HandGrades:
        from autograder.term import gradebook

        cells = gradebook.hand_graded_cells()
        return cls(cells, gradebook.manual_scores(Path(output) / "gradebook.db", cells))

    def row(self, student: str, graded: bool) -> list[str]:
        """A graded student's hand scores, "ungraded" where none is given yet; empty cells for one not graded."""
        if not graded:
            return [""] * len(self.cells)
        return [f"{self.given[(student, c)]:g}" if (student, c) in self.given else "ungraded" for c in self.cells]


def part_table(results: dict[str, dict], students: list[str], hand: HandGrades | None = None) -> str:
    """CSV text: student_id, timestamp, a column per part, the raw score, the late penalty, the score (after it),
    max_score, status, how the submission stands against the due date, and a column per answer graded by hand
    (``<grade_id> (by hand, of N)``: apart from the autograded score, which it never changes)."""
    hand = hand or HandGrades()
    table = [
        [
            "student_id",
            "timestamp",
            *CATEGORIES,
            "raw_score",
            "late_penalty",
            "score",
            "max_score",
            "status",
            "late",
            *(f"{cell} (by hand, of {points:g})" for cell, points in hand.cells.items()),
        ]
    ]
    for student in sorted(set(students) | set(results)):
        doc = results.get(student)
        if doc is None:
            table.append(
                [student, "", *[""] * len(CATEGORIES), "", "", "", TOTAL, "not graded", "", *hand.row(student, False)]
            )
            continue
        extra = doc.get("extra_data") or {}
        scores = extra.get("category_scores") or {}
        graded = extra.get("categories") or list(scores)
        cells = [f"{scores.get(c, 0):g}" if c in graded else "" for c in CATEGORIES]
        status = (
            "graded" if set(graded) >= set(CATEGORIES) else "graded: " + ",".join(c for c in CATEGORIES if c in graded)
        )
        late = extra.get("late") or {}
        penalty = float(late.get("penalty") or 0)
        table.append(
            [
                student,
                extra.get("timestamp") or "",
                *cells,
                f"{float(extra.get('raw_score', float(doc.get('score') or 0) + penalty)):g}",
                f"{penalty:g}",
                f"{float(doc.get('score') or 0):g}",
                TOTAL,
                status,
                late.get("headline") or "",
                *hand.row(student, True),
            ]
        )
    return csv_text(table)


def read_roster(path: Path) -> tuple[list[str], list[dict]]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot read the roster {path} ({exc}): pass the CSV your LMS exported") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise ExportError(f"the roster {path} has no header row: pass the CSV your LMS exported")
    return list(reader.fieldnames), list(reader)


def _key(value: str | None) -> str:
    """A roster cell or collected id as compared: trimmed, case-insensitive (emails, logins)."""
    return (value or "").strip().casefold()


def match_roster(
    header: list[str], rows: list[dict], students: set[str], wanted: str | None
) -> tuple[dict[int, str], dict[str, int]]:
    """(roster row index -> collected id, roster column -> students matched through it).

    Students are found through whichever column holds their collected id (SIS User ID, SIS Login ID,
    email, ...): a class collected from Gradescope mixes SIDs with the emails of those who gave none.
    The column matching the most students is tried first in every row; ``wanted`` (``--id-column``)
    restricts the join to that one column."""
    if wanted and wanted not in header:
        raise ExportError(f"the roster has no column {wanted!r} (it has {', '.join(header)})")
    by_key: dict[str, str] = {}
    for student in students:
        by_key.setdefault(_key(student), student)
    columns = [wanted] if wanted else header
    overlap = {name: sum(_key(row.get(name)) in by_key for row in rows) for name in columns}
    order = sorted((c for c in columns if overlap[c]), key=lambda c: -overlap[c])
    if not order:
        raise ExportError(
            f"no roster column holds the graded students' ids: pass --id-column NAME (columns: {', '.join(header)})"
        )
    matched: dict[int, str] = {}
    used: dict[str, int] = {}
    taken: set[str] = set()
    for index, row in enumerate(rows):
        for name in order:
            student = by_key.get(_key(row.get(name)))
            if student and student not in taken:
                matched[index] = student
                taken.add(student)
                used[name] = used.get(name, 0) + 1
                break
    return matched, used


def lms_file(results: dict[str, dict], roster: Path, id_column: str | None, column: str | None) -> tuple[str, Written]:
    header, rows = read_roster(roster)
    matched, used = match_roster(header, rows, set(results), id_column)
    name = column or next((h for h in header if h.strip().lower().startswith(paths.ASSIGNMENT)), paths.ASSIGNMENT)
    keep = [h for h in header if h in used or h.strip().lower() in IDENTIFYING]
    table = [[*keep, name]]
    graded, empty, students = 0, 0, 0
    for index, row in enumerate(rows):
        cells = [row.get(h) or "" for h in keep]
        student = matched.get(index)
        if not student and any("points possible" in (row.get(h) or "").lower() for h in header):
            table.append([*cells, TOTAL])  # Canvas's second header row
            continue
        students += 1
        doc = results.get(student) if student else None
        if doc is None:
            empty += 1
            table.append([*cells, ""])
        else:
            graded += 1
            table.append([*cells, f"{float(doc.get('score') or 0):g}"])
    seen = set(matched.values())
    through = " and ".join(f"{c!r} ({n})" for c, n in sorted(used.items(), key=lambda item: -item[1]))
    written = Written(Path(), students, graded, sorted(set(results) - seen), empty, through, name)
    return csv_text(table), written


def run(
    output: Path,
    submitted: Path,
    *,
    roster: Path | None = None,
    to: Path | None = None,
    id_column: str | None = None,
    column: str | None = None,
) -> Written:
    if not graded_results(output):
        raise ExportError(f"no graded results in {output}: run `make grade` (or pass --output) first")
    from autograder import batch, output_lock
    from autograder.term import late

    try:
        batch.refresh_late(output, submitted)  # a changed late policy (an extension granted) applies at once
    except (late.PolicyError, output_lock.Busy) as exc:
        raise ExportError(str(exc)) from None
    results = graded_results(output)
    # The per-part table is always refreshed: it is where every grade is, roster or not.
    students = (
        sorted(p.name for p in Path(submitted).iterdir() if p.is_dir() and not p.name.startswith("."))
        if Path(submitted).is_dir()
        else []
    )
    table = part_table(results, students, HandGrades.read(output))
    write_atomic(Path(output) / "export.csv", table)
    if roster is None:
        target = Path(to or Path(output) / "export.csv")
        if target != Path(output) / "export.csv":
            write_atomic(target, table)
        return Written(target, len(set(students) | set(results)), len(results))
    text, written = lms_file(results, roster, id_column, column)
    written.path = Path(to or Path(output) / "lms-upload.csv")
    write_atomic(written.path, text)
    return written

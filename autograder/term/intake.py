"""Fill nbgrader's submitted layout from what a course actually downloads.

``python -m autograder collect SOURCE --submitted DIR`` reads any of:

- a Gradescope "Export submissions" zip (``submission_metadata.yml`` + ``submission_<id>/``);
- a Canvas-style zip or folder of flat files ``<name>_<user id>_<submission id>_<file>``
  (``<name>_LATE_<user id>_...`` for late work); the id is the user id;
- a folder (or zip) of folders, one per student: ``<id>/...`` or Moodle's
  ``<Full Name>_<participant id>_assignsubmission_file_/...``;
- nbgrader's exchange: ``<exchange>/<course>/inbound/<id>+neuroevolution+<timestamp>[+...]/``.

and writes ``DIR/<id>/neuroevolution/neuroevolution.ipynb`` with nbgrader's ``timestamp.txt``,
keeping each student's latest submission. Symbolic links and unsafe names are refused; every
file that is not used is reported, so nothing disappears without a line in the table. A zip's
headers are never trusted: each entry is unpacked a chunk at a time up to the notebook size cap,
and one that is larger, damaged or unreadable is refused alone, with a row saying what to do.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from autograder import stamps
from autograder.config import MAX_NOTEBOOK_BYTES
from autograder.paths import ASSIGNMENT, NOTEBOOK
from autograder.spreadsheet import formula_like
from autograder.term import late

STEM = NOTEBOOK.removesuffix(".ipynb")
MAX_ARCHIVE_BYTES = 4 * 2**30  # uncompressed total read from one archive (zip bombs)
CHUNK_BYTES = 2**16  # one step of unpacking a zip entry: all it holds beyond the size cap
TOO_BIG = (
    f"more than {MAX_NOTEBOOK_BYTES // 2**20} MiB, larger than any notebook the grader reads: "
    "if it is the notebook, ask the student to clear its outputs and submit again"
)
# The characters safe in a folder name; id_problem adds what a spreadsheet would run (a leading @).
SAFE_ID = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9._@-]{0,99}$")
# Names the batch writes beside the student folders of its output (see batch.OUTPUT_NAMES).
RESERVED_IDS = {"grades.csv", "gradebook.db", "reference-timing.json", "export.csv", "lms-upload.csv", "report.html"}
RENAMED = re.compile(rf"^{STEM}(?:[\s_-]*\(\d+\)|[\s_-]+\d+|[\s_-]*copy)*$", re.I)
CANVAS = re.compile(r"^(?P<name>[^_/]+)_(?P<late>late_)?(?P<id>[^_/]+)_(?P<sub>[^_/]+)_(?P<file>.+)$", re.I)
MOODLE = re.compile(r"^.+_(?P<id>\d+)_assign(?:submission|feedback)_\w*$")
EXCHANGE = re.compile(rf"^(?P<id>[^+]+)\+{ASSIGNMENT}\+(?P<stamp>[^+]+)(?:\+.*)?$")
JUNK = ("__MACOSX", ".ipynb_checkpoints", ".DS_Store", "__pycache__")


class IntakeError(Exception):
    """SOURCE cannot be read at all; the message says what to do."""


class EntryRefused(Exception):
    """One entry of a zip cannot be used (too big, damaged, unreadable); the message says what to do."""


@dataclass
class File:
    """One regular file of the source, by POSIX path relative to its root."""

    path: PurePosixPath
    mtime: datetime
    size: int
    _read: object = field(repr=False, default=None)

    def read(self) -> bytes:
        return self._read()


@dataclass
class Candidate:
    """One submission of one student, before the latest per student is chosen."""

    student: str
    source: str  # shown in the table: the archive path of the folder or file
    files: list[File]
    timestamp: datetime
    order: tuple = ()  # tie-break after the timestamp (e.g. Canvas submission id)
    secret: bytes | None = None  # nbgrader exchange's submission_secret.txt
    lms: dict = field(default_factory=dict)  # what the LMS said: {"lms": name, "late": flag, "due": time}


@dataclass
class Row:
    """One line of the table."""

    student: str
    status: str  # matched, renamed, unchanged, kept-newer, not-counted, restored, duplicate, no-notebook, ...
    source: str
    note: str = ""
    when: str = ""  # against the due date: "on time", "late by 1 d 3 h", "" without a due date


# --- reading the source -------------------------------------------------------------------


def _unsafe(path: str) -> str | None:
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or "\0" in path or ".." in parts or re.match(r"^[A-Za-z]:", path):
        return "unsafe path"
    return None


def _entry_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo):
    """The unpacked bytes of one entry, a chunk at a time, whatever its header declares.

    Raises EntryRefused once more than MAX_NOTEBOOK_BYTES came out, or when the entry is damaged
    (a failed CRC: the header's size was a lie, or the bytes are corrupt) or cannot be unpacked."""
    if info.flag_bits & 0x1:
        raise EntryRefused("encrypted: unpack the zip with its password and pass the folder instead")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # zipfile unpacks bzip2 and LZMA a whole read at a time, so their size is only known too late.
        raise EntryRefused(
            f"packed with zip method {info.compress_type}, not deflate: unpack the zip yourself and pass the folder"
        )
    size = 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(CHUNK_BYTES):
                size += len(chunk)
                if size > MAX_NOTEBOOK_BYTES:
                    raise EntryRefused(TOO_BIG)
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise EntryRefused(
            f"damaged in the zip ({exc}): download the submissions again, or ask the student to submit again"
        ) from None


def _entry_reader(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, size: int):
    """File.read for one entry _zip_files found to unpack to ``size`` bytes (at most MAX_NOTEBOOK_BYTES)."""

    def read() -> bytes:
        out = io.BytesIO()
        if size:  # one buffer of the entry's size, filled in place: never a second copy of the bytes
            out.seek(size - 1)
            out.write(b"\0")
            out.seek(0)
        try:
            for chunk in _entry_chunks(zf, info):
                out.write(chunk)
        except EntryRefused as exc:  # it unpacked fine moments ago: the file changed underneath
            raise IntakeError(f"{archive} changed while it was read ({info.filename}: {exc}): collect again") from None
        return out.getvalue()

    return read


def _zip_files(archive: Path, rows: list[Row]) -> list[File]:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise IntakeError(
            f"{archive} is not a readable zip ({exc}): pass the downloaded .zip or its unpacked folder"
        ) from None
    files, total = [], 0
    for info in zf.infolist():
        name = info.filename
        if info.is_dir() or any(part in JUNK for part in name.split("/")):
            continue
        problem = _unsafe(name)
        if stat.S_ISLNK(info.external_attr >> 16):
            problem = "symbolic link"
        size = 0
        if not problem:
            # Unpacked once here, through the same bounded reader as every later read, so an entry
            # that lies about its size or fails its CRC costs a row now, not the whole collect later.
            try:
                size = sum(len(chunk) for chunk in _entry_chunks(zf, info))
            except EntryRefused as exc:
                problem = str(exc)
        if problem:
            rows.append(Row("-", "refused", name, problem))
            continue
        total += size
        if total > MAX_ARCHIVE_BYTES:
            raise IntakeError(
                f"{archive} unpacks to more than {MAX_ARCHIVE_BYTES // 2**30} GB: check it is the submissions download"
            )
        mtime = datetime(*info.date_time, tzinfo=timezone.utc)
        files.append(File(PurePosixPath(name), mtime, size, _entry_reader(archive, zf, info, size)))
    return files


def _folder_files(root: Path, rows: list[Row]) -> list[File]:
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(part in JUNK for part in PurePosixPath(relative).parts):
            continue
        if path.is_symlink():
            rows.append(Row("-", "refused", relative, "symbolic link"))
            continue
        if path.is_dir():
            continue
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            rows.append(Row("-", "refused", relative, "not a regular file"))
        elif info.st_size > MAX_NOTEBOOK_BYTES:
            rows.append(Row("-", "refused", relative, TOO_BIG))
        else:
            mtime = datetime.fromtimestamp(info.st_mtime, tz=timezone.utc)
            files.append(File(PurePosixPath(relative), mtime, info.st_size, path.read_bytes))
    return files


def read_source(source: Path, rows: list[Row]) -> list[File]:
    """Every usable file of ``source`` (a zip or a folder), junk such as ``__MACOSX`` left out."""
    if source.is_symlink():
        raise IntakeError(f"{source} is a symbolic link: pass the real file or folder")
    if source.is_dir():
        files = _folder_files(source, rows)
    elif source.is_file():
        files = _zip_files(source, rows)
    else:
        raise IntakeError(f"no file or folder {source}: pass the downloaded zip or the folder of submissions")
    files = [f for f in files if not any(part in JUNK for part in f.path.parts)]
    # One folder wrapping everything (Gradescope's assignment_<n>_export/, a zipped folder) is no level.
    while files and len({f.path.parts[0] for f in files}) == 1 and all(len(f.path.parts) > 1 for f in files):
        top = files[0].path.parts[0]
        inner = [f.path.parts[1] for f in files if len(f.path.parts) == 2]
        if (
            EXCHANGE.match(top)
            or MOODLE.match(top)
            or top.startswith("submission_")
            or any(n.lower().endswith(".ipynb") and not CANVAS.match(n) for n in inner)
        ):
            break  # the folder is one student's: keep it as the level that names them
        files = [File(PurePosixPath(*f.path.parts[1:]), f.mtime, f.size, f._read) for f in files]
    return files


# --- recognising the layout ---------------------------------------------------------------


def _stamp_in(files: list[File]) -> datetime | None:
    for f in files:
        if f.path.name == "timestamp.txt":
            return stamps.parse_time(f.read().decode("utf-8", "replace")[:64])
    return None


def _gradescope(files: list[File], rows: list[Row]) -> list[Candidate]:
    import yaml

    meta_file = next(f for f in files if f.path.name == "submission_metadata.yml")
    try:
        meta = yaml.safe_load(meta_file.read()) or {}
    except yaml.YAMLError as exc:
        raise IntakeError(f"submission_metadata.yml cannot be read ({exc}): download the export again") from None
    by_folder: dict[str, list[File]] = {}
    for f in files:
        if f is not meta_file:
            by_folder.setdefault(f.path.parts[0] if len(f.path.parts) > 1 else "", []).append(f)
    out = []
    for folder, mine in sorted(by_folder.items()):
        info = meta.get(folder) if isinstance(meta, dict) else None
        if not folder or not isinstance(info, dict):
            for f in mine:
                rows.append(Row("-", "unmatched", str(f.path), "not listed in submission_metadata.yml"))
            continue
        created = info.get(":created_at") or info.get("created_at")
        stamp = (
            created
            if isinstance(created, datetime)
            else stamps.parse_time(str(created or "")) or max(f.mtime for f in mine)
        )
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
        inner = [File(PurePosixPath(*f.path.parts[1:]), f.mtime, f.size, f._read) for f in mine]
        submitters = info.get(":submitters") or info.get("submitters") or []
        for person in submitters:  # a group submission counts for each member
            person = person or {}
            student = str(person.get(":sid") or person.get(":email") or "").strip()
            if not student:
                rows.append(Row("-", "unmatched", folder, f"submitter {person.get(':name', '?')} has no sid or email"))
                continue
            out.append(Candidate(student, folder, inner, stamp))
        if not submitters:
            rows.append(Row("-", "unmatched", folder, "no submitters in submission_metadata.yml"))
    return out


def _exchange(files: list[File], rows: list[Row]) -> list[Candidate]:
    groups: dict[tuple, list[File]] = {}
    for f in files:
        at = next((i for i, part in enumerate(f.path.parts[:-1]) if EXCHANGE.match(part)), None)
        if at is None:
            if f.path.parts[0] not in ("outbound", "feedback") and "outbound" not in f.path.parts:
                rows.append(Row("-", "unmatched", str(f.path), f"not inside an <id>+{ASSIGNMENT}+<timestamp> folder"))
            continue
        groups.setdefault(f.path.parts[: at + 1], []).append(
            File(PurePosixPath(*f.path.parts[at + 1 :]), f.mtime, f.size, f._read)
        )
    out = []
    for parts, mine in sorted(groups.items()):
        m = EXCHANGE.match(parts[-1])
        stamp = _stamp_in(mine) or stamps.parse_time(m["stamp"]) or max(f.mtime for f in mine)
        secret = next((f.read() for f in mine if f.path.as_posix() == "submission_secret.txt"), None)
        out.append(Candidate(m["id"], "/".join(parts), mine, stamp, secret=secret))
    return out


def _canvas(files: list[File], rows: list[Row]) -> list[Candidate]:
    # Canvas's download holds each student's latest submission only, one flat file per attachment.
    groups: dict[str, list[tuple[int, File]]] = {}
    prefix: dict[str, str] = {}
    marked_late: dict[str, bool] = {}
    for f in files:
        m = CANVAS.match(f.path.name)
        if len(f.path.parts) != 1 or not m:
            rows.append(Row("-", "unmatched", str(f.path), "name is not <name>_<user id>_<submission id>_<file>"))
            continue
        sub = int(m["sub"]) if m["sub"].isdigit() else 0
        prefix[m["id"]] = m["name"]
        marked_late[m["id"]] = marked_late.get(m["id"], False) or bool(m["late"])
        groups.setdefault(m["id"], []).append((sub, File(PurePosixPath(m["file"]), f.mtime, f.size, f._read)))
    out = []
    for student, mine in sorted(groups.items()):
        mine.sort(key=lambda pair: pair[0])
        names = [f for _, f in mine]
        # The entries' times are the submission time Canvas recorded; LATE is Canvas's own verdict.
        out.append(
            Candidate(
                student,
                f"{prefix[student]}_{student}",
                names,
                max(f.mtime for f in names),
                order=(mine[-1][0],),
                lms={"lms": "Canvas", "late": marked_late[student]},
            )
        )
    return out


def _folders(files: list[File], rows: list[Row]) -> list[Candidate]:
    groups: dict[str, list[File]] = {}
    for f in files:
        if len(f.path.parts) == 1:
            rows.append(Row("-", "unmatched", str(f.path), "a file beside the student folders"))
            continue
        groups.setdefault(f.path.parts[0], []).append(File(PurePosixPath(*f.path.parts[1:]), f.mtime, f.size, f._read))
    out = []
    for folder, mine in sorted(groups.items()):
        m = MOODLE.match(folder)
        student = m["id"] if m else folder
        # nbgrader's own submitted layout (<id>/neuroevolution/...) goes one level down.
        inner = [
            File(PurePosixPath(*f.path.parts[1:]), f.mtime, f.size, f._read)
            if f.path.parts[0] == ASSIGNMENT and len(f.path.parts) > 1
            else f
            for f in mine
        ]
        stamp = _stamp_in(inner) or max(f.mtime for f in mine)
        secret = next((f.read() for f in inner if f.path.as_posix() == "submission_secret.txt"), None)
        out.append(Candidate(student, folder, inner, stamp, secret=secret))
    return out


def candidates(files: list[File], rows: list[Row]) -> tuple[str, list[Candidate]]:
    """(layout name, submissions) recognised in ``files``."""
    if any(f.path.name == "submission_metadata.yml" and len(f.path.parts) == 1 for f in files):
        return "Gradescope export", _gradescope(files, rows)
    if any(EXCHANGE.match(part) for f in files for part in f.path.parts[:-1]):
        return "nbgrader exchange", _exchange(files, rows)
    top = [f for f in files if len(f.path.parts) == 1]
    if top and sum(bool(CANVAS.match(f.path.name)) for f in top) >= len(top) / 2:
        return "Canvas-style files", _canvas(files, rows)
    return "folder per student", _folders(files, rows)


# --- choosing and writing -----------------------------------------------------------------


def id_problem(student: str) -> str | None:
    """Why ``student`` cannot name a folder of submitted/ (nor a row of grades.csv), or None when it can."""
    if formula_like(student):
        return f"student id {student!r} starts with {student[0]!r}, which a spreadsheet runs as a formula"
    if not SAFE_ID.match(student) or student.lower() in RESERVED_IDS:
        return f"unsafe student id {student!r}"
    return None


def _is_assignment_notebook(data: bytes) -> bool:
    """True when ``data`` is a notebook holding this assignment's evolve_serial solution cell."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    cells = nb.get("cells") if isinstance(nb, dict) else None
    return isinstance(cells, list) and any(
        isinstance(c, dict)
        and isinstance(c.get("metadata"), dict)
        and (c["metadata"].get("nbgrader") or {}).get("grade_id") == "evolve_serial"
        for c in cells
    )


def pick_notebook(files: list[File]) -> tuple[File | None, str]:
    """(the notebook to grade, how it was found): the exact name, a renamed copy, or the one
    notebook holding this assignment's cells."""
    notebooks = [
        f for f in files if f.path.suffix.lower() == ".ipynb" and not any(p.startswith(".") for p in f.path.parts)
    ]
    exact = [f for f in notebooks if f.path.name == NOTEBOOK]
    if exact:
        return min(exact, key=lambda f: len(f.path.parts)), "matched"
    renamed = sorted((f for f in notebooks if RENAMED.match(f.path.stem.strip())), key=lambda f: f.mtime)
    if renamed:
        return renamed[-1], "renamed"
    ours = [f for f in notebooks if _is_assignment_notebook(f.read())]
    if len(ours) == 1:
        return ours[0], "renamed"
    if ours:
        return max(ours, key=lambda f: f.mtime), "renamed"
    return None, "no-notebook"


@dataclass
class Intake:
    layout: str
    rows: list[Row]
    written: list[str]
    policy: str = ""
    """The late policy collect applied, in words ("" without a due date)."""


KEPT_DIR = "other-submissions"
"""Inside a student's submitted assignment folder: submissions kept but not graded (``<UTC time>/``), such as a
late resubmission when the on-time one counts. Never graded; ``collect`` moves one back up (and keeps the one it
replaces here) when a changed policy makes it count."""


@dataclass
class Offer:
    """One submission of a student holding a notebook: from the download, or already in SUBMITTED."""

    candidate: Candidate
    notebook: File
    how: str  # matched or renamed (from the download); "there" when it is already in SUBMITTED
    folder: Path | None = None  # where it already is in SUBMITTED (its top or a kept folder)
    late: bool = False

    @property
    def lms(self) -> dict:
        return self.candidate.lms


def _already_there(submitted: Path, student: str) -> list[Offer]:
    """The student's submission in SUBMITTED and those kept beside it, as offers (links are never read)."""
    top = submitted / student / ASSIGNMENT
    folders = [top] + (sorted(p for p in (top / KEPT_DIR).iterdir() if p.is_dir()) if (top / KEPT_DIR).is_dir() else [])
    out = []
    for folder in folders:
        path = folder / NOTEBOOK
        if folder.is_symlink() or path.is_symlink() or not path.is_file():
            continue
        text, stamp = stamps.submission_time(folder)
        mtime = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        secret = folder / "submission_secret.txt"
        candidate = Candidate(
            student,
            str(folder),
            [File(PurePosixPath(NOTEBOOK), mtime, path.stat().st_size, path.read_bytes)],
            stamp or mtime,
            secret=secret.read_bytes() if secret.is_file() and not secret.is_symlink() else None,
            lms=late.lms_info(folder),
        )
        out.append(Offer(candidate, candidate.files[0], "there", folder))
    return out


def _kept_folder(submitted: Path, student: str, offer: Offer) -> Path:
    stamp = offer.candidate.timestamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")
    return submitted / student / ASSIGNMENT / KEPT_DIR / stamp


def _timing(policy: late.LatePolicy, student: str, offer: Offer) -> str:
    """The table's timing cell for one submission: on time, how late, or nothing without a due date."""
    return policy.assess(student, offer.candidate.timestamp, 0.0, offer.lms).when()


def choose(policy: late.LatePolicy, student: str, offers: list[Offer]) -> tuple[Offer, Offer | None]:
    """(the submission that counts, the one kept beside it) among a student's submissions, by the policy.

    Without both an on-time and a late submission the latest counts and nothing is kept beside it;
    with both, ``counts`` picks the latest on-time one or the latest of all, and the latest of the
    other kind is kept, so a late resubmission never silently replaces an on-time one (nor the reverse).
    """
    latest_first = sorted(offers, key=lambda o: (o.candidate.timestamp, o.candidate.order), reverse=True)
    for offer in latest_first:
        offer.late = policy.is_late(student, offer.candidate.timestamp, offer.lms)
    on_time = [o for o in latest_first if not o.late]
    overdue = [o for o in latest_first if o.late]
    if not on_time or not overdue:
        return latest_first[0], None
    counting = on_time[0] if policy.counts == "on-time" else latest_first[0]
    return counting, (overdue[0] if counting is on_time[0] else on_time[0])


def collect(source: Path, submitted: Path, *, dry_run: bool = False, policy: late.LatePolicy | None = None) -> Intake:
    """Read ``source`` and fill ``submitted``; returns the table of what happened to each file.

    ``policy``: the course's late policy (no due date when None), which decides which of a student's
    submissions counts when one is on time and another late."""
    policy = policy or late.LatePolicy()
    rows: list[Row] = []
    layout, found = candidates(read_source(source, rows), rows)
    by_student: dict[str, list[Candidate]] = {}
    for c in found:
        problem = id_problem(c.student)
        if problem:
            rows.append(
                Row(
                    "-",
                    "refused",
                    c.source,
                    f"{problem}: copy its notebook to {submitted}/<the student's id>/{ASSIGNMENT}/ by hand",
                )
            )
            continue
        by_student.setdefault(c.student, []).append(c)
    written = []
    for student, subs in sorted(by_student.items()):
        if _collect_student(student, subs, submitted, policy, dry_run, rows):
            written.append(student)
    return Intake(layout, rows, written, policy.describe())


def _collect_student(
    student: str, subs: list[Candidate], submitted: Path, policy: late.LatePolicy, dry_run: bool, rows: list[Row]
) -> bool:
    """Sort one student's submissions into SUBMITTED; True when the notebook to grade changed."""
    top = submitted / student / ASSIGNMENT
    if (submitted / student).is_symlink() or top.is_symlink():
        raise IntakeError(f"{top} is a symbolic link: remove it and collect again")
    ranked = sorted(subs, key=lambda c: (c.timestamp, c.order), reverse=True)
    downloaded = [Offer(c, *pick_notebook(c.files)) for c in ranked]
    downloaded = [o for o in downloaded if o.notebook]
    if not downloaded:
        names = sorted({f.path.name for c in subs for f in c.files})
        rows.append(
            Row(student, "no-notebook", ranked[0].source, f"no {NOTEBOOK} (files: {', '.join(names)[:80] or 'none'})")
        )
        return False
    for c in ranked:
        if not any(o.candidate is c for o in downloaded):
            newer = c.timestamp > downloaded[0].candidate.timestamp
            rows.append(
                Row(
                    student,
                    "duplicate",
                    c.source,
                    "newer, without a notebook; not used" if newer else "older; not used",
                )
            )
    there = _already_there(submitted, student)
    # A notebook already in SUBMITTED and a downloaded copy of it are one submission: the first time stands.
    offers, twin = list(there), {}
    known = {_digest(o.notebook): o for o in there}
    for offer in downloaded:
        twin[id(offer)] = known.setdefault(_digest(offer.notebook), offer)
        if twin[id(offer)] is offer:
            offers.append(offer)
    counting, beside = choose(policy, student, offers)
    why = f"{'the on-time one' if policy.counts == 'on-time' else 'the latest'} counts (c.LatePolicy.counts)"
    current = next((o for o in there if o.folder == top), None)
    if not dry_run:
        if beside is not None and beside.folder is None:
            _store(_kept_folder(submitted, student, beside), beside)
        if counting is not current:
            if current is not None and current is beside:  # what was graded is kept, never overwritten
                _store(_kept_folder(submitted, student, current), current)
            _store(top, counting)
            if counting.folder is not None:  # a kept submission counts now: it moves up
                shutil.rmtree(counting.folder)
    for offer in downloaded:
        same = twin[id(offer)]
        origin = f"{offer.candidate.source}/{offer.notebook.path}"
        when = _timing(policy, student, same)
        if same is counting and same.folder is None:
            note = f"{offer.notebook.path.name!r} saved as {NOTEBOOK}" if offer.how == "renamed" else ""
            rows.append(Row(student, offer.how, origin, note, when))
            rows += [
                Row(student, "duplicate", f"{offer.candidate.source}: {f.path}", "another copy; not used")
                for f in offer.candidate.files
                if f is not offer.notebook and f.path.suffix.lower() == ".ipynb" and RENAMED.match(f.path.stem.strip())
            ]
        elif same is counting:
            rows.append(Row(student, "unchanged", origin, f"already in {submitted}", when))
        elif same is beside:
            kept = _shown_folder(submitted, same.folder or _kept_folder(submitted, student, same))
            rows.append(Row(student, "not-counted", origin, f"kept in {kept}: {why}", when))
        elif offer is downloaded[0] and (counting if same.late == counting.late else beside).folder is not None:
            rows.append(Row(student, "kept-newer", origin, f"{submitted} holds a later submission; this one not used"))
        else:
            rows.append(Row(student, "duplicate", origin, "older; not used", when))
    if counting.folder is not None and counting is not current:
        rows.append(Row(student, "restored", _shown_folder(submitted, counting.folder), f"graded now: {why}"))
    if current is not None and current is beside:
        kept = _shown_folder(submitted, _kept_folder(submitted, student, current))
        rows.append(Row(student, "not-counted", f"{submitted}/{student}", f"moved to {kept}: {why}"))
    return counting is not current


def _digest(file: File) -> bytes:
    """A notebook's bytes hashed (one copy in memory at a time, whatever its size)."""
    return hashlib.sha256(file.read()).digest()


def _shown_folder(submitted: Path, folder: Path) -> str:
    try:
        return str(Path(submitted).name / folder.relative_to(submitted))
    except ValueError:
        return str(folder)


def _store(folder: Path, offer: Offer) -> None:
    """Write one submission (notebook, timestamp.txt, exchange secret, what the LMS said) into ``folder``."""
    c = offer.candidate
    write_submission(folder, offer.notebook.read(), c.timestamp, c.secret, lms=c.lms)


def write_submission(
    folder: Path, data: bytes, stamp: datetime, secret: bytes | None, *, lms: dict | None = None
) -> None:
    """Write a notebook and its timestamp.txt (and secret, and lms.json) into a submitted assignment folder."""
    for part in (folder, folder.parent):
        if part.is_symlink():
            raise IntakeError(f"{part} is a symbolic link: remove it and collect again")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / NOTEBOOK
    if target.is_symlink():
        target.unlink()
    tmp = folder / f".{NOTEBOOK}.partial"
    try:
        tmp.write_bytes(data)
        tmp.replace(target)
    except BaseException:  # interrupted too: no half-written copy is left in the student's folder
        tmp.unlink(missing_ok=True)
        raise
    (folder / "timestamp.txt").write_text(stamps.format_time(stamp), encoding="utf-8")
    old_secret = folder / "submission_secret.txt"
    if secret:
        old_secret.write_bytes(secret)
    elif old_secret.is_file() and not old_secret.is_symlink():
        old_secret.unlink()
    late.write_lms_info(folder, lms or {})


def table(intake: Intake, submitted: Path) -> str:
    """The table printed by ``collect``: one row per student or file, then the counts."""
    order = {
        "refused": 0,
        "unmatched": 1,
        "no-notebook": 2,
        "duplicate": 3,
        "kept-newer": 4,
        "not-counted": 5,
        "restored": 6,
        "renamed": 7,
        "matched": 8,
        "unchanged": 9,
    }
    rows = sorted(intake.rows, key=lambda r: (order.get(r.status, 99), r.student, r.source))
    width = max([7] + [len(r.student) for r in rows])
    timed = any(r.when for r in rows)
    timing = max([6] + [len(r.when) for r in rows])
    lines = [f"{'student':<{width}}  {'status':<11}  " + (f"{'timing':<{timing}}  " if timed else "") + "source"]
    for r in rows:
        source = r.source if len(r.source) <= 60 else "..." + r.source[-57:]
        lines.append(
            f"{r.student:<{width}}  {r.status:<11}  "
            + (f"{r.when:<{timing}}  " if timed else "")
            + source
            + (f"  ({r.note})" if r.note else "")
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    done = [f"{counts[s]} {s}" for s in order if counts.get(s)]
    lines.append(
        f"\n{intake.layout}: {len(intake.written)} notebook(s) written to {submitted}"
        + (f" ({', '.join(done)})" if done else " (nothing found)")
    )
    if intake.policy:
        lines.append(f"late policy: {intake.policy}")
    return "\n".join(lines)

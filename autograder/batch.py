"""Grade whole batches: find the students, grade each one, rebuild the batch's exports, summarise."""

from __future__ import annotations

import json
import os
import queue
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from autograder import interrupts, output_lock, paths, results, spreadsheet, workspace
from autograder.categories import POINTS
from autograder.grade import Batch, Graded, GraderFault, grade_student, grading_key, preflight
from autograder.observe import Plan
from autograder.term import feedback, gradebook, intake, late

# What the batch writes beside the student folders of its output: a student folder with one of
# these names would collide with it, so such a folder is reported instead of graded.
OUTPUT_NAMES = frozenset(intake.RESERVED_IDS)
SCRATCH_PREFIX = f"{paths.TEMP_PREFIX}batch-"
"""The batch's scratch folder in the temporary folder: templates, runs and the reference's copy."""


@dataclass
class Survey:
    """The folders of a submitted/ folder: who can be graded, and every name that cannot."""

    students: list[str]
    refused: dict[str, str] = field(default_factory=dict)  # name -> why it is not graded


def survey(submitted: Path) -> Survey:
    """Every entry of ``submitted``: student folders, and the names that cannot be graded (with why)."""
    students, refused = [], {}
    for entry in sorted(submitted.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name.startswith("."):
            refused[name] = "hidden (its name starts with '.'): rename it to the student's id to grade it"
        elif entry.is_symlink():
            refused[name] = "a symbolic link: copy the real folder in its place"
        elif not entry.is_dir():
            refused[name] = "a file, not a student folder: `python -m autograder collect` unpacks downloads"
        elif name.lower() in OUTPUT_NAMES:
            refused[name] = f"named like the batch's own output {name}: rename the folder to the student's id"
        elif spreadsheet.formula_like(name):  # no real id starts so, and it would be a formula in grades.csv
            refused[name] = (
                f"starts with {name[0]!r}, which a spreadsheet runs as a formula: rename the folder to the student's id"
            )
        else:
            students.append(name)
    return Survey(students, refused)


def find_students(submitted: Path) -> list[str]:
    """Every gradable student folder in nbgrader's submitted layout (with or without a notebook)."""
    return survey(submitted).students


def notebook_for(submitted: Path, student: str) -> tuple[Path, str | None]:
    """(notebook to grade, a note for the summary): the submitted layout's notebook, else a renamed copy."""
    exact = paths.submission_notebook(submitted, student)
    if exact.is_symlink():  # graded as it is: the grader refuses it with a message saying to submit the file
        return exact, "a symbolic link, not a notebook"
    if exact.is_file():
        return exact, None
    folder = submitted / student
    found = [
        p
        for p in sorted(folder.rglob("*.ipynb"))
        if p.is_file() and not p.is_symlink() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    files = [
        intake.File(intake.PurePosixPath(p.relative_to(folder).as_posix()), _mtime(p), 0, p.read_bytes) for p in found
    ]
    chosen, _ = intake.pick_notebook(files)
    if chosen:
        return (
            folder / chosen.path,
            f"renamed: graded {chosen.path.as_posix()!r} (expected {exact.relative_to(folder)})",
        )
    others = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return exact, (
        f"no notebook: expected {exact.relative_to(folder)}"
        + (f", found {', '.join(others)[:80]}" if others else ", the folder is empty")
    )


def _mtime(path: Path):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def rebuild_outputs(
    output: Path, students: list[str], submitted: Path, policy: late.LatePolicy
) -> list[tuple[str, dict]]:
    """grades.csv and gradebook.db from the results.json of ``students``, the late policy applied to each."""
    rows = [(s, r) for s in students if (r := apply_late(output, submitted, s, policy))]
    results.write_atomic(output / "grades.csv", results.grades_csv(rows))
    gradebook.rebuild(output / "gradebook.db", rows, policy=policy)
    return rows


def refresh_late(output: Path, submitted: Path) -> bool:
    """Apply the course's late policy again when it changed since ``output`` was graded (an extension
    granted, a penalty changed), nobody regraded: each results.json, and grades.csv and gradebook.db when
    a score, penalty or due date moved. True if anything was rewritten.

    Raises late.PolicyError for an unusable policy, output_lock.Busy while a grade writes ``output``."""
    policy = late.course_policy()

    def stale(path: Path) -> bool:
        doc = results.read_results(path) or {}
        return (doc.get("extra_data") or {}).get("late", {}).get("policy") != policy.digest()

    if not any(stale(p) for p in Path(output).glob("*/results.json")):
        return False
    with output_lock.hold(output):
        moved = False
        for path in sorted(Path(output).glob("*/results.json")):
            before = _standing(results.read_results(path))
            after = _standing(apply_late(output, submitted, path.parent.name, policy))
            moved = moved or before != after
        if moved:
            graded = [p.parent.name for p in sorted(Path(output).glob("*/results.json"))]
            rebuild_outputs(output, find_students(submitted) if Path(submitted).is_dir() else graded, submitted, policy)
    return True


def _standing(doc: dict | None) -> tuple:
    """What grades.csv and the gradebook show of a student's lateness: score, penalty, due dates."""
    record = ((doc or {}).get("extra_data") or {}).get("late") or {}
    return (doc or {}).get("score"), record.get("penalty") or 0.0, record.get("assignment_due"), record.get("due")


def apply_late(output: Path, submitted: Path, student: str, policy: late.LatePolicy) -> dict | None:
    """The student's results.json with the course's late policy applied (rewritten when that changed it)."""
    path = output / student / "results.json"
    doc = results.read_results(path)
    if doc and late.apply(doc, policy, student, submitted / student / paths.ASSIGNMENT):
        results.write_atomic(path, json.dumps(doc, indent=1))
    return doc


class Progress:
    """One status line per student on stderr, with the time left at the pace so far."""

    def __init__(self, total: int, max_score: float):
        self.total, self.max_score, self.done, self.start = total, max_score, 0, time.perf_counter()
        self.graded_seconds, self.graded = 0.0, 0

    def update(self, graded: Graded, seconds: float) -> None:
        self.done += 1
        if not graded.skipped:
            self.graded_seconds, self.graded = self.graded_seconds + seconds, self.graded + 1
        state = (
            "unchanged, kept"
            if graded.skipped
            else f"GRADER ERROR: {graded.error}"
            if graded.error
            else f"{graded.score:g}/{self.max_score:g}"
        )
        left = self.total - self.done
        eta = ""
        if self.graded and left:
            seconds = self.graded_seconds / self.graded * left
            eta = f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"
        bar = "#" * (20 * self.done // self.total)
        print(
            f"[{bar:<20}] {self.done}/{self.total} {graded.student}: {state} "
            f"({time.perf_counter() - self.start:.0f} s{eta})",
            file=sys.stderr,
            flush=True,
        )


@dataclass
class Report:
    """Everything the closing summary needs."""

    graded: list[Graded]
    total: int
    categories: tuple[str, ...]
    notes: dict[str, str] = field(default_factory=dict)  # student -> renamed / missing notebook
    refused: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    output: Path | None = None

    @property
    def ungraded(self) -> list[str]:
        """Students left without a grade: grader faults and folders that could not be graded."""
        return [g.student for g in self.graded if g.error] + list(self.refused)


def grade_batch(
    submitted: Path,
    output: Path,
    students: list[str],
    categories: tuple[str, ...],
    force: bool,
    refused: dict[str, str] | None = None,
    exports: bool = True,
    jobs: int = 1,
    protected: tuple[Path, ...] = (),
    plan: Plan | None = None,
) -> Report:
    """Grade ``students``, skipping those already graded with the same key, then rebuild the outputs.

    ``jobs`` students are graded at once, each job with its own reference; timed phases reserve
    their own cores (``cores.py``), so the grades do not depend on ``jobs``. Ctrl-C or SIGTERM
    (KeyboardInterrupt) ends the students being graded at their current run, in every job
    (``workspace.STOPPING``), and drops their work; the exports are still rebuilt for everyone graded so far and the report says it was interrupted.
    Whatever way it ends, the batch's scratch folder is unmounted and deleted first; a stop that arrives
    while it is, or while the exports are written, takes effect once they are done.
    No run may read ``submitted`` or ``output``, nor change ``protected`` (``sandbox/guard.py``).
    One grade at a time per ``output`` (``output_lock.py``): a second one raises ``output_lock.Busy``.
    ``plan``: the seeds of an earlier grading, to regrade the same way (None: drawn afresh).
    """
    with output_lock.hold(output):  # raises Busy, writing nothing, while another grade writes into output
        return _grade_batch(submitted, output, students, categories, force, refused, exports, jobs, protected, plan)


def _grade_batch(
    submitted: Path,
    output: Path,
    students: list[str],
    categories: tuple[str, ...],
    force: bool,
    refused: dict[str, str] | None,
    exports: bool,
    jobs: int,
    protected: tuple[Path, ...],
    plan: Plan | None,
) -> Report:
    workspace.STOPPING.clear()
    try:
        policy = late.course_policy()
    except (late.PolicyError, FileNotFoundError) as exc:  # before anyone is graded: the course settings are wrong
        raise GraderFault(str(exc)) from None
    report = Report([], len(students), categories, refused=dict(refused or {}), output=output)
    progress = Progress(len(students), sum(POINTS[c] for c in categories))
    try:
        workspace.release_abandoned_scratch(SCRATCH_PREFIX)  # what a grader killed outright left mounted
        scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX)
        try:
            workspace.claim_scratch(Path(scratch))  # first: from here on, a later batch can release it
            os.chmod(scratch, workspace.PASSAGE)  # runs' accounts pass through to their own folders
            # Once, up front: isolation (warned about here and recorded in every results.json), the
            # batch's seeds, and a reference that runs; a GraderFault here stops the batch with one line.
            shared = preflight(Path(scratch), categories, private=(submitted, output), protected=protected, plan=plan)
            if shared.warning:
                print(shared.warning, file=sys.stderr, flush=True)
            batches = [shared] + [shared.for_job(Path(scratch) / f"reference-{k}") for k in range(1, jobs)]
            free = queue.SimpleQueue()
            for each in batches:
                free.put(each)
            lock = threading.Lock()

            def grade_next(student: str) -> None:
                mine = free.get()
                try:
                    started = time.perf_counter()
                    notebook, note = notebook_for(submitted, student)
                    item = _grade_one(student, notebook, output, categories, mine, force)
                    doc = apply_late(output, submitted, student, policy) if not item.error else None
                    if doc:  # the summary shows the score every export shows: after any late penalty
                        item.score, item.doc = doc["score"], doc
                    with lock:
                        if note:
                            report.notes[student] = note
                        report.graded.append(item)
                        progress.update(item, time.perf_counter() - started)
                finally:
                    free.put(mine)

            try:
                if jobs == 1:
                    for student in students:
                        grade_next(student)
                else:
                    with ThreadPoolExecutor(jobs, thread_name_prefix="grade") as pool:
                        futures = [pool.submit(grade_next, student) for student in students]
                        try:
                            for future in futures:
                                future.result()
                        except KeyboardInterrupt:
                            workspace.STOPPING.set()  # the students in the other threads stop at their current run
                            for future in futures:
                                future.cancel()
                            raise
            finally:
                with interrupts.deferred():  # a second stop must not leave a session running
                    measured = []
                    for each in batches:
                        each.close()
                        measured += each.reference.measured
                    if measured:
                        results.write_atomic(output / "reference-timing.json", json.dumps(measured, indent=1))
        finally:  # every way out (a fault found up front, Ctrl-C, SIGTERM, a bug): unmounted and gone
            with interrupts.deferred():
                workspace.release_scratch(Path(scratch))
    except KeyboardInterrupt:
        report.interrupted = True
    if exports:  # grades.csv and gradebook.db (a one-submission run, as on Gradescope, needs neither)
        with interrupts.deferred(redeliver=False) as held:  # never left half written
            rebuild_outputs(output, find_students(submitted), submitted, policy)
        report.interrupted = report.interrupted or held.signum is not None
    return report


def _grade_one(
    student: str, notebook: Path, output: Path, categories: tuple[str, ...], shared: Batch, force: bool
) -> Graded:
    previous = results.read_results(output / student / "results.json")
    if (
        not force
        and previous
        and previous.get("extra_data", {}).get("grading_key") == grading_key(notebook, categories)
    ):
        write_staff_page(output / student)
        scores = previous["extra_data"].get("category_scores", {})
        return Graded(student, previous["score"], scores, skipped=True, doc=previous)
    error = output / student / results.ERROR_FILE
    try:
        graded = grade_student(student, notebook, output / student, categories, shared)
        with shared.cores.untimed():  # drawing the page's charts stays off a timed phase's cores
            write_staff_page(output / student)
        error.unlink(missing_ok=True)
        return graded
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a grader fault: report it (and remember it for --only errors), grade the others
        graded = Graded(student, None, error=f"{type(exc).__name__}: {exc}")
        results.write_atomic(error, json.dumps({"error": graded.error, "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        return graded


def write_staff_page(folder: Path) -> None:
    """The course staff's page beside a student's results.json, every test shown (students' pages come from
    `make feedback`); rewritten on a resume that finds it missing."""
    page = folder / "feedback.html"
    doc = results.read_results(folder / "results.json")
    if doc and not page.exists():
        results.write_atomic(page, feedback.page(doc, publish=True, agent=False))


def _zero_reason(doc: dict | None) -> str | None:
    """For a submission that scored nothing: the first line of its most common failure message."""
    if not doc or doc.get("score") or any(t.get("status") == "passed" for t in doc.get("tests", [])):
        return None
    counts: dict[str, int] = {}
    for test in doc.get("tests", []):
        line = (str(test.get("output", "")).strip().splitlines() or [""])[0][:140]
        counts[line] = counts.get(line, 0) + 1
    return max(counts, key=counts.get) if counts else None


def _inconclusive(g: Graded) -> tuple[bool, str | None, float | None]:
    """(not judged on speed, why, episodes played at once by the judge's evidence) for one graded student."""
    reason = results.speedup_not_judged(g.doc)
    timing = ((g.doc or {}).get("extra_data") or {}).get("timing") or {}
    judgement = (
        timing.get("judgement") if isinstance(timing, dict) and isinstance(timing.get("judgement"), dict) else {}
    )
    concurrency = judgement.get("concurrency")
    return bool(g.inconclusive or reason), reason, concurrency if isinstance(concurrency, (int, float)) else None


def summary(report: Report) -> str:
    """The closing text (stdout): scores per category and total, then what needs a look, then seconds."""
    categories = report.categories
    header = ["student", *categories, "total"]
    width = max([11] + [len(g.student) for g in report.graded])
    lines = [f"{header[0]:<{width}}  " + "  ".join(f"{h:>11}" for h in header[1:])]
    for g in report.graded:
        cells = [f"{g.category_scores.get(c, 0):g}/{POINTS[c]}" for c in categories]
        cells.append("ERROR" if g.error else f"{g.score:g}" + (" (kept)" if g.skipped else ""))
        lines.append(f"{g.student:<{width}}  " + "  ".join(f"{c:>11}" for c in cells))

    attention = []
    for name, why in report.refused.items():
        attention.append(f"  not graded  {name}: {why}")
    for g in report.graded:
        if g.error:
            attention.append(
                f"  not graded  {g.student}: grader error ({g.error}); run the same command, or make grade "
                "ONLY=errors, to retry"
            )
    for student, note in report.notes.items():
        kind = "renamed" if note.startswith("renamed") else "missing"
        attention.append(f"  {kind:<10}  {student}: {note}")
    failures: dict[str, list[str]] = {}
    for g in report.graded:
        if not g.error and student_has_notebook(report, g.student):
            message = _zero_reason(g.doc)
            if message:
                failures.setdefault(message, []).append(g.student)
    for message, who in failures.items():
        attention.append(f"  scored 0    {', '.join(who)}: every test failed, mostly with: {message}")
    if "speedup" in categories:
        for g in report.graded:
            unsure, reason, concurrency = _inconclusive(g)
            if unsure and not g.error:
                got = g.category_scores.get("speedup", 0)
                evidence = (
                    f"on the evidence of parallel work ({concurrency:.2f} episodes played at once)"
                    if concurrency is not None
                    else "without evidence of parallel work"
                )
                attention.append(
                    f"  timing      {g.student}: speedup inconclusive, {got:g}/{POINTS['speedup']} awarded "
                    f"{evidence}"
                    + (f"; not judged on speed: {reason}" if reason else "")
                    + "; make grade ONLY=inconclusive on a quiet machine regrades just these on speed"
                )
    if attention:
        lines += ["", "needs a look:"] + attention
    overdue = []
    for g in report.graded:
        record = ((g.doc or {}).get("extra_data") or {}).get("late") or {}
        if record.get("status") in ("late", "within grace") or record.get("note"):
            overdue.append(
                f"  {g.student}: {record.get('headline')}" + (f" ({record['note']})" if record.get("note") else "")
            )
    if overdue:
        lines += ["", "late (c.LatePolicy in nbgrader_config.py; totals above are after the penalty):"] + overdue

    timed = [g for g in report.graded if g.seconds]
    if timed:
        lines += ["", "timings (seconds per newly graded submission, mean):"]
        for c in categories:
            values = [g.seconds.get(c, 0.0) for g in timed]
            lines.append(f"  {c:<12} {sum(values) / len(values):7.2f}")
        totals = sorted(sum(g.seconds.values()) for g in timed)
        lines.append(f"  {'all':<12} {sum(totals) / len(totals):7.2f}  (median {totals[len(totals) // 2]:.2f})")
    return "\n".join(lines)


def student_has_notebook(report: Report, student: str) -> bool:
    return not report.notes.get(student, "").startswith("no notebook")

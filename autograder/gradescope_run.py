"""Grade one Gradescope submission: ``python -m autograder.gradescope_run --root /autograder``.

The bundle's ``run_autograder`` calls this. It finds the notebook in ``ROOT/submission`` (renamed
copies accepted, symbolic links refused), stages it in nbgrader's submitted layout, grades it
exactly as ``make grade`` does, and writes ``ROOT/results/results.json``. The student id is the
submitter's sid (else email, else Gradescope's user id) from ``ROOT/submission_metadata.json``.

Exit status: 0 with results.json written; 1 when the grader itself failed or was stopped (Ctrl-C,
SIGTERM): no results.json, so Gradescope shows the submission as an autograder failure the staff
can rerun; 2 for a bad command line. Whatever way it ends, the grader's temporary folders are gone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from autograder import interrupts, output_lock, paths, results, stamps
from autograder.categories import CATEGORIES
from autograder.categories import parse as parse_categories
from autograder.sandbox import accounts
from autograder.term import feedback, intake


def student_id(metadata: dict) -> str:
    users = metadata.get("users") if isinstance(metadata, dict) else None
    user = users[0] if isinstance(users, list) and users and isinstance(users[0], dict) else {}
    for key in ("sid", "email", "id"):
        value = str(user.get(key) or "").strip()
        if value and not intake.id_problem(value):
            return value
    return "student"


def gradescope_due(metadata: dict) -> dict:
    """What Gradescope says of the submission's due date: the submitter's own (an extension), else the
    assignment's. Used when nbgrader_config.py sets no due date of its own (``term/late.py``)."""
    if not isinstance(metadata, dict):
        return {"lms": "Gradescope"}
    users = metadata.get("users") if isinstance(metadata.get("users"), list) else []
    own = (users[0].get("assignment") if users and isinstance(users[0], dict) else None) or {}
    assignment = metadata.get("assignment") if isinstance(metadata.get("assignment"), dict) else {}
    due = (own.get("due_date") if isinstance(own, dict) else None) or assignment.get("due_date")
    stamp = stamps.parse_time(str(due)) if due else None
    return {"lms": "Gradescope", "due": stamps.format_time(stamp) if stamp else None}


def submission_files(folder: Path) -> list[intake.File]:
    """Regular files of the submission (symbolic links left out: never followed)."""
    out = []
    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and not path.is_symlink():  # rglob does not descend into linked folders
            stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
            out.append(intake.File(PurePosixPath(path.relative_to(folder).as_posix()), stamp, 0, path.read_bytes))
    return out


def stage(root: Path, submitted: Path) -> tuple[str, str | None]:
    """Put the submission where the grader looks; returns (student id, how the notebook was found)."""
    try:
        metadata = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metadata = {}
    student = student_id(metadata)
    chosen, how = intake.pick_notebook(submission_files(root / "submission"))
    if chosen:
        created = stamps.parse_time(str(metadata.get("created_at") or "")) if isinstance(metadata, dict) else None
        folder = submitted / student / paths.ASSIGNMENT
        intake.write_submission(folder, chosen.read(), created or chosen.mtime, None, lms=gradescope_due(metadata))
        return student, None if how == "matched" else f"graded {chosen.path.as_posix()!r} as {paths.NOTEBOOK}"
    (submitted / student / paths.ASSIGNMENT).mkdir(parents=True, exist_ok=True)  # graded as "no notebook"
    return student, f"no {paths.NOTEBOOK} in the submission"


def for_students(doc: dict, note: str | None) -> dict:
    """results.json as Gradescope shows it: test outputs without grader paths, the intake note on top."""
    doc = dict(doc)
    doc["tests"] = [{**t, "output": feedback.clean(t.get("output", ""))} for t in doc.get("tests", [])]
    if note:
        doc["output"] = f"Note: {note}.\n{doc.get('output', '')}"
    return doc


def prepare_results(results_dir: Path) -> None:
    """An empty results folder only the grader can write in: no earlier or forged results.json survives.

    A grader that fails from here on leaves no results.json, so Gradescope shows an autograder
    failure the staff can rerun, never a stale score.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    if accounts.is_root():
        os.chown(results_dir, 0, 0, follow_symlinks=False)
        os.chmod(results_dir, 0o755)
    stale = results_dir / "results.json"
    if stale.is_symlink() or stale.exists():
        stale.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope_run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/autograder"),
        help="Gradescope's root folder, holding submission/ and results/ (default: /autograder)",
    )
    parser.add_argument(
        "--categories",
        default=",".join(CATEGORIES),
        help=f"comma-separated categories to grade (default: all of {','.join(CATEGORIES)})",
    )
    parser.add_argument(
        "--seal",
        action="store_true",
        help="only make the reference, hidden tests and grader code private to root, then exit (setup.sh runs this "
        "when the image is built, so no moment exists where another user could read them)",
    )
    args = parser.parse_args(argv)
    if args.seal:
        from autograder.sandbox import guard

        closed = guard.close(paths.private_folders())
        print(f"private to the grader: {', '.join(closed) or 'already'}")
        return 0
    try:
        categories = parse_categories(args.categories)
    except ValueError as exc:
        parser.error(str(exc))
    # A stop by SIGTERM (the container's end, a timeout) unwinds like Ctrl-C, through every clean-up below.
    with interrupts.terminate_as_interrupt():
        try:
            return _grade(args.root, categories)
        except KeyboardInterrupt:
            print("error: the autograder was stopped before it wrote results.json", file=sys.stderr)
            return 1


def _grade(root: Path, categories: tuple[str, ...]) -> int:
    """Stage, grade and write ``root/results/results.json``; the exit status."""
    from autograder import batch
    from autograder.grade import GraderFault

    results_dir = root / "results"
    prepare_results(results_dir)
    with tempfile.TemporaryDirectory(prefix=f"{paths.TEMP_PREFIX}gradescope-") as tmp:
        submitted, output = Path(tmp) / "submitted", Path(tmp) / "grades"
        student, note = stage(root, submitted)
        try:
            report = batch.grade_batch(
                submitted,
                output,
                [student],
                categories,
                force=True,
                exports=False,
                protected=(results_dir, root / "submission"),
            )
        except (GraderFault, output_lock.Busy) as exc:  # before any student code ran: the staff must fix the setup
            print(f"autograder error: {exc}", file=sys.stderr)
            return 1
        finally:
            with interrupts.deferred():  # nothing of a run may outlive the grade it is given, even on a second stop
                accounts.end_every_account()
        print(batch.summary(report))  # the staff's view of the run, in Gradescope's autograder output
        doc = (
            json.loads((output / student / "results.json").read_text())
            if (output / student / "results.json").is_file()
            else None
        )
        if report.interrupted or doc is None:
            print(
                f"error: no results for {student}: {report.graded[0].error if report.graded else 'interrupted'}",
                file=sys.stderr,
            )
            return 1
        doc = for_students(doc, note)
        # Last, after every process of every run is gone: written whole or not at all.
        results.write_atomic(results_dir / "results.json", json.dumps(doc, indent=1))
        shutil.rmtree(output / student, ignore_errors=True)  # observations stay inside the container's tmp
    print(f"wrote {results_dir / 'results.json'} for {student}: {doc['score']:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

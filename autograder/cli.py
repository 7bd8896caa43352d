"""``python -m autograder {grade,collect,feedback,export,report}``: one term's instructor commands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from autograder import interrupts, output_lock, paths, quotas, results
from autograder.categories import CATEGORIES
from autograder.categories import parse as parse_categories
from autograder.config import SPEEDUP
from autograder.term.similarity import THRESHOLD as SIMILAR

GRADE_STATUS = """\
exit status:
  0    every student folder got a grade (students without a notebook get 0 and are listed)
  1    some students have no grade: a grader error, or a folder whose name cannot be graded
       (each is listed under "needs a look"; run the same command again to retry)
  2    bad command line, no submissions in SUBMITTED, or another grade is writing into OUTPUT
       (nothing graded; the line says what to do)
  3    the grader cannot grade here (bubblewrap required but missing), the reference
       solution fails a run every submission gets or no longer matches the release, no seed
       was found whose observed runs tell apart the loop's deviations, or the --seeds-from
       seeds no longer do: nobody was graded; the line says what to fix
  130  interrupted (Ctrl-C or SIGTERM): the grades of everyone graded so far are exported; run
       the same command to resume"""

COLLECT_STATUS = """\
exit status:
  0    every file was used or is an older copy of a collected notebook
  1    some files were refused (symbolic links, unsafe names, zip entries over the notebook
       size cap or damaged) or matched no student, or a student sent no notebook: see the table
  2    bad command line, or SOURCE cannot be read
  130  interrupted (Ctrl-C or SIGTERM): run the same command again"""

FEEDBACK_STATUS = """\
exit status:
  0    a page was written for every graded student
  1    some pages could not be written (listed)
  2    bad command line, or nothing graded in OUTPUT
  130  interrupted (Ctrl-C or SIGTERM): run the same command again"""

EXPORT_STATUS = """\
exit status:
  0    the file was written and every graded student is in it
  1    the file was written, but some graded students are not in the roster (listed)
  2    bad command line, unreadable roster, or nothing graded in OUTPUT
  130  interrupted (Ctrl-C or SIGTERM): run the same command again"""

REPORT_STATUS = """\
exit status:
  0    OUTPUT/report.html was written (the students who need a look are listed in it)
  2    bad command line, unreadable roster, or nothing graded in OUTPUT"""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m autograder", description="Grade neuroevolution submissions.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    raw = argparse.RawDescriptionHelpFormatter

    cmd = commands.add_parser(
        "grade",
        help="grade submissions in nbgrader's submitted layout",
        epilog=GRADE_STATUS,
        formatter_class=raw,
        description="Grade every submission (or one) and write results.json, feedback.html, "
        "grades.csv and gradebook.db under OUTPUT.",
    )
    cmd.add_argument(
        "--submitted",
        type=Path,
        default=Path("submitted"),
        help="folder holding <student_id>/neuroevolution/neuroevolution.ipynb (default: submitted)",
    )
    cmd.add_argument(
        "--output", type=Path, default=Path("grades"), help="folder the results are written to (default: grades)"
    )
    cmd.add_argument(
        "--student", action="append", metavar="ID", help="grade only this student (repeat the flag for several)"
    )
    cmd.add_argument(
        "--force",
        action="store_true",
        help="regrade students whose notebook has not changed since they were last graded",
    )
    cmd.add_argument(
        "--only",
        choices=sorted(results.ONLY),
        default=None,
        help="regrade (as with --force) only "
        + "; or only ".join(f"{name}: {what}" for name, what in sorted(results.ONLY.items())),
    )
    cmd.add_argument(
        "--jobs",
        type=_positive,
        default=1,
        metavar="N",
        help="grade N students at once (default 1); each timed measurement still gets cores of its "
        "own, so grades do not depend on N: worth it from about 4 cores up",
    )
    cmd.add_argument(
        "--categories",
        default=",".join(CATEGORIES),
        help=f"comma-separated categories to grade (default: all of {','.join(CATEGORIES)})",
    )
    cmd.add_argument(
        "--seeds-from",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="regrade with the seeds of an earlier grading, as recorded in its OUTPUT/<student_id>/results.json "
        "(extra_data.plan), instead of drawing new ones; pair it with --force to regrade into the same output",
    )

    cmd = commands.add_parser(
        "collect",
        help="fill the submitted layout from an LMS, Gradescope or exchange download",
        epilog=COLLECT_STATUS,
        formatter_class=raw,
        description="Read a Gradescope export zip, a Canvas-style zip (<name>_<user id>_"
        "<submission id>_<file>), a folder of student folders (Moodle's too) or "
        "nbgrader's exchange, and write each student's latest notebook to "
        f"SUBMITTED/<id>/{paths.ASSIGNMENT}/{paths.NOTEBOOK} with timestamp.txt.",
    )
    cmd.add_argument(
        "source",
        type=Path,
        metavar="ARCHIVE_OR_FOLDER",
        help="the downloaded zip, or the folder it unpacks to, or the exchange's inbound folder",
    )
    cmd.add_argument(
        "--submitted",
        type=Path,
        default=Path("submitted"),
        help="folder to fill, in nbgrader's submitted layout (default: submitted)",
    )
    cmd.add_argument("--dry-run", action="store_true", help="print the table, write nothing")

    cmd = commands.add_parser(
        "feedback",
        help="stage student feedback: nbgrader's feedback/ layout and one zip each",
        epilog=FEEDBACK_STATUS,
        formatter_class=raw,
        description="Write each graded student's feedback page from OUTPUT/<id>/results.json "
        f"to FEEDBACK_DIR/<id>/{paths.ASSIGNMENT}/{paths.ASSIGNMENT}.html (for "
        "`nbgrader release_feedback`, students who submitted through the exchange) "
        "and to ZIPS/<id>.zip (for everyone, to upload or mail).",
    )
    cmd.add_argument(
        "--output", type=Path, default=Path("grades"), help="folder holding the graded results (default: grades)"
    )
    cmd.add_argument(
        "--submitted",
        type=Path,
        default=Path("submitted"),
        help="the submitted folder, for each submission's timestamp.txt and exchange secret (default: submitted)",
    )
    cmd.add_argument(
        "--feedback-dir",
        type=Path,
        default=Path("feedback"),
        help="nbgrader's feedback folder, relative to the course root (default: feedback)",
    )
    cmd.add_argument(
        "--zips",
        type=Path,
        default=Path("dist/feedback"),
        help="folder for one <id>.zip per student (default: dist/feedback)",
    )
    cmd.add_argument("--student", action="append", metavar="ID", help="only this student (repeat for several)")
    cmd.add_argument(
        "--publish",
        action="store_true",
        help="also show tests marked after_published (hidden tests), as once grades are published",
    )
    cmd.add_argument(
        "--no-agent",
        action="store_true",
        help="leave out the frames of the trained agent (faster; they take about a second each)",
    )

    cmd = commands.add_parser(
        "export",
        help="write the grades for a spreadsheet or an LMS gradebook",
        epilog=EXPORT_STATUS,
        formatter_class=raw,
        description="Without --roster: one row per student with a column per part. With "
        "--roster (a gradebook exported from Canvas, Moodle, ...): the roster's "
        "identifying columns plus this assignment's score column, ready to import; "
        "roster students without a submission keep an empty score.",
    )
    cmd.add_argument(
        "--output", type=Path, default=Path("grades"), help="folder holding the graded results (default: grades)"
    )
    cmd.add_argument(
        "--submitted",
        type=Path,
        default=Path("submitted"),
        help="the submitted folder, so students not graded yet get a row (default: submitted)",
    )
    cmd.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="the LMS gradebook CSV to fill (default: none, write the per-part table)",
    )
    cmd.add_argument(
        "--to",
        type=Path,
        default=None,
        help="file to write (default: OUTPUT/export.csv, or OUTPUT/lms-upload.csv with --roster)",
    )
    cmd.add_argument(
        "--id-column",
        default=None,
        help="the one roster column holding the student ids the submissions were collected under "
        "(default: any column that holds them, SIS User ID, SIS Login ID, email..., row by row; "
        "the output says which were used)",
    )
    cmd.add_argument(
        "--column",
        default=None,
        help="name of the score column in the LMS file (default: the roster's column starting with "
        f"'{paths.ASSIGNMENT}', e.g. Canvas's 'Neuroevolution (1234)', else '{paths.ASSIGNMENT}')",
    )

    cmd = commands.add_parser(
        "report",
        help="write OUTPUT/report.html: the class at a glance, for the instructor",
        epilog=REPORT_STATUS,
        formatter_class=raw,
        description="One self-contained page made from OUTPUT/<student>/results.json and the submitted "
        "notebooks: who needs a look, score histograms, the failing checks, speedups against the "
        "reference, agent returns, near-identical submissions and late work. It opens from disk and "
        "loads nothing.",
    )
    cmd.add_argument(
        "--output", type=Path, default=Path("grades"), help="folder holding the graded results (default: grades)"
    )
    cmd.add_argument(
        "--submitted",
        type=Path,
        default=None,
        help="the submitted folder, for the solution cells compared for similarity and students not graded yet "
        "(default: submitted, if it exists)",
    )
    cmd.add_argument(
        "--threshold",
        type=_fraction,
        default=SIMILAR,
        metavar="FRACTION",
        help=f"similarity from which two submissions are shown side by side (default {SIMILAR:g})",
    )
    cmd.add_argument(
        "--roster",
        type=Path,
        default=None,
        help="an LMS gradebook CSV: graded students missing from it are listed as needing a look",
    )
    cmd.add_argument(
        "--id-column",
        default=None,
        help="roster column holding the student ids (default: the column that matches the most students)",
    )
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # A stop by SIGTERM (a scheduler, a container runtime, `kill`) unwinds like Ctrl-C: every command
    # removes what it made on the way out.
    commands = {"grade": grade, "collect": collect, "feedback": feedback, "export": export, "report": report}
    with interrupts.terminate_as_interrupt():
        try:
            return commands[args.command](args)
        except UsageError as exc:
            return _usage(args.command, str(exc))
        except KeyboardInterrupt:  # a batch reports its own interruption; this is any other command's
            print(f"python -m autograder {args.command}: interrupted; run the same command again", file=sys.stderr)
            return 130


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction between 0 and 1 (e.g. 0.8)")
    return value


class UsageError(Exception):
    """A mistake in the command line or its inputs: reported as one line, status 2."""


def grade(args) -> int:
    from autograder import batch
    from autograder.grade import GraderFault

    try:
        categories = parse_categories(args.categories)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.submitted.is_dir():
        raise UsageError(
            f"no folder {args.submitted}: pass --submitted with the folder of submissions "
            f"(<student_id>/{paths.ASSIGNMENT}/{paths.NOTEBOOK}), or fill it with "
            "`python -m autograder collect DOWNLOAD`"
        )
    found = batch.survey(args.submitted)
    students, refused = found.students, found.refused
    if not students:
        raise UsageError(f"no submissions in {args.submitted}: run make collect FROM=... first" + _besides(refused))
    if args.student:
        missing = [s for s in args.student if s not in students]
        if missing:
            raise UsageError(
                f"no submission for {', '.join(missing)} in {args.submitted} "
                f"(students there: {', '.join(students) or 'none'})"
            )
        students = [s for s in students if s in args.student]
        refused = {}
    if args.only:
        students, refused = results.select(args.output, students, args.only), {}
        if not students:
            print(f"nothing to regrade: no {results.ONLY[args.only]} in {args.output}")
            return 0
        args.force = True
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"{args.output} exists and is not a folder: pass another --output")
    plan = _recorded_plan(args.seeds_from) if args.seeds_from else None
    allowed = quotas.jobs_cap(quotas.read(), 1)
    if args.jobs > allowed:  # more jobs than paid-for CPUs only makes every timed phase wait longer
        print(f"note: --jobs {args.jobs} lowered to {allowed}, the CPUs this grader can use", file=sys.stderr)
        args.jobs = allowed
    timed_at_once = quotas.jobs_cap(quotas.read(), SPEEDUP.processes)
    if "speedup" in categories and args.jobs > timed_at_once:
        print(
            f"note: with --jobs {args.jobs}, at most {timed_at_once} timed phase(s) run at once on these CPUs and each "
            "runs alone on its cores, so the other jobs only overlap untimed runs; grades are the same, but a batch "
            "graded in the speedup category alone is no faster than with --jobs "
            f"{timed_at_once}",
            file=sys.stderr,
        )
    try:
        report = batch.grade_batch(
            args.submitted, args.output, students, categories, args.force, refused, jobs=args.jobs, plan=plan
        )
    except GraderFault as exc:  # found up front (no isolation where required, a broken reference): nobody graded
        print(f"python -m autograder grade: cannot grade: {exc}", file=sys.stderr)
        return 3
    except output_lock.Busy as exc:  # another grade is writing into the same output: nothing written
        raise UsageError(str(exc)) from None
    print(batch.summary(report))
    if report.interrupted:
        print(
            f"interrupted after {len(report.graded)} of {report.total}; run the same command to resume", file=sys.stderr
        )
        return 130
    print(f"\nresults: {args.output}/<student>/results.json, {args.output}/grades.csv, {args.output}/gradebook.db")
    return 1 if report.ungraded else 0


def _besides(refused: dict[str, str]) -> str:
    """What the folder holds instead of student folders, for the 'no submissions' line."""
    if not refused:
        return ""
    names = ", ".join(sorted(refused)[:3]) + (", ..." if len(refused) > 3 else "")
    return f" (it holds only {names}, which cannot be graded: {refused[sorted(refused)[0]]})"


def _recorded_plan(path: Path):
    """The seeds recorded in an earlier grading's results.json (or observations.json), checked for this grader."""
    from autograder import observe

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"cannot read --seeds-from {path} ({exc.strerror}): pass OUTPUT/<student_id>/results.json"
        ) from None
    except ValueError:
        raise UsageError(f"--seeds-from {path} is not JSON: pass OUTPUT/<student_id>/results.json") from None
    record = (data.get("extra_data") or {}).get("plan", data.get("plan")) if isinstance(data, dict) else None
    try:
        return observe.Plan.from_record(record, str(path))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def collect(args) -> int:
    from autograder.term import intake, late

    if args.submitted.exists() and not args.submitted.is_dir():
        raise UsageError(f"{args.submitted} exists and is not a folder: pass another --submitted")
    try:
        done = intake.collect(args.source, args.submitted, dry_run=args.dry_run, policy=late.course_policy())
    except (intake.IntakeError, late.PolicyError) as exc:
        raise UsageError(str(exc)) from None
    print(intake.table(done, args.submitted))
    if args.dry_run:
        print("dry run: nothing written")
    bad = [r for r in done.rows if r.status in ("refused", "unmatched", "no-notebook")]
    return 1 if bad else 0


def feedback(args) -> int:
    from autograder.term import feedback as pages

    try:
        staged = pages.stage(
            args.output,
            args.submitted,
            args.feedback_dir,
            args.zips,
            students=args.student,
            publish=args.publish,
            agent=not args.no_agent,
        )
    except pages.NothingToStage as exc:
        raise UsageError(str(exc)) from None
    print(staged.describe(args.feedback_dir, args.zips))
    return 1 if staged.failed else 0


def export(args) -> int:
    from autograder.term import export as exporter

    try:
        written = exporter.run(
            args.output, args.submitted, roster=args.roster, to=args.to, id_column=args.id_column, column=args.column
        )
    except exporter.ExportError as exc:
        raise UsageError(str(exc)) from None
    print(written.describe())
    return 1 if written.not_in_roster else 0


def report(args) -> int:
    from autograder.term import report as class_report

    submitted = args.submitted
    if submitted is None:
        submitted = Path("submitted") if Path("submitted").is_dir() else None
    elif not submitted.is_dir():
        raise UsageError(f"no folder {submitted}: pass --submitted with the folder of submitted notebooks")
    if args.roster is not None and not args.roster.is_file():
        raise UsageError(f"no roster file {args.roster}: pass --roster with the CSV your LMS exported")
    try:
        written = class_report.run(
            args.output, submitted, roster=args.roster, id_column=args.id_column, threshold=args.threshold
        )
    except class_report.ReportError as exc:
        raise UsageError(str(exc)) from None
    print(written.describe())
    return 0


def _usage(command: str, message: str) -> int:
    print(f"python -m autograder {command}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

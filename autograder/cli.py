"""``python -m autograder grade --submitted DIR --output DIR [--student ID]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder import batch, paths
from autograder.config import CATEGORIES


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m autograder", description="Grade neuroevolution submissions.")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cmd = commands.add_parser("grade", help="grade submissions in nbgrader's submitted layout",
                              description="Grade every submission (or one) and write results.json, feedback.html, "
                                          "grades.csv and gradebook.db under OUTPUT.")
    cmd.add_argument("--submitted", type=Path, default=Path("submitted"),
                     help="folder holding <student_id>/neuroevolution/neuroevolution.ipynb (default: submitted)")
    cmd.add_argument("--output", type=Path, default=Path("grades"),
                     help="folder the results are written to (default: grades)")
    cmd.add_argument("--student", action="append", metavar="ID",
                     help="grade only this student (repeat the flag for several)")
    cmd.add_argument("--force", action="store_true",
                     help="regrade students whose notebook has not changed since they were last graded")
    cmd.add_argument("--categories", default=",".join(CATEGORIES),
                     help=f"comma-separated categories to grade (default: all of {','.join(CATEGORIES)})")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    categories = tuple(c.strip() for c in args.categories.split(",") if c.strip())
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown or not categories:
        return _usage(f"unknown category {', '.join(unknown) or '(none given)'}; choose from {', '.join(CATEGORIES)}")
    categories = tuple(c for c in CATEGORIES if c in categories)
    if not args.submitted.is_dir():
        return _usage(f"no folder {args.submitted}: pass --submitted with the folder of submissions "
                      f"(<student_id>/{paths.ASSIGNMENT}/{paths.NOTEBOOK})")
    everyone = batch.find_students(args.submitted)
    students = everyone
    if args.student:
        missing = [s for s in args.student if s not in everyone]
        if missing:
            return _usage(f"no submission for {', '.join(missing)} in {args.submitted} "
                          f"(students there: {', '.join(everyone) or 'none'})")
        students = [s for s in everyone if s in args.student]
    if args.output.exists() and not args.output.is_dir():
        return _usage(f"{args.output} exists and is not a folder: pass another --output")
    graded = batch.grade_batch(args.submitted, args.output, students, categories, args.force)
    print(batch.summary(graded, categories))
    print(f"\nresults: {args.output}/<student>/results.json, {args.output}/grades.csv, {args.output}/gradebook.db")
    return 1 if any(g.error for g in graded) else 0


def _usage(message: str) -> int:
    print(f"python -m autograder grade: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

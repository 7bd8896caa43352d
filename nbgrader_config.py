"""nbgrader settings for this course.

The instructor notebooks live in ``solutions/`` (nbgrader's "source" step) and the student
release in ``assignment/`` (its "release" step). ``python -m tools.release`` (``make
assignment``) runs ``generate_assignment`` with these settings; the plain nbgrader command line
works from this folder too, e.g. ``nbgrader generate_assignment neuroevolution --force``.

There is one gradebook: the grader's, ``grades/gradebook.db``, rebuilt by every ``make grade``
from the per-student results. nbgrader's own commands run from this folder read it, so
``nbgrader export`` and the formgrader show the grader's scores. Grading into another folder
(``make grade OUTPUT=term2``)? Set ``NEUROEVO_GRADES=term2`` for nbgrader's commands too.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
GRADES_DIR = ROOT / os.environ.get("NEUROEVO_GRADES", "grades")  # gitignored: local state, never committed

c = get_config()  # noqa: F821 -- nbgrader provides get_config() when it loads this file

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "parallel-neuroevolution"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignment"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.feedback_directory = "feedback"  # `make feedback` stages pages here for release_feedback
c.CourseDirectory.db_url = f"sqlite:///{GRADES_DIR / 'gradebook.db'}"
# Files that running the notebook leaves beside it must never reach the release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",  # nbgrader's defaults
    "agents",
    "*.npz",
    "*.gif",
    ".*",
]

# Late work, set once for the course. The grader applies it to results.json, grades.csv, the
# gradebook (due date, extensions, penalties: `nbgrader export` shows them), the LMS upload and
# the feedback pages; `make collect` uses it to keep an on-time submission beside a late one, and
# nbgrader's own autograde applies it through its late-submission plugin. After a change, `make
# grade` applies it again without regrading anyone. See autograder/term/late.py.
c.AssignLatePenalties.plugin_class = "autograder.term.late_plugin.CoursePenalty"
c.LatePolicy.duedate = ""  # e.g. "2025-03-14 23:59 Europe/London"; "" = no due date of the course's own
c.LatePolicy.grace_minutes = 0  # this long after the due date still counts as on time
c.LatePolicy.penalty_per_day = 0.0  # share of the score lost per day, or part of a day, late (0.1 = 10 %)
c.LatePolicy.max_penalty = 1.0  # the largest share a late submission loses
c.LatePolicy.extensions = {}  # student id -> days added to their due date, e.g. {"1002": 2}
c.LatePolicy.counts = "on-time"  # submitted before and after the due date: "on-time" or "latest" counts

GRADES_DIR.mkdir(parents=True, exist_ok=True)  # sqlite does not create the folder of its database
# nbgrader runs `alembic` from PATH when it creates a gradebook; without an activated venv
# (`.venv/bin/nbgrader export`, `make ...`) it is found only beside the running Python.
if str(ROOT) not in sys.path:  # nbgrader's own commands import the course's late-penalty plugin from here
    sys.path.insert(0, str(ROOT))
_BIN = os.path.dirname(sys.executable)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join(filter(None, [_BIN, os.environ.get("PATH")]))

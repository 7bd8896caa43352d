"""nbgrader settings for this course.

The instructor notebooks live in ``solutions/`` (nbgrader's "source" step) and the student
release in ``assignment/`` (its "release" step). ``python -m tools.release`` (``make
assignment``) runs ``generate_assignment`` with these settings; the plain nbgrader command line
works from this folder too, e.g. ``nbgrader generate_assignment neuroevolution --force``.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent
GRADEBOOK_DIR = ROOT / "build"  # gitignored: the gradebook is local state, never committed

c = get_config()  # noqa: F821 -- nbgrader provides get_config() when it loads this file

c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "parallel-neuroevolution"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "assignment"
c.CourseDirectory.db_url = f"sqlite:///{GRADEBOOK_DIR / 'gradebook.db'}"
# Files that running the notebook leaves beside it must never reach the release.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",  # nbgrader's defaults
    "agents", "*.npz", "*.gif", ".*",
]

GRADEBOOK_DIR.mkdir(exist_ok=True)  # sqlite does not create the folder of its database

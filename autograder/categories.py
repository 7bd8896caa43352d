"""The graded categories, each declared once: its tag, title, points, the runs it reads and its checks.

Everything that lists, names or weighs categories derives from :data:`ALL`: the observation
plan (``grade.py``), the checks (``checks/test_<name>.py``, collected by ``scoring.py``),
results.json and grades.csv, the feedback pages, the exports and the gradebook, and the
notebook's graded test cells, whose points the release stamps from here (``tools/release.py``)
and which the kit's self-check reads. Adding a category is one entry here and its checks file;
``tests/test_categories.py`` proves the derived places agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.config import OBSERVE

OBSERVED_PARALLEL = f"parallel_{OBSERVE.parallel_processes[0]}"
"""The observation run of evolve_parallel that the parallel category and the agent's start read."""


@dataclass(frozen=True)
class Category:
    """One graded part of the assignment."""

    name: str
    """Tag of its tests in results.json, and the stem of its checks file and notebook cell (``test_<name>``)."""
    title: str
    """What students and staff read for it, on feedback pages, reports and exports."""
    points: int
    """Its share of the total; its checks split it by their weights."""
    runs: tuple[str, ...] = ()
    """Untimed observation runs it reads (labels from ``observe.observe_calls``); timed and training
    phases are made by ``timing.py`` and ``training.py``."""

    @property
    def cell_id(self) -> str:
        """The nbgrader grade_id of its graded test cell in the notebook."""
        return f"test_{self.name}"

    @property
    def checks_file(self) -> str:
        """Its checks module under ``autograder/checks/``."""
        return f"test_{self.name}.py"


ALL = (
    Category("serial", "Serial loop", 25, runs=("serial_main",)),
    Category("parallel", "Parallel loop", 20, runs=(OBSERVED_PARALLEL,)),
    Category(
        "determinism",
        "Same results everywhere",
        20,
        runs=("serial_main", "serial_repeat", "serial_other", *(f"parallel_{n}" for n in OBSERVE.parallel_processes)),
    ),
    Category("speedup", "Speedup", 15),
    Category("agent", "Trained agent", 20, runs=("serial_main", OBSERVED_PARALLEL)),
)

CATEGORIES = tuple(c.name for c in ALL)
"""The category tags, in the order they are graded and shown."""
POINTS = {c.name: c.points for c in ALL}
TOTAL = sum(POINTS.values())
BY_NAME = {c.name: c for c in ALL}


def title(name: str) -> str:
    """A category's title; an unknown tag (from an older results.json) shows as itself."""
    return BY_NAME[name].title if name in BY_NAME else name


def parse(text: str) -> tuple[str, ...]:
    """Categories named in a comma-separated list, in grading order; ValueError saying what to choose from."""
    named = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in named if c not in BY_NAME]
    if unknown or not named:
        raise ValueError(
            f"unknown category {', '.join(unknown) or '(none given)'}; choose from {', '.join(CATEGORIES)}"
        )
    return tuple(c for c in CATEGORIES if c in named)

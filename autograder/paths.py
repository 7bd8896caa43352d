"""Where the grader finds its trusted inputs (never the student's copies)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "neuroevolution"
NOTEBOOK = "neuroevolution.ipynb"
HELPER = "evolution.py"
HINTS = "hints.py"
DEMOS = "parallel_demos.py"
LESSON_MODULES = (HELPER, DEMOS, HINTS)  # the modules beside the notebook that the lesson imports
TEMP_PREFIX = "neuroevo-"
"""Every folder the grader makes in the temporary folder ($TMPDIR) is named so: each is gone when the grader
exits, or released by the next batch if the grader was killed."""
RELEASE_DIR = ROOT / "assignment" / ASSIGNMENT
SOURCE_DIR = ROOT / "solutions" / ASSIGNMENT
COURSE_CONFIG = ROOT / "nbgrader_config.py"
"""nbgrader's settings for the course, the late policy among them."""
HARNESS_DIR = Path(__file__).resolve().parent / "harness"
CHECKS_DIR = Path(__file__).resolve().parent / "checks"


def course_config(config_file: Path | None = None):
    """The settings ``nbgrader_config.py`` (or ``config_file``) makes, as nbgrader itself loads them."""
    from traitlets.config.loader import PyFileConfigLoader

    path = Path(config_file or COURSE_CONFIG)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: restore it from version control")
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def private_folders() -> list[Path]:
    """What no run may read: the reference solution and instructor notebook, the hidden test corpora, the grader's
    checks and code (runs get copies of the harness and helper they need)."""
    return [ROOT / "solutions", ROOT / "tests", ROOT / "autograder"]


def protected_folders() -> list[Path]:
    """What no run may change: the grader's code and the release it trusts (its environment is added by the
    sandbox)."""
    return [ROOT / "autograder", ROOT / "assignment", ROOT / "tools"]


def _release_or_source(name: str) -> Path:
    # The release copy is what students got; before `make assignment` has produced it, the
    # source copy holds the same locked setup cell and the same helper module.
    release = RELEASE_DIR / name
    return release if release.is_file() else SOURCE_DIR / name


def setup_notebook() -> Path:
    """The trusted notebook the ``practical_setup`` cell is taken from."""
    return _release_or_source(NOTEBOOK)


def helper_module() -> Path:
    """The trusted ``evolution.py``."""
    return _release_or_source(HELPER)


def hints_module() -> Path:
    """The trusted ``hints.py``: the student-facing messages the visible tests print."""
    return _release_or_source(HINTS)


def reference_notebook() -> Path:
    """The instructor's notebook holding the reference solution."""
    return SOURCE_DIR / NOTEBOOK


def submission_notebook(submitted: Path, student: str) -> Path:
    """Where nbgrader's submitted layout puts one student's notebook."""
    return Path(submitted) / student / ASSIGNMENT / NOTEBOOK

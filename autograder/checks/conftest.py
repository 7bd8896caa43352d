"""Fixtures and reporting of the grading tests: observations in, per-test outcomes out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder.checks.observed import NotChosen, Observed


def pytest_addoption(parser):
    parser.addoption("--observations", help="JSON file of one student's observations")
    parser.addoption("--report", help="JSON file the per-test outcomes are written to")


class Credit:
    """Partial credit and notes a test attaches to its outcome."""

    def __init__(self):
        self.fraction: float | None = None
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        """Add a line to the test's output (shown for passed tests too)."""
        self.notes.append(message)

    def partial(self, fraction: float, message: str) -> None:
        """Award ``fraction`` of the test's points; below 1 the test fails with ``message``."""
        self.fraction = max(0.0, min(1.0, float(fraction)))
        if self.fraction < 1.0:
            pytest.fail(message, pytrace=False)
        self.note(message)


@pytest.fixture(scope="session")
def obs(request) -> Observed:
    """The student's observations, collected and validated by the grader."""
    path = request.config.getoption("--observations")
    if not path:
        pytest.skip(
            "these are the grader's checks: they run on one student's observations, as "
            "`python -m autograder grade` runs them (pass --observations FILE to run them by hand)"
        )
    return Observed(json.loads(Path(path).read_text(encoding="utf-8")))


@pytest.fixture
def credit(request) -> Credit:
    """Where the test records partial credit and notes."""
    request.node._credit = Credit()
    return request.node._credit


_OUTCOMES: list[dict] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and report.failed):
        return
    credit = getattr(item, "_credit", None)
    message = ""
    grader_fault = False
    if report.failed and call.excinfo is not None:
        error = call.excinfo.value
        grader_fault = isinstance(error, NotChosen)
        if isinstance(error, (AssertionError, pytest.fail.Exception)):
            message = str(error)
        else:  # a bug in the check itself, not the student's fault
            message = f"the grader could not run this check ({type(error).__name__}: {error})"
    notes = credit.notes if credit else []
    weight = item.get_closest_marker("weight")
    fraction = 1.0 if report.passed else (credit.fraction if credit and credit.fraction is not None else 0.0)
    _OUTCOMES.append(
        {
            "name": item.name,
            "doc": (item.function.__doc__ or "").strip(),
            "category": item.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"),
            "weight": float(weight.args[0]) if weight else 1.0,
            "hidden": item.get_closest_marker("hidden") is not None,
            "passed": report.passed,
            "fraction": fraction,
            "message": "\n".join([*notes, message]).strip(),
            "grader_fault": grader_fault,
        }
    )


def pytest_sessionfinish(session):
    path = session.config.getoption("--report")
    if path:
        Path(path).write_text(json.dumps(_OUTCOMES, indent=1), encoding="utf-8")

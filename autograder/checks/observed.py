"""Reading observations for the grading tests: failing early with the collection message."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.readback import PARAM_SHAPES

KEYS = tuple(PARAM_SHAPES)


def fail(message: str):
    pytest.fail(message, pytrace=False)


class NotChosen(Exception):
    """A check that needs a discriminating run got one whose seed was not chosen for it: the grader's fault (the
    student is left ungraded and the batch says so), never a verdict on the student."""


class Observed:
    """One student's observations with accessors that fail a test with the right message."""

    def __init__(self, data: dict):
        self.data = data

    def _loaded(self) -> None:
        if self.data.get("load_problem"):
            fail(self.data["load_problem"])

    def run(self, label: str) -> dict:
        """One observed run; fails the test if the run produced nothing usable."""
        self._loaded()
        run = self.data["runs"].get(label)
        if run is None:
            fail(f"{label} was not observed")
        if run["problem"]:
            fail(run["problem"])
        return run

    def answer(self, label: str) -> dict:
        """A run whose best_params and history are both valid."""
        run = self.run(label)
        if run["best_problem"] or run["history_problem"]:
            fail(run["best_problem"] or run["history_problem"])
        return run

    def rule(self, label: str, rule: str) -> dict:
        """A run that kept ``rule`` (see ``autograder/rules.py``); fails with the rule's message otherwise."""
        run = self.run(label)
        if rule in ("history", "selection"):
            self.answer(label)
        if run["rules"].get(rule):
            fail(run["rules"][rule])
        return run

    def chosen(self, label: str, *deviations: str) -> str:
        """``label``, once the plan says its run's seed was chosen to show ``deviations`` (``autograder/deviations.py``).

        A check that tells a deviation apart only on some seeds reads its run through this, naming them, so
        that no such check can pass a deviation by luck; a run not chosen for them raises :class:`NotChosen`.
        """
        runs = (self.data.get("plan") or {}).get("runs") or {}
        chosen_for = (runs.get(label) or {}).get("chosen_for") or []
        missing = [d for d in deviations if d not in chosen_for]
        if missing:
            raise NotChosen(f"the {label} run's seed was not chosen to show {', '.join(missing)}")
        return label

    def section(self, name: str) -> dict:
        """The speedup or agent observations."""
        self._loaded()
        return self.data[name]

    @property
    def settings(self) -> dict:
        return self.data["settings"]


def same_answer(a: dict, b: dict) -> bool:
    """Identical histories and identical best parameters, bit for bit."""
    return a["history"] == b["history"] and all(
        np.array_equal(np.asarray(a["best"][k]), np.asarray(b["best"][k])) for k in KEYS
    )

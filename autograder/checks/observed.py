"""Reading observations for the grading tests: failing early with the collection message."""

from __future__ import annotations

import numpy as np
import pytest

from autograder.readback import PARAM_SHAPES

KEYS = tuple(PARAM_SHAPES)


def fail(message: str):
    pytest.fail(message, pytrace=False)


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

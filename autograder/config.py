"""Grading settings: workloads, budgets, points and limits, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentBudget:
    """How the `agent` category trains a submission's loop and scores the result."""

    generations: int = 25
    """Generations per training run."""
    pop_size: int = 32
    """Candidates per generation."""
    sigma: float = 0.5
    """Spread passed to the student's loop for these runs."""
    attempts: int = 5
    """Training runs with different grader seeds; the best held-out score counts."""
    heldout_episodes: int = 20
    """Held-out start states the trained parameters are scored on."""
    solved_return: float = 90.0
    """Mean held-out return that earns full marks (gymnasium's reward threshold)."""


AGENT = AgentBudget()

# Points per category. The notebook's five graded test cells (grade_id test_<category>)
# carry the same points, so nbgrader's gradebook and export agree with results.json.
CATEGORIES = ("serial", "parallel", "determinism", "speedup", "agent")
POINTS = {"serial": 25, "parallel": 20, "determinism": 20, "speedup": 15, "agent": 20}

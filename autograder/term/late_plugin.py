"""The course's late penalty as nbgrader's own plugin, so ``nbgrader autograde`` takes what the grader takes.

``nbgrader_config.py`` names it (``c.AssignLatePenalties.plugin_class``); the policy itself is
``c.LatePolicy`` (``late.py``). Kept apart from ``late.py`` because importing nbgrader's plugins
loads its whole database layer, which ``collect`` and ``export`` do not need.
"""

from __future__ import annotations

from nbgrader.plugins import LateSubmissionPlugin

from autograder.term.late import LatePolicy


class CoursePenalty(LateSubmissionPlugin):
    """nbgrader's LateSubmissionPlugin applying ``c.LatePolicy``: grace period, penalty per day, cap."""

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        return LatePolicy(parent=self).late_submission_penalty(student_id, score, total_seconds_late)

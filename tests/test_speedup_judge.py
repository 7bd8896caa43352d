"""The speedup judge on hand-made timings: one rule, read from the settings recorded with the observations."""

from __future__ import annotations

import ast
import json
from dataclasses import asdict

import pytest

from autograder import paths, speedup_judge
from autograder.config import SpeedupSettings


def timing(mine: float | None, ref: float, *, workers: int = 2, cpu_ratio: float = 1.8, inconclusive=None) -> dict:
    """A speedup observation: the student's and the reference's medians over three rounds."""
    return {
        "cores": 2,
        "inconclusive": inconclusive,
        "rounds": 3,
        "student": {"problems": {}, "worker_pids": [workers] * 3, "speedup": mine, "cpu_ratio": cpu_ratio},
        "reference": {"problems": {}, "speedup": ref},
    }


def test_speedup_judge_notebook_thresholds_are_the_settings():
    """The notebook's visible speedup thresholds are the numbers the grader judges with."""
    source = json.loads(paths.reference_notebook().read_text(encoding="utf-8"))
    cell = next(
        "".join(c["source"])
        for c in source["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "test_speedup"
    )
    assigned = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in speedup_judge.NOTEBOOK_THRESHOLDS
    }
    defaults = asdict(SpeedupSettings())
    assert assigned == {name: defaults[field] for name, field in speedup_judge.NOTEBOOK_THRESHOLDS.items()}


def test_speedup_judge_not_judged_uses_recorded_settings():
    """A timing not judged on speed scales against the full-marks share recorded with it, not today's default."""
    recorded = {**asdict(SpeedupSettings()), "full_fraction": 0.5}
    judgement = speedup_judge.judge(timing(0.6, 1.0, inconclusive="busy"), recorded)
    assert judgement.verdict == "not judged"
    assert judgement.speed.fraction == pytest.approx(1.0), judgement.speed.message
    assert "full marks from 0.50x" in judgement.speed.message


@pytest.mark.parametrize("mine, fraction", [(1.05, 0.0), (1.8, 1.0)])
def test_speedup_judge_judged_against_reference(mine, fraction):
    """Beside a reference that sped up, no credit at the no-credit line, full marks from 80 % of the reference."""
    judgement = speedup_judge.judge(timing(mine, 1.85), asdict(SpeedupSettings()))
    assert judgement.verdict == "judged"
    assert judgement.speed.fraction == pytest.approx(fraction)
    assert judgement.full_marks_at == pytest.approx(0.8 * 1.85)


def test_speedup_judge_settled_follows_the_same_thresholds():
    """The early stop settles only a verdict past the judge's own lines."""
    settings = SpeedupSettings()
    summary = {"student": {"speedup": 1.7}, "reference": {"speedup": 1.8}}
    assert speedup_judge.settled(summary, 1, settings)
    assert not speedup_judge.settled({**summary, "reference": {"speedup": 1.2}}, 1, settings)
    assert not speedup_judge.settled(summary, 1, SpeedupSettings(full_fraction=1.0))

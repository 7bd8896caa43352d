"""Wrong submissions students really make: each loses points in its own categories and only there."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
import support  # noqa: E402

GRADED = ("serial", "parallel", "determinism", "agent")  # speedup has its own test below


def test_grader_corpus_is_large_enough():
    """The corpus holds at least 10 distinct wrong submissions, each naming the categories it must lose."""
    entries = support.corpus()
    assert len(entries) >= 10, f"only {len(entries)} wrong submissions in tests/corpus/wrong"
    assert len({entry[0] for entry in entries.values()}) == len(entries), "two corpus entries are identical"
    for name, (_, loses, doc, _) in entries.items():
        assert loses and set(loses) <= {"serial", "parallel", "determinism", "speedup", "agent"}, name
        assert doc, f"{name} has no docstring describing the mistake"


@pytest.mark.slow
def test_grader_corpus_loses_points_only_where_expected(tmp_path):
    """Grading the corpus in one batch: every entry loses points exactly in its LOSES categories."""
    entries = support.corpus()
    submitted, output = tmp_path / "submitted", tmp_path / "grades"
    for name, (source, *_) in entries.items():
        support.write_student(submitted, name, source)
    done = support.grade(submitted, output, "--categories", ",".join(GRADED))
    assert done.returncode == 0, done.stderr[-3000:]
    wrong = []
    for name, (_, loses, _, may_lose) in entries.items():
        result = support.results(output, name)
        lost = set(support.losses(result))
        expected = set(loses) & set(GRADED)
        if not expected <= lost <= expected | set(may_lose):
            wrong.append(f"{name}: lost points in {sorted(lost)}, expected {sorted(expected)}\n{support.failures(result)}")
    assert not wrong, "\n\n".join(wrong)


@pytest.mark.slow
def test_grader_corpus_speedup_losses(tmp_path):
    """Entries that do not run in parallel processes get no full speedup marks, even on a busy machine; messages say why."""
    entries = {name: e for name, e in support.corpus().items() if "speedup" in e[1]}
    submitted, output = tmp_path / "submitted", tmp_path / "grades"
    for name, (source, *_) in entries.items():
        support.write_student(submitted, name, source)
    done = support.grade(submitted, output, "--categories", "parallel,speedup")
    assert done.returncode == 0, done.stderr[-3000:]
    for name in entries:
        result = support.results(output, name)
        speedup = [t for t in result["tests"] if t["tags"] == ["speedup"]]
        if any("fewer than 2 cores" in t["output"] for t in speedup):
            pytest.skip("the grader has fewer than 2 cores: no speedup can be measured")
        assert sum(t["score"] for t in speedup) < sum(t["max_score"] for t in speedup), (
            f"{name} kept full speedup marks:\n" + "\n".join(t["output"] for t in speedup))
        assert all(t["output"] for t in speedup if t["status"] == "failed"), name

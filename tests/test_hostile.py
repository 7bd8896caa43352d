"""Hostile, broken and wrong submissions graded in one batch beside a correct one (see conftest.py).

The batch must grade every student, give each its verdict with its message, give the correct
student full marks, leave no process behind, let nothing write outside its sandbox, report the
folders it cannot grade, and spend no more time on a submission than its runs' limits allow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import support
from conftest import CORRECT_STUDENT, NOTEBOOK_FAULTS, SAMPLE, SPEEDUP_SAMPLE, UNGRADABLE, all_entries

from autograder import demo
from autograder.categories import CATEGORIES

MARKER = "HOSTILE_WAS_HERE"
REQUIRED = {
    # crashes, hangs and floods
    "hang_in_serial",
    "segfault_in_parallel",
    "sys_exit_at_import",
    "os_exit_at_import",
    "memory_hog_serial",
    "fork_bomb",
    "output_flood",
    "returns_generators",
    "returns_nans",
    "returns_wrong_types",
    "unpicklable_worker_results",
    "snoop_and_tamper",
    "patch_clock",
    "patch_helper",
    "fake_worker_pids",
    # points without the skill, and the grader's own faults
    "slowed_serial_fake_parallel",
    "sleep_at_import",
    "detects_timed_run",
    "cache_between_runs",
    "answer_file_from_serial",
    "handmade_controller",
    "handmade_candidate_injected",
    "fixed_episode_seed",
    "elitism",
    "forged_records_flood",
    "lingering_thread",
    "deep_folders",
    "deep_json_record",
    "folder_in_records",
    "shared_memory_hog",
    "keyring_channel",
    # found by trying to break the grader as a student would
    "planted_first_generation",
    "hash_seeded",
    "slow_pool",
    "many_children",
    "planted_first_generation_jittered",
    "order_depends_on_default_processes",
    "spinlock_busy_workers",
    "planted_last_generation",
    "private_episode_copy",
    "slows_the_reference",
    # evidence of parallel work that a busy grader cannot hide
    "forge_worker_records",
    "forge_busy_worker_records",
    "lock_turn_taking_workers",
}

NOISE = 5
"""Speedup points (of 15) a correct loop may lose in the test budgets' timed batch: its runs last half a second,
where a burst of other work on a shared machine moves a round by more than at the real workload."""


def test_hostile_corpus_is_well_formed():
    """Every corpus file parses, says what it does, names valid categories and covers the required cases."""
    entries = {**support.corpus("hostile"), **support.corpus("wrong"), **support.corpus("correct")}
    assert REQUIRED <= set(entries), f"missing hostile cases: {sorted(REQUIRED - set(entries))}"
    unknown = (SAMPLE | SPEEDUP_SAMPLE) - set(entries) - set(NOTEBOOK_FAULTS)
    assert not unknown, f"make test's samples name no entry {sorted(unknown)}"
    assert len(support.corpus("wrong")) >= 10
    for name, entry in entries.items():
        assert entry.doc, f"{name}: add a docstring saying what the submission does"
        assert set(entry.loses) | set(entry.may_lose) <= set(CATEGORIES), f"{name}: unknown category"
        compile(entry.source, name, "exec")
        assert set(demo.split_cells(entry.source)) == {"evolve_serial", "evolve_parallel"}
    assert len({e.source for e in entries.values()}) == len(entries), "two corpus entries are identical"


@pytest.mark.slow
def test_hostile_batch_grades_everyone_and_survives(class_batch):
    """The batch ends by itself, with no traceback, no process left running and grades.csv for everyone."""
    assert "Traceback" not in class_batch.stderr, f"the grader crashed:\n{class_batch.stderr[-4000:]}"
    assert class_batch.leftovers == [], "processes started by the grader are still running:\n" + "\n".join(
        class_batch.leftovers
    )
    assert class_batch.returncode == 1, (
        f"status {class_batch.returncode}: expected 1 (ungradable folders)\n{class_batch.stderr[-3000:]}"
    )
    csv = (class_batch.output / "grades.csv").read_text()
    missing = [name for name in [*class_batch.entries, CORRECT_STUDENT] if name not in csv]
    assert not missing, f"grades.csv is missing {missing}"


@pytest.mark.slow
def test_hostile_batch_reports_ungradable_folders(class_batch):
    """Folders named like the batch's outputs or hidden are listed with why, never graded, never silently skipped."""
    for name, why in UNGRADABLE.items():
        assert name in class_batch.stdout and why in class_batch.stdout, class_batch.stdout[-2000:]
    assert not (class_batch.output / ".hidden-student").exists()


@pytest.mark.slow
def test_hostile_batch_correct_student_gets_full_marks(class_batch):
    """The reference solution, graded among hostile ones, loses nothing."""
    result = class_batch.result(CORRECT_STUDENT)
    assert support.losses(result) == {}, support.failures(result)
    isolation = result["extra_data"]["isolation"]
    assert isolation["mode"] in ("bubblewrap", "process") and "kernel_caps" in isolation


@pytest.mark.slow
def test_hostile_batch_every_entry_gets_its_verdict(class_batch):
    """Each entry loses points in its declared categories and only there, with its message."""
    wrong = []
    for name, entry in class_batch.entries.items():
        path = class_batch.output / name / "results.json"
        if not path.is_file():
            wrong.append(f"{name}: no results.json")
            continue
        problem = support.verdict_problem(entry, json.loads(path.read_text()), class_batch.categories)
        if problem:
            wrong.append(problem)
    assert not wrong, "\n\n".join(wrong)


@pytest.mark.slow
def test_hostile_batch_linked_notebooks_show_nothing_of_their_target(class_batch):
    """A notebook linked to the solutions or a secret file is refused without reading either."""
    for name in ("notebook_linked_to_solutions", "notebook_linked_to_secret"):
        if name not in class_batch.entries:
            continue
        text = (class_batch.output / name / "results.json").read_text() + (
            class_batch.output / name / "feedback.html"
        ).read_text()
        assert "BEGIN SOLUTION" not in text and "root:" not in text


@pytest.mark.slow
def test_hostile_batch_lingering_thread_costs_no_extra_time(class_batch):
    """A thread left running at import ends with its run: grading takes the normal time (plus 5 s at most)."""
    correct = class_batch.result(CORRECT_STUDENT)["execution_time"]
    lingering = class_batch.result("lingering_thread")["execution_time"]
    assert lingering <= correct + 5, f"lingering thread: {lingering:.1f} s, correct student: {correct:.1f} s"


@pytest.mark.slow
def test_hostile_batch_nothing_written_outside_the_sandbox(class_batch):
    """No submission wrote a marker file outside its own sandbox folder."""
    root = class_batch.root
    tampered = [str(p) for p in [*root.rglob(MARKER), Path("/tmp") / MARKER, support.ROOT / MARKER] if p.exists()]
    assert tampered == [], f"a submission wrote outside its sandbox: {tampered}"
    left = [p for p in (root / "scratch").rglob("*") if p.is_dir() and p.name.startswith("run-")]
    assert left == [], f"run folders left behind: {left[:3]}"


@pytest.mark.slow
@pytest.mark.timed
def test_hostile_speedup_batch_verdicts(speedup_batch):
    """In the speedup category, entries without real parallel work lose the points, the correct ones keep them."""
    assert "Traceback" not in speedup_batch.stderr, speedup_batch.stderr[-3000:]
    # A correct loop may lose a few points to the small timed workload here (at most NOISE), never the category.
    correct = {CORRECT_STUDENT, *support.corpus("correct")} & {CORRECT_STUDENT, *speedup_batch.entries}
    noisy = {name: support.losses(speedup_batch.result(name)).get("speedup", 0) for name in correct}
    assert all(lost <= NOISE for lost in noisy.values()), "\n".join(
        f"{name} lost {lost:.1f} speedup points:\n{support.failures(speedup_batch.result(name))}"
        for name, lost in noisy.items()
        if lost > NOISE
    )
    wrong = [
        p
        for name, entry in speedup_batch.entries.items()
        if name not in correct
        and (p := support.verdict_problem(entry, speedup_batch.result(name), {"speedup"}, check_message=False))
    ]
    assert not wrong, "\n\n".join(wrong)


def test_hostile_notebook_faults_cover_links_and_duplicates():
    """The notebook-level faults include the linked notebooks and the duplicated cell."""
    assert {"notebook_linked_to_solutions", "notebook_cell_duplicated"} <= set(NOTEBOOK_FAULTS)
    assert set(all_entries()) >= set(NOTEBOOK_FAULTS) - {"notebook_linked_to_secret"}

"""The speedup judge on hand-made timings: one rule, read from the settings recorded with the observations."""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass

import pytest

from autograder import concurrency, paths, rules, speedup_judge, timing
from autograder.config import SpeedupSettings


def timed(mine: float | None, ref: float, *, workers: int = 2, cpu_ratio: float = 1.8, inconclusive=None) -> dict:
    """A speedup observation: the student's and the reference's speedups over three rounds."""
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
    judgement = speedup_judge.judge(timed(0.6, 1.0, inconclusive="busy"), recorded)
    assert judgement.verdict == "not judged"
    assert judgement.speed.fraction == pytest.approx(1.0), judgement.speed.message
    assert "full marks from 0.50x" in judgement.speed.message
    assert judgement.record()["thresholds"]["full_fraction"] == 0.5, "pages drawn from results.json need its lines"


@pytest.mark.parametrize("mine, fraction", [(1.05, 0.0), (1.8, 1.0)])
def test_speedup_judge_judged_against_reference(mine, fraction):
    """Beside a reference that sped up, no credit at the no-credit line, full marks from 80 % of the reference."""
    judgement = speedup_judge.judge(timed(mine, 1.85), asdict(SpeedupSettings()))
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


@pytest.mark.parametrize("conc, idle, settled", [(1.9, 0, True), (1.0, 0, True), (1.5, 0, False), (1.9, 0.6, False)])
def test_speedup_judge_settled_on_a_busy_machine_by_the_evidence(conc, idle, settled):
    """Beside a reference that did not speed up, one round settles a clear verdict of the evidence (full marks or
    nothing); a borderline one, or a loop whose pauses put it near the line, gets more rounds."""
    assert speedup_judge.settled(evidence_timing(conc, idle=idle), 1, SpeedupSettings()) == settled


# --- evidence of parallel work, on hand-made records and CPU samples ------------------------------------------

MS = 1_000_000


@dataclass
class Record:
    pid: int
    t0: int
    t: int


def sampled(busy: dict[int, list[tuple[int, int]]], *, until: int = 400, every: int = 10, waiting=None) -> dict:
    """CPU samples every ``every`` ms of processes that run during ``busy`` (ms intervals) and wait for a core
    during ``waiting``; the run's total is what they ran."""
    waiting = waiting or {}
    polls = list(range(0, until * MS + 1, every * MS))

    def upto(spans, t):
        return sum(max(0, min(b * MS, t) - a * MS) for a, b in spans)

    processes = {
        pid: [[k, upto(spans, t), upto(waiting.get(pid, []), t)] for k, t in enumerate(polls)]
        for pid, spans in busy.items()
    }
    run = [sum(upto(spans, t) for spans in busy.values()) for t in polls]
    return {"created": 0, "polls": polls, "run_cpu": run, "processes": processes}


def generation_of(pairs: list[tuple[int, int, int]]) -> list[Record]:
    """Records of episodes given as (pid, start ms, end ms), in the order they ended."""
    return sorted((Record(pid, a * MS, b * MS) for pid, a, b in pairs), key=lambda r: r.t)


def test_speedup_judge_evidence_two_workers_at_once_even_on_one_busy_core():
    """Two workers playing side by side count as 2 at once, whether they run or wait for a shared core."""
    episodes = generation_of([(p, 10 * i, 10 * i + 10) for i in range(1, 30) for p in (2, 3)])
    free = concurrency.evidence(episodes, sampled({2: [(10, 300)], 3: [(10, 300)]}), pop_size=58, caller=1)
    shared = sampled({2: [(10, 300)], 3: [(10, 300)]})
    half = {pid: [[k, ran // 2, ran - ran // 2] for k, ran, _ in rows] for pid, rows in shared["processes"].items()}
    ran = [sum(rows[k][1] for rows in half.values()) for k in range(len(shared["polls"]))]
    busy = concurrency.evidence(episodes, {**shared, "processes": half, "run_cpu": ran}, pop_size=58, caller=1)
    for ev in (free, busy):
        assert ev["concurrency"] == pytest.approx(2.0, abs=0.05) and ev["backing"] == pytest.approx(1.0, abs=0.05)
        assert ev["outside_share"] == pytest.approx(0.0, abs=0.05)


def test_speedup_judge_evidence_turn_taking_and_idle_workers():
    """Workers taking turns reach 1 at most; workers credited with episodes they slept through reach 0, and the
    process that did the work shows as CPU time outside them."""
    turns = generation_of([(2 + i % 2, 10 * i, 10 * i + 10) for i in range(1, 30)])
    taking = concurrency.evidence(turns, sampled({2: [(0, 400)], 3: [(0, 400)]}), pop_size=29, caller=1)
    assert taking["concurrency"] == pytest.approx(1.0, abs=0.05) and taking["claimed_overlap"] == pytest.approx(1.0)
    forged = generation_of([(p, 10 * i, 10 * i + 10) for i in range(1, 30) for p in (2, 3)])
    idle = concurrency.evidence(forged, sampled({1: [(10, 300)], 2: [], 3: []}), pop_size=58, caller=1)
    assert idle["claimed_overlap"] == pytest.approx(2.0) and idle["concurrency"] < 0.05 and idle["backing"] < 0.05
    assert idle["outside_share"] > 0.95


def test_speedup_judge_evidence_idle_time_is_when_no_process_could_run():
    """Time in which no process of the run was running or ready to run counts as idle; a busy core does not."""
    samples = sampled({2: [(0, 300)], 3: [(0, 300)]})
    samples["runnable"] = [0 if 100 <= k * 10 <= 150 else 2 for k in range(len(samples["polls"]))]
    assert concurrency.idle_seconds(samples, (0, 300 * MS)) == pytest.approx(0.05)
    assert concurrency.idle_seconds(samples, (200 * MS, 300 * MS)) == 0


def test_speedup_judge_evidence_claims_outside_the_samples_back_nothing():
    """Episodes claimed after the run's end cannot have been played in it; claimed just after its last sample,
    where nothing was measured, they are not backed."""
    busy = sampled({2: [(0, 400)], 3: [(0, 400)]})
    late = generation_of([(2, 1000, 1010), (3, 1000, 1010)])
    assert concurrency.evidence(late, busy, pop_size=2, caller=1)["impossible_share"] == pytest.approx(1.0)
    edge = generation_of([(2, 399, 400)] + [(p, 401, 420) for p in (2, 3)])
    assert concurrency.evidence(edge, busy, pop_size=3, caller=1)["backing"] < 0.1
    after = generation_of([(p, 401, 420) for p in (2, 3)])
    assert concurrency.evidence(after, busy, pop_size=2, caller=1)["backing"] == 0


def evidence_timing(
    conc: float, outside: float = 0.01, *, idle: float = 0.0, ref: float = 1.9, reason="busy", work: float = 0.6
) -> dict:
    """A timing not judged on speed whose three rounds show ``conc`` episodes at once, ``outside`` of the CPU
    spent beside the workers and ``idle`` seconds when the whole run slept (``work`` CPU seconds in the workers
    each, 0.6 for the reference)."""
    out = timed(0.9, 1.0, inconclusive=reason)
    mine = {"concurrency": conc, "outside_share": outside, "sampled_processes": 3, "work_seconds": work}
    out["student"]["evidence"] = [{**mine, "idle_seconds": idle}] * 3
    beside = {"concurrency": ref, "outside_share": 0.01, "sampled_processes": 3, "work_seconds": 0.6}
    out["reference"]["evidence"] = [{**beside, "idle_seconds": 0.0}] * 3
    return out


@pytest.mark.parametrize(
    "conc, outside, fraction, words",
    [
        (1.9, 0.01, 1.0, "on average 1.90"),
        (1.0, 0.01, 0.0, "took turns"),
        (2.0, 0.33, 0.0, "played none of their episodes"),
        (0.01, 0.99, 0.0, "played none of their episodes"),
    ],
)
def test_speedup_judge_not_judged_follows_the_evidence(conc, outside, fraction, words):
    """On a machine too busy to judge a speedup, points follow the evidence of parallel work, not the workers."""
    judgement = speedup_judge.judge(evidence_timing(conc, outside), asdict(SpeedupSettings()))
    assert judgement.verdict == "not judged"
    assert judgement.fraction == pytest.approx(fraction)
    assert words in judgement.speed.message and "not judged on speed" in judgement.speed.message


def test_speedup_judge_not_judged_workers_spinning_through_turns_earn_little():
    """Workers that take turns at the real work but spin while they wait, behind forged overlapping claims, look
    concurrent and busy; their CPU time is twice the reference's for the same work, which the free-core estimate
    shows: a third of the points at most on a busy machine (on free cores the speedup itself gives nothing)."""
    spinning = speedup_judge.judge(evidence_timing(1.95, work=1.2), asdict(SpeedupSettings()))
    assert spinning.verdict == "not judged" and spinning.speed.fraction <= 1 / 3, spinning.speed.message
    assert "spinning while they wait" in spinning.speed.message
    honest = speedup_judge.judge(evidence_timing(1.9, work=0.66), asdict(SpeedupSettings()))
    assert honest.speed.fraction == 1, "a Pool's own overhead (10 % more CPU) must not cost points"


def judged_with_evidence(mine: float, ref: float, conc: float, *, work: float = 0.6, idle: float = 0.0) -> dict:
    """A timing judged on speed (``mine`` beside the reference's ``ref``) whose rounds show ``conc`` episodes at
    once, ``work`` CPU seconds in the workers (0.6 for the reference) and ``idle`` seconds asleep."""
    out = evidence_timing(conc, idle=idle, work=work, reason=None)
    out["student"]["speedup"], out["reference"]["speedup"] = mine, ref
    return out


@pytest.mark.parametrize(
    "conc, work, idle, speed, parallel_work",
    [
        (1.85, 0.6, 0.0, 1.0, 1.0),  # episodes side by side, the reference's work: a burst slowed the clock
        (1.0, 0.6, 0.0, 0.0, 0.0),  # workers taking turns: the clock was right
        (1.95, 1.2, 0.0, 0.0, 0.0),  # workers spinning through their turns: twice the reference's CPU time
        (1.85, 0.6, 0.4, 0.0, 0.0),  # a pause per generation: the run slept
        (1.9, 0.9, 0.0, 0.0, 0.4667),  # 1.5 times the reference's CPU time: short of no loss, the clock stands
    ],
)
def test_speedup_judge_judged_clock_disturbed_or_not(conc, work, idle, speed, parallel_work):
    """Judged on speed, a measured speedup of 0.98x beside the reference's 1.32x (no credit by the clock) earns
    the points when the grader's samples show the episodes side by side at the reference's cost, and nothing
    when they show turns, CPU burned beside the episodes or a sleeping run; the evidence is capped the same way."""
    judgement = speedup_judge.judge(judged_with_evidence(0.98, 1.32, conc, work=work, idle=idle), SpeedupSettings())
    assert judgement.verdict == "judged"
    assert judgement.speed.fraction == pytest.approx(speed), judgement.speed.message
    assert judgement.parallel_work.fraction == pytest.approx(parallel_work, abs=1e-3), judgement.parallel_work.message
    if speed:
        assert "the clock was disturbed" in judgement.speed.message


def test_speedup_judge_unbacked_workers_break_the_processes_rule():
    """A run whose records credit episodes to processes that did not run breaks the processes rule."""
    problem = rules.check_processes(
        [rules.Played(2, 1, {}, 0.0), rules.Played(3, 1, {}, 0.0)],
        1,
        "evolve_parallel",
        2,
        "evolve_parallel(...)",
        {"backing": 0.02, "impossible_share": 0.0},
    )
    assert problem and "were not running" in problem


def test_speedup_judge_interval_from_the_rounds():
    """Each round's own speedup is kept; the spread of three rounds is reported beside the verdict."""
    side = {
        "series": {"serial": {"wall": [2.1] * 3}, "parallel": {"wall": [1.1, 1.2, 1.3]}, "noop": {"wall": [0.1] * 3}}
    }
    rounds = timing.round_speedups(side, side, side)
    assert rounds == pytest.approx([2.0, 2.0 / 1.1, 2.0 / 1.2])
    student = {**timing_of_rounds(rounds)["student"]}
    assert speedup_judge.interval(student) == pytest.approx([2.0 / 1.2, 2.0], abs=1e-4)
    judgement = speedup_judge.judge(timing_of_rounds(rounds), asdict(SpeedupSettings()))
    assert "rounds measured 1.67-2.00x" in judgement.speed.message


def timing_of_rounds(rounds: list[float]) -> dict:
    out = timed(sorted(rounds)[1], 1.85)
    out["student"]["speedup_rounds"] = rounds
    return out


def test_speedup_judge_not_judged_still_compares_with_the_reference_beside_it():
    """Episodes played side by side do not make up for time lost outside them: a loop that sleeps 0.4 s per
    generation (1.2 s in all) would be slower than the serial loop on free cores, and earns nothing."""
    slow = speedup_judge.judge(evidence_timing(1.9, idle=1.2), asdict(SpeedupSettings()))
    assert slow.speed.fraction == 0 and "of the reference's" in slow.speed.message, slow.speed.message
    assert speedup_judge.judge(evidence_timing(1.9, idle=0.05), asdict(SpeedupSettings())).speed.fraction == 1


def test_speedup_judge_one_slow_round_beside_parallel_evidence_is_not_settled():
    """A submission whose episodes ran side by side but whose one round measured no speedup beside a reference
    that sped up gets the usual rounds: a burst of other work, not its loop, is the likely cause."""
    slow = evidence_timing(1.9)
    slow["student"]["speedup"], slow["reference"]["speedup"] = 0.7, 1.5
    assert not speedup_judge.settled(slow, 1, SpeedupSettings())
    assert speedup_judge.settled(slow, SpeedupSettings().repeats, SpeedupSettings())
    turns = evidence_timing(1.0)
    turns["student"]["speedup"], turns["reference"]["speedup"] = 0.7, 1.5
    assert speedup_judge.settled(turns, 1, SpeedupSettings())

"""The speedup judge: from the trusted measurements of the timed rounds to points and the student's message.

Every speedup verdict is made here, once: the timed phase asks :func:`settled` when to stop
timing, the checks (``checks/test_speedup.py``) score :func:`judge`'s parts, results.json keeps
its :meth:`Judgement.record` for the feedback page and the batch summary, and the notebook's
visible thresholds are tied to the same numbers (:data:`NOTEBOOK_THRESHOLDS`, checked by
``tests/test_speedup_judge.py``). The numbers themselves are ``config.SpeedupSettings``; the judge
always reads the settings recorded with the observations, never the grader's current ones, so a
regrade of old observations gives the verdict they were measured for.

The rule, in order:

1. **Refused** (nothing for either part): a timed run that did not count (wrong answer, crash),
   a speedup no run playing its episodes can reach, more CPU seconds per wall second than the
   cores given, or episodes played in fewer than 2 worker processes.
2. **Judged on speed** when the reference solution, timed beside the submission on the same
   cores, sped up by at least ``min_reference_speedup``: the submission's speedup earns nothing
   at ``zero_speedup`` or below and full marks from ``full_fraction`` of the reference's, unless
   the evidence of parallel work (4.) earns nothing, in which case the speedup was noise.
3. **Not judged on speed** otherwise (busy cores, workers started by spawn, fewer than 2 cores,
   or a timed phase the grader could not keep alone on its cores): the points then follow the
   evidence of parallel work, capped by the speedup the timed runs' structure would reach on free
   cores (their workers' CPU time, how many played at once, how long the run slept) as a share of
   the reference's estimated the same way: no loss from ``slow_share``, nothing at ``slow_zero_share``.
4. **Evidence of parallel work** (the second check, always; the first too when not judged on
   speed), from the timed evolve_parallel runs' episode records set against the grader's own CPU
   samples of each process (``concurrency.py``, median over the rounds): nothing when more than
   ``max_outside_share`` of the run's CPU time went to processes that played none of the episodes,
   nothing at ``zero_concurrency`` episodes in progress at once or fewer (workers taking turns reach
   1 at most), full marks from ``full_fraction`` of the reference's, measured beside it.
   It does not depend on free cores: a process waiting for a busy core still counts as playing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from statistics import median
from typing import NamedTuple

from autograder import concurrency
from autograder.config import SpeedupSettings

WEIGHTS = {"speed": 12, "parallel_work": 3}
"""Points of the category's two checks, in proportion: the speedup itself, and evidence of parallel work."""

NOTEBOOK_THRESHOLDS = {"_BUSY_BELOW": "min_reference_speedup", "_FLOOR": "zero_speedup"}
"""The notebook's visible speedup check (its ``test_speedup`` cell, run by the kit's check.py too) names these
constants; each must equal the SpeedupSettings field it maps to."""

VERDICTS = ("judged", "not judged", "refused")
THRESHOLDS = (
    "full_fraction",
    "zero_speedup",
    "min_reference_speedup",
    "zero_concurrency",
    "slow_share",
    "slow_zero_share",
)
"""The lines a verdict is drawn against, recorded with each judgement (the class report's chart draws them)."""


def settings_from(recorded: dict | None) -> SpeedupSettings:
    """The SpeedupSettings recorded with observations (fields an older grader did not record keep their default)."""
    known = {f.name for f in fields(SpeedupSettings)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in (recorded or {}).items() if k in known}
    return SpeedupSettings(**values)


@dataclass(frozen=True)
class Part:
    """One check's share of the verdict: the fraction of its points and what the student reads."""

    fraction: float
    message: str


@dataclass(frozen=True)
class Judgement:
    """The speedup category's verdict on one submission."""

    verdict: str
    """One of :data:`VERDICTS`."""
    speed: Part
    parallel_work: Part
    reason: str | None = None
    """Why the timing was not judged on speed (None when it was)."""
    full_marks_at: float | None = None
    """The speedup that earned full marks beside this reference (None when not judged on speed)."""
    concurrency: float | None = None
    """Episodes the submission's timed runs played at once, on average while any was (None: not sampled)."""
    reference_concurrency: float | None = None
    full_concurrency_at: float | None = None

    @property
    def fraction(self) -> float:
        """The category's fraction of points."""
        total = sum(WEIGHTS.values())
        return (WEIGHTS["speed"] * self.speed.fraction + WEIGHTS["parallel_work"] * self.parallel_work.fraction) / total

    thresholds: dict | None = None
    """The settings' lines this verdict was made with (``THRESHOLDS``), for pages drawn from results.json."""

    def record(self) -> dict:
        """Plain data for results.json."""
        return {**asdict(self), "fraction": round(self.fraction, 4)}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def settled(timing: dict, rounds: int, settings: SpeedupSettings) -> bool:
    """More rounds cannot change the verdict on ``timing`` (the rounds so far, each run at its fastest), either way.

    Beside a reference that sped up: full marks clear by ``settings.clear_margin`` stand after one round, and so
    does a speedup that far below 90 % of the no-credit line when the evidence shows no parallel work; anything
    else waits for ``settings.repeats`` rounds (one slow round may be a burst of other work), after which full
    marks, or a speedup under 90 % of the no-credit line, end the rounds. Beside one that did not, the evidence of
    parallel work decides, and a busy machine does not change it: one round settles a clear verdict (full marks,
    or nothing, clear by ``settings.clear_margin``), ``settings.repeats`` rounds any verdict."""
    student, reference = timing.get("student") or {}, timing.get("reference") or {}
    mine, ref = _number(student.get("speedup")), _number(reference.get("speedup"))
    if ref is None or mine is None:
        return False
    margin = 1.0 if rounds >= settings.repeats else settings.clear_margin
    evidence = _parallel_work(student, reference, settings)
    if ref >= settings.min_reference_speedup:
        if mine >= margin * settings.full_marks_at(ref):
            return True
        # Far below any credit settles early only when the evidence shows no episodes played side by side: a
        # loop whose episodes did run at once was slowed by a burst of other work, which the usual rounds outlast.
        far_below = mine * margin < 0.9 * settings.zero_speedup
        no_parallel_work = evidence is not None and evidence.part.fraction <= 0
        return far_below and (no_parallel_work or rounds >= settings.repeats)
    if rounds >= settings.repeats or evidence is None or evidence.concurrency is None:
        return rounds >= settings.repeats  # the evidence does not depend on the load: more rounds change little
    if evidence.part.fraction <= 0:
        outside = (evidence_summary(student) or {}).get("outside_share") or 0.0
        return outside >= margin * settings.max_outside_share or (evidence.concurrency - 1) * margin <= (
            settings.zero_concurrency - 1
        )
    relative = _relative_speed(student, reference, settings)
    return evidence.concurrency >= margin * evidence.full_at and (
        relative is None or relative.share >= margin * settings.slow_share
    )


def not_judged_reason(
    reference_speedup: float | None, start_method: str | None, settings: SpeedupSettings
) -> str | None:
    """Why a timing beside a reference that reached ``reference_speedup`` cannot be judged on speed, or None."""
    ref = reference_speedup or 0.0
    if ref >= settings.min_reference_speedup:
        return None
    if start_method:
        return (
            f"the reference solution, starting its workers by {start_method} as yours do, reached only {ref:.2f}x: "
            "on the grading workload, starting workers that way costs about as much as the work itself"
        )
    return (
        f"the reference solution, timed beside yours, reached only {ref:.2f}x on the grading machine "
        "(other work is probably using its cores)"
    )


def not_alone(alone: dict) -> str:
    """Why a timed phase that other untimed work ran beside (``cores.Phase.record``) is not judged on speed."""
    return (
        f"the grader could not keep your timed runs alone on their cores ({alone.get('others_in_flight', 0)} run(s) "
        f"of other submissions overlapped them for {alone.get('others_seconds', 0):.1f} s): that is the grader's "
        "scheduling, not your code"
    )


def too_few_cores(cores: int) -> str:
    """Why nothing can be timed on a grader with ``cores`` cores."""
    return f"fewer than 2 cores ({cores}) available to the grader"


def _refusal(student: dict, settings: SpeedupSettings, cores: int) -> str | None:
    """Why the timed runs earn nothing in either check, whatever was measured, or None."""
    if student.get("problems"):
        kind, problem = next(iter(student["problems"].items()))
        return f"the timed {kind} run did not count: {problem}"
    mine = _number(student.get("speedup"))
    if mine is not None and mine > settings.processes * settings.max_speedup_per_worker:
        return (
            f"the timed evolve_parallel run was {mine:.2f}x faster than the serial loop with {settings.processes} "
            "workers, which no run playing its episodes through the helper can be: the timed run did not do the "
            "work it reports"
        )
    ratio = _number(student.get("cpu_ratio"))
    if ratio is not None and ratio > cores + settings.max_cpu_slack:
        return (
            f"the timed evolve_parallel run reported {ratio:.2f} CPU seconds per wall second on {cores} cores, "
            "which no run can use: its timing cannot be trusted"
        )
    workers = student.get("worker_pids") or []
    if workers and max(workers) < 2:
        return (
            f"the timed evolve_parallel run played its episodes in {max(workers)} worker process(es), so it cannot "
            "be faster than evolve_serial: test each generation with pool.map on a Pool of processes"
        )
    return None


def interval(side: dict) -> list[float] | None:
    """The lowest and highest of the rounds' own speedups (None with fewer than two rounds measured)."""
    values = [v for v in side.get("speedup_rounds") or [] if _number(v) is not None]
    return [round(min(values), 4), round(max(values), 4)] if len(values) >= 2 else None


def _spread(side: dict) -> str:
    """`` (rounds measured 1.70-1.85x, the fastest runs counted)``, or `` (one round)``."""
    span = interval(side)
    rounds = len([v for v in side.get("speedup_rounds") or [] if _number(v) is not None])
    if span is None:
        return " (one round)" if rounds == 1 else ""
    return f" (rounds measured {span[0]:.2f}-{span[1]:.2f}x, the fastest runs counted)"


EVIDENCE_KEYS = ("concurrency", "outside_share", "backing", "work_seconds", "sampled_processes")


def evidence_summary(side: dict) -> dict | None:
    """The median over the rounds of each figure of the timed evolve_parallel runs' evidence (None: no round had
    any, or the grader could sample no process on this platform)."""
    rounds = [e for e in side.get("evidence") or [] if isinstance(e, dict) and e.get("sampled_processes")]
    if not rounds:
        return None
    values = {k: [float(e[k]) for e in rounds if _number(e.get(k)) is not None] for k in EVIDENCE_KEYS}
    return {k: median(v) if v else None for k, v in values.items()}


@dataclass(frozen=True)
class _Evidence:
    part: Part
    concurrency: float | None
    reference: float | None
    full_at: float | None


def _parallel_work(student: dict, reference: dict, settings: SpeedupSettings) -> _Evidence | None:
    """The evidence of parallel work as a part of the verdict (None: the grader could not sample processes)."""
    mine = evidence_summary(student)
    if mine is None:
        return None
    ref = (evidence_summary(reference) or {}).get("concurrency")
    full_at = settings.full_concurrency_at(ref)
    conc, outside = mine["concurrency"], mine["outside_share"]
    if outside is not None and outside > settings.max_outside_share:
        part = Part(
            0.0,
            f"{outside:.0%} of the CPU time your timed evolve_parallel run used while its generations were played "
            "went to processes that played none of their episodes (by the grader's own samples of each process): "
            "the episodes were not played by the worker processes credited with them; let pool.map hand them to "
            "the Pool's workers",
        )
        return _Evidence(part, conc, ref, full_at)
    if conc is None:
        part = Part(
            0.0,
            "the grader saw none of your timed evolve_parallel run's episodes being played (their records name "
            "times when no sample of the run was taken): play every episode through the helper, in the workers",
        )
        return _Evidence(part, conc, ref, full_at)
    beside = f"the reference's {ref:.2f}, measured beside yours; " if ref is not None else ""
    detail = (
        f"on average {conc:.2f} of your processes were each playing an episode while any was (running, or "
        f"ready and waiting for a core, by the grader's own CPU samples; {beside}full marks from {full_at:.2f} "
        f"with {settings.processes} workers)"
    )
    if conc <= settings.zero_concurrency:
        part = Part(
            0.0,
            f"{detail}: your workers took turns, so episodes were not played at the same time in different "
            "processes; workers that wait for a lock, a semaphore or a pipe, or one worker given the whole "
            "generation, cannot go faster than one: let pool.map hand each worker its share, with nothing "
            "shared that they must wait for",
        )
    else:
        part = Part(min(1.0, (conc - settings.zero_concurrency) / (full_at - settings.zero_concurrency)), detail)
    return _Evidence(part, conc, ref, full_at)


def _judged(student: dict, reference: dict, settings: SpeedupSettings) -> Judgement:
    """The verdict on speed, beside a reference that sped up."""
    mine, ref = _number(student.get("speedup")), _number(reference.get("speedup")) or 0.0
    full_at = settings.full_marks_at(ref)
    if mine is None:
        missing = Part(0.0, "the timed runs took no measurable time; the speedup could not be measured")
        return Judgement("judged", missing, missing, full_marks_at=full_at)
    zero_at = settings.zero_speedup
    detail = (
        f"speedup {mine:.2f}x{_spread(student)} with {settings.processes} workers: the reference's evolve_serial "
        f"time (or yours, if shorter) over your evolve_parallel time (reference solution {ref:.2f}x over the same "
        f"serial time, timed beside yours; full marks from {full_at:.2f}x)"
    )
    if mine <= zero_at:
        speed = Part(
            0.0,
            f"{detail}: no real speedup; start the Pool once per call (not once per generation), map whole "
            "generations with pool.map, and use processes, not threads",
        )
    else:
        speed = Part(min(1.0, (mine - zero_at) / (full_at - zero_at)), detail)
    evidence = _parallel_work(student, reference, settings)
    if evidence is not None:
        relative = _relative_speed(student, reference, settings)
        if evidence.part.fraction <= 0 and speed.fraction > 0:
            # No episode work ran at once: whatever the clock showed was noise, not a speedup.
            speed = Part(0.0, f"{detail}, but {evidence.part.message}")
        elif (
            relative is not None
            and evidence.part.fraction > 0
            and relative.share >= settings.slow_share > speed.fraction
        ):
            # The episodes ran side by side and the run's structure keeps up with the reference's by the grader's
            # own samples (no loss by the estimate): a burst of other work slowed the clock (a spawned Pool's
            # start-up varies most), not the loop. Another program can only slow a run down, so the samples, not
            # the clock, carry the points. A structure that falls short of that is not taken over the clock.
            speed = Part(
                relative.fraction,
                f"{detail}; but by the grader's samples of your processes the episodes ran side by side and "
                f"{relative.headline}, so the clock was disturbed, not your loop",
            )
        return _with_evidence("judged", speed, evidence, relative, full_marks_at=full_at)
    ratio = _number(student.get("cpu_ratio"))
    if ratio is None or ratio < settings.min_cpu_ratio:
        work = Part(
            0.0,
            f"the timed evolve_parallel run used {ratio or 0.0:.2f} CPU seconds per second, expected at least "
            f"{settings.min_cpu_ratio}: the episodes did not run on several cores at once",
        )
    elif mine <= zero_at:
        work = Part(
            0.0,
            f"the timed evolve_parallel run kept {ratio:.2f} cores busy but was no faster than the serial loop "
            f"(speedup {mine:.2f}x): its processes burned CPU without sharing the work (waiting by spinning, "
            "or taking turns on a lock); let pool.map hand each worker its share of the generation",
        )
    else:
        work = Part(1.0, f"{ratio:.2f} CPU seconds per wall second")
    return Judgement("judged", speed, work, full_marks_at=full_at)


class Estimate(NamedTuple):
    """The free-core estimate's share of the points (``_relative_speed``)."""

    fraction: float
    message: str
    """What the student reads: the estimate, how it is made, the likely cause."""
    share: float
    """The submission's estimated free-core speedup over the reference's."""
    headline: str
    """The estimate in one clause, for a message that quotes it."""


def _relative_speed(student: dict, reference: dict, settings: SpeedupSettings) -> Estimate | None:
    """On a machine too busy to judge a speedup: the speedup the submission's timed runs would reach on free
    cores, by their structure (``concurrency.estimated_speedup``: the reference's CPU time for the same work
    over their workers' CPU time shared by how many played at once, plus how long the whole run slept), as a
    share of the reference's estimated the same way. A loop that
    loses time outside its episodes (a pause, a Pool per episode) falls behind however busy the cores. No loss
    from ``slow_share`` of it, nothing at ``slow_zero_share`` or less: (fraction, message, share), or None where either
    was not measured."""
    beside_runs = [e for e in reference.get("evidence") or [] if isinstance(e, dict)]
    needed = [w for e in beside_runs if (w := _number(e.get("work_seconds")))]
    # The work's cost is the reference's CPU time for it: a loop whose workers burn twice that (spinning through
    # forged, overlapping claims while they take turns) is estimated as slow as it would be on free cores.
    need = median(needed) if needed else None
    mine = [concurrency.estimated_speedup(e, need) for e in student.get("evidence") or [] if isinstance(e, dict)]
    ref = [concurrency.estimated_speedup(e) for e in beside_runs]
    mine, ref = [v for v in mine if v], [v for v in ref if v]
    if not mine or not ref:
        return None
    estimate, beside = median(mine), median(ref)
    share, full, zero = estimate / beside, settings.slow_share, settings.slow_zero_share
    fraction = max(0.0, min(1.0, (share - zero) / (full - zero)))
    headline = (
        f"on free cores your timed runs would reach about {estimate:.2f}x, {share:.0%} of the reference's "
        f"{beside:.2f}x estimated the same way"
    )
    message = (
        f"{headline} (from the CPU time the reference's workers needed for the same work, "
        f"the CPU time of yours, how many played at once and how long the whole run slept; no loss from {full:.0%}, "
        f"nothing at {zero:.0%} or less): time spent outside the episodes (pauses, a Pool started per generation or "
        "per episode) or CPU burned beside them (workers spinning while they wait) is the likely cause"
    )
    return Estimate(fraction, message, share, headline)


def _with_evidence(verdict: str, speed: Part, evidence: _Evidence, relative: Estimate | None, **extra) -> Judgement:
    """A verdict whose second part is the evidence of parallel work, capped by the free-core estimate."""
    return Judgement(
        verdict,
        speed,
        _capped(evidence.part, relative),
        concurrency=evidence.concurrency,
        reference_concurrency=evidence.reference,
        full_concurrency_at=evidence.full_at,
        **extra,
    )


def _capped(part: Part, relative: Estimate | None) -> Part:
    """The evidence of parallel work, capped by the free-core estimate: episodes that look side by side earn
    nothing when the work took twice the reference's CPU time or the run slept between them."""
    if relative is None or relative.fraction >= part.fraction:
        return part
    return Part(relative.fraction, f"{part.message}; but {relative.message}")


def _not_judged(student: dict, reference: dict, reason: str, settings: SpeedupSettings) -> Judgement:
    """The verdict when the machine could not show a speedup: the evidence of parallel work, capped by the speedup
    its structure would give on free cores as a share of the reference's (where the grader cannot sample
    processes: correct runs in worker processes, scaled by the measured speedup's share of the reference's)."""
    mine, ref = _number(student.get("speedup")), _number(reference.get("speedup"))
    workers = student.get("worker_pids") or []
    if not workers:
        refused = Part(
            0.0,
            f"not judged on speed ({reason}), but the timed evolve_parallel run played its episodes in 0 worker "
            "process(es), so it cannot have been faster: test each generation with pool.map on a Pool of processes",
        )
        return Judgement("refused", refused, refused, reason=reason)
    evidence = _parallel_work(student, reference, settings)
    if evidence is not None:
        measured = f" (your measured speedup was {mine:.2f}x)" if mine is not None else ""
        message = (
            f"not judged on speed: {reason}{measured}; judged instead on how much of your episode work ran at once "
            f"in different processes: {evidence.part.message}"
        )
        relative = _relative_speed(student, reference, settings)
        speed = _capped(Part(evidence.part.fraction, message), relative)
        return _with_evidence("not judged", speed, evidence, relative, reason=reason)
    # The grader could not sample processes here (no /proc): correct runs in worker processes, scaled by speed.
    measured = f"your measured speedup was {mine:.2f}x; " if mine is not None else ""
    work = Part(1.0, f"not judged on speed: {reason}; {measured}the timed runs were correct and used worker processes")
    if mine is None or ref is None or ref <= 0:
        return Judgement("not judged", work, work, reason=reason)
    full_at = settings.full_fraction * ref
    speed = Part(
        min(1.0, mine / full_at),
        f"not judged on speed: {reason}; your speedup {mine:.2f}x is compared with the reference's {ref:.2f}x "
        f"measured beside it (full marks from {full_at:.2f}x)",
    )
    return Judgement("not judged", speed, work, reason=reason)


def judge(timing: dict, settings: dict | SpeedupSettings) -> Judgement:
    """The verdict on one submission's speedup observation (``timing.measure``), under the ``settings`` recorded
    with it."""
    settings = settings if isinstance(settings, SpeedupSettings) else settings_from(settings)
    lines = {name: getattr(settings, name) for name in THRESHOLDS}
    student, reference = timing.get("student") or {}, timing.get("reference") or {}
    refused = _refusal(student, settings, int(timing.get("cores") or settings.processes))
    if refused:
        judgement = Judgement("refused", Part(0.0, refused), Part(0.0, refused), reason=timing.get("inconclusive"))
    elif timing.get("inconclusive"):
        judgement = _not_judged(student, reference, timing["inconclusive"], settings)
    else:
        judgement = _judged(student, reference, settings)
    return replace(judgement, thresholds=lines)

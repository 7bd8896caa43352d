"""Scaling of the reference ``evolve_parallel`` with the number of worker processes.

On the grading workload, the reference ``evolve_serial`` and ``evolve_parallel`` with
1..N processes (N = usable cores) are timed side by side; the table gives speedup over
the serial loop and parallel efficiency (speedup / processes), with an Amdahl fit of the
serial fraction.

A machine with N cores cannot show what 16 cores would do, so a small model predicts it
from measured parts: the cost of every episode of the workload (its exact number of steps
times the measured seconds per step), the pool's start-up per worker, a fixed latency per
``map`` call and a cost per task, and the parent's own work (generating candidates, selecting). ``Pool.map``'s chunks are replayed on
p simulated workers that each take the next chunk when free. The model is checked against
the measured rows, then projects efficiency to 16 cores for the grading population and
for larger ones.
"""

from __future__ import annotations

import heapq
import math
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from benchmarks.common import (
    Report,
    default_chunksize,
    free_cores,
    interleaved_times,
    load_reference,
    median,
    ratio,
    usable_cores,
)

PROJECTED_CORES = (1, 2, 4, 8, 16)
TWO_CORE_GOAL, SIXTEEN_CORE_GOAL = 0.90, 0.75


def grading_workload() -> tuple[int, int, float]:
    """(generations, pop_size, sigma) of the run the grader times for the speedup category."""
    from autograder.config import SPEEDUP

    return SPEEDUP.generations, SPEEDUP.pop_size, SPEEDUP.sigma


@dataclass
class ScalingSettings:
    """What the scaling benchmark runs."""

    generations: int
    """Generations per run (the grading workload's)."""
    pop_size: int
    """Candidates per generation (the grading workload's)."""
    sigma: float
    """Spread of sample_params (the grading workload's)."""
    seed: int = 0
    """Training seed; every run uses the same, so all runs do the same work."""
    max_processes: int = field(default_factory=usable_cores)
    """Largest worker count measured: the cores this process may use."""
    repeats: int = 3
    """Timed runs per variant; the median is reported."""
    projections: tuple[tuple[int, int], ...] = ((1, 1), (1, 2), (1, 4), (1, 8), (4, 1), (10, 1), (10, 2))
    """(generations factor, population factor) pairs projected; the measured episodes are tiled."""
    machine_check_seconds: float = 0.15
    """Length of each busy task of the free-cores check (shorter is noisier)."""

    @classmethod
    def default(cls, repeats: int = 3) -> ScalingSettings:
        generations, pop_size, sigma = grading_workload()
        return cls(generations, pop_size, sigma, repeats=repeats)

    @classmethod
    def quick(cls, repeats: int = 1) -> ScalingSettings:
        _, _, sigma = grading_workload()
        return cls(
            generations=2,
            pop_size=8,
            sigma=sigma,
            max_processes=min(2, usable_cores()),
            repeats=repeats,
            projections=((1, 1), (1, 4)),
            machine_check_seconds=0.02,
        )


# ---------------------------------------------------------------- measured parts of the model


def episode_costs(reference, s: ScalingSettings) -> tuple[list[list[float]], float, list[list[float]]]:
    """Modelled seconds of every episode of one serial run by generation, the run's parent seconds, and the raw timings.

    An episode's cost is its number of steps times the run's mean seconds per step: steps are
    exact (from the numpy batch replay), whereas one episode's own timing on a busy machine
    may include time the process spent descheduled, which would fake load imbalance.
    """
    import evolution

    from autograder.batched import batch_episodes

    calls: list[tuple[dict, int, float]] = []
    real_episode = reference.episode

    def timed_episode(params, seed=None):
        start = time.perf_counter()
        value = real_episode(params, seed)
        calls.append((params, seed, time.perf_counter() - start))
        return value

    reference.episode = timed_episode  # evolve_serial looks the name up in its module at call time
    try:
        start = time.perf_counter()
        reference.evolve_serial(s.generations, s.pop_size, s.seed, s.sigma)
        total = time.perf_counter() - start
    finally:
        reference.episode = real_episode
    generations = [calls[g * s.pop_size : (g + 1) * s.pop_size] for g in range(s.generations)]
    steps = [batch_episodes([c[0] for c in gen], gen[0][1], evolution)[1].tolist() for gen in generations]
    timed = [[c[2] for c in gen] for gen in generations]
    per_step = sum(map(sum, timed)) / sum(map(sum, steps))
    costs = [[n * per_step for n in gen] for gen in steps]
    return costs, max(0.0, total - sum(map(sum, timed))), timed


def _no_work(params, seed=None) -> float:
    """A task that only travels: its arguments are pickled to a worker and a float comes back."""
    return 0.0


@dataclass
class PoolCosts:
    """Measured costs of using a ``Pool``, besides the work itself."""

    startup_fixed: float
    """Seconds to start and stop a pool, apart from the per-worker part."""
    startup_per_worker: float
    """Extra seconds per worker to start and stop a pool."""
    per_map: float
    """Latency of one ``map`` call of one tiny task on a warm pool."""
    per_task: float
    """Seconds each task adds beyond its work (pickling, queues), on a warm pool."""


def pool_costs(sample_params: dict, max_processes: int, repeats: int) -> PoolCosts:
    """Measure the ``PoolCosts`` with tasks that carry real parameters but do no work."""
    startup = {}
    for p in range(1, max_processes + 1):
        seconds = []
        for _ in range(max(3, repeats)):
            start = time.perf_counter()
            with Pool(p) as pool:
                pool.map(_no_work, [sample_params] * p)
            seconds.append(time.perf_counter() - start)
        startup[p] = median(seconds)
    if max_processes > 1:
        per_worker = max(0.0, (startup[max_processes] - startup[1]) / (max_processes - 1))
    else:
        per_worker = startup[1] / 2  # no second point: split start-up evenly between fixed and per-worker
    fixed = max(0.0, startup[1] - per_worker)
    n_tasks = 400
    with Pool(1) as pool:
        pool.map(_no_work, [sample_params])
        one = median([_timed(lambda: pool.map(_no_work, [sample_params])) for _ in range(20)])
        many = median(
            [_timed(lambda: pool.map(_no_work, [sample_params] * n_tasks, chunksize=1)) for _ in range(max(3, repeats))]
        )
    return PoolCosts(fixed, per_worker, one, max(0.0, (many - one) / (n_tasks - 1)))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------- the model


def makespan(task_seconds: list[float], workers: int, chunksize: int) -> float:
    """When the last of ``task_seconds``, cut into chunks in order, finishes on ``workers`` greedy workers."""
    chunks = [sum(task_seconds[i : i + chunksize]) for i in range(0, len(task_seconds), chunksize)]
    free_at = [0.0] * workers
    for chunk in chunks:
        heapq.heapreplace(free_at, free_at[0] + chunk)
    return max(free_at)


def predicted_seconds(
    costs: list[list[float]], parent: float, pool: PoolCosts, workers: int, tile: int = 1, rounds: int = 1
) -> float:
    """Modelled wall time of ``evolve_parallel`` with ``workers`` processes.

    ``tile`` repeats every generation's population that many times, ``rounds`` repeats the
    whole run's generations: projections to larger populations and longer runs.
    """
    total = pool.startup_fixed + pool.startup_per_worker * workers + parent * tile * rounds
    for generation in costs * rounds:
        tasks = [c + pool.per_task for c in generation] * tile
        total += pool.per_map + makespan(tasks, workers, default_chunksize(len(tasks), workers))
    return total


def amdahl_serial_fraction(processes: list[int], speedups: list[float]) -> float:
    """Least-squares serial fraction f of Amdahl's law, S(p) = 1 / (f + (1 - f) / p), over p >= 2.

    Written as 1/S - 1/p = f (1 - 1/p), a line through the origin; with one point this is the
    Karp-Flatt metric. Clipped to [0, 1] (no speedup at all gives 1); NaN when no p >= 2 was measured.
    """
    pairs = [(1 / s - 1 / p, 1 - 1 / p) for p, s in zip(processes, speedups, strict=True) if p >= 2 and s > 0]
    if not pairs:
        return float("nan")
    return min(1.0, max(0.0, sum(y * x for y, x in pairs) / sum(x * x for _, x in pairs)))


def amdahl_speedup(serial_fraction: float, processes: int) -> float:
    return 1 / (serial_fraction + (1 - serial_fraction) / processes)


# ---------------------------------------------------------------- the benchmark


def run(settings: ScalingSettings) -> list[Report]:
    """Time the reference loops, fit Amdahl, check and apply the model; two reports."""
    s = settings
    with tempfile.TemporaryDirectory(prefix="bench-scaling-") as workdir:
        reference = load_reference(Path(workdir))
        args = (s.generations, s.pop_size, s.seed, s.sigma)
        expected = reference.evolve_serial(*args)[1]
        for p in range(1, s.max_processes + 1):  # also warms caches and imports in this process
            if reference.evolve_parallel(*args, processes=p)[1] != expected:
                raise AssertionError(f"the reference evolve_parallel with {p} processes disagrees with evolve_serial")
        variants = {"serial": partial(reference.evolve_serial, *args)}
        variants |= {
            f"p={p}": partial(reference.evolve_parallel, *args, processes=p) for p in range(1, s.max_processes + 1)
        }
        times = interleaved_times(variants, s.repeats)
        free = {p: free_cores(p, s.machine_check_seconds, max(3, s.repeats)) for p in range(1, s.max_processes + 1)}
        costs, parent, timed = episode_costs(reference, s)
        pool = pool_costs(reference.initialize_parameters(2, 10, 1), s.max_processes, s.repeats)

    serial = median(times["serial"])
    processes = list(range(1, s.max_processes + 1))
    speedups = [ratio(serial, median(times[f"p={p}"])) for p in processes]
    fraction = amdahl_serial_fraction(processes, speedups)
    model_serial = sum(map(sum, costs)) + parent
    measured = Report(
        name="scaling",
        title=(
            f"Scaling of the reference evolve_parallel: {s.generations} generations x {s.pop_size} candidates, "
            f"sigma {s.sigma:g}, seed {s.seed}; median of {s.repeats} (speedup = serial / parallel)"
        ),
        columns=[
            "loop",
            "processes",
            "median s",
            "min s",
            "speedup",
            "efficiency",
            "best-of eff.",
            "free cores",
            "model s",
            "model eff.",
        ],
    )
    measured.rows.append(
        ["evolve_serial", 1, serial, min(times["serial"]), 1.0, 1.0, 1.0, float("nan"), model_serial, 1.0]
    )
    for p, speedup in zip(processes, speedups, strict=True):
        model = predicted_seconds(costs, parent, pool, p)
        measured.rows.append(
            [
                "evolve_parallel",
                p,
                median(times[f"p={p}"]),
                min(times[f"p={p}"]),
                speedup,
                speedup / p,
                min(times["serial"]) / min(times[f"p={p}"]) / p,
                free[p],
                model,
                model_serial / model / p,
            ]
        )
    measured.notes += _goal_notes(processes, speedups, fraction, free)
    measured.notes.append(
        f"measured overheads: pool start-up {pool.startup_fixed * 1e3:.1f} ms + {pool.startup_per_worker * 1e3:.1f} ms "
        f"per worker, {pool.per_map * 1e3:.2f} ms per map call, {pool.per_task * 1e6:.0f} us per task; "
        f"episodes {sum(map(len, costs))} x median {median([c for g in costs for c in g]) * 1e3:.2f} ms"
    )

    projection = Report(
        name="scaling_projection",
        title="Projected parallel efficiency (model from the measured parts above; Amdahl for comparison)",
        columns=["workload", "tasks/worker @16", *[f"p={p}" for p in PROJECTED_CORES]],
    )
    for rounds, tile in s.projections:
        base = model_serial * tile * rounds
        effs = [ratio(base, predicted_seconds(costs, parent, pool, p, tile, rounds)) / p for p in PROJECTED_CORES]
        label = f"{s.generations * rounds} gen x {s.pop_size * tile} (model)"
        projection.rows.append([label, s.pop_size * tile / 16, *effs])
    if not math.isnan(fraction):
        projection.rows.append(["Amdahl fit", "-", *[amdahl_speedup(fraction, p) / p for p in PROJECTED_CORES]])
    projection.notes += _projection_notes(s, projection)
    # The grader's workload grows with its worker count (SpeedupSettings.candidates_per_worker):
    # what a 16-core grader timing 16 workers would see.
    tile16 = max(1, 16 // _grading_processes())
    eff_scaled = ratio(model_serial * tile16, predicted_seconds(costs, parent, pool, 16, tile16, 1)) / 16
    projection.notes.append(
        f"the grading workload set for 16 workers ({s.generations} gen x {s.pop_size * tile16}, the same "
        f"{s.pop_size // _grading_processes()} candidates per worker) at 16 cores (model): {eff_scaled:.0%} "
        f"(goal >= {SIXTEEN_CORE_GOAL:.0%}: {'met' if eff_scaled >= SIXTEEN_CORE_GOAL else 'NOT met'})"
    )

    data = {
        "settings": s.__dict__,
        "times": times,
        "processes": processes,
        "speedups": speedups,
        "efficiencies": [sp / p for sp, p in zip(speedups, processes, strict=True)],
        "serial_fraction": fraction,
        "free_cores": free,
        "pool_costs": pool.__dict__,
        "episode_seconds_model": costs,
        "episode_seconds_timed": timed,
        "parent_seconds": parent,
        "model_seconds": {p: predicted_seconds(costs, parent, pool, p) for p in PROJECTED_CORES},
        "model_serial_seconds": model_serial,
    }
    sixteen = predicted_seconds(costs, parent, pool, 16)
    data["model_16_cores"] = {
        "seconds": sixteen,
        "ideal_seconds": model_serial / 16,
        "startup_seconds": pool.startup_fixed + pool.startup_per_worker * 16,
    }
    projection.notes.insert(
        0,
        (
            f"the grading workload on 16 cores (model): {sixteen * 1e3:.0f} ms against an ideal {model_serial / 16 * 1e3:.0f} "
            f"ms; pool start-up alone {data['model_16_cores']['startup_seconds'] * 1e3:.0f} ms, the rest is waiting for "
            "each generation's slowest worker and per-task messages"
        ),
    )
    measured.data = data
    projection.data = {"rows": projection.rows, "cores": PROJECTED_CORES}
    return [measured, projection]


def _grading_processes() -> int:
    """Workers the grader's speedup workload is sized for."""
    from autograder.config import SPEEDUP

    return SPEEDUP.processes


def _goal_notes(processes: list[int], speedups: list[float], fraction: float, free: dict[int, float]) -> list[str]:
    notes = [
        "best-of eff.: the fastest serial run over the fastest parallel one, per process: the least disturbed "
        "repeats on a shared machine; free cores: the speedup p busy processes got from the machine during "
        "this run (p if it is idle), the ceiling of any speedup measured beside it"
    ]
    if len(processes) >= 2:
        eff2 = speedups[1] / 2
        verdict = "met" if eff2 >= TWO_CORE_GOAL else "NOT met"
        if eff2 < TWO_CORE_GOAL and free[2] < 2 * TWO_CORE_GOAL:
            verdict += f": the machine gave only {free[2]:.2f} of 2 cores, re-run when it is idle"
        notes.append(
            f"efficiency on 2 processes: {eff2:.0%} (goal >= {TWO_CORE_GOAL:.0%}): {verdict}; "
            f"{speedups[1] / free[2]:.0%} of the free cores' speedup"
        )
    else:
        notes.append("only 1 usable core: no parallel point measured, efficiency on 2 cores unknown")
    if not math.isnan(fraction):
        notes.append(
            f"Amdahl fit: serial fraction f = {fraction:.3f} -> speedup limit 1/f = "
            f"{(1 / fraction if fraction > 0 else float('inf')):.1f}x, "
            f"16-core efficiency {amdahl_speedup(fraction, 16) / 16:.0%}"
        )
    return notes


def _projection_notes(s: ScalingSettings, projection: Report) -> list[str]:
    eff16 = projection.rows[0][-1]
    return [
        f"with {s.pop_size} candidates, Pool.map's default chunks hold {default_chunksize(s.pop_size, 16)} "
        f"episode(s) on 16 workers, {s.pop_size / 16:g} per worker per generation: each generation ends when "
        "the slowest worker does (episodes that reach the flag stop early, so lengths differ)",
        f"this workload as is at 16 cores (model): {eff16:.0%} (goal >= {SIXTEEN_CORE_GOAL:.0%}: "
        f"{'met' if eff16 >= SIXTEEN_CORE_GOAL else 'NOT met'}); the pool starts once per run, so more generations "
        "share its start-up, and more candidates per worker even out episode lengths",
    ]

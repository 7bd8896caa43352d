"""Where ``Pool.map`` stops paying off: speedup over ``map`` against the cost of one task.

Three kinds of task, each at several sizes, ``tasks`` of them per ``map`` call:

* ``sleep``: ``time.sleep(d)``, waiting that uses no CPU (parallel even on one core);
* ``compute``: a pure-Python loop of ``n`` additions, holding the CPU (and the GIL);
* ``episode``: the assignment's own episode cut to ``steps`` steps.

The x value of every point is the measured serial cost of one task (``map``'s time / tasks),
so the kinds share one axis. "warm" reuses a started pool (as a training loop does);
"cold" starts the pool inside the timing (a one-off ``with Pool() as pool: pool.map(...)``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from multiprocessing import Pool

import evolution
import numpy as np

from benchmarks.common import Report, free_cores, interleaved_times, median, ratio, usable_cores


def sleep_task(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def compute_task(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


_EPISODE_ENV = None


def episode_task(steps: int, params: dict, seed: int = 0) -> float:
    """The first ``steps`` steps of ``evolution.episode``'s loop (the car never reaches the flag with these params)."""
    global _EPISODE_ENV
    if _EPISODE_ENV is None:
        _EPISODE_ENV = evolution.make_env()
    w1, b1, w2, b2 = (params[k] for k in evolution.PARAM_KEYS)
    observation, _ = _EPISODE_ENV.reset(seed=seed)
    total = 0.0
    for _ in range(steps):
        action = np.tanh(np.tanh(observation @ w1 + b1) @ w2 + b2)
        observation, reward, terminated, truncated, _ = _EPISODE_ENV.step(action)
        total += float(reward)
    return total


@dataclass
class OverheadSettings:
    """What the overhead benchmark runs."""

    tasks: int = 64
    """Tasks per map call."""
    processes: int = field(default_factory=usable_cores)
    """Pool workers."""
    sleep_seconds: tuple[float, ...] = (0.0, 1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    """Durations of the sleep task."""
    compute_loops: tuple[int, ...] = (1, 30, 300, 3_000, 30_000, 100_000, 300_000)
    """Additions per compute task."""
    episode_steps: tuple[int, ...] = (1, 10, 30, 100, 300, 999)
    """Steps per episode task (999 is a full episode)."""
    repeats: int = 3
    """Timed runs per point; the median is reported."""
    machine_check_seconds: float = 0.15
    """Length of each busy task of the free-cores check (shorter is noisier)."""

    @classmethod
    def quick(cls, repeats: int = 1) -> OverheadSettings:
        return cls(
            tasks=8,
            processes=min(2, usable_cores()),
            sleep_seconds=(0.0, 1e-3),
            compute_loops=(1, 30_000),
            episode_steps=(1, 100),
            repeats=repeats,
            machine_check_seconds=0.02,
        )


def _still_params() -> dict:
    """Parameters whose action is always 0: the car never leaves the valley, so every step counts."""
    return {"w1": np.zeros((2, 10)), "b1": np.zeros(10), "w2": np.zeros((10, 1)), "b2": np.zeros(1)}


def task_kinds(s: OverheadSettings) -> dict[str, list[tuple[str, Callable[[int], object]]]]:
    """For each kind, (size label, one-argument task) pairs; each task gets its index as argument."""
    params = _still_params()
    return {
        "sleep": [(f"{d * 1e6:g} us", partial(_sleep_ignoring, d)) for d in s.sleep_seconds],
        "compute": [(f"{n} adds", partial(_compute_ignoring, n)) for n in s.compute_loops],
        "episode": [(f"{k} steps", partial(_episode_ignoring, k, params)) for k in s.episode_steps],
    }


# Tasks take the item index (so every task is a distinct call, as in a real map) and ignore it.
def _sleep_ignoring(seconds, _item):
    return sleep_task(seconds)


def _compute_ignoring(n, _item):
    return compute_task(n)


def _episode_ignoring(steps, params, _item):
    return episode_task(steps, params)


def crossover(points: list[tuple[float, float]]) -> float:
    """The task cost (log-interpolated) where speedup first reaches 1; NaN if never, 0 if always."""
    points = sorted(points)
    if points and points[0][1] >= 1:
        return 0.0
    for (x0, s0), (x1, s1) in pairwise(points):
        if s0 < 1 <= s1:
            if x0 <= 0:
                return x1
            t = (1 - s0) / (s1 - s0)
            return math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
    return float("nan")


def run(settings: OverheadSettings) -> list[Report]:
    """Time map and Pool.map (warm and cold) for every task kind and size; one report."""
    s = settings
    items = list(range(s.tasks))
    report = Report(
        name="overhead",
        title=(
            f"Pool.map ({s.processes} workers, default chunksize) vs map, {s.tasks} tasks per call; median of "
            f"{s.repeats}; speedup = map's time / Pool.map's"
        ),
        columns=["task", "size", "serial us/task", "warm speedup", "cold speedup"],
    )
    points: dict[str, list[dict]] = {}
    with Pool(s.processes) as pool:
        for kind, sizes in task_kinds(s).items():
            points[kind] = []
            for label, task in sizes:
                task(0)  # first calls (the environment, caches) are not timed, here or in the workers
                pool.map(task, items[: s.processes])

                def cold(task=task):
                    with Pool(s.processes) as fresh:
                        fresh.map(task, items)

                times = interleaved_times(
                    {
                        "map": lambda task=task: list(map(task, items)),
                        "warm": lambda task=task: pool.map(task, items),
                        "cold": cold,
                    },
                    s.repeats,
                )
                serial = median(times["map"])
                point = {
                    "size": label,
                    "serial_per_task": serial / s.tasks,
                    "warm": ratio(serial, median(times["warm"])),
                    "cold": ratio(serial, median(times["cold"])),
                    "times": times,
                }
                points[kind].append(point)
                report.rows.append([kind, label, point["serial_per_task"] * 1e6, point["warm"], point["cold"]])
    for kind, kind_points in points.items():
        warm = crossover([(p["serial_per_task"], p["warm"]) for p in kind_points])
        cold = crossover([(p["serial_per_task"], p["cold"]) for p in kind_points])
        report.notes.append(
            f"{kind}: Pool.map beats map {_from(warm)} on a warm pool, "
            f"{_from(cold)} when the pool is started for the call"
        )
    free = free_cores(s.processes, s.machine_check_seconds)
    report.notes.append(
        f"machine check: {s.processes} busy processes got {free:.2f} cores (an idle machine gives "
        f"{s.processes}); CPU-bound speedups cannot exceed it"
    )
    report.data = {"settings": s.__dict__, "points": points, "processes": s.processes, "free_cores": free}
    return [report]


def _from(seconds: float) -> str:
    """The crossover in words."""
    if seconds != seconds:
        return "at no task size measured"
    if seconds == 0:
        return "at every task size measured"
    return f"from about {seconds * 1e6:,.0f} us per task"

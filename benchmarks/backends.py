"""Ways to test one generation, side by side: which one wins, and when.

One population (``candidates`` fresh networks), one episode seed, every backend computing
the same list of returns, timed interleaved in one run. Pools and environments are started
before timing (a real loop starts them once and reuses them for every generation); their
start-up is shown in its own column. Each backend's returns are compared with
``evolution.episode``'s.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool

import evolution
import numpy as np

from autograder.batched import batch_returns, stack_params
from benchmarks.common import Report, default_chunksize, free_cores, interleaved_times, median, ratio, usable_cores

TOLERANCE = 1e-6  # largest |return - episode()| accepted as the same result


@dataclass
class BackendSettings:
    """What the backends benchmark runs."""

    candidates: int = 64
    """Population size: networks tested in the one timed generation."""
    processes: int = field(default_factory=usable_cores)
    """Workers (processes or threads) for the pool-based backends."""
    population_seed: int = 0
    """Seeds the generator the networks are drawn from."""
    episode_seed: int = 2024
    """The start state every candidate is tested from."""
    repeats: int = 3
    """Timed runs per backend; the median is reported."""
    machine_check_seconds: float = 0.15
    """Length of each busy task of the free-cores check (shorter is noisier)."""

    @classmethod
    def quick(cls, repeats: int = 1) -> BackendSettings:
        return cls(candidates=8, processes=min(2, usable_cores()), repeats=repeats, machine_check_seconds=0.02)


@dataclass
class Backend:
    """One way of computing the generation's returns."""

    label: str
    """Row label."""
    when: str
    """One line: when this way wins."""
    run: Callable[[], list[float]] | None
    """Computes the returns; None when the backend is unavailable."""
    startup: float = 0.0
    """Seconds spent starting it (pool, environments) before timing."""
    skipped: str = ""
    """Why it did not run, if it did not."""


# ---------------------------------------------------------------- threads

_local = threading.local()


def episode_in_thread(params: dict, seed: int) -> float:
    """``evolution.episode`` with one environment per thread.

    ``evolution`` keeps one environment per process, which threads would share and step
    concurrently; this copy of its loop gives each thread its own and is otherwise the same.
    """
    if not hasattr(_local, "env"):
        _local.env = evolution.make_env()
    w1, b1, w2, b2 = (np.asarray(params[k], dtype=np.float64) for k in evolution.PARAM_KEYS)
    observation, _ = _local.env.reset(seed=int(seed))
    total = 0.0
    for _ in range(evolution.MAX_STEPS):
        action = np.tanh(np.tanh(observation @ w1 + b1) @ w2 + b2)
        observation, reward, terminated, truncated, _ = _local.env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    return total


# ---------------------------------------------------------------- gymnasium's vector env


def vector_env_returns(envs, params: dict[str, np.ndarray], seed: int) -> list[float]:
    """One episode per env slot, slot i played by candidate i, the forward pass batched in this process."""
    n = params["w1"].shape[0]
    observation, _ = envs.reset(seed=[int(seed)] * n)  # the same start state in every slot
    totals = np.zeros(n)
    running = np.ones(n, dtype=bool)
    for _ in range(evolution.MAX_STEPS):
        hidden = np.tanh((observation.astype(np.float64)[:, None, :] @ params["w1"])[:, 0] + params["b1"])
        action = np.tanh((hidden[:, None, :] @ params["w2"])[:, 0] + params["b2"])
        observation, reward, terminated, truncated, _ = envs.step(action)
        totals = np.where(running, totals + reward, totals)  # slots already done autoreset: ignore them
        running &= ~(terminated | truncated)
        if not running.any():
            break
    return totals.tolist()


# ---------------------------------------------------------------- the benchmark


def _started(stack: contextlib.ExitStack, start: Callable, warm: Callable[[object], object]):
    """Start a resource on ``stack``, warm it up once; returns (resource, seconds both took)."""
    t0 = time.perf_counter()
    resource = stack.enter_context(start())
    warm(resource)
    return resource, time.perf_counter() - t0


def build_backends(stack: contextlib.ExitStack, s: BackendSettings, population: list[dict]) -> list[Backend]:
    """Every backend, started on ``stack`` (closed by the caller)."""
    n, p, seed = len(population), s.processes, s.episode_seed
    task = partial(evolution.episode, seed=seed)
    default = default_chunksize(n, p)
    even = -(-n // p)
    backends = [
        Backend(
            "map (serial)",
            "few or tiny tasks; the baseline every other row is divided by",
            lambda: list(map(task, population)),
        )
    ]

    pool, pool_start = _started(stack, lambda: Pool(p), lambda pool: pool.map(task, population[:p]))
    backends += [
        Backend(
            f"Pool.map, chunksize default ({default})",
            "many similar CPU-bound tasks: ~4 chunks per worker balance load against messages",
            lambda: pool.map(task, population),
            pool_start,
        ),
        Backend(
            "Pool.map, chunksize 1",
            "few, long or uneven tasks: best balance, one message per task",
            lambda: pool.map(task, population, chunksize=1),
            pool_start,
        ),
        Backend(
            f"Pool.map, chunksize n/p ({even})",
            "many tiny equal tasks: fewest messages, but one slow chunk makes everyone wait",
            lambda: pool.map(task, population, chunksize=even),
            pool_start,
        ),
    ]

    executor, executor_start = _started(
        stack, lambda: ProcessPoolExecutor(p), lambda ex: list(ex.map(task, population[:p]))
    )
    backends.append(
        Backend(
            "ProcessPoolExecutor.map (chunksize 1)",
            "you want futures: submit / as_completed, per-task errors and timeouts",
            lambda: list(executor.map(task, population)),
            executor_start,
        )
    )

    backends.append(_joblib_backend(task, population, p))

    threads, thread_start = _started(
        stack, lambda: ThreadPoolExecutor(p), lambda ex: list(ex.map(episode_in_thread, population[:p], [seed] * p))
    )
    backends.append(
        Backend(
            f"ThreadPoolExecutor ({p} threads)",
            "I/O waits or code that releases the GIL; pure-Python steps serialise on the GIL",
            lambda: list(threads.map(episode_in_thread, population, [seed] * n)),
            thread_start,
        )
    )

    import gymnasium as gym

    stacked = stack_params(population, evolution)
    envs, env_start = _started(
        stack,
        lambda: contextlib.closing(gym.vector.AsyncVectorEnv([evolution.make_env] * n)),
        lambda envs: envs.reset(seed=seed),
    )
    backends.append(
        Backend(
            f"AsyncVectorEnv ({n} env processes)",
            "slow environments (physics engines, rendering) stepped in lock step; "
            "cheap ones drown in one message per env per step",
            lambda: vector_env_returns(envs, stacked, seed),
            env_start,
        )
    )

    backends.append(
        Backend(
            "numpy batch (whole population)",
            "the population fits one array program: no processes, a few array ops per step",
            lambda: batch_returns(population, seed, evolution).tolist(),
        )
    )
    return backends


def _joblib_backend(task, population: list[dict], p: int) -> Backend:
    label, when = (
        "joblib Parallel (loky)",
        "code already on joblib: reuses its workers across calls, memory-maps big arrays",
    )
    try:
        from joblib import Parallel, delayed
    except ImportError:
        return Backend(label, when, None, skipped="skipped: joblib not installed")
    parallel = Parallel(n_jobs=p, backend="loky")
    t0 = time.perf_counter()
    parallel(delayed(task)(c) for c in population[:p])
    return Backend(label, when, lambda: parallel(delayed(task)(c) for c in population), time.perf_counter() - t0)


def agreement(returns: list[float], expected: list[float]) -> tuple[float, str]:
    """Largest |difference| from ``episode()``'s returns, and how the table words it."""
    diff = float(np.max(np.abs(np.asarray(returns, dtype=np.float64) - np.asarray(expected))))
    if diff == 0:
        return diff, "exact"
    return diff, f"{'within' if diff <= TOLERANCE else 'DIFFERS'} {diff:.1e}"


def run(settings: BackendSettings) -> list[Report]:
    """Time every backend on the same generation; one report."""
    s = settings
    rng = np.random.default_rng(s.population_seed)
    population = [
        evolution.initialize_parameters(evolution.I_SIZE, evolution.H_SIZE, evolution.O_SIZE, rng=rng)
        for _ in range(s.candidates)
    ]
    expected = [evolution.episode(c, s.episode_seed) for c in population]
    with contextlib.ExitStack() as stack:
        backends = build_backends(stack, s, population)
        runnable = {b.label: b.run for b in backends if b.run is not None}
        checks = {label: agreement(fn(), expected) for label, fn in runnable.items()}
        times = interleaved_times(runnable, s.repeats)

    baseline = median(times["map (serial)"])
    report = Report(
        name="backends",
        title=(
            f"One generation of {s.candidates} candidates (episode seed {s.episode_seed}), {s.processes} workers; "
            f"median of {s.repeats}; 'vs map' = map's time / this time"
        ),
        columns=["backend", "median s", "vs map", "start-up s", "returns vs episode()", "when it wins"],
    )
    for b in backends:
        if b.run is None:
            report.rows.append([b.label, float("nan"), float("nan"), float("nan"), b.skipped, b.when])
            continue
        seconds = median(times[b.label])
        report.rows.append([b.label, seconds, ratio(baseline, seconds), b.startup, checks[b.label][1], b.when])
    best = max((r for r in report.rows if r[2] == r[2]), key=lambda r: r[2])
    report.notes.append(f"fastest: {best[0]} at {best[2]:.1f}x map; start-up is paid once per run, not per generation")
    if any(b.skipped for b in backends):
        report.notes += [f"{b.label}: {b.skipped}" for b in backends if b.skipped]
    free = free_cores(s.processes, s.machine_check_seconds)
    report.notes.append(
        f"machine check: {s.processes} busy processes got {free:.2f} cores (an idle machine gives "
        f"{s.processes}); CPU-bound speedups cannot exceed it"
    )
    report.data = {
        "settings": s.__dict__,
        "free_cores": free,
        "times": times,
        "startup": {b.label: b.startup for b in backends},
        "max_abs_diff": {label: check[0] for label, check in checks.items()},
    }
    return [report]

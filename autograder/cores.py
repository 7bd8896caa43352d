"""The grading machine's cores, shared by students graded at once (``--jobs``).

A timed phase (the speedup measurement: the submission's and the reference's runs) runs alone on
its cores for its whole length. It claims them first, so that no untimed work starts there any
more, then waits until every untimed piece of work already on them has ended (a run of another
student in flight with the grader's reading and checking of it, its checks, its feedback page, the
agent's held-out episodes), and only then starts; its runs are pinned to
those cores (CPU affinity, and the run's control group's cpuset where there is one, which a run
cannot widen). Untimed work takes the cores no timed phase has claimed, and waits while there are
none. Every piece of untimed work is logged with its cores, its times and (for runs) its CPU time,
and each timed phase records, from that log, what ran beside it on its cores: nothing, unless the
wait for the cores had to be given up (:attr:`Cores.drain_seconds`), in which case the timing is not
judged on speed (``speedup_judge``).
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

DRAIN_SECONDS = 150.0
"""Longest a timed phase waits for untimed work on its cores to end: longer than any untimed run may last."""


def usable_cores() -> list[int]:
    """The cores this process may run on (all of ``os.cpu_count()`` where affinity is not supported)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


@dataclass
class Work:
    """One piece of untimed work: where and when it ran (``end`` None while it goes on)."""

    cpus: tuple[int, ...]
    start: float
    end: float | None = None
    cpu_seconds: float | None = None
    """Its CPU time when known (a sandboxed run's, from the kernel)."""

    def overlap(self, start: float, end: float) -> float:
        """Seconds of ``[start, end]`` it was going on."""
        return max(0.0, min(self.end if self.end is not None else end, end) - max(self.start, start))


@dataclass
class Phase:
    """A timed phase: its cores, how long it waited for them, and what ran beside it there."""

    cpus: tuple[int, ...]
    waited_seconds: float = 0.0
    drained: bool = True
    """Every untimed piece of work on its cores had ended before it started."""
    start: float = 0.0
    end: float | None = None
    beside: list[Work] = field(default_factory=list)
    """Untimed work that overlapped it on its cores (none when it ran alone)."""

    @property
    def alone(self) -> bool:
        return self.drained and not self.beside

    def record(self) -> dict:
        """Plain data for results.json: what ran beside the phase on its cores, measured from the work log."""
        seconds = (self.end or time.monotonic()) - self.start
        cpu = [
            w.cpu_seconds
            * w.overlap(self.start, self.end or time.monotonic())
            / max(1e-9, (w.end or w.start) - w.start)
            for w in self.beside
            if w.cpu_seconds is not None
        ]
        return {
            "cores": list(self.cpus),
            "alone": self.alone,
            "seconds": round(seconds, 3),
            "waited_seconds": round(self.waited_seconds, 3),
            "others_in_flight": len(self.beside),
            "others_seconds": round(sum(w.overlap(self.start, self.end or time.monotonic()) for w in self.beside), 3),
            "others_cpu_seconds": round(sum(cpu), 3),
        }


class Cores:
    """Hands out cores: ``reserve(n)`` for a timed phase, ``untimed()`` for any other work."""

    def __init__(self, cpus: list[int] | None = None, drain_seconds: float = DRAIN_SECONDS):
        self.all = list(cpus or usable_cores())
        self.drain_seconds = drain_seconds
        self.claimed: set[int] = set()
        """Cores a timed phase holds or is waiting to hold: no untimed work starts on them."""
        self.busy: dict[int, int] = {}
        """Untimed pieces of work in flight, by core."""
        self.log: list[Work] = []
        self.phases: list[Phase] = []
        """Timed phases in progress (the log keeps what may still overlap one of them)."""
        self.changed = threading.Condition()

    @contextmanager
    def reserve(self, n: int):
        """A :class:`Phase` on ``n`` cores (all of them if there are fewer), alone there for this block."""
        n = min(n, len(self.all))
        asked = time.monotonic()
        with self.changed:
            self.changed.wait_for(lambda: len(self.all) - len(self.claimed) >= n)
            mine = tuple(c for c in self.all if c not in self.claimed)[:n]
            self.claimed.update(mine)
            drained = self.changed.wait_for(lambda: not any(self.busy.get(c) for c in mine), self.drain_seconds)
            phase = Phase(mine, waited_seconds=time.monotonic() - asked, drained=drained, start=time.monotonic())
            self.phases.append(phase)
        try:
            yield phase
        finally:
            with self.changed:
                phase.end = time.monotonic()
                phase.beside = [w for w in self.log if set(w.cpus) & set(mine) and w.overlap(phase.start, phase.end)]
                self.phases.remove(phase)
                self.claimed.difference_update(mine)
                self._prune()
                self.changed.notify_all()

    @contextmanager
    def untimed(self):
        """A :class:`Work` on the cores no timed phase has claimed (waiting for one), for this block."""
        with self.changed:
            self.changed.wait_for(lambda: any(c not in self.claimed for c in self.all))
            work = Work(tuple(c for c in self.all if c not in self.claimed), time.monotonic())
            for c in work.cpus:
                self.busy[c] = self.busy.get(c, 0) + 1
            self.log.append(work)
        try:
            yield work
        finally:
            with self.changed:
                work.end = time.monotonic()
                for c in work.cpus:
                    self.busy[c] -= 1
                self._prune()
                self.changed.notify_all()

    def _prune(self) -> None:
        """Forget untimed work that ended before every timed phase in progress began (all of it, without one)."""
        oldest = min((p.start for p in self.phases), default=None)
        self.log = [w for w in self.log if w.end is None or (oldest is not None and w.end > oldest)]

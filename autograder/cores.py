"""The grading machine's cores, shared by students graded at once (``--jobs``).

A timed phase (the speedup measurement: the submission's and the reference's runs) reserves
its own cores for as long as it lasts, and its runs are pinned to them (CPU affinity, and the
run's control group's cpuset where there is one, which a run cannot widen). Every other run
gets the cores no timed phase holds at its start, and waits while there are none: an untimed
run never competes with a timed one.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager


def usable_cores() -> list[int]:
    """The cores this process may run on (all of ``os.cpu_count()`` where affinity is not supported)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


class Cores:
    """Hands out cores: ``reserve(n)`` for a timed phase, ``free()`` for any other run."""

    def __init__(self, cpus: list[int] | None = None):
        self.all = list(cpus or usable_cores())
        self.reserved: set[int] = set()
        self.changed = threading.Condition()

    @contextmanager
    def reserve(self, n: int):
        """``n`` cores (all of them if there are fewer) for this block alone; waits until they are free."""
        n = min(n, len(self.all))
        with self.changed:
            self.changed.wait_for(lambda: len(self.all) - len(self.reserved) >= n)
            mine = [c for c in self.all if c not in self.reserved][:n]
            self.reserved.update(mine)
        try:
            yield tuple(mine)
        finally:
            with self.changed:
                self.reserved.difference_update(mine)
                self.changed.notify_all()

    def free(self, holding: tuple[int, ...] = ()) -> tuple[int, ...]:
        """The cores no timed phase holds (``holding``: the caller's own reservation, if any); waits for one."""
        with self.changed:
            self.changed.wait_for(lambda: any(c not in self.reserved or c in holding for c in self.all))
            return tuple(c for c in self.all if c not in self.reserved or c in holding)

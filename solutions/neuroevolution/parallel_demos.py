"""The functions Part 1 of the lesson sends to worker processes.

They live in this module, not in the notebook, because of how workers start. Under the
``spawn`` start method (the default on macOS and Windows) and ``forkserver`` (the Linux default
from Python 3.14), every worker is a fresh Python interpreter. ``Pool.map`` sends it a function
by name, "``count_down`` from module ``parallel_demos``", and the worker imports that module to
find it. A function defined in a notebook cell belongs to the module ``__main__`` of the
kernel, which a fresh worker does not have: the worker fails to find it and the ``Pool.map``
call never returns. Functions from a ``.py`` file beside the notebook work under every start
method.
"""

from __future__ import annotations

import os
import time


def count_down(n: int) -> int:
    """Count from ``n`` down to 0 in pure Python: CPU work that holds the GIL the whole time."""
    while n > 0:
        n -= 1
    return n


def slow_square(x: float, delay: float = 0.01) -> float:
    """``x * x`` after waiting ``delay`` seconds, like a slow network call (waiting needs no CPU)."""
    time.sleep(delay)
    return x * x


def square(x: float) -> float:
    """``x * x`` and nothing else: a job far smaller than the cost of sending it to another process."""
    return x * x


seen: list = []
"""A module-level list that ``remember`` appends to: a side effect."""


def remember(x):
    """Append ``x`` to the module's list ``seen`` (a side effect), then return ``x``."""
    seen.append(x)
    return x


def draw_two(_task) -> tuple[int, list[float]]:
    """Two numbers from numpy's global generator, and the id of the process that drew them."""
    import numpy as np

    time.sleep(0.05)  # a slow task, so that every worker of a small pool gets one
    return os.getpid(), np.random.random(2).round(4).tolist()


def draw_from(rng, _task=None) -> float:
    """One number from the numpy generator ``rng``, rounded (``_task``, the item a map passes, is ignored)."""
    return round(float(rng.random()), 4)

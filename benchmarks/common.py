"""What every benchmark shares: imports of the helper and the reference loop, timing, tables.

Timing rule: variants that are compared are timed side by side in one run, interleaved
(one repeat of each, then the next round, in a rotated order), and summarised by the
median, so a machine shared with other work slows all of them alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autograder import cores, paths

NOTEBOOK = paths.reference_notebook()
HELPER_DIR = paths.SOURCE_DIR
OUT_DIR = paths.ROOT / "build" / "bench"
"""Where a run writes its JSON and figures unless told otherwise (git-ignored: running the benchmarks changes no
tracked file; ``make bench-readme`` redraws the README's figures in docs/ on purpose)."""
REFERENCE_MODULE = "bench_reference"


class BenchmarkError(Exception):
    """A benchmark cannot run as asked; the message says what to change."""


def usable_cores() -> int:
    """How many cores this process may run on (the affinity mask where there is one, as the grader counts)."""
    return len(cores.usable_cores())


def load_reference(workdir: Path):
    """The instructor notebook's solution cells as an importable module, written to ``workdir``."""
    from autograder.extract import NotebookError, write_module

    try:
        found = write_module(NOTEBOOK, NOTEBOOK, Path(workdir) / f"{REFERENCE_MODULE}.py")
    except NotebookError as exc:
        raise BenchmarkError(str(exc)) from None
    if found.missing:
        raise BenchmarkError(f"{NOTEBOOK} has no solution cell {', '.join(found.missing)}: restore it from git")
    if str(workdir) not in sys.path:
        sys.path.insert(0, str(workdir))
    sys.modules.pop(REFERENCE_MODULE, None)  # a fresh temp folder per run
    return importlib.import_module(REFERENCE_MODULE)


def interleaved_times(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall seconds of each variant, ``repeats`` times, timed round-robin in a rotating order."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    return times


def default_chunksize(n_tasks: int, workers: int) -> int:
    """The chunk size ``Pool.map`` picks when none is given (about four chunks per worker)."""
    chunksize, extra = divmod(n_tasks, workers * 4)
    return chunksize + 1 if extra else max(chunksize, 1)


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else float("nan")


@dataclass
class Report:
    """One benchmark's result: a plain table for people, ``data`` for the JSON file."""

    name: str
    """Short name, also the JSON file's stem (``<out>/<name>.json``)."""
    title: str
    """One line printed above the table."""
    columns: list[str]
    """Column headers."""
    rows: list[list[object]] = field(default_factory=list)
    """Table rows, one value per column (numbers are formatted when printed)."""
    notes: list[str] = field(default_factory=list)
    """Lines printed under the table: fits, conclusions, skipped parts."""
    data: dict = field(default_factory=dict)
    """Machine-readable figures (raw repeats, settings) for the JSON file."""

    def row_labels(self) -> list[str]:
        return [str(row[0]) for row in self.rows]

    def table(self) -> str:
        """The table as aligned plain text, numbers right-aligned."""
        cells = [[_cell(v) for v in row] for row in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)]
        numeric = [
            all(isinstance(row[i], (int, float)) for row in self.rows) and i > 0 for i in range(len(self.columns))
        ]

        def line(values):
            return "  ".join(
                v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
            ).rstrip()

        out = [self.title, line(self.columns), line(["-" * w for w in widths])]
        out += [line(row) for row in cells]
        out += self.notes
        return "\n".join(out)

    def write_json(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{self.name}.json"
        payload = {
            "benchmark": self.name,
            "title": self.title,
            "host": host_info(),
            "columns": self.columns,
            "rows": self.rows,
            "notes": self.notes,
            "data": self.data,
        }
        path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n", encoding="utf-8")
        return path


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if value == 0 or 0.01 <= abs(value) < 10_000:
            return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
        return f"{value:.2e}"
    return str(value)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def host_info() -> dict:
    """Where the figures were measured: they only compare within one run on one machine."""
    import numpy

    return {
        "usable_cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "start_method": multiprocessing.get_start_method(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def free_cores(processes: int, seconds: float = 0.15, repeats: int = 3) -> float:
    """How many cores the machine gives ``processes`` busy processes right now (``processes`` if idle).

    ``processes`` identical CPU-bound tasks run at once are timed against one alone;
    ``processes * alone / together`` is the speedup the machine itself allows, the ceiling
    of any parallel code measured beside it. Other work on a shared machine lowers it.
    """
    from multiprocessing import Pool

    start = time.perf_counter()
    _busy(100_000)
    n = max(1_000, int(100_000 * seconds / max(time.perf_counter() - start, 1e-6)))
    with Pool(processes) as pool:
        pool.map(_busy, [1] * processes, chunksize=1)
        alone, together = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            pool.map(_busy, [n], chunksize=1)
            alone.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pool.map(_busy, [n] * processes, chunksize=1)
            together.append(time.perf_counter() - t0)
    return processes * median(alone) / median(together)


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value

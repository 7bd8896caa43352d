"""The two figures for the docs: scaling (speedup and efficiency) and Pool.map's overhead crossover."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.common import Report  # noqa: E402
from benchmarks.scaling import PROJECTED_CORES, SIXTEEN_CORE_GOAL, TWO_CORE_GOAL, amdahl_speedup  # noqa: E402


def plot_scaling(measured: Report, projection: Report, path: Path) -> Path:
    """Speedup and efficiency against processes: measured, model, Amdahl fit, ideal."""
    d = measured.data
    ps, speedups, free = d["processes"], d["speedups"], d["free_cores"]
    cores = list(PROJECTED_CORES)
    model = [d["model_serial_seconds"] / d["model_seconds"][p] for p in cores]
    fraction = d["serial_fraction"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 4.8))

    left.plot(cores, cores, "k:", label="ideal (speedup = processes)")
    left.plot(cores, model, "s--", color="tab:blue", label="model from measured costs")
    if fraction == fraction:
        left.plot(
            cores,
            [amdahl_speedup(fraction, p) for p in cores],
            "-",
            color="tab:gray",
            label=f"Amdahl fit, serial fraction {fraction:.3f}",
        )
    left.plot(ps, [free[p] for p in ps], "v", color="tab:green", label="free cores (machine ceiling)")
    left.plot(ps, speedups, "o-", color="tab:red", markersize=8, label="measured evolve_parallel")
    left.set(
        title="Speedup over evolve_serial",
        xlabel="worker processes",
        ylabel="speedup (serial time / parallel time)",
        xticks=cores,
        xlim=(0.5, max(cores) + 0.5),
        ylim=(0, max(cores) + 0.5),
    )
    left.grid(alpha=0.3)
    left.legend(loc="upper left", fontsize=8)

    right.axhline(1.0, color="k", linestyle=":", label="ideal")
    for row in projection.rows:
        if str(row[0]).endswith("(model)"):
            right.plot(cores, row[2:], "s--", label=f"model, {str(row[0]).removesuffix(' (model)')}")
    right.plot(ps, [free[p] / p for p in ps], "v", color="tab:green", label="machine ceiling (free cores / processes)")
    right.plot(
        ps, [s / p for s, p in zip(speedups, ps, strict=True)], "o-", color="tab:red", markersize=8, label="measured"
    )
    right.plot([2], [TWO_CORE_GOAL], "k^", label=f"goal: {TWO_CORE_GOAL:.0%} on 2 cores")
    right.plot([16], [SIXTEEN_CORE_GOAL], "kv", label=f"goal: {SIXTEEN_CORE_GOAL:.0%} on 16 cores")
    right.set(
        title="Parallel efficiency (speedup / processes)",
        xlabel="worker processes",
        ylabel="efficiency",
        xticks=cores,
        xlim=(0.5, max(cores) + 0.5),
        ylim=(0, 1.1),
    )
    right.grid(alpha=0.3)
    right.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)

    s = d["settings"]
    fig.suptitle(
        f"Reference evolve_parallel, {s['generations']} generations x {s['pop_size']} candidates "
        f"(median of {s['repeats']})"
    )
    fig.tight_layout()
    return _save(fig, path)


def plot_overhead(report: Report, path: Path) -> Path:
    """Pool.map's speedup over map against the serial cost of one task, per task kind."""
    d = report.data
    p = d["processes"]
    fig, ax = plt.subplots(figsize=(8, 5))
    colours = {"sleep": "tab:green", "compute": "tab:red", "episode": "tab:blue"}
    for kind, points in d["points"].items():
        points = sorted(points, key=lambda q: q["serial_per_task"])
        xs = [q["serial_per_task"] * 1e6 for q in points]
        colour = colours.get(kind)
        ax.plot(xs, [q["warm"] for q in points], "o-", color=colour, label=f"{kind}, pool already running")
        ax.plot(xs, [q["cold"] for q in points], "x--", color=colour, alpha=0.7, label=f"{kind}, pool started per call")
    ax.axhline(1.0, color="k", linewidth=1, label="break-even (as fast as map)")
    ax.axhline(p, color="k", linestyle=":", label=f"ideal ({p} workers)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(
        title=f"When does Pool.map pay off? ({p} workers, {d['settings']['tasks']} tasks per call)",
        xlabel="cost of one task run serially (microseconds, log scale)",
        ylabel="speedup over map (log scale)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

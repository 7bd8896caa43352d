"""``python -m benchmarks``: run the speed benchmarks, print their tables, save JSON and plots.

python -m benchmarks                          # everything, a few minutes on 2 cores; build/bench/
python -m benchmarks --only backends --repeats 5
python -m benchmarks --quick                  # tiny settings, seconds: checks it all runs
python -m benchmarks --plots docs             # redraw the README's figures (make bench-readme)
python -m benchmarks --only regrade           # the corpus graded in 3 independent batches (minutes)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks.common import OUT_DIR, BenchmarkError, Report, host_info, positive_int

BENCHMARKS = ("scaling", "backends", "overhead", "grading")  # grading last: it is the slowest and optional
ON_REQUEST = ("regrade",)
"""Run only when named: whole grading batches of the corpus, a check of the grader more than a speed figure."""


def benchmark_list(text: str) -> list[str]:
    """argparse type: a comma-separated subset of BENCHMARKS and ON_REQUEST, kept in that order."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = BENCHMARKS + ON_REQUEST
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {', '.join(unknown) or repr(text)}: choose from {','.join(known)}"
        )
    return [name for name in known if name in names]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure what parallelism buys in this assignment: scaling of the reference "
        "evolve_parallel, backends side by side, Pool.map's overhead crossover, grading throughput.",
    )
    parser.add_argument(
        "--only",
        type=benchmark_list,
        default=list(BENCHMARKS),
        metavar="NAMES",
        help=f"comma-separated benchmarks to run, from {','.join(BENCHMARKS + ON_REQUEST)} (default: "
        f"{','.join(BENCHMARKS)}; {','.join(ON_REQUEST)} grades the corpus in independent batches and runs only "
        "when named)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smallest settings (seconds, not minutes): checks everything runs; figures are not "
        "meaningful and no plots are drawn unless --plots is given",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help="timed runs per variant, the median is reported (default: 3, or 1 with --quick); for regrade, the "
        "number of independent batches (at least 2)",
    )
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for scaling.png and overhead.png (default: the --out folder; none with --quick); "
        "--plots docs redraws the README's figures",
    )
    parser.add_argument(
        "--before",
        default=None,
        metavar="REV",
        help="grading benchmark only: also time the grader of this git revision, in alternation with this one",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT_DIR,
        metavar="DIR",
        help="folder for the machine-readable <benchmark>.json files, and the plots unless --plots is given "
        "(default: build/bench/)",
    )
    return parser


def run_one(name: str, quick: bool, repeats: int, before: str | None = None) -> list[Report]:
    """Run benchmark ``name`` with the quick or the full settings."""
    if name == "scaling":
        from benchmarks import scaling

        settings = scaling.ScalingSettings.quick(repeats) if quick else scaling.ScalingSettings.default(repeats)
        return scaling.run(settings)
    if name == "backends":
        from benchmarks import backends

        return backends.run(
            backends.BackendSettings.quick(repeats) if quick else backends.BackendSettings(repeats=repeats)
        )
    if name == "overhead":
        from benchmarks import overhead

        return overhead.run(
            overhead.OverheadSettings.quick(repeats) if quick else overhead.OverheadSettings(repeats=repeats)
        )
    if name == "regrade":
        from benchmarks import regrade

        return regrade.run(regrade.RegradeSettings.quick() if quick else regrade.RegradeSettings(draws=max(2, repeats)))
    from benchmarks import grading

    settings = grading.GradingSettings.quick() if quick else grading.GradingSettings(rounds=repeats)
    settings.before = before
    return grading.run(settings)


def draw_plots(reports: dict[str, Report], folder: Path) -> list[Path]:
    """The figures whose benchmarks ran."""
    from benchmarks import plots

    drawn = []
    if "scaling" in reports:
        drawn.append(plots.plot_scaling(reports["scaling"], reports["scaling_projection"], folder / "scaling.png"))
    if "overhead" in reports:
        drawn.append(plots.plot_overhead(reports["overhead"], folder / "overhead.png"))
    return drawn


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)
    plots_dir = args.plots if args.plots is not None else (None if args.quick else args.out)
    host = host_info()
    print(
        f"{host['usable_cores']} usable cores, load average {host['load_average_1_5_15'][0]:.2f}, "
        f"start method {host['start_method']}, Python {host['python']}; {'quick' if args.quick else 'full'} "
        f"settings, {repeats} repeat(s)\n",
        flush=True,
    )
    reports: dict[str, Report] = {}
    start = time.perf_counter()
    try:
        for name in args.only:
            for report in run_one(name, args.quick, repeats, args.before):
                print(report.table() + "\n", flush=True)
                report.write_json(args.out)
                reports[report.name] = report
        written = draw_plots(reports, plots_dir) if plots_dir is not None else []
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not a file we were writing: a real failure, keep its traceback
            raise
        print(
            f"error: cannot write {exc.filename}: {exc.strerror}; pass writable --out / --plots folders",
            file=sys.stderr,
        )
        return 2
    print(
        f"JSON in {args.out}/"
        + "".join(f"; plot {path}" for path in written)
        + f"; {time.perf_counter() - start:.0f} s in all"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speedup verdicts on a busy machine: the corpus's correct loops and its loops that are not really parallel,
graded in the speedup category with the real settings, on the machine as it is and with one core kept busy
by a spinning process, with ``--jobs`` 1 (and any others asked for).

Targets (issue "One speedup judge that holds on a busy machine"): every correct entry keeps at least 75 % of
the speedup points with a core busy, no not-really-parallel entry gets any, and the time per submission
stays within 1.5x of the figure without the spinner. Each condition is a whole batch (``python -m autograder
grade --categories speedup``); with ``--rounds`` the conditions alternate, so a burst of other work on a
shared machine falls on both.

    python -m benchmarks.under_load
    python -m benchmarks.under_load --jobs 1,2 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import demo, paths
from autograder.categories import POINTS
from benchmarks.common import OUT_DIR, positive_int

sys.path.insert(0, str(paths.ROOT / "tests" / "corpus"))
import support  # noqa: E402  (the corpora's reader: one place for what an entry is)

CORRECT = ("reference", "imap_in_order", "other_draw_order", "process_pool_executor", "spawn_pool")
NOT_PARALLEL = (
    "lock_turn_taking_workers",
    "spinlock_busy_workers",
    "whole_generation_to_one_worker",
    "threads_instead_of_processes",
    "pool_but_builtin_map",
    "forge_worker_records",
    "forge_busy_worker_records",
    "forge_spinning_turns",
    "slow_pool",
)
"""Loops whose episodes do not run side by side in worker processes (or, slow_pool, that lose time outside them)."""
KEEP_CORRECT = 0.75
"""Share of the speedup points every correct entry must keep with a core busy."""
TIME_RATIO = 1.5
"""Most a busy core may multiply the time per submission by."""


def sources() -> dict[str, str]:
    """The benchmark's entries: name -> the source of the two solution cells."""
    corpus = {**support.corpus("correct"), **support.corpus("wrong"), **support.corpus("hostile")}
    missing = [name for name in (*CORRECT, *NOT_PARALLEL) if name != "reference" and name not in corpus]
    if missing:
        raise SystemExit(f"error: corpus entries {', '.join(missing)} are gone: update benchmarks/under_load.py")
    return {name: demo.reference_source() if name == "reference" else corpus[name].source for name in CORRECT} | {
        name: corpus[name].source for name in NOT_PARALLEL
    }


def spinner(core: int) -> subprocess.Popen:
    """A process that keeps ``core`` busy until it is killed."""
    code = f"import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def grade(submitted: Path, output: Path, jobs: int, timeout: float) -> tuple[float, dict[str, dict]]:
    """Seconds the batch took and each student's results.json."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--submitted", str(submitted), "--output", str(output)]
        + ["--categories", "speedup", "--jobs", str(jobs)],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "NEUROEVO_GRADER_SETTINGS"},
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"error: the grader exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds, {p.parent.name: json.loads(p.read_text()) for p in output.glob("*/results.json")}


def summarise(result: dict) -> dict:
    """What the table shows of one graded entry."""
    timing = result["extra_data"].get("timing") or {}
    judgement = timing.get("judgement") or {}
    return {
        "points": result["extra_data"]["category_scores"].get("speedup", 0.0),
        "verdict": judgement.get("verdict"),
        "speedup": (timing.get("student") or {}).get("speedup"),
        "reference": (timing.get("reference") or {}).get("speedup"),
        "concurrency": judgement.get("concurrency"),
        "seconds": result.get("execution_time"),
        "alone": (timing.get("alone") or {}).get("alone"),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.under_load", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--jobs",
        default="1",
        help="comma-separated --jobs values to grade with, each with and without a busy core (default: 1)",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=1, help="batches per condition, alternating (default: 1)"
    )
    parser.add_argument("--core", type=int, default=0, help="the core the spinning process keeps busy (default: 0)")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds after which one batch is given up (default: 3600)"
    )
    parser.add_argument(
        "--out", type=Path, default=OUT_DIR / "under_load.json", help="where the figures are written as JSON"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        jobs = [positive_int(j) for j in args.jobs.split(",") if j.strip()]
    except argparse.ArgumentTypeError as exc:
        print(f"error: --jobs: {exc}", file=sys.stderr)
        return 2
    if args.core not in os.sched_getaffinity(0):
        print(f"error: --core {args.core} is not a core this process may use", file=sys.stderr)
        return 2
    entries = sources()
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="under-load-") as tmp:
        submitted = Path(tmp) / "submitted"
        for name, source in entries.items():
            demo.write_submission(submitted, name, demo.with_solution(source))
        for round_ in range(args.rounds):
            for n in jobs:
                for busy in (False, True) if round_ % 2 == 0 else (True, False):
                    spinning = spinner(args.core) if busy else None
                    try:
                        seconds, results = grade(submitted, Path(tmp) / f"out-{round_}-{n}-{busy}", n, args.timeout)
                    finally:
                        if spinning is not None:
                            spinning.kill()
                            spinning.wait()
                    runs.append(
                        {
                            "round": round_,
                            "jobs": n,
                            "busy_core": busy,
                            "seconds_per_submission": seconds / len(entries),
                            "entries": {name: summarise(r) for name, r in results.items()},
                        }
                    )
                    print(
                        f"round {round_} --jobs {n} {'one core busy' if busy else 'no spinner'}: "
                        f"{seconds / len(entries):.1f} s per submission",
                        file=sys.stderr,
                        flush=True,
                    )
    print(report(runs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "loadavg": os.getloadavg()}, indent=1))
    return 0


def report(runs: list[dict]) -> str:
    """The table (speedup points per entry and condition) and the targets, met or not."""
    columns = [(r["round"], r["jobs"], r["busy_core"]) for r in runs]
    heads = [f"r{k} j{n} {'busy' if b else 'free'}" for k, n, b in columns]
    lines = [f"{'entry':32s} " + " ".join(f"{h:>12s}" for h in heads)]
    names = list(runs[0]["entries"]) if runs else []
    for name in sorted(names, key=lambda n: (n not in CORRECT, n)):
        cells = []
        for r in runs:
            e = r["entries"].get(name) or {}
            mark = "*" if e.get("verdict") == "not judged" else " "
            cells.append(f"{e.get('points', 0):>9.1f}/{POINTS['speedup']}{mark}"[-12:])
        lines.append(f"{name:32s} " + " ".join(f"{c:>12s}" for c in cells))
    lines.append(f"{'seconds per submission':32s} " + " ".join(f"{r['seconds_per_submission']:>12.1f}" for r in runs))
    lines.append("(* not judged on speed: the points followed the evidence of parallel work)")
    busy = [r for r in runs if r["busy_core"]]
    low = [
        f"{name} {e['points']:g}"
        for r in busy
        for name, e in r["entries"].items()
        if name in CORRECT and e["points"] < KEEP_CORRECT * POINTS["speedup"]
    ]
    paid = [
        f"{name} {e['points']:g}"
        for r in busy
        for name, e in r["entries"].items()
        if name in NOT_PARALLEL and e["points"] > 0
    ]
    ratios = []
    for r in busy:
        free = [q for q in runs if not q["busy_core"] and q["jobs"] == r["jobs"] and q["round"] == r["round"]]
        if free:
            ratios.append(r["seconds_per_submission"] / free[0]["seconds_per_submission"])
    lines += [
        "",
        f"correct entries below {KEEP_CORRECT:.0%} of the points with a core busy: {', '.join(low) or 'none'}",
        f"not-parallel entries paid with a core busy: {', '.join(paid) or 'none'}",
        f"time per submission, busy core over free: {', '.join(f'{x:.2f}x' for x in ratios)} "
        f"(target at most {TIME_RATIO}x)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

"""How often does one training run solve MountainCarContinuous, and how long does it take?

Trains the reference loop (the ``evolve_parallel`` solution cell of the instructor notebook)
once per seed, scores the selected parameters on held-out start states, and prints a plain
table: the held-out mean per seed, then the solve rate and the time spent. The grader's
``agent`` budget (``autograder.config.AgentBudget``) is chosen from these figures, so the
defaults are the current grading settings.

``--loop`` also runs deliberately broken loops (select a random candidate, the worst one, or
never leave generation 0): a budget is only sound if they rarely reach the solved return.

    python -m benchmarks.solve_rate --seeds 0-19
    python -m benchmarks.solve_rate --loop argmin --seeds 0-9 --attempts 3
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
import tempfile
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from autograder.config import AGENT
from autograder.extract import NotebookError, write_module
from benchmarks.common import NOTEBOOK, positive_int

HELDOUT_SEED = 1_000_000  # far from the small training seeds, so no start state is shared by design
LOOPS = ("reference", "random", "argmin", "frozen")


def parse_seeds(text: str) -> list[int]:
    """``"0-19"`` or ``"0,3,7"`` (or a mix, ``"0-4,10"``) -> a list of ints."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            seeds.extend(range(int(first), int(last or first) + 1))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad seed list {text!r}: use e.g. 0-19 or 0,3,7") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"seed list {text!r} is empty: use e.g. 0-19")
    return seeds


def load_reference(notebook: Path, workdir: Path):
    """The notebook's solution cells as an importable module (needs ``evolution`` on sys.path)."""
    missing = write_module(notebook, notebook, workdir / "reference_loop.py").missing
    if "evolve_parallel" in missing:
        raise NotebookError(f"{notebook} has no evolve_parallel cell")
    return importlib.import_module("reference_loop")


def evolve_broken(ev, pick: str, generations: int, pop_size: int, seed: int, sigma: float, processes: int | None):
    """The reference loop with a broken select step: ``random``, ``argmin`` or ``frozen``.

    ``frozen`` never generates: every generation re-tests generation 0 and the best of the
    last test is returned, so all it can find is a lucky random network.
    """
    rng = np.random.default_rng(seed)
    chooser = np.random.default_rng(seed + 7_919)  # keeps the main stream the same as the reference's
    population = [ev.initialize_parameters(ev.I_SIZE, ev.H_SIZE, ev.O_SIZE, rng=rng) for _ in range(pop_size)]
    with Pool(processes) as pool:
        for generation in range(generations):
            returns = pool.map(partial(ev.episode, seed=int(rng.integers(2**31 - 1))), population)
            if pick == "random":
                chosen = population[int(chooser.integers(pop_size))]
            elif pick == "argmin":
                chosen = population[int(np.argmin(returns))]
            else:
                chosen = population[int(np.argmax(returns))]
            if pick != "frozen" and generation + 1 < generations:
                population = [ev.sample_params(chosen, rng, sigma) for _ in range(pop_size)]
    return chosen, None


def heldout_mean(ev, params: dict, episodes: int, first_seed: int) -> float:
    """Mean return of ``params`` over ``episodes`` fixed start states not used in training."""
    return statistics.fmean(ev.episode(params, seed=first_seed + i) for i in range(episodes))


def summarise(scores: list[float], seconds: list[float], args) -> list[str]:
    """The closing lines: solve rate, P(fail) for ``--attempts`` runs, expected time."""
    n = len(scores)
    p = sum(s >= args.solved for s in scores) / n
    runs = sum((1 - p) ** i for i in range(args.attempts))  # stop at the first solved run
    per_run = statistics.fmean(seconds)
    lines = [
        f"solve rate p      {p:.2f} ({sum(s >= args.solved for s in scores)}/{n} seeds "
        f"with held-out mean >= {args.solved:g})",
        f"held-out mean     median {statistics.median(scores):.1f}, min {min(scores):.1f}, max {max(scores):.1f}",
        f"attempts k        {args.attempts}: P(no solved run) = (1-p)^k = {(1 - p) ** args.attempts:.2e}, "
        f"expected runs {runs:.2f}, expected seconds {runs * per_run:.1f}",
        f"seconds           {per_run:.2f} per run (train + held-out), {sum(seconds):.1f} in all",
    ]
    if args.partial is not None:
        q = sum(s >= args.partial for s in scores) / n
        lines.insert(
            1,
            f"partial rate      {q:.2f} (held-out mean >= {args.partial:g}); "
            f"P(none of k) = {(1 - q) ** args.attempts:.2e}",
        )
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.solve_rate",
        description="Train the reference (or a broken) loop once per seed and report how often it "
        "solves MountainCarContinuous on held-out start states.",
    )
    parser.add_argument(
        "--loop",
        choices=LOOPS,
        default="reference",
        help="reference: the notebook's evolve_parallel; random / argmin: select a random / the "
        "worst candidate; frozen: never leave generation 0 (default: reference)",
    )
    parser.add_argument(
        "--generations",
        type=positive_int,
        default=AGENT.generations,
        help=f"generations per run (default: the grading budget, {AGENT.generations})",
    )
    parser.add_argument(
        "--pop-size",
        type=positive_int,
        default=AGENT.pop_size,
        help=f"candidates per generation (default: {AGENT.pop_size})",
    )
    parser.add_argument(
        "--sigma",
        type=float,
        default=AGENT.sigma,
        help=f"spread of sample_params around the selected candidate (default: {AGENT.sigma})",
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=parse_seeds("0-19"),
        help="training seeds, e.g. 0-19 or 0,3,7 (default: 0-19)",
    )
    parser.add_argument(
        "--processes", type=positive_int, default=2, help="Pool workers per run, as the grader uses (default: 2)"
    )
    parser.add_argument(
        "--heldout",
        type=positive_int,
        default=AGENT.heldout_episodes,
        help=f"held-out start states per score (default: {AGENT.heldout_episodes})",
    )
    parser.add_argument(
        "--heldout-seed",
        type=int,
        default=HELDOUT_SEED,
        help=f"first held-out episode seed; the others follow it (default: {HELDOUT_SEED})",
    )
    parser.add_argument(
        "--solved",
        type=float,
        default=AGENT.solved_return,
        help=f"held-out mean that counts as solved (default: {AGENT.solved_return:g})",
    )
    parser.add_argument(
        "--partial",
        type=float,
        default=80.0,
        help="also report how often the held-out mean reaches this value (default: 80)",
    )
    parser.add_argument(
        "--attempts",
        type=positive_int,
        default=AGENT.attempts,
        help=f"runs per submission used for P(fail) and the expected time (default: {AGENT.attempts})",
    )
    parser.add_argument(
        "--notebook",
        type=Path,
        default=NOTEBOOK,
        help="instructor notebook holding the reference loop (default: solutions/neuroevolution/"
        "neuroevolution.ipynb; its folder must hold evolution.py)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not (args.sigma > 0 and np.isfinite(args.sigma)):
        print(f"error: --sigma must be a positive number, got {args.sigma}", file=sys.stderr)
        return 2
    helper_dir = args.notebook.resolve().parent
    if not (helper_dir / "evolution.py").is_file():
        print(
            f"error: no evolution.py beside {args.notebook}: point --notebook at the instructor notebook",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="solve-rate-") as workdir:
        sys.path[:0] = [str(helper_dir), workdir]  # Pool workers find both modules under any start method
        ev = importlib.import_module("evolution")
        try:
            reference = load_reference(args.notebook, Path(workdir))
        except NotebookError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.loop == "reference":
            train = reference.evolve_parallel
        else:
            train = partial(evolve_broken, ev, args.loop)
        print(
            f"loop={args.loop} generations={args.generations} pop_size={args.pop_size} sigma={args.sigma:g} "
            f"processes={args.processes} heldout={args.heldout}x from seed {args.heldout_seed}"
        )
        print(f"{'seed':>6}  {'held-out mean':>13}  {'solved':>6}  {'seconds':>7}")
        scores, seconds = [], []
        for seed in args.seeds:
            start = time.perf_counter()
            best, _ = train(args.generations, args.pop_size, seed, args.sigma, args.processes)
            score = heldout_mean(ev, best, args.heldout, args.heldout_seed)
            seconds.append(time.perf_counter() - start)
            scores.append(score)
            print(
                f"{seed:>6}  {score:>13.2f}  {'yes' if score >= args.solved else 'no':>6}  {seconds[-1]:>7.2f}",
                flush=True,
            )
    print("\n".join(summarise(scores, seconds, args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Grading settings: workloads, budgets, points and limits, in one place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class AgentBudget:
    """How the `agent` category trains a submission's loop and scores the result.

    Chosen with ``python -m benchmarks.solve_rate`` (its defaults are these values; the README's
    "Agent budget" table has the measured solve rates): enough runs that a correct loop almost never
    misses, few enough that most submissions need two. Below the solved return, points are in
    proportion to the held-out mean.
    """

    generations: int = 25
    """Generations per training run."""
    pop_size: int = 32
    """Candidates per generation."""
    sigma: float = 0.5
    """Spread passed to the student's loop for these runs (0.35 and 0.7 solved less often)."""
    attempts: int = 8
    """Most training runs, each with its own grader seed; stop at the first solved one, else the best counts."""
    min_attempts: int = 2
    """Fewest training runs started: a network planted in generation 0 shows as the same candidate under two seeds
    (runs owed after one has solved are ended once their generation 0 is played)."""
    heldout_episodes: int = 20
    """Held-out start states the trained parameters are scored on."""
    solved_return: float = 90.0
    """Mean held-out return that earns full marks (gymnasium's reward threshold)."""
    wall_seconds: float = 120.0
    """Wall-clock limit of one training run."""


SETTINGS_ENV = "NEUROEVO_GRADER_SETTINGS"
"""JSON like ``{"speedup": {"repeats": 1}, "agent": {"attempts": 2}}``: smaller budgets for the project's
own tests (grades then differ from a real batch's; results.json records the settings used)."""


def _overridden(settings, section: str):
    """``settings`` with the fields ``$NEUROEVO_GRADER_SETTINGS[section]`` names replaced."""
    text = os.environ.get(SETTINGS_ENV, "").strip()
    if not text:
        return settings
    try:
        wanted = json.loads(text).get(section, {})
        known = {f.name for f in fields(settings)}
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise ValueError(f"unknown {section} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(settings, **{k: tuple(v) if isinstance(v, list) else v for k, v in wanted.items()})
    except (ValueError, AttributeError, TypeError) as exc:
        raise SystemExit(f"{SETTINGS_ENV} is not valid: {exc}") from None


AGENT = _overridden(AgentBudget(), "agent")

# Points per category. The notebook's five graded test cells (grade_id test_<category>)
# carry the same points, so nbgrader's gradebook and export agree with results.json.

MAX_NOTEBOOK_BYTES = 32 * 2**20
"""Largest notebook read (the release is about 100 KiB; outputs with images stay far below this): by the
grader, and by ``collect`` from a download, whatever a zip's headers declare."""


# --- settings of the grading runs (the AgentBudget values above are tuned separately) ---


@dataclass(frozen=True)
class ObserveSettings:
    """The runs the serial, parallel and determinism categories verify.

    They have the timed runs' workload (``SpeedupSettings``: generations, candidates per worker,
    sigma), and every run's seed is drawn per batch, so no run can tell what it is for; the seed of
    ``serial_main``, ``serial_repeat`` and the ``parallel_<n>`` runs is then chosen among further
    draws so that every deviation a seed shows only by luck shows (``deviations.py``).
    """

    parallel_processes: tuple[int | None, ...] = (2, 1, 3, None)
    """``processes`` values evolve_parallel is run with; the first one is the observed run (None: the default,
    a worker per core, which a submission must handle like any other count)."""
    centre_tolerance: float = 0.25
    """Allowed gap between the measured spread of sample_params noise and 1 (in units of sigma)."""
    wall_seconds: float = 90.0
    """Wall-clock limit of each observation run."""
    seed_budget: int = 250
    """Most candidate seeds tried for the observed runs before the batch stops as a grader fault (exit 3).
    About one seed in ten tells every deviation apart on the default workload (one in seven on the test
    workload), so 250 all fail with a chance near 1e-10; a seed costs about 0.2 CPU seconds to try (the
    reference played in the grading process, a generation at a time), the choice about 2 s in the median."""


@dataclass(frozen=True)
class SpeedupSettings:
    """How evolve_serial and evolve_parallel are timed against the reference solution."""

    generations: int = 3
    """Generations of the timed (and observed) workload."""
    sigma: float = 0.5
    """Spread passed in (not the default 1.0, so a loop that ignores sigma shows)."""
    processes: int = 2
    """Workers evolve_parallel gets (a grader with more cores may raise it; the population grows with it)."""
    candidates_per_worker: int = 24
    """Candidates per worker per generation: enough to even out episode lengths and hide pool start-up."""
    repeats: int = 3
    """Timed rounds (each kind, submission and reference side by side) before anything short of full marks stands."""
    clear_margin: float = 1.1
    """Full marks this much clear (10 % past the line) stand after one round: a correct submission is timed once;
    anything else gets ``repeats`` rounds or more, each run counted at its fastest round."""
    max_repeats: int = 5
    """Rounds in all when the verdict is not settled after ``repeats``: noise gets more chances."""
    full_fraction: float = 0.8
    """Share of the reference's speedup that earns full marks."""
    zero_speedup: float = 1.1
    """Speedup at or below which the main speedup test earns nothing."""
    min_reference_speedup: float = 1.3
    """Below this the reference itself barely sped up (a busy machine): the category is inconclusive."""
    min_cpu_ratio: float = 1.25
    """CPU seconds per wall second the parallel run must reach to count as really parallel."""
    max_speedup_per_worker: float = 1.15
    """Speedup per worker above which a timed run cannot have played its episodes (2 workers: 2.3x)."""
    max_cpu_slack: float = 0.25
    """CPU seconds per wall second above the cores given that still count as measurement noise."""
    zero_concurrency: float = 1.1
    """Episodes in progress at once in different processes (on average while any was, each backed by the grader's
    CPU samples: ``concurrency.evidence``) at or below which the evidence of parallel work earns nothing. Workers
    that take turns reach 1 at most; full marks from ``full_fraction`` of the reference's."""
    slow_share: float = 0.8
    """When the timing is not judged on speed: the share of the reference's estimated free-core speedup
    (``concurrency.estimated_speedup``) below which the evidence's points shrink, to nothing at
    ``slow_zero_share``. It catches time lost outside the episodes (a pause, a Pool per episode) and CPU burned
    beside them (workers spinning through their turns: about half the reference's), not a Pool a little slower
    than one."""
    slow_zero_share: float = 0.55
    """The share of the reference's estimated free-core speedup at or below which a timing not judged on speed
    earns nothing."""
    max_outside_share: float = 0.2
    """Largest share of a timed run's CPU time, while its generations were played, that processes playing none of
    their episodes may use (a Pool's caller, waiting in pool.map, uses about 1 %)."""
    wall_seconds: float = 60.0
    """Wall-clock limit of each timed run."""

    @property
    def pop_size(self) -> int:
        """Candidates per generation of the timed and observed workload (48 with the default 2 workers)."""
        return self.candidates_per_worker * self.processes

    def full_marks_at(self, reference_speedup: float) -> float:
        """The speedup that earns full marks, given the reference's measured beside it."""
        return max(self.full_fraction * reference_speedup, self.zero_speedup + 0.1)

    def full_concurrency_at(self, reference_concurrency: float | None) -> float:
        """The concurrency that earns full marks: ``full_fraction`` of the reference's measured beside it, as for
        the speedup, which follows it (None: as if the reference kept every worker busy)."""
        ideal = float(self.processes) if reference_concurrency is None else min(reference_concurrency, self.processes)
        return max(self.full_fraction * ideal, self.zero_concurrency + 0.2)


@dataclass(frozen=True)
class SandboxSettings:
    """Limits of every sandboxed run of student code: ``sandbox.Limits`` takes its defaults from here."""

    memory_bytes: int = 3 * 2**30
    """Memory cap: of the whole run (shared pages included) under a control group, else per process."""
    max_processes: int = 32
    """Processes a run may have alive at once."""
    output_bytes: int = 64 * 2**10
    """Bytes of stdout/stderr kept per stream."""
    file_bytes: int = 64 * 2**20
    """Largest file a run may write (its folder is in memory as root, and counts against memory_bytes)."""
    result_bytes: int = 2 * 2**20
    """Largest result file the grader reads back from a run."""
    sessions: bool = True
    """Fork each run from a zygote that imported numpy and gymnasium once per submission (False: a new
    sandboxed Python per run; the same isolation per run, a few tenths of a second slower each)."""


OBSERVE = _overridden(ObserveSettings(), "observe")
SPEEDUP = _overridden(SpeedupSettings(), "speedup")
SANDBOX = _overridden(SandboxSettings(), "sandbox")

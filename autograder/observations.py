"""The observations: everything the grading tests may read about one submission, as plain JSON.

Collection (``observe.py``, ``timing.py``, ``training.py``) writes them; the checks
(``autograder/checks``) and the project's tests read them. They are TypedDicts so that they stay
plain dicts on disk (``observations.json``) while every key has one documented meaning here.
"""

from __future__ import annotations

from typing import TypedDict

Params = dict[str, list]
"""A candidate's parameters as nested lists: ``w1`` (2, 10), ``b1`` (10,), ``w2`` (10, 1), ``b2`` (1,)."""


class RunObservation(TypedDict):
    """One sandboxed run: one call of the student's function, read back and verified."""

    call: str
    """The call as a student would write it, e.g. ``evolve_serial(generations=3, ...)``."""
    function: str | None
    """``evolve_serial``, ``evolve_parallel``, or None for an import-only run."""
    kwargs: dict
    problem: str | None
    """Why the run gave nothing usable (raised, crashed, hung...), for the student; None when it did."""
    caller_pid: int | None
    best: Params | None
    best_problem: str | None
    history: list[list[float]] | None
    history_problem: str | None
    rules: dict[str, str | None]
    """Each rule of ``rules.RULES``: None when kept, else the message for the student."""
    worker_pids: int
    """Processes other than the caller that played episodes."""
    garbled: list[str]
    wall: float
    """Seconds, measured by the grader from outside the run."""
    cpu: float
    """CPU seconds of the whole run (the kernel's count where there is a control group)."""
    kernel_caps: bool
    cpus: list[int]
    """Cores the run was allowed."""
    start_methods: list[str]
    """``spawn``/``forkserver`` when the run started processes that way."""
    evidence: dict | None
    """For evolve_parallel: how much of its episode work ran at once in different processes
    (``concurrency.evidence``), or None."""
    generation_0_of_seed: int | None
    """Another seed whose run started from this run's generation 0 (give or take a little noise): the candidates
    do not come from this run's seed. None when they do, or before another seed's run was verified."""


class TimedSide(TypedDict, total=False):
    """One side (the student's or the reference's) of the timed rounds."""

    series: dict[str, dict[str, list[float]]]
    """Per kind (``serial``, ``parallel``, ``noop``): the ``wall`` and ``cpu`` seconds of each round."""
    problems: dict[str, str]
    """A run that did not count, by kind: the rounds stop at the first one."""
    worker_pids: list[int]
    evidence: list[dict | None]
    """Each round's evidence of parallel work in the timed evolve_parallel run (``concurrency.evidence``)."""
    serial_seconds: float
    parallel_seconds: float
    speedup: float | None
    speedup_rounds: list[float | None]
    """Each round's own speedup: its spread is the measurement's noise."""
    cpu_ratio: float | None


class SpeedupObservation(TypedDict, total=False):
    cores: int
    inconclusive: str | None
    """Why the timing is not judged (the reference did not speed up), or None."""
    rounds: int
    student: TimedSide
    reference: TimedSide
    startup_seconds: float
    cpus: list[int]
    reserved: list[int]
    start_method: str | None
    alone: dict
    """What ran beside the timed phase on its cores (``cores.Phase.record``): nothing, unless the grader had to
    give up waiting for them, and then the timing is not judged on speed."""


class Attempt(TypedDict):
    """One training run of the agent category."""

    seed: int
    function: str
    problem: str | None
    heldout_mean: float | None
    history: list[list[float]] | None
    params: Params | None
    note: str | None
    broke_rule: bool
    """The run broke a loop rule (not merely failed): it discredits every other training run."""
    first_generation_only: bool
    """Ended once generation 0 was played (a run owed after another had solved): checked for a planted network."""


class AgentObservation(TypedDict):
    attempts: list[Attempt]
    best: Attempt | None
    budget: dict
    heldout: int
    observed: str
    """The observed run of the training function (``parallel_2``, or ``serial_main`` when evolve_parallel failed)."""
    discredited: str | None
    """How that run broke a loop rule, when it did: no training run is then made, no agent counts."""


class Observations(TypedDict):
    """One submission, as ``grade.collect_observations`` returns it and ``observations.json`` holds it."""

    student: str
    settings: dict
    cores: int
    load_problem: str | None
    """Why the notebook could not be graded at all (unreadable, a cell missing...), or None."""
    plan: dict
    """The batch's seeds (``observe.Plan.record``): every run's seed, and what the observed seed was chosen for."""
    runs: dict[str, RunObservation]
    """The observed runs, by label: ``serial_main``, ``serial_repeat``, ``serial_other``, ``parallel_<n>``."""
    speedup: SpeedupObservation | None
    agent: AgentObservation | None
    seconds: dict[str, float]


def without_workers(student: TimedSide) -> bool:
    """The submission's timed evolve_parallel runs played their episodes in fewer than 2 worker processes:
    they cannot have been faster than a serial loop, whatever more rounds would measure."""
    workers = student.get("worker_pids") or []
    return bool(workers) and max(workers) < 2

"""The speedup category's measurement: the submission timed beside the reference, against trusted baselines.

A round runs, back to back: the submission's ``evolve_serial``, the reference's, the
submission's ``evolve_parallel``, the reference's, and the reference's import alone (the
start-up cost every run pays), in alternating order from round to round so a burst of other
work hits both sides. The first round's submission runs are the observed ones of the serial
and parallel categories (same workload, made on the same reserved cores just before), so no
run is made twice and no run can tell a timed call from an observed one. Every timed run of
the submission is verified like any other run: one that returns a wrong answer or plays the
wrong episodes earns nothing.

Both speedups, the submission's and the reference's, are over one serial time: the reference's
``evolve_serial`` time, or the submission's if shorter (both loops do the same verified work, so
the faster is the better measure of what it costs; a slowed-down ``evolve_serial`` gains nothing),
all without the reference's start-up cost. The submission's speedup as a share of the
reference's is then simply the reference's parallel time over the submission's: noise in the
serial runs cannot move a verdict. All times are wall times taken
outside the run, CPU times are the kernel's count for the whole run.

Each run's time over the rounds is its *fastest* round, as ``timeit`` advises: other work on the
machine only ever slows a run down, never speeds it up, so the fastest round is the closest to
what the code itself costs, and a submission is never marked down for a burst it did not cause.
No run can make itself faster than it is, so the minimum gives a student nothing the code did
not earn. CPU seconds are taken from the same fastest round.
"""

from __future__ import annotations

from autograder import observe, rules, speedup_judge
from autograder.config import SPEEDUP
from autograder.observations import RunObservation, SpeedupObservation, without_workers

KINDS = ("serial", "parallel", "noop")
FUNCTIONS = {"serial": "evolve_serial", "parallel": "evolve_parallel", "noop": None}


def _empty() -> dict:
    return {
        "series": {kind: {"wall": [], "cpu": []} for kind in KINDS},
        "problems": {},
        "worker_pids": [],
        "evidence": [],
    }


def _round(
    student: observe.Observer,
    reference: observe.Observer,
    seed: int,
    round_: int,
    out: dict,
    cpus: tuple[int, ...] | None,
    given: dict[str, RunObservation] | None = None,
) -> None:
    """One round of runs, appended to ``out``'s series (``given``: the submission's runs already made, by kind)."""
    order = [
        ("student", "serial"),
        ("reference", "serial"),
        ("student", "parallel"),
        ("reference", "parallel"),
        ("reference", "noop"),
    ]
    for side, kind in reversed(order) if round_ % 2 else order:
        if out["student"]["problems"] or out["reference"]["problems"]:
            return
        collector = student if side == "student" else reference
        kwargs = collector.plan.workload(seed, SPEEDUP.processes if kind == "parallel" else None)
        # A submission whose workers start by spawn or forkserver pays their start-up in every timed run;
        # the reference is then timed starting its workers the same way, so it pays the same.
        method = sorted(student.start_methods)[0] if side == "reference" and student.start_methods else None
        obs = (given or {}).get(kind) if side == "student" else None
        if obs is None or obs["kwargs"] != kwargs:
            obs = collector.run(
                FUNCTIONS[kind],
                kwargs,
                wall_seconds=SPEEDUP.wall_seconds,
                check=side == "student",
                cpus=cpus,
                method=method,
            )
        out["start_method"] = method or out.get("start_method")
        out["cpus"] = sorted(set(out["cpus"]) | set(obs.get("cpus") or []))
        problem = (
            obs["problem"] if side == "reference" or kind == "noop" else observe.run_problem(obs, rules.RESULT_RULES)
        )
        if problem:
            out[side]["problems"][kind] = problem
            continue
        out[side]["series"][kind]["wall"].append(obs["wall"])
        out[side]["series"][kind]["cpu"].append(obs["cpu"])
        if side == "student" and kind == "parallel":
            out[side]["worker_pids"].append(obs["worker_pids"])
        if kind == "parallel":
            out[side]["evidence"].append(obs.get("evidence"))


def _fastest(series: dict) -> dict:
    """The wall and CPU seconds of a kind's fastest round (``{}`` before any round)."""
    if not series["wall"]:
        return {}
    best = min(range(len(series["wall"])), key=series["wall"].__getitem__)
    return {k: v[best] for k, v in series.items() if len(v) > best}


def _speedup(serial: float, parallel: float) -> float | None:
    """Serial seconds over parallel seconds (None when either is not positive: nothing measurable)."""
    return serial / parallel if serial > 0 and parallel > 0 else None


def summarise(student: dict, reference: dict) -> dict:
    """Fastest rounds, both speedups and the parallel run's CPU seconds per wall second, from trusted baselines."""
    fastest = {
        side: {kind: _fastest(s) for kind, s in data["series"].items()}
        for side, data in (("student", student), ("reference", reference))
    }
    noop = fastest["reference"]["noop"]
    ref_serial = fastest["reference"]["serial"]["wall"] - noop["wall"]
    ref_parallel = fastest["reference"]["parallel"]["wall"] - noop["wall"]
    own_serial = fastest["student"]["serial"]["wall"] - noop["wall"]
    parallel = fastest["student"]["parallel"]["wall"] - noop["wall"]
    cpu = fastest["student"]["parallel"]["cpu"] - noop["cpu"]
    baseline = min(ref_serial, own_serial)
    return {
        "student": {
            "serial_seconds": own_serial,
            "parallel_seconds": parallel,
            "speedup": _speedup(baseline, parallel),
            "cpu_ratio": cpu / parallel if parallel > 0 else None,
            "speedup_rounds": round_speedups(student, student, reference),
        },
        "reference": {
            "serial_seconds": ref_serial,
            "parallel_seconds": ref_parallel,
            "speedup": _speedup(baseline, ref_parallel),
            "speedup_rounds": round_speedups(reference, student, reference),
        },
        "startup_seconds": noop["wall"],
    }


def round_speedups(side: dict, student: dict, reference: dict) -> list[float | None]:
    """The speedup of ``side`` (the student's or the reference's) each round measured on its own, by the same
    rule as the fastest rounds' (over that round's shorter serial time): their spread is the measurement's noise."""
    walls = side["series"]["parallel"]["wall"]
    own, ref = student["series"]["serial"]["wall"], reference["series"]["serial"]["wall"]
    noop = reference["series"]["noop"]["wall"]
    out: list[float | None] = []
    for r in range(min(len(walls), len(own), len(ref), len(noop))):
        out.append(_speedup(min(own[r], ref[r]) - noop[r], walls[r] - noop[r]))
    return out


def empty_observation(cores: int) -> SpeedupObservation:
    """A speedup observation before any round."""
    return {
        "cores": cores,
        "inconclusive": None,
        "student": _empty(),
        "reference": _empty(),
        "rounds": 0,
        "cpus": [],
        "reserved": [],
    }


def measure(
    student: observe.Observer,
    reference: observe.Observer,
    cpus: tuple[int, ...],
    observed: dict[str, RunObservation],
) -> SpeedupObservation:
    """The speedup observation on the reserved ``cpus``: rounds until settled (at most ``max_repeats``).

    ``observed``: the submission's observed ``serial`` and ``parallel`` runs, made on ``cpus`` with the
    first timed seed: they are the first round's submission side.
    """
    out = empty_observation(len(cpus))
    out["reserved"] = list(cpus)
    summary = None
    for round_ in range(SPEEDUP.max_repeats):
        seed = student.plan.timed_seeds[round_]
        _round(student, reference, seed, round_, out, cpus, observed if round_ == 0 else None)
        if out["student"]["problems"] or out["reference"]["problems"]:
            break
        out["rounds"] = round_ + 1
        summary = summarise(out["student"], out["reference"])
        so_far = {side: {**out[side], **summary[side]} for side in ("student", "reference")}
        if speedup_judge.settled(so_far, out["rounds"], SPEEDUP) or without_workers(out["student"]):
            break
    if out["reference"]["problems"] or not summary:
        return out
    out["student"].update(summary["student"])
    out["reference"].update(summary["reference"])
    out["startup_seconds"] = summary["startup_seconds"]
    out["inconclusive"] = speedup_judge.not_judged_reason(
        summary["reference"]["speedup"], out.get("start_method"), SPEEDUP
    )
    return out

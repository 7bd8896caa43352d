"""The grading tests on hand-made observations: every check's rule, without running any loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import deviations, grade, observe, rules, scoring, timing
from autograder.categories import CATEGORIES, POINTS
from autograder.config import SPEEDUP

LABELS = ("serial_main", "serial_repeat", "serial_other", "parallel_2", "parallel_1", "parallel_3", "parallel_None")
BEST = {"w1": [[0.5] * 10] * 2, "b1": [0.0] * 10, "w2": [[1.0]] * 10, "b2": [0.0]}


def run(*, history=None, best=None, broken=None, problem=None, call="evolve_serial(...)") -> dict:
    """One observed run that returned ``best`` and ``history`` and kept every rule but those in ``broken``."""
    return {
        "call": call,
        "function": "evolve_serial",
        "kwargs": {},
        "problem": problem,
        "caller_pid": 1,
        "best": best or BEST,
        "best_problem": None,
        "history": history or [[1.0, 2.0], [3.0, 4.0]],
        "history_problem": None,
        "rules": {**dict.fromkeys(rules.RULES), **(broken or {})},
        "worker_pids": 2,
        "garbled": [],
        "wall": 1.0,
        "cpu": 1.0,
        "kernel_caps": True,
    }


def chosen_plan(*deviation_names: str) -> dict:
    """The batch's plan as recorded, its observed seed chosen for these deviations (default: all of them)."""
    plan = observe.Plan.draw(0)
    names = deviation_names or tuple(deviations.BY_NAME)
    caught = {name: list(deviations.BY_NAME[name].caught_by) for name in names}
    return plan.with_choice(deviations.Choice(plan.observe_seed, caught, [0.0, 1.0, 0.5], 1, 0.0)).record()


def observations(
    runs: dict | None = None, agent: dict | None = None, speedup: dict | None = None, plan: dict | None = None
) -> dict:
    """A student's observations: six correct observed runs unless ``runs`` replaces some."""
    return {
        "student": "x",
        "settings": grade.settings_snapshot(),
        "cores": 2,
        "load_problem": None,
        "plan": plan or chosen_plan(),
        "runs": {label: run() for label in LABELS}
        | {"serial_other": run(history=[[5.0, 6.0], [7.0, 8.0]])}
        | (runs or {}),
        "seconds": {},
        "agent": agent,
        "speedup": speedup,
    }


def agent_section(heldout_mean: float | None, problem: str | None = None) -> dict:
    attempt = {
        "seed": 1,
        "function": "evolve_parallel",
        "problem": problem,
        "note": None,
        "heldout_mean": heldout_mean,
        "history": [[0.0]],
        "params": BEST,
    }
    return {
        "attempts": [attempt],
        "best": None if problem else attempt,
        "budget": grade.settings_snapshot()["agent"],
        "heldout": 20,
        "observed": "parallel_2",
        "discredited": None,
    }


def speedup_section(
    mine: float,
    ref: float,
    *,
    cpu_ratio: float = 1.8,
    workers: int = 2,
    inconclusive: str | None = None,
    problems: dict | None = None,
) -> dict:
    return {
        "cores": 2,
        "inconclusive": inconclusive,
        "rounds": 3,
        "student": {
            "problems": problems or {},
            "worker_pids": [workers] * 3,
            "speedup": mine,
            "cpu_ratio": cpu_ratio,
            "serial_seconds": 1.0,
            "parallel_seconds": 1.0 / mine,
        },
        "reference": {"problems": {}, "speedup": ref, "serial_seconds": 1.0, "parallel_seconds": 1.0 / ref},
    }


def scores(tmp_path: Path, obs: dict, categories=CATEGORIES) -> dict[str, float]:
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    scored = scoring.score(scoring.run_checks(path, tuple(categories)))
    out: dict[str, float] = {}
    for t in scored:
        out[t["category"]] = out.get(t["category"], 0.0) + t["score"]
    return out


def test_grader_checks_correct_observations_earn_full_marks(tmp_path):
    """Observations of a correct submission earn every point of every category."""
    obs = observations(agent=agent_section(95.0), speedup=speedup_section(1.8, 1.85))
    assert scores(tmp_path, obs) == pytest.approx(POINTS)


@pytest.mark.parametrize(
    "rule, category, test_name",
    [
        ("selection", "serial", "test_serial_selects_best_candidate"),
        ("sampling", "serial", "test_serial_next_generation_centred_on_best"),
        ("seeds", "serial", "test_serial_generation_shares_episode_seed"),
        ("processes", "parallel", "test_parallel_uses_worker_processes"),
        ("history", "parallel", "test_parallel_history_is_returns_played"),
    ],
)
def test_grader_checks_a_broken_rule_costs_its_own_test_only(tmp_path, rule, category, test_name):
    """One broken rule fails exactly the test for that rule, with the rule's message."""
    label = "serial_main" if category == "serial" else "parallel_2"
    obs = observations(runs={label: run(broken={rule: f"broken {rule}"})})
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    failed = [o for o in scoring.run_checks(path, (category,)) if not o["passed"]]
    assert [o["name"] for o in failed] == [test_name]
    assert failed[0]["message"] == f"broken {rule}"


def test_grader_checks_determinism_names_where_results_differ(tmp_path):
    """Serial and parallel differing from generation 1 on points at selection or sampling, not at the workers."""
    obs = observations(runs={"parallel_2": run(history=[[1.0, 2.0], [9.0, 4.0]])})
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    failed = [o for o in scoring.run_checks(path, ("determinism",)) if not o["passed"]]
    assert {o["name"] for o in failed} == {
        "test_determinism_serial_matches_parallel",
        "test_determinism_any_number_of_processes",
    }
    message = next(o["message"] for o in failed if o["name"] == "test_determinism_serial_matches_parallel")
    assert "from generation 1 on" in message


def test_grader_checks_determinism_needs_candidates_drawn_from_the_seed(tmp_path):
    """A loop whose generation 0 is the same for every seed (a hard-coded or pre-trained population) earns no
    determinism points, however reproducible its runs are; its serial points are the sampling rule's business."""
    other = run(history=[[5.0, 6.0], [7.0, 8.0]], call="evolve_serial(seed=8)")
    obs = observations(runs={"serial_other": {**other, "generation_0_of_seed": 7}})
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    failed = [o for o in scoring.run_checks(path, ("determinism",)) if not o["passed"]]
    assert len(failed) == 4, [o["name"] for o in failed]
    assert all("seed 7 started from" in o["message"] and "seed draws the candidates" in o["message"] for o in failed)
    assert scores(tmp_path, observations(), ("determinism",)) == {"determinism": POINTS["determinism"]}


@pytest.mark.parametrize("category", ["serial", "parallel", "determinism", "agent", "speedup"])
def test_grader_checks_luck_dependent_checks_refuse_a_run_not_chosen_for_them(tmp_path, category):
    """A check that needs a discriminating run raises a grader fault on a run whose seed was not chosen for it."""
    obs = observations(
        agent=agent_section(95.0), speedup=speedup_section(1.8, 1.85), plan=chosen_plan("elitist_parent")
    )
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    with pytest.raises(scoring.CheckError, match="not chosen to show"):
        scoring.run_checks(path, (category,))


def test_grader_checks_agent_discredited_by_the_observed_run_earns_nothing(tmp_path):
    """An agent section discredited by its observed run fails both agent tests with that run's message."""
    agent = {**agent_section(None, problem="no run"), "attempts": [], "discredited": "broke the selection rule"}
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(observations(agent=agent)), encoding="utf-8")
    failed = [o for o in scoring.run_checks(path, ("agent",)) if not o["passed"]]
    assert len(failed) == 2 and all("broke the selection rule" in o["message"] for o in failed)


def test_grader_checks_a_failed_run_fails_its_tests_with_its_message(tmp_path):
    """A run that raised costs the tests reading it, each saying what the run raised."""
    obs = observations(runs={"serial_main": run(problem="evolve_serial raised ValueError: boom")})
    got = scores(tmp_path, obs, ("serial",))
    assert got["serial"] == 0


def test_grader_checks_agent_scored_in_proportion_below_the_threshold(tmp_path):
    """A verified agent earns the solve points in proportion to its held-out mean below the threshold."""
    assert scores(tmp_path, observations(agent=agent_section(95.0)), ("agent",))["agent"] == pytest.approx(20)
    half = scores(tmp_path, observations(agent=agent_section(45.0)), ("agent",))["agent"]
    assert 0.25 * POINTS["agent"] < half < POINTS["agent"]


def test_grader_checks_agent_refused_run_earns_nothing(tmp_path):
    """A training run that broke a loop rule (a hand-made controller, elitism...) earns no agent points."""
    obs = observations(agent=agent_section(None, problem="returned parameters that were not played"))
    assert scores(tmp_path, obs, ("agent",))["agent"] == 0


@pytest.mark.parametrize("mine, expected", [(1.7, 1.0), (1.05, 0.0)])
def test_grader_checks_speedup_scored_against_reference_beside_it(tmp_path, mine, expected):
    """Full speedup marks near the reference's speedup measured beside it; none without a real speedup."""
    obs = observations(speedup=speedup_section(mine, ref=1.75, cpu_ratio=1.8 if expected else 1.0))
    assert scores(tmp_path, obs, ("speedup",))["speedup"] == pytest.approx(expected * POINTS["speedup"])


def test_grader_checks_speedup_impossible_cpu_ratio_fails(tmp_path):
    """More CPU seconds per wall second than the grader has cores is not a measurement: no points."""
    obs = observations(speedup=speedup_section(1.8, ref=1.8, cpu_ratio=5.1))
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(obs), encoding="utf-8")
    outcomes = scoring.run_checks(path, ("speedup",))
    assert all(not o["passed"] and "cannot be trusted" in o["message"] for o in outcomes)


@pytest.mark.parametrize("workers, awarded", [(2, True), (0, False)])
def test_grader_checks_speedup_not_judged_still_needs_worker_processes(tmp_path, workers, awarded):
    """On a busy grader the points go only to correct runs whose episodes were played by worker processes."""
    section = speedup_section(0.83, ref=1.0, workers=workers, inconclusive="the reference reached only 1.00x")
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(observations(speedup=section)), encoding="utf-8")
    outcomes = scoring.run_checks(path, ("speedup",))
    assert all(o["passed"] == awarded for o in outcomes)
    if awarded:
        assert all("not judged" in o["message"] and "0.83x" in o["message"] for o in outcomes)


def test_grader_checks_speedup_wrong_timed_run_earns_nothing_even_when_not_judged(tmp_path):
    """A timed run that did not count (wrong answer) costs the points even when the timing is not judged."""
    section = speedup_section(1.0, ref=1.0, inconclusive="busy", problems={"parallel": "returned a str"})
    assert scores(tmp_path, observations(speedup=section), ("speedup",))["speedup"] == 0


class FakeCollector:
    """Stands in for a Observer: records the order of runs and returns set wall times."""

    def __init__(self, name: str, order: list, walls: dict, workers: int = 2):
        self.name, self.order, self.walls, self.workers = name, order, walls, workers
        self.plan = observe.Plan.draw(0)
        self.cores = None
        self.start_methods: set[str] = set()

    def run(self, function, kwargs, *, wall_seconds, check=True, cpus=None, method=None):
        kind = {"evolve_serial": "serial", "evolve_parallel": "parallel", None: "noop"}[function]
        self.order.append((self.name, kind))
        return self.made(kind, kwargs, self.walls[kind])

    def made(self, kind: str, kwargs: dict, wall: float) -> dict:
        return {
            "kwargs": kwargs,
            "problem": None,
            "best_problem": None,
            "history_problem": None,
            "rules": {},
            "wall": wall,
            "cpu": wall * (1.9 if kind == "parallel" else 1.0),
            "worker_pids": self.workers,
        }

    def observed(self) -> dict:
        """The observed serial and parallel runs, made before timing with the first timed seed."""
        seed = self.plan.timed_seeds[0]
        return {
            "serial": self.made("serial", self.plan.workload(seed), self.walls["serial"]),
            "parallel": self.made("parallel", self.plan.workload(seed, SPEEDUP.processes), self.walls["parallel"]),
        }


def _measure(student: FakeCollector, reference: FakeCollector) -> dict:
    return timing.measure(student, reference, (0, 1), student.observed())


@pytest.mark.parametrize(
    "student_parallel, rounds",
    [(0.55, 1), (0.65, SPEEDUP.repeats), (1.0, SPEEDUP.max_repeats), (1.9, SPEEDUP.repeats)],
)
def test_grader_checks_speedup_rounds_interleave_and_extend(student_parallel, rounds):
    """Rounds alternate; clear full marks stand after one round, a near or failing verdict after the usual rounds,
    one near the no-credit line gets extra rounds; the first round's submission runs are the observed ones."""
    order: list = []
    student = FakeCollector("student", order, {"serial": 1.1, "parallel": student_parallel + 0.1})
    reference = FakeCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1})
    out = _measure(student, reference)
    assert out["rounds"] == rounds
    assert out["reference"]["speedup"] == pytest.approx(1.0 / 0.55)
    assert order[:3] == [("reference", "serial"), ("reference", "parallel"), ("reference", "noop")]
    if rounds > 1:
        assert order[3:5] == [("reference", "noop"), ("reference", "parallel")], "the second round runs backwards"
        assert ("student", "serial") in order[3:8] and ("student", "parallel") in order[3:8]
    assert len(out["student"]["series"]["parallel"]["wall"]) == rounds


class BurstyCollector(FakeCollector):
    """A FakeCollector whose runs of one kind take the given wall times in turn (a burst of other work in some)."""

    def __init__(self, name: str, order: list, walls: dict, bursts: dict):
        super().__init__(name, order, walls)
        self.bursts = {kind: list(times) for kind, times in bursts.items()}

    def run(self, function, kwargs, *, wall_seconds, check=True, cpus=None, method=None):
        kind = {"evolve_serial": "serial", "evolve_parallel": "parallel", None: "noop"}[function]
        self.order.append((self.name, kind))
        times = self.bursts.get(kind)
        return self.made(kind, kwargs, times.pop(0) if times else self.walls[kind])

    def observed(self) -> dict:
        seed = self.plan.timed_seeds[0]
        parallel = self.bursts["parallel"].pop(0)
        return {
            "serial": self.made("serial", self.plan.workload(seed), self.walls["serial"]),
            "parallel": self.made("parallel", self.plan.workload(seed, SPEEDUP.processes), parallel),
        }


def test_grader_checks_speedup_a_burst_of_other_work_costs_nothing():
    """Each run counts at its fastest round: a correct loop slowed by other work in one round keeps full marks,
    a loop that is slow in every round does not."""
    order: list = []
    student = BurstyCollector("student", order, {"serial": 1.1, "parallel": 0.75}, {"parallel": [1.3, 0.75, 0.75]})
    reference = BurstyCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1}, {"serial": [1.6]})
    out = _measure(student, reference)
    assert out["rounds"] == SPEEDUP.repeats, "a round far below credit must not settle the verdict"
    assert out["student"]["speedup"] == pytest.approx(1.0 / 0.65)
    assert out["student"]["speedup"] >= SPEEDUP.full_marks_at(out["reference"]["speedup"])
    assert out["reference"]["speedup"] == pytest.approx(1.0 / 0.55), "the reference's slow serial round counts not"
    order.clear()
    slow = BurstyCollector("student", order, {"serial": 1.1, "parallel": 1.3}, {"parallel": [1.3, 1.25, 1.3]})
    reference = FakeCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1})
    out = _measure(slow, reference)
    assert out["student"]["speedup"] == pytest.approx(1.0 / 1.15)
    assert out["student"]["speedup"] < SPEEDUP.zero_speedup


def test_grader_checks_speedup_observed_runs_of_another_workload_are_not_reused():
    """An observed run whose call differs from the first round's is not taken as its timing."""
    order: list = []
    student = FakeCollector("student", order, {"serial": 1.1, "parallel": 0.65})
    reference = FakeCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1})
    observed = student.observed()
    observed["parallel"]["kwargs"] = {**observed["parallel"]["kwargs"], "processes": 3}
    timing.measure(student, reference, (0, 1), observed)
    assert order[:4] == [
        ("reference", "serial"),
        ("student", "parallel"),
        ("reference", "parallel"),
        ("reference", "noop"),
    ]


def test_grader_checks_speedup_caller_only_run_earns_nothing(tmp_path):
    """A timed evolve_parallel that played in fewer than 2 workers gets no speedup points, whatever was measured."""
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(observations(speedup=speedup_section(1.3, ref=1.6, workers=1))), encoding="utf-8")
    outcomes = scoring.run_checks(path, ("speedup",))
    main = next(o for o in outcomes if o["name"] == "test_speedup_near_reference")
    assert not main["passed"] and main["fraction"] == 0 and "1 worker process(es)" in main["message"]


def test_grader_checks_speedup_rounds_stop_when_no_worker_played():
    """Rounds stop after the first when the student's timed parallel run played without worker processes."""
    order: list = []
    student = FakeCollector("student", order, {"serial": 1.1, "parallel": 1.1}, workers=0)
    reference = FakeCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1})
    assert _measure(student, reference)["rounds"] == 1


def test_grader_checks_speedup_slowed_serial_gains_nothing():
    """A student's serial time longer than the reference's never raises the speedup: the reference's counts."""
    order: list = []
    student = FakeCollector("student", order, {"serial": 3.1, "parallel": 1.1})
    reference = FakeCollector("reference", order, {"serial": 1.1, "parallel": 0.65, "noop": 0.1})
    out = _measure(student, reference)
    assert out["student"]["speedup"] == pytest.approx(1.0)


def test_grader_checks_speedup_busy_cores_without_speedup_earn_nothing(tmp_path):
    """Processes that spin on a lock keep cores busy (CPU ratio 1.9) without a speedup: no points for using cores."""
    path = tmp_path / "observations.json"
    path.write_text(json.dumps(observations(speedup=speedup_section(0.88, ref=1.6, cpu_ratio=1.9))), encoding="utf-8")
    outcomes = {o["name"]: o for o in scoring.run_checks(path, ("speedup",))}
    cores = outcomes["test_speedup_work_runs_in_parallel"]
    assert not cores["passed"] and "no faster than the serial loop" in cores["message"]

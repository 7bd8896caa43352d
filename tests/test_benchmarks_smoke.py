"""Smoke tests of the benchmarks: every benchmark runs end to end on its smallest settings.

The figures themselves are not checked (they depend on the machine); the tables' rows,
the JSON files and the numpy batch evaluation's agreement with ``episode()`` are.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import evolution  # the canonical copy (pytest's pythonpath holds solutions/neuroevolution)
import numpy as np
import pytest

from autograder.batched import batch_returns
from benchmarks import backends, grading, overhead, scaling
from benchmarks.__main__ import main


def flag_reaching_params() -> dict:
    """A hand-made controller that pushes the way the car moves: it reaches the flag, so episodes end early."""
    w1 = np.zeros((2, 10))
    w1[1, :] = 100.0  # hidden units follow the sign of the velocity
    return {"w1": w1, "b1": np.zeros(10), "w2": np.ones((10, 1)), "b2": np.zeros(1)}


def test_batched_env_matches_episode():
    """The numpy batch evaluation gives episode()'s return for every candidate, including ones that reach the flag."""
    rng = np.random.default_rng(3)
    solver = flag_reaching_params()
    population = [solver] + [evolution.sample_params(solver, rng, 0.05) for _ in range(3)]
    population += [evolution.initialize_parameters(2, 10, 1, rng=rng) for _ in range(4)]
    for seed in (0, 17):
        expected = np.array([evolution.episode(p, seed) for p in population])
        got = batch_returns(population, seed, evolution)
        assert expected[0] > 0, "the hand-made controller should reach the flag; the test lost its early-ending case"
        assert np.max(np.abs(got - expected)) <= backends.TOLERANCE, (
            f"batch_returns differs from episode() for seed {seed}: {got} vs {expected}"
        )


def test_scaling_quick_run_has_rows_for_every_process_count(tmp_path):
    """The quick scaling run times the serial loop and 1..N processes and projects the model to 16 cores."""
    settings = scaling.ScalingSettings.quick()
    measured, projection = scaling.run(settings)
    assert measured.row_labels() == ["evolve_serial"] + ["evolve_parallel"] * settings.max_processes
    assert all(row[4] > 0 for row in measured.rows), f"every speedup should be positive: {measured.rows}"
    assert [row[0] for row in projection.rows if "model" in row[0]] == [
        f"{settings.generations * g} gen x {settings.pop_size * f} (model)" for g, f in settings.projections
    ]
    written = json.loads(measured.write_json(tmp_path).read_text())
    assert written["data"]["processes"] == list(range(1, settings.max_processes + 1))


def test_scaling_model_replays_pool_chunks():
    """The model's makespan gives equal tasks to equal workers and waits for the slowest chunk."""
    assert scaling.makespan([1.0] * 8, workers=4, chunksize=1) == pytest.approx(2.0)
    assert scaling.makespan([3.0, 1.0, 1.0, 1.0], workers=2, chunksize=1) == pytest.approx(3.0)
    assert scaling.default_chunksize(32, 16) == 1 and scaling.default_chunksize(64, 2) == 8


def test_backends_quick_run_has_every_backend():
    """The backends table has one row per backend, each agreeing with episode(), joblib skipped when absent."""
    (report,) = backends.run(backends.BackendSettings.quick())
    labels = report.row_labels()
    for prefix in (
        "map (serial)",
        "Pool.map, chunksize default",
        "Pool.map, chunksize 1",
        "Pool.map, chunksize n/p",
        "ProcessPoolExecutor",
        "joblib",
        "ThreadPoolExecutor",
        "AsyncVectorEnv",
        "numpy batch",
    ):
        assert any(label.startswith(prefix) for label in labels), f"no row for {prefix!r} in {labels}"
    for row in report.rows:
        assert row[4] == "exact" or row[4].startswith(("within", "skipped")), (
            f"{row[0]} disagrees with episode(): {row[4]}"
        )
    try:
        import joblib  # noqa: F401
    except ImportError:
        assert any(r[4] == "skipped: joblib not installed" for r in report.rows), "joblib is absent but not reported"


def test_overhead_quick_run_covers_every_task_kind():
    """The overhead table has every task kind at every quick size, with a crossover note per kind."""
    settings = overhead.OverheadSettings.quick()
    (report,) = overhead.run(settings)
    sizes = len(settings.sleep_seconds) + len(settings.compute_loops) + len(settings.episode_steps)
    assert len(report.rows) == sizes
    assert {row[0] for row in report.rows} == {"sleep", "compute", "episode"}
    assert sum(note.startswith(("sleep:", "compute:", "episode:")) for note in report.notes) == 3


def test_overhead_crossover_interpolates_on_log_scale():
    """The crossover lies between the last losing and the first winning task cost."""
    assert overhead.crossover([(1e-6, 0.1), (1e-4, 0.5), (1e-2, 2.0)]) == pytest.approx(10 ** (-4 + 2 * 1 / 3))
    assert np.isnan(overhead.crossover([(1e-6, 0.1), (1e-3, 0.9)]))


def test_grading_skips_without_submissions(tmp_path):
    """With nothing to grade the grading benchmark says it skipped, instead of failing."""
    (report,) = grading.run(grading.GradingSettings(submitted=tmp_path / "nothing"))
    assert report.rows[0][2] == grading.SKIPPED


def test_grading_times_each_category_from_results(tmp_path):
    """The grader's extra_data.category_seconds are reported per category, and the whole run per submission."""
    for student in ("ann", "bob"):
        folder = tmp_path / "submitted" / student / "neuroevolution"
        folder.mkdir(parents=True)
        (folder / "neuroevolution.ipynb").write_text("{}")
    fake = tmp_path / "fake_grader.py"
    fake.write_text(
        textwrap.dedent("""
        import json, pathlib, sys
        if "--help" in sys.argv:
            raise SystemExit(0)
        submitted = pathlib.Path(sys.argv[sys.argv.index("--submitted") + 1])
        output = pathlib.Path(sys.argv[sys.argv.index("--output") + 1])
        for student in submitted.iterdir():
            tests = [{"name": "a", "tags": ["serial"], "execution_time": 9.0}]  # per-test times are not read
            extra = {"category_seconds": {"serial": 2.0, "agent": 4.0}}
            (output / student.name).mkdir(parents=True)
            (output / student.name / "results.json").write_text(
                json.dumps({"score": 1, "tests": tests, "extra_data": extra}))
    """)
    )
    settings = grading.GradingSettings(submitted=tmp_path / "submitted", command=[sys.executable, str(fake)])
    (report,) = grading.run(settings)
    rows = {row[1]: row for row in report.rows if row[0] == "this"}
    assert rows["serial"][2] == pytest.approx(2.0) and rows["agent"][2] == pytest.approx(4.0)
    assert rows["whole run / submission"][4] == 2
    assert any("200 students" in note for note in report.notes), report.notes


def test_cli_quick_writes_json_and_plot(tmp_path, capsys):
    """`python -m benchmarks --quick --only overhead` prints the table and writes its JSON and plot."""
    assert main(["--quick", "--only", "overhead", "--out", str(tmp_path / "out"), "--plots", str(tmp_path)]) == 0
    assert "Pool.map" in capsys.readouterr().out
    assert (tmp_path / "out" / "overhead.json").is_file() and (tmp_path / "overhead.png").stat().st_size > 0


def test_grading_overrunning_grader_is_stopped_with_sigterm_first(tmp_path):
    """A grader past its time is sent SIGTERM (so that it can release its scratch folder), not killed outright."""
    stopped = tmp_path / "stopped"
    slow = textwrap.dedent(
        f"""
        import signal, sys, time
        def stop(signum, frame):
            open({str(stopped)!r}, "w").write("SIGTERM")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    with pytest.raises(subprocess.TimeoutExpired):
        grading._run_grader([sys.executable, "-c", slow], tmp_path, timeout=2)
    assert stopped.read_text() == "SIGTERM"


def test_cli_rejects_unknown_benchmark(capsys):
    """A misspelt --only name is refused with the list of valid names."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--only", "scalling"])
    assert exit_info.value.code == 2
    assert "choose from scaling,backends,overhead,grading" in capsys.readouterr().err


def test_under_load_report_names_every_missed_target():
    """The busy-machine benchmark finds its entries in the corpus and names each target a run missed."""
    from benchmarks import under_load

    assert set(under_load.sources()) == {*under_load.CORRECT, *under_load.NOT_PARALLEL}

    def run(busy: bool, seconds: float, correct: float, turns: float) -> dict:
        entries = {
            "reference": {"points": correct, "verdict": "not judged"},
            "lock_turn_taking_workers": {"points": turns},
        }
        return {"round": 0, "jobs": 1, "busy_core": busy, "seconds_per_submission": seconds, "entries": entries}

    text = under_load.report([run(False, 10.0, 15.0, 0.0), run(True, 16.0, 9.0, 2.0)])
    assert "below 75% of the points with a core busy: reference 9" in text
    assert "paid with a core busy: lock_turn_taking_workers 2" in text and "1.60x" in text

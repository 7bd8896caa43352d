"""The student's feedback page, made from a hand-written results.json, and `feedback` staging for nbgrader."""

from __future__ import annotations

import html
import re
import subprocess
import sys
import zipfile

import numpy as np

from autograder import cli, paths
from autograder.term import feedback

STUB = (
    "evolve_serial still raises NotImplementedError: replace the `raise NotImplementedError()` line\n"
    'File "/tmp/neuroevo-grade-1a2b/work/submission.py", line 12, in evolve_serial\n'
    'File "/work/course/autograder/harness/__main__.py", line 40, in run'
)


def case(name, category, passed, output="passed", visibility="visible", points=5.0):
    return {
        "name": name,
        "score": points if passed else 0.0,
        "max_score": points,
        "status": "passed" if passed else "failed",
        "output": output,
        "tags": [category],
        "visibility": visibility,
    }


def doc(agent: bool = False) -> dict:
    rng = np.random.default_rng(3)
    params = {
        "w1": rng.normal(size=(2, 10)).tolist(),
        "b1": rng.normal(size=10).tolist(),
        "w2": rng.normal(size=(10, 1)).tolist(),
        "b2": rng.normal(size=1).tolist(),
    }
    tests = [
        case("test_serial_shapes: evolve_serial returns (best_params, history).", "serial", False, STUB),
        case("test_serial_one_episode_per_candidate", "serial", False, STUB),
        case("test_serial_hidden_centre: Secret centring check.", "serial", False, STUB, "after_published"),
        case("test_determinism_same_seed: Same seed, same result.", "determinism", False, STUB),
        case("test_parallel_uses_workers: Episodes run in worker processes.", "parallel", True),
        case(
            "test_speedup_near_reference: About as fast as the reference.",
            "speedup",
            False,
            "speedup 0.96x with 2 workers\nspeedup 0.96x with 2 workers\nspeedup 0.96x with 2 workers",
        ),
    ]
    return {
        "score": 5.0,
        "tests": tests,
        "extra_data": {
            "student_id": "s123",
            "timestamp": "2025-03-01 12:00:00.000000 UTC",
            "timing": {
                "student": {"serial_seconds": 2.1, "parallel_seconds": 2.2, "speedup": 0.96},
                "reference": {"serial_seconds": 2.0, "parallel_seconds": 1.1, "speedup": 1.2},
                "inconclusive": "the reference reached only 1.20x at /tmp/neuroevo-reference-x/work",
                "rounds": 5,
            },
            "fitness": {"history": [[float(g + i) for i in range(8)] for g in range(6)], "label": "your best run"},
            "agent_params": params if agent else None,
        },
    }


def visible_text(page: str) -> str:
    """The page without embedded images and markup."""
    text = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", page)
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).replace(" .", "."))


def test_feedback_page_is_for_students():
    """No absolute paths or grader internals; readable titles; failures first; one message per repeat."""
    page = feedback.page(doc(), agent=False)
    text = visible_text(page)
    for internal in ("/tmp/", "/work/", "autograder", "harness", "neuroevo-grade", "observations"):
        assert internal not in text, f"the page shows {internal!r}"
    assert 'File "submission.py", line 12' in text, "the student's own line reference was lost"
    assert "test_serial" not in text and "test_determinism" not in text, "raw pytest names as titles"
    assert "Same seed, same result." in text and "One episode per candidate" in text
    assert text.count("still raises NotImplementedError") == 1, "a repeated message was not collapsed"
    assert "3 tests failed with the same message" in text
    assert text.index("What to fix") < text.index("What passed") < text.index("Episodes run in worker processes")
    assert "speedup 0.96x with 2 workers (× 3)" in text, "repeated lines of one message were not collapsed"


def test_feedback_page_hides_after_published_tests_unless_publish():
    """after_published tests are left out (and counted) until --publish."""
    hidden = visible_text(feedback.page(doc(), agent=False))
    assert "Secret centring check" not in hidden and "1 more test will be shown" in hidden
    published = visible_text(feedback.page(doc(), publish=True, agent=False))
    assert "Secret centring check" in published and "more test" not in published


def test_feedback_page_shows_timings_fitness_and_the_agent():
    """The student's speedup is shown even when inconclusive, with a chart beside the reference's; the fitness
    curve and frames of the trained agent are embedded."""
    page = feedback.page(doc(agent=True))
    text = visible_text(page)
    assert "Your speedup: 0.96×" in text and "1.20×" in text and "inconclusive: the reference reached" in text
    assert "alt='serial and parallel seconds, yours beside the reference'" in page
    assert "alt='best and mean return per generation'" in page
    assert "data:image/gif;base64," in page and "alt='the car, six moments of one episode'" in page
    assert "return " in text and "90 or more counts as solved" in text


def test_feedback_page_degrades_without_extras():
    """A results.json with only tests (older grader, failed runs) still gives a page, without the pictures."""
    bare = doc()
    bare["extra_data"] = {}
    page = feedback.page(bare)
    assert "<img" not in page and "What to fix" in page


def test_feedback_stage_for_nbgrader_release_feedback_and_zips(tmp_path, capsys):
    """`feedback` writes nbgrader's feedback/ layout for exchange submissions (and `nbgrader release_feedback`
    accepts it as is) and one zip per student for everyone."""
    course, output, exchange = tmp_path / "course", tmp_path / "course" / "grades", tmp_path / "exchange"
    for student in ("ex1", "lms1"):
        (output / student).mkdir(parents=True)
        page = doc()
        page["extra_data"]["student_id"] = student
        (output / student / "results.json").write_text(__import__("json").dumps(page))
        (output / student / "observations.json").write_text("{}")
        folder = course / "submitted" / student / paths.ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text("2025-03-01 12:00:00.000000 UTC")
    (course / "submitted" / "ex1" / paths.ASSIGNMENT / "submission_secret.txt").write_text("s3cret")
    status = cli.main(
        [
            "feedback",
            "--output",
            str(output),
            "--submitted",
            str(course / "submitted"),
            "--feedback-dir",
            str(course / "feedback"),
            "--zips",
            str(tmp_path / "zips"),
            "--no-agent",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    staged = course / "feedback" / "ex1" / paths.ASSIGNMENT
    assert sorted(p.name for p in staged.iterdir()) == [
        f"{paths.ASSIGNMENT}.html",
        "submission_secret.txt",
        "timestamp.txt",
    ]
    assert not (course / "feedback" / "lms1").exists()
    for student in ("ex1", "lms1"):
        with zipfile.ZipFile(tmp_path / "zips" / f"{student}.zip") as zf:
            assert zf.namelist() == [f"{paths.ASSIGNMENT}-feedback.html"], "a zip holds more than the page"
    assert "2 feedback zip(s)" in out and "1 page(s)" in out, out

    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's exchange root is shared by everyone on the machine
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            "release_feedback",
            paths.ASSIGNMENT,
            "--course",
            "course",
            f"--Exchange.root={exchange}",
            f"--CourseDirectory.root={course}",
        ],
        cwd=course,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    from nbgrader.utils import notebook_hash

    released = exchange / "course" / "feedback" / f"{notebook_hash(secret='s3cret', notebook_id=paths.ASSIGNMENT)}.html"
    assert released.is_file(), f"nbgrader did not release the page: {done.stderr[-1500:]}"
    assert released.read_text() == (staged / f"{paths.ASSIGNMENT}.html").read_text()


def test_feedback_with_nothing_graded_is_one_line(tmp_path, capsys):
    """No results yet: status 2 and one line saying to grade first."""
    assert cli.main(["feedback", "--output", str(tmp_path / "none"), "--zips", str(tmp_path / "z")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make grade" in err, err


def test_feedback_unpublished_page_shows_the_exports_total():
    """Before grades are published the page's total is the one every export shows (score out of the assignment's
    maximum), the held-back tests' points on a labelled row of their own, a late penalty on another, never a
    second denominator."""
    late = doc()
    late["score"], late["extra_data"]["raw_score"] = 4.0, 5.0
    late["extra_data"]["late"] = {
        "status": "late",
        "penalty": 1.0,
        "headline": "late by 1 d 3 h: -1 points (20%)",
        "due": "2025-02-28 23:59:00.000000 UTC",
    }
    maximum = sum(t["max_score"] for t in late["tests"])
    for publish in (False, True):
        text = visible_text(feedback.page(late, publish=publish, agent=False))
        assert f"Total 4/{maximum:g}" in text and "so far" not in text, text
        assert "Late penalty: late by 1 d 3 h: -1 points (20%) −1" in text, text
        assert ("Tests shown when grades are published (1) 0/5" in text) is not publish, text
        assert "late by 1 d 3 h: -1 points (20%) (due 2025-02-28 23:59:00.000000 UTC)" in text, text


def test_feedback_page_shows_the_speedup_interval_evidence_and_who_played_when():
    """The speedup's spread over the rounds, the evidence of parallel work and a per-process timeline of one
    generation (the student's beside the reference's) are on the page."""
    timed = doc(agent=False)
    timing = timed["extra_data"]["timing"]
    timing["student"]["interval"] = [0.9, 1.02]
    timing["judgement"] = {"verdict": "not judged", "concurrency": 1.0, "reference_concurrency": 1.86}
    row = {"caller": False, "backing": 1.0}
    timing["timeline"] = {
        "student": {
            "generation": 1,
            "processes": [{**row, "episodes": [[0, 4], [8, 12]]}, {**row, "episodes": [[4, 8]]}],
        },
        "reference": {"generation": 1, "processes": [{**row, "episodes": [[0, 4]]}, {**row, "episodes": [[0, 4]]}]},
    }
    page = feedback.page(timed, agent=False)
    text = visible_text(page)
    assert "0.90–1.02× from round to round" in text and "on average 1.00 of your processes" in text
    assert "the reference's 1.86" in text
    assert "alt='episodes of one generation per process over time'" in page

"""The class report (``python -m autograder report``) on a hand-made class: no grading run.

The class's results.json are written by the grader's own writer (``results.build``) from made-up
check outcomes; its notebooks hold real solutions (``tests/corpus/similar/``), one of them a
renamed, recommented and reformatted copy of another.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder import cli, demo, extract, results
from autograder.categories import POINTS
from autograder.term import report, similarity

SIMILAR = Path(__file__).parent / "corpus" / "similar"
HOSTILE_ID = "<img src=x onerror=alert(1)>"
SCRIPT = "</pre><script>alert('x')</script>"

# (category, check, docstring, points, hidden): the points add up to each category's share.
CHECKS = [
    ("serial", "test_serial_history_shape", "history holds one list of returns per generation", 10, False),
    ("serial", "test_serial_selects_best", "the best candidate of the last generation is returned", 15, False),
    ("parallel", "test_parallel_uses_pool", "evolve_parallel tests each generation in worker processes", 20, False),
    ("determinism", "test_determinism_same_everywhere", "both loops return identical results", 20, False),
    ("speedup", "test_speedup_near_reference", "evolve_parallel beats the reference's serial loop", 15, False),
    ("agent", "test_agent_training_returns_parameters", "a training run returns its best candidate", 4, False),
    ("agent", "test_agent_solves_heldout_start_states", "the agent solves held-out start states", 16, True),
]
NO_POOL = "evolve_parallel played every episode in the calling process: test each generation with pool.map"
NO_POOL_OTHER = "evolve_parallel started no worker process at all"
STUB = "evolve_serial raised NotImplementedError: replace the stub's raise with your loop"


def _timing(mine: float, ref: float, inconclusive: str | None = None) -> dict:
    return {
        "student": {"serial_seconds": 4.0, "parallel_seconds": 4.0 / mine, "speedup": mine},
        "reference": {"serial_seconds": 3.8, "parallel_seconds": 3.8 / ref, "speedup": ref},
        "inconclusive": inconclusive,
        "rounds": 3,
    }


def _results(student: str, failed: dict[str, str], **extra) -> dict:
    scored = [
        {
            "name": name,
            "doc": doc,
            "category": category,
            "score": 0.0 if name in failed else float(points),
            "max_score": float(points),
            "passed": name not in failed,
            "message": failed.get(name, ""),
            "hidden": hidden,
        }
        for category, name, doc, points, hidden in CHECKS
    ]
    return results.build(scored, {"student_id": student, "categories": list(POINTS), **extra}, {})


def _write(output: Path, submitted: Path, student: str, doc: dict | None, code: str | None, agent: float | None):
    if doc is not None:
        results.write_atomic(output / student / "results.json", json.dumps(doc))
    if agent is not None:
        observed = {"agent": {"best": {"heldout_mean": agent}, "attempts": [{"heldout_mean": agent}]}}
        results.write_atomic(output / student / "observations.json", json.dumps(observed))
    if code is not None:
        demo.write_submission(submitted, student, demo.with_solution(code))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A class of nine, its report written by the command: (output folder, the command's exit status, its page)."""
    root = tmp_path_factory.mktemp("class")
    output, submitted = root / "grades", root / "submitted"
    copy = (SIMILAR / "renamed_copy.py").read_text() + f"\n# {SCRIPT}\n"
    late = {"penalty": 10, "late_by": "1 day, 2 hours", "policy": "10 points a day"}
    fail_pool, fail_other = {"test_parallel_uses_pool": NO_POOL}, {"test_parallel_uses_pool": NO_POOL_OTHER}
    hidden_fail = {"test_agent_solves_heldout_start_states": "mean return 41.0 on 10 held-out start states"}
    busy = "the reference itself sped up only 1.05x (a busy machine)"
    stub_failures = {name: STUB for _, name, _, _, _ in CHECKS}
    students = {
        "alice": (_results("alice", {}, timing=_timing(1.7, 1.9)), (SIMILAR / "original.py").read_text(), 93.5),
        "mallory": (_results("mallory", {}, timing=_timing(1.8, 1.9), late=late), copy, 92.0),
        "bob": (
            _results("bob", fail_pool, timing=_timing(1.0, 1.05, busy)),
            (SIMILAR / "numpy_style.py").read_text(),
            80.0,
        ),
        "carol": (
            _results("carol", {**fail_other, **hidden_fail}, timing=_timing(1.1, 1.8)),
            (SIMILAR / "keyed.py").read_text(),
            41.0,
        ),
        "dave": (_results("dave", {}, timing=_timing(1.85, 1.9)), demo.reference_source(), 95.0),
        "erin": (
            _results("erin", fail_pool, timing=_timing(1.0, 1.9), grading_key="0" * 64),
            demo.DEMO_PARTLY_WRONG.lstrip(),
            90.0,
        ),
        "frank": (None, demo.reference_source(), None),  # submitted, never graded
        "gina": (_results("gina", stub_failures), None, None),
        HOSTILE_ID: (_results(HOSTILE_ID, {"test_serial_selects_best": SCRIPT}, timing=_timing(1.6, 1.9)), None, None),
    }
    for student, (doc, code, agent) in students.items():
        _write(output, submitted, student, doc, code, agent)
    status = cli.main(["report", "--output", str(output), "--submitted", str(submitted)])
    return output, status, (output / report.NAME).read_text(encoding="utf-8")


def _section(page: str, heading: str) -> str:
    """The page from the h2 containing ``heading`` to the next h2."""
    start = page.index(heading)
    end = page.find("<h2>", start + 1)
    return page[start : end if end != -1 else len(page)]


def _rows(html_table: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", html_table, flags=re.S)


def _stubs() -> str:
    """The solution cells as students get them."""
    return "\n\n".join(extract.cells_by_grade_id(demo.release_notebook(), extract.STUB_IDS).cells.values())


def test_similarity_renamed_copy_ranked_first():
    """A renamed, recommented, reformatted copy is the most similar pair; independent solutions stay below the threshold."""
    given = similarity.given_hashes(_stubs())
    codes = [similarity.fingerprint(p.stem, p.read_text(), given) for p in sorted(SIMILAR.glob("*.py"))]
    pairs = similarity.ranked_pairs(codes)
    first = pairs[0]
    assert {first.first.student, first.second.student} == {"original", "renamed_copy"}
    assert first.similarity >= 0.95
    assert first.only_here > 0.5, "the copied code is found in no third submission"
    for pair in pairs[1:]:
        assert pair.similarity < similarity.THRESHOLD, (pair.first.student, pair.second.student, pair.similarity)


def test_similarity_ignores_given_code_names_and_comments():
    """An untouched stub has nothing to compare, and a copy differing only in names, comments and layout is identical."""
    given = similarity.given_hashes(_stubs())
    assert not similarity.fingerprint("stub", _stubs(), given).comparable
    source = (SIMILAR / "numpy_style.py").read_text()
    renamed = re.sub(r"\bfitness\b", "scores", re.sub(r"\blog\b", "record", source))
    restyled = renamed.replace("    ", "  ").replace('"""Parallel evolution."""', "# parallel, as asked")
    a, b = similarity.normalise(source), similarity.normalise(restyled)
    assert [t.text for t in a] == [t.text for t in b]


def test_report_command_writes_self_contained_page(made):
    """report exits 0 and writes one page with every picture inline that fetches nothing and runs nothing."""
    _, status, page = made
    assert status == 0
    assert page.count("src='data:image/png;base64,") == 4  # scores, speedup, agent returns, similarity
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"<script|<link|<iframe|(src|href)=['\"]?(https?:)?//", page, flags=re.I)


def test_report_escapes_everything_students_wrote(made):
    """A student id, a message and code carrying HTML show as text, never as markup."""
    _, _, page = made
    assert HOSTILE_ID not in page and "<script" not in page.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_report_similar_pair_ranked_first_side_by_side(made):
    """Under a 'similar' heading, the renamed copy and its original are pair #1, shown side by side."""
    _, _, page = made
    section = _section(page, "<h2>Similar submissions")
    assert "similar" in section[: section.index("</h2>")].lower()
    assert "Threshold: 80%" in section
    first = next(row for row in _rows(section) if "<td class=num>1</td>" in row)
    assert "alice" in first and "mallory" in first
    assert section.index("<summary><b>#1</b> alice and mallory") < section.index("<summary><b>#2</b>")
    side_by_side = section[section.index("<summary><b>#1</b>") : section.index("<summary><b>#2</b>")]
    assert "gen = np.random.default_rng(seed)" in side_by_side  # alice's own names
    assert "random_gen = np.random.default_rng(seed)" in side_by_side  # mallory's
    assert "class=same" in side_by_side


def test_report_failure_table_most_common_first(made):
    """Each failing check once, most common first, with how many students, which, and their most common message."""
    _, _, page = made
    rows = _rows(_section(page, "<h2>Failing checks"))[1:]
    first = rows[0]
    assert "evolve_parallel tests each generation in worker processes" in first
    assert re.search(r"<td class=num>4 ", first)
    assert all(name in first for name in ("bob", "carol", "erin", "gina"))
    assert f"<pre>{NO_POOL[:60]}" in first.replace("&#x27;", "'")
    assert "2 other wording(s)" in first and NO_POOL_OTHER in first and STUB in first.replace("&#x27;", "'")
    agent = next(row for row in rows if "held-out start states" in row)
    assert re.search(r"<td class=num>2 ", agent) and "hidden until published" in agent
    counts = [int(re.search(r"<td class=num>(\d+) ", row).group(1)) for row in rows]
    assert counts == sorted(counts, reverse=True)


def test_report_lists_who_needs_a_look_and_late_work(made):
    """Not graded, out of date, timing not judged and scored 0 are listed with what to do; the late penalty shows."""
    _, _, page = made
    looks = {}
    for row in _rows(_section(page, "<h2>Needs a look"))[1:]:
        kind, who = re.findall(r"<td(?: class=\w+)?>(.*?)</td>", row, flags=re.S)[0:3:2]
        looks[kind] = who
    assert set(looks) == {"not graded", "out of date", "timing not judged", "scored 0"}
    assert looks["not graded"] == "frank" and looks["out of date"] == "erin" and looks["scored 0"] == "gina"
    assert looks["timing not judged"].startswith("bob<details>")
    assert "15/15 awarded: the reference itself sped up only 1.05x" in looks["timing not judged"]
    assert "--force --student bob" in _section(page, "<h2>Needs a look")
    late = _rows(_section(page, "<h2>Late submissions"))[1:]
    assert len(late) == 1 and "mallory" in late[0] and "−10" in late[0] and "1 day, 2 hours" in late[0]


def test_report_cli_refuses_bad_input_in_one_line(tmp_path, capsys):
    """Nothing graded, a missing submitted folder or a bad threshold: status 2 and one line saying what to do."""
    (tmp_path / "grades").mkdir()
    assert cli.main(["report", "--output", str(tmp_path / "grades"), "--submitted", str(tmp_path)]) == 2
    assert "no graded results" in capsys.readouterr().err
    assert cli.main(["report", "--output", str(tmp_path / "grades"), "--submitted", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--submitted" in err
    with pytest.raises(SystemExit) as stopped:
        cli.main(["report", "--output", str(tmp_path / "grades"), "--threshold", "2"])
    assert stopped.value.code == 2


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def test_report_renders_in_headless_chromium(made, tmp_path):
    """Headless Chromium draws the page from disk: the screenshot is not blank and shows the charts' colour."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium): the page was only checked as text")
    import numpy as np
    from PIL import Image

    output, _, _ = made
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--hide-scrollbars",
            "--window-size=1280,2600",
            f"--screenshot={shot}",
            (output / report.NAME).resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=int).reshape(-1, 3)
    inked = float((pixels.min(axis=1) < 200).mean())
    chart = np.array([int(report.CHART[i : i + 2], 16) for i in (1, 3, 5)])
    bars = int((np.abs(pixels - chart).max(axis=1) <= 12).sum())
    assert inked > 0.03, f"only {inked:.1%} of the screenshot is drawn on"
    assert bars > 2000, f"only {bars} pixels of the charts' colour: the pictures did not render"


def test_report_looks_group_stale_class_and_roster():
    """A class graded by another grader is one 'out of date' line for all; graded ids missing from the roster show."""
    students = [report.Student(s, _results(s, {}, timing=_timing(1.7, 1.9)), stale=True) for s in ("ann", "ben")]
    looks = report.needs_a_look(students, roster_ids={"ann"})
    assert [(look.kind, look.who) for look in looks] == [
        ("out of date", ("ann", "ben")),
        ("not in the roster", ("ben",)),
    ]
    assert report.flagged(looks) == {"ann", "ben"}


def test_report_roster_found_through_any_id_column(tmp_path):
    """The report's roster check finds students through whichever column holds their collected id (an SID for
    one, an email for another), as the LMS upload does; a graded id no row holds is left out."""
    from types import SimpleNamespace

    roster = tmp_path / "roster.csv"
    roster.write_text("Student,SIS User ID,Email\nAnn,s1,ann@uni.edu\nBen,,Ben@Uni.edu\n", encoding="utf-8")
    students = [SimpleNamespace(id=i) for i in ("s1", "ben@uni.edu", "zed")]
    assert report._roster_ids(roster, None, students) == {"s1", "ben@uni.edu"}


def test_report_shows_the_course_late_policy_in_words(tmp_path):
    """A penalty the course's late policy applied (term/late.py) is a row of the late section: the penalty, the
    score after it and how late, in words; an on-time submission is not listed."""
    from autograder.term import late

    output, submitted = tmp_path / "grades", tmp_path / "submitted"
    policy = late.LatePolicy(duedate="2025-03-14 23:59 UTC", penalty_per_day=0.1)
    for student, stamp in (("ann", "2025-03-14 20:00:00.000000 UTC"), ("bob", "2025-03-16 02:00:00.000000 UTC")):
        folder = submitted / student / "neuroevolution"
        folder.mkdir(parents=True)
        (folder / "timestamp.txt").write_text(stamp)
        doc = _results(student, {})
        late.apply(doc, policy, student, folder)
        results.write_atomic(output / student / "results.json", json.dumps(doc))
    report.run(output, None)
    rows = _rows(_section((output / report.NAME).read_text(encoding="utf-8"), "<h2>Late submissions"))[1:]
    assert len(rows) == 1 and "bob" in rows[0] and "−20" in rows[0] and ">80<" in rows[0], rows
    assert "late by 1 d 2 h: -20 points (20%)" in rows[0] and "due 2025-03-14 23:59:00.000000 UTC" in rows[0], rows

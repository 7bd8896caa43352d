"""The class report: one self-contained page for the instructor, made from the graded results.

``python -m autograder report --output OUTPUT [--submitted DIR]`` (``make report``) writes
``OUTPUT/report.html`` from every ``OUTPUT/<student>/results.json`` (the held-out agent returns
come from ``observations.json`` beside it) and the submitted notebooks' solution cells: who needs
a look, the score histograms, the failing checks most common first, each speedup against the
reference's measured beside it, the agent returns, near-identical submissions side by side
(``similarity.py``), and late submissions. Pictures are inline PNGs and a Content Security Policy
lets the page load nothing and run nothing, so it opens from disk anywhere. Everything a student
wrote (folder names, code, the messages about their code) is escaped.
"""

from __future__ import annotations

import html
import json
import shlex
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from autograder import extract, paths, speedup_judge
from autograder.categories import ALL, CATEGORIES, POINTS, TOTAL, title
from autograder.config import AGENT
from autograder.results import read_results, write_atomic
from autograder.term import feedback, similarity

NAME = "report.html"
CHART = "#2f6db5"
"""The colour of every chart's bars and points (and nothing else on the page: the browser test looks for it)."""
ALERT = "#c8553d"
MUTED = "#8a94a3"
MAX_MESSAGE = 1500
"""Characters of one failure message shown (a flood of output stays readable)."""
MAX_CODE_LINES = 400
"""Lines of one side's code shown in a similar pair."""
MAX_PAIRS_SHOWN = 30
"""Similar pairs shown side by side."""
MAX_PAIRS_LISTED = 100
"""Similar pairs listed in the table (a class whose hints lead to one solution can have thousands)."""
MAX_LABELLED = 30
"""Up to this many students, each point of the speedup chart carries its student's id."""


class ReportError(Exception):
    """The report cannot be made; the message says what to do."""


@dataclass
class Student:
    """What the report knows about one student."""

    id: str
    results: dict | None = None
    agent: dict | None = None
    """The ``agent`` section of observations.json: training runs and their held-out returns."""
    problem: str | None = None
    """Why there are no usable results."""
    unreadable: bool = False
    """There is a results.json, but not one the grader wrote."""
    stale: bool = False
    """results.json was graded from another notebook or grader than the current ones."""
    code: similarity.Code | None = None

    @property
    def extra(self) -> dict:
        extra = (self.results or {}).get("extra_data")
        return extra if isinstance(extra, dict) else {}

    @property
    def tests(self) -> list[dict]:
        return [t for t in (self.results or {}).get("tests") or [] if isinstance(t, dict)]

    @property
    def score(self) -> float | None:
        return feedback.finite_number((self.results or {}).get("score"))

    @property
    def graded_categories(self) -> list[str]:
        named = self.extra.get("categories")
        if isinstance(named, list):
            return [c for c in CATEGORIES if c in named]
        return [c for c in CATEGORIES if any((t.get("tags") or [None])[0] == c for t in self.tests)]

    def part(self, category: str) -> float | None:
        scores = self.extra.get("category_scores")
        if isinstance(scores, dict) and category in scores:
            return feedback.finite_number(scores[category])
        mine = [t for t in self.tests if (t.get("tags") or [None])[0] == category]
        return sum(feedback.finite_number(t.get("score")) or 0.0 for t in mine) if mine else None

    @property
    def timing(self) -> dict:
        timing = self.extra.get("timing")
        return timing if isinstance(timing, dict) else {}

    @property
    def heldout_return(self) -> float | None:
        best = (self.agent or {}).get("best")
        return feedback.finite_number(best.get("heldout_mean")) if isinstance(best, dict) else None

    @property
    def late(self) -> dict | None:
        """The late policy's verdict, if the results carry one and it says the work was late."""
        late = self.extra.get("late")
        if not late:
            return None
        late = late if isinstance(late, dict) else {"late": late}
        penalty = _penalty(late)
        lateness = [feedback.finite_number(late.get(k)) for k in ("seconds", "hours", "days", "days_late")]
        said = late.get("late", None)
        if penalty or any(v and v > 0 for v in lateness) or late.get("late_by") or (said is not None and said):
            return late
        return None


def _penalty(late: dict) -> float | None:
    for key in ("penalty", "late_submission_penalty", "points"):
        value = feedback.finite_number(late.get(key))
        if value is not None:
            return abs(value)
    return None


@dataclass
class Look:
    """One reason a student needs the instructor's attention."""

    student: str
    kind: str
    """One of ``ACTIONS``."""
    why: str
    """The cause, worded alike for every student it applies to: the page shows one row per kind and cause."""
    note: str = ""
    """This student's own detail."""
    covers: tuple[str, ...] = ()
    """The students it is about, when ``student`` names a group ("all 30 graded")."""

    @property
    def who(self) -> tuple[str, ...]:
        return self.covers or (self.student,)


def flagged(looks: list[Look]) -> set[str]:
    """Every student some look is about."""
    return {student for look in looks for student in look.who}


ACTIONS = {
    "not graded": "`make grade`: it grades whoever has no results yet",
    "unreadable results": "grade them again: `{regrade}`",
    "out of date": "`make grade`: it regrades exactly these",
    "partly graded": "`make grade` without --categories",
    "timing not judged": "grade them again on a quiet machine: `{regrade}`",
    "timing not measured": "grade them again: `{regrade}`",
    "scored 0": "open their feedback page: often an empty notebook or the wrong file",
    "not in the roster": "check the id each was collected under (or pass --id-column)",
}
"""What to do about each kind of look, in the order the page lists them; ``{regrade}`` is the command for those
students."""


@dataclass
class Report:
    """What was written, for the command's closing line."""

    path: Path
    students: int
    graded: int
    looks: int
    similar: int
    threshold: float

    def describe(self) -> str:
        return (
            f"wrote {self.path}: {self.students} students, {self.graded} graded, {self.looks} need a look, "
            f"{self.similar} similar pair(s) at or above {self.threshold:.0%}"
        )


# --- gathering ------------------------------------------------------------------------------


def gather(output: Path, submitted: Path | None) -> list[Student]:
    """Every student with a folder in ``output`` or ``submitted``, with what each holds."""
    from autograder import batch  # the grader's own rule for which folders are students

    names = {p.name for p in Path(output).iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")}
    if submitted is not None:
        names |= set(batch.survey(submitted).students)
    students = []
    for name in sorted(names):
        student = Student(name)
        folder = Path(output) / name
        path = folder / "results.json"
        if path.is_file():
            student.results = read_results(path)
            if student.results is None:
                student.problem = "results.json cannot be read"
                student.unreadable = True
        elif submitted is not None and (Path(submitted) / name).is_dir():
            student.problem = "no results.json: a grader error, or a batch stopped before them"
        else:
            continue  # an output folder that is no student's (nothing graded in it, no submission)
        student.agent = _read_agent(folder / "observations.json")
        if submitted is not None and student.results is not None:
            student.stale = _stale(student, Path(submitted))
        students.append(student)
    return students


def _read_agent(path: Path) -> dict | None:
    """The agent section of a student's observations.json, if it has one."""
    try:
        agent = json.loads(path.read_text(encoding="utf-8")).get("agent")
    except (OSError, ValueError, AttributeError):
        return None
    return agent if isinstance(agent, dict) else None


def _stale(student: Student, submitted: Path) -> bool:
    """results.json records a grading key, and the notebook or grader it would be graded with now gives another."""
    from autograder import batch, grade

    key = student.extra.get("grading_key")
    if not isinstance(key, str) or not (submitted / student.id).is_dir():
        return False
    notebook, _ = batch.notebook_for(submitted, student.id)
    return key != grade.grading_key(notebook, tuple(student.graded_categories))


def read_code(students: list[Student], submitted: Path) -> None:
    """Fingerprint each student's solution cells (the release's stubs subtracted)."""
    from autograder import batch, demo

    stubs = extract.cells_by_grade_id(demo.release_notebook(), extract.STUB_IDS, strict=False).cells
    given = similarity.given_hashes("\n\n".join(stubs.values()))
    for student in students:
        if not (submitted / student.id).is_dir():
            continue
        notebook, _ = batch.notebook_for(submitted, student.id)
        try:
            cells = extract.cells_by_grade_id(extract.read_notebook(notebook), extract.STUB_IDS, strict=False).cells
        except extract.NotebookError:
            continue  # its results say why it could not be graded
        source = "\n\n".join(cells[gid] for gid in extract.STUB_IDS if gid in cells)
        student.code = similarity.fingerprint(student.id, source, given)


def needs_a_look(students: list[Student], roster_ids: set[str] | None = None) -> list[Look]:
    """Every reason a student's grade may be wrong, missing or worth a second look."""
    looks = []
    speedup_points = POINTS.get("speedup", 0)
    graded = [s for s in students if s.results is not None]
    everyone_stale = len(graded) > 1 and all(s.stale for s in graded)
    if everyone_stale:  # the grader changed (or every notebook was collected again): one line, not one per student
        looks.append(
            Look(
                f"all {len(graded)} graded",
                "out of date",
                "the grader or its settings changed since",
                covers=tuple(s.id for s in graded),
            )
        )
    for s in students:
        if s.problem:
            looks.append(Look(s.id, "unreadable results" if s.unreadable else "not graded", s.problem))
            continue
        if s.stale and not everyone_stale:
            looks.append(Look(s.id, "out of date", "the notebook or the grader changed since these results"))
        missing = [c for c in CATEGORIES if c not in s.graded_categories]
        if missing:
            looks.append(Look(s.id, "partly graded", f"not graded: {', '.join(title(c) for c in missing)}"))
        reason = s.timing.get("inconclusive")
        if reason:
            concurrency = feedback.finite_number((s.timing.get("judgement") or {}).get("concurrency"))
            looks.append(
                Look(
                    s.id,
                    "timing not judged",
                    "the reference barely sped up beside them (a busy machine): the points followed the evidence of "
                    "parallel work"
                    + (f" ({concurrency:.2f} episodes played at once)" if concurrency is not None else ""),
                    f"{s.part('speedup') or 0:g}/{speedup_points} awarded: {feedback.clean(str(reason))}",
                )
            )
        elif "speedup" in s.graded_categories and not s.timing and _full(s, "parallel"):
            looks.append(Look(s.id, "timing not measured", "the parallel loop passed but no speedup was measured"))
        if s.score == 0 and s.tests and not any(t.get("status") == "passed" for t in s.tests):
            first = Counter(_message(t).splitlines()[0] if _message(t) else "" for t in s.tests).most_common(1)
            looks.append(Look(s.id, "scored 0", f"every test failed, mostly with: {first[0][0][:300]}"))
        if roster_ids is not None and s.id not in roster_ids:
            looks.append(Look(s.id, "not in the roster", "graded, but no roster row holds this id"))
    return looks


def _full(s: Student, category: str) -> bool:
    return s.part(category) is not None and s.part(category) >= POINTS.get(category, 0) > 0


def _message(test: dict) -> str:
    return feedback.clean(str(test.get("output") or ""))[:MAX_MESSAGE]


@dataclass
class Failure:
    """Checks that failed for the same students with the same messages (one check, or several failing together)."""

    tests: list[dict]
    students: list[str]
    by_message: dict[str, list[str]]
    """Each message (as students read it) and who got it, most common first."""

    @property
    def categories(self) -> list[str]:
        seen = {str((t.get("tags") or ["other"])[0]) for t in self.tests}
        return [c for c in CATEGORIES if c in seen] + sorted(seen - set(CATEGORIES))

    @property
    def hidden(self) -> bool:
        return any(t.get("visibility") not in (None, "visible") for t in self.tests)


def failures(students: list[Student]) -> list[Failure]:
    """Each failing check with who failed it and how, most common first (then in part order). Checks that failed
    for the same students with the same messages are one row: an untouched stub fails a dozen for one reason."""
    found: dict[str, tuple[dict, dict[str, list[str]]]] = {}
    for s in students:
        for test in s.tests:
            if test.get("status") != "passed":
                name = str(test.get("name", ""))
                found.setdefault(name, (test, {}))[1].setdefault(_message(test), []).append(s.id)
    merged: dict[tuple, Failure] = {}
    for test, by_message in found.values():
        ranked = dict(sorted(by_message.items(), key=lambda item: -len(item[1])))
        key = tuple((m, tuple(who)) for m, who in ranked.items())
        who = sorted({s for people in ranked.values() for s in people})
        merged.setdefault(key, Failure([], who, ranked)).tests.append(test)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(
        merged.values(),
        key=lambda f: (-len(f.students), order.get(f.categories[0], 99), str(f.tests[0].get("name"))),
    )


# --- pictures -------------------------------------------------------------------------------


def _integer_counts(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def scores_png(students: list[Student]) -> str | None:
    """The total's histogram above one small histogram per part."""
    graded = [s for s in students if s.results is not None and s.score is not None]
    if not graded:
        return None
    import numpy as np

    plt = feedback.pyplot()
    fig = plt.figure(figsize=(10, 5.2), dpi=100)
    grid = fig.add_gridspec(2, len(ALL), height_ratios=[1.4, 1])
    ax = fig.add_subplot(grid[0, :])
    totals = [s.score for s in graded]
    ax.hist(totals, bins=np.linspace(0, TOTAL, 21), color=CHART, edgecolor="white")
    middle = statistics.median(totals)
    ax.axvline(middle, color="#333", ls="--", lw=1)
    ax.text(middle, 1.0, f" median {middle:.4g}", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
    ax.set_xlim(0, TOTAL)
    ax.set_xlabel(f"total score (out of {TOTAL})")
    ax.set_ylabel("students")
    _integer_counts(ax)
    for i, category in enumerate(ALL):
        ax = fig.add_subplot(grid[1, i])
        values = [
            v for s in graded if category.name in s.graded_categories and (v := s.part(category.name)) is not None
        ]
        ax.hist(
            values, bins=np.linspace(0, category.points, min(category.points, 10) + 1), color=CHART, edgecolor="white"
        )
        ax.set_xlim(0, category.points)
        ax.set_title(category.title, fontsize=9)
        ax.set_xlabel(f"out of {category.points}", fontsize=8)
        ax.tick_params(labelsize=8)
        _integer_counts(ax)
    fig.tight_layout()
    return feedback.png_base64(fig)


def _judged_with_lines(s: Student) -> bool:
    judgement = s.timing.get("judgement")
    return isinstance(judgement, dict) and isinstance(judgement.get("thresholds"), dict)


def speedup_png(students: list[Student]) -> str | None:
    """Left: each student's speedup against the reference's measured beside it. Right: the seconds measured."""
    points = []
    seconds = {f"{kind}, {side}": [] for kind in ("serial", "parallel") for side in ("student", "reference")}
    for s in students:
        mine, ref = s.timing.get("student") or {}, s.timing.get("reference") or {}
        x, y = feedback.finite_number(ref.get("speedup")), feedback.finite_number(mine.get("speedup"))
        if x is not None and y is not None:
            points.append((s.id, x, y, bool(s.timing.get("inconclusive"))))
        for kind in ("serial", "parallel"):
            for side, values in (("student", mine), ("reference", ref)):
                value = feedback.finite_number(values.get(f"{kind}_seconds"))
                if value is not None:
                    seconds[f"{kind}, {side}"].append(value)
    if not points and not any(seconds.values()):
        return None
    import numpy as np

    plt = feedback.pyplot()
    # The lines the students' verdicts were drawn against, as their judgements recorded them (the judge's).
    recorded = next((s.timing["judgement"].get("thresholds") for s in students if _judged_with_lines(s)), None)
    rules = speedup_judge.settings_from(recorded)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100, gridspec_kw={"width_ratios": [1.1, 1]})
    top = max([2.5] + [max(x, y) * 1.1 for _, x, y, _ in points])
    line = np.array([0, top])
    left.plot(line, line, color=MUTED, ls=":", lw=1, label="as fast as the reference")
    left.plot(
        line,
        rules.full_fraction * line,
        color="#333",
        ls="--",
        lw=1,
        label=f"full marks ({rules.full_fraction:.0%} of it)",
    )
    left.axhline(rules.zero_speedup, color=ALERT, ls="-.", lw=1, label=f"no credit ({rules.zero_speedup:g}× or less)")
    for inconclusive, marker, label in ((False, "o", "judged"), (True, "x", "not judged (inconclusive)")):
        chosen = [(x, y) for _, x, y, unsure in points if unsure == inconclusive]
        if chosen:
            xs, ys = zip(*chosen, strict=True)
            left.scatter(xs, ys, color=CHART if not inconclusive else ALERT, marker=marker, s=28, label=label, zorder=3)
    if len(points) <= MAX_LABELLED:
        for student, x, y, _ in points:
            left.annotate(student[:24], (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7, parse_math=False)
    left.set_xlim(0, top)
    left.set_ylim(0, top)
    left.set_xlabel("reference's speedup, measured beside the student's")
    left.set_ylabel("student's speedup")
    left.legend(fontsize=7, loc="upper left")
    left.grid(alpha=0.3)
    labels = [k for k, v in seconds.items() if v]
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for row, label in enumerate(labels):
        values = seconds[label]
        right.boxplot([values], positions=[row], orientation="horizontal", widths=0.5, showfliers=False)
        right.scatter(values, row + rng.uniform(-0.18, 0.18, len(values)), color=CHART, s=12, alpha=0.7, zorder=3)
    right.set_yticks(range(len(labels)))
    right.set_yticklabels(labels, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("seconds (median of the timed rounds)")
    right.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return feedback.png_base64(fig)


def agent_png(students: list[Student]) -> str | None:
    """The trained agents' mean returns on held-out start states, with the solved line."""
    values = [v for s in students if (v := s.heldout_return) is not None]
    if not values:
        return None
    plt = feedback.pyplot()
    fig, ax = plt.subplots(figsize=(10, 2.8), dpi=100)
    ax.hist(values, bins=20, color=CHART, edgecolor="white")
    ax.axvline(AGENT.solved_return, color=ALERT, ls="--", lw=1)
    ax.text(
        AGENT.solved_return,
        1.0,
        f" solved ({AGENT.solved_return:g})",
        transform=ax.get_xaxis_transform(),
        va="top",
        fontsize=9,
    )
    ax.set_xlabel("mean return on held-out start states")
    ax.set_ylabel("students")
    _integer_counts(ax)
    fig.tight_layout()
    return feedback.png_base64(fig)


def similarity_png(pairs: list[similarity.Pair], threshold: float) -> str | None:
    """How similar every compared pair is, the threshold marked."""
    if not pairs:
        return None
    import numpy as np

    plt = feedback.pyplot()
    fig, ax = plt.subplots(figsize=(10, 2.4), dpi=100)
    bins = np.linspace(0, 1, 21)
    ax.hist([p.similarity for p in pairs if p.similarity < threshold], bins=bins, color=CHART, edgecolor="white")
    ax.hist([p.similarity for p in pairs if p.similarity >= threshold], bins=bins, color=ALERT, edgecolor="white")
    ax.axvline(threshold, color="#333", ls="--", lw=1)
    ax.text(threshold, 1.0, f" threshold {threshold:.0%}", transform=ax.get_xaxis_transform(), va="top", fontsize=9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("similarity of a pair's solution cells")
    ax.set_ylabel("pairs")
    _integer_counts(ax)
    fig.tight_layout()
    return feedback.png_base64(fig)


# --- the page -------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:70em;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.1em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.15em}
.sub,.note{color:#555} .note{font-size:.92em}
.tiles{display:flex;flex-wrap:wrap;gap:.7em;margin:1em 0}
.tile{background:#f2f4f7;border-radius:6px;padding:.5em 1em;min-width:8em}
.tile b{display:block;font-size:1.7em} .tile.warn{background:#fbeae5}
table{border-collapse:collapse;margin:.5em 0;font-size:.93em} th{text-align:left;background:#f2f4f7}
td,th{padding:.25em .6em;border-bottom:1px solid #e6e8eb;vertical-align:top}
td.num{text-align:right;white-space:nowrap}
.bar{display:inline-block;height:.7em;background:#6b8fc7;vertical-align:middle}
.bar.hot{background:#c8553d}
pre{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:.4em;font-size:.85em;margin:.2em 0}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:.6em}
.code{font:12px/1.35 ui-monospace,monospace;background:#fafafa;border:1px solid #e3e3e3;overflow-x:auto;white-space:pre;margin:0}
.code span{display:block;padding-right:.5em} .code span.same{background:#fde8c8}
.code i{font-style:normal;color:#999;display:inline-block;width:2.8em;text-align:right;margin-right:.6em}
img{max-width:100%} details summary{cursor:pointer} .tag{font-size:.8em;color:#fff;background:#8a94a3;
border-radius:3px;padding:0 .35em;margin-left:.3em} .who{max-width:28em}
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
"""The page may show inline pictures and its own style; nothing is fetched and no script runs."""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _img(png: str | None, alt: str) -> str:
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{png}'>" if png else ""


def _bar(fraction: float, hot: bool = False, width_em: float = 8) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    return f"<span class='bar{' hot' if hot else ''}' style='width:{width_em * fraction:.2f}em'></span>"


def _who(students: list[str], shown: int = 12) -> str:
    head = ", ".join(_e(s) for s in students[:shown])
    if len(students) <= shown:
        return head
    rest = ", ".join(_e(s) for s in students[shown:])
    return f"{head} <details><summary>and {len(students) - shown} more</summary>{rest}</details>"


def page(
    students: list[Student],
    pairs: list[similarity.Pair],
    threshold: float,
    *,
    compared: int | None = None,
    looks: list[Look] | None = None,
    made: str = "",
) -> str:
    """The report's HTML. ``pairs``: every compared pair, most similar first; ``compared``: how many
    submissions were fingerprinted (None: no submitted folder to read)."""
    looks = needs_a_look(students) if looks is None else looks
    graded = [s for s in students if s.results is not None]
    similar = [p for p in pairs if p.similarity >= threshold]
    late = [s for s in graded if s.late]
    scores = [s.score for s in graded if s.score is not None]
    body = [
        f"<h1>Class report: {_e(paths.ASSIGNMENT)}</h1>",
        f"<p class=sub>{len(students)} students, {len(graded)} graded"
        + (f" · made {_e(made)}" if made else "")
        + "</p>",
        "<div class=tiles>",
        _tile("graded", f"{len(graded)}/{len(students)}"),
        _tile("median score", f"{statistics.median(scores):.4g}/{TOTAL}" if scores else "–"),
        _tile("need a look", str(len(flagged(looks))), warn=bool(looks)),
        _tile("similar pairs", str(len(similar)), warn=bool(similar)),
        _tile("late", str(len(late)), warn=bool(late)),
        "</div>",
    ]
    body += _isolation_note(graded)
    body += _looks_section(looks)
    body += ["<h2>Scores</h2>", _img(scores_png(students), "histograms of the total score and of each part")]
    body += _failures_section(graded)
    body += _speedup_section(graded)
    body += _agent_section(graded)
    body += _similar_section(pairs, similar, threshold, compared)
    body += _late_section(late)
    body += _students_section(students, looks)
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        f"<title>Class report: {_e(paths.ASSIGNMENT)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _tile(label: str, value: str, warn: bool = False) -> str:
    return f"<div class='tile{' warn' if warn else ''}'><b>{_e(value)}</b>{_e(label)}</div>"


def _isolation_note(graded: list[Student]) -> list[str]:
    modes = Counter(mode for s in graded if (mode := _isolation(s.extra.get("isolation"))))
    loose = {m: n for m, n in modes.items() if m != "bubblewrap"}
    if not loose:
        return []
    said = ", ".join(f"{n} with {_e(m)}" for m, n in sorted(loose.items()))
    return [f"<p class=note>Isolation: {said} rather than bubblewrap (see the README's security model).</p>"]


def _isolation(recorded) -> str | None:
    """How a student's runs were isolated: results.json records ``{"mode": ...}`` (or, in older ones, the name)."""
    mode = recorded.get("mode") if isinstance(recorded, dict) else recorded
    return str(mode) if mode else None


def _looks_section(looks: list[Look]) -> list[str]:
    out = ["<h2>Needs a look</h2>"]
    if not looks:
        return out + ["<p>Nobody: every student was graded, timed and fully judged.</p>"]
    grouped: dict[tuple[str, str], list[Look]] = {}
    for look in looks:
        grouped.setdefault((look.kind, look.why), []).append(look)
    order = list(ACTIONS)
    rows = []
    for (kind, why), group in sorted(grouped.items(), key=lambda item: (order.index(item[0][0]), -len(item[1]))):
        who = [look.student for look in group]
        regrade = "python -m autograder grade --force " + " ".join(f"--student {shlex.quote(s)}" for s in who[:20])
        action = ACTIONS[kind].format(regrade=regrade + (" …" if len(who) > 20 else ""))
        notes = "".join(f"<li>{_e(look.student)}: {_e(look.note)}</li>" for look in group if look.note)
        notes = f"<details><summary>each one</summary><ul>{notes}</ul></details>" if notes else ""
        rows.append(
            f"<tr><td>{_e(kind)}</td><td class=num>{len(who)}</td><td class=who>{_who(who)}{notes}</td>"
            f"<td>{_e(why)}</td><td>{_e(action)}</td></tr>"
        )
    return out + [
        "<table><tr><th>what</th><th>students</th><th class=who>who</th><th>why</th><th>what to do</th></tr>"
        + "".join(rows)
        + "</table>"
    ]


def _failures_section(graded: list[Student]) -> list[str]:
    found = failures(graded)
    out = ["<h2>Failing checks</h2>"]
    if not found:
        return out + ["<p>No check failed.</p>"]
    out.append(
        f"<p class=note>Each check that failed, most common first, with the message students read "
        f"(the most frequent wording; others under it). {len(graded)} students graded.</p><table>"
        "<tr><th>check</th><th>students</th><th class=who>who</th><th>message</th></tr>"
    )
    for f in found:
        (top, _), *others = f.by_message.items()
        variants = ""
        if others:
            items = "".join(f"<li>{_who(who, 6)}: <pre>{_e(m)}</pre></li>" for m, who in others[:8])
            more = f" (and {len(others) - 8} more)" if len(others) > 8 else ""
            variants = f"<details><summary>{len(others)} other wording(s){more}</summary><ul>{items}</ul></details>"
        parts = ", ".join(title(c) for c in f.categories)
        if len(f.tests) == 1:
            check = f"{_e(parts)}: {_e(feedback.title(f.tests[0]))}"
        else:
            listing = "".join(f"<li>{_e(feedback.title(t))}</li>" for t in f.tests)
            check = f"{_e(parts)}: <details><summary>{len(f.tests)} checks</summary><ul>{listing}</ul></details>"
        out.append(
            f"<tr><td>{check}"
            + ("<span class=tag>hidden until published</span>" if f.hidden else "")
            + f"</td><td class=num>{len(f.students)} {_bar(len(f.students) / max(len(graded), 1), width_em=5)}</td>"
            f"<td class=who>{_who(f.students)}</td><td><pre>{_e(top or '(no message)')}</pre>{variants}</td></tr>"
        )
    return out + ["</table>"]


def _speedup_section(graded: list[Student]) -> list[str]:
    timed = [s for s in graded if s.timing]
    out = ["<h2>Speedup</h2>"]
    if not timed:
        return out + ["<p>Nobody was timed (the speedup part was not graded, or no parallel loop ran).</p>"]
    unsure = [s for s in timed if s.timing.get("inconclusive")]
    out.append(
        f"<p class=note>{len(timed)} students timed, each beside the reference solution on the same cores; "
        f"{len(unsure)} not judged on speed because the reference itself barely sped up (a busy machine): their "
        "points followed the evidence of parallel work (autograder/speedup_judge.py). Points above the "
        "dashed line earn full marks; points below the red line earn nothing.</p>"
    )
    out.append(_img(speedup_png(timed), "each student's speedup against the reference's, and the seconds measured"))
    return out


def _agent_section(graded: list[Student]) -> list[str]:
    out = ["<h2>Agent returns</h2>"]
    trained = [s for s in graded if s.heldout_return is not None]
    if not trained:
        return out + ["<p>No trained agent to show (the agent part was not graded, or no training run finished).</p>"]
    solved = sum(s.heldout_return >= AGENT.solved_return for s in trained)
    untrained = [s.id for s in graded if "agent" in s.graded_categories and s.heldout_return is None]
    out.append(
        f"<p class=note>{len(trained)} trained agents, {solved} solve the task on held-out start states "
        f"(mean return {AGENT.solved_return:g} or more)."
        + (f" No verified agent: {_who(untrained)}." if untrained else "")
        + "</p>"
    )
    return out + [_img(agent_png(trained), "histogram of the agents' mean returns on held-out start states")]


def _similar_section(
    pairs: list[similarity.Pair], similar: list[similarity.Pair], threshold: float, compared: int | None
) -> list[str]:
    out = ["<h2>Similar submissions: near-identical solution cells</h2>"]
    if compared is None:
        return out + ["<p>Not compared: pass --submitted with the folder of submitted notebooks.</p>"]
    out.append(
        f"<p class=note>The two solution cells of {compared} submissions, compared with comments, docstrings, "
        "string contents, layout and every name the student chose normalised away; the code every student was "
        f"given is left out. Threshold: {threshold:.0%} similarity (the mean share of each side's "
        f"fingerprints found in the other). The notebook's hints spell out much of the loop, so correct "
        "solutions share code; what stands out is a pair well above the rest, or shared code no one else "
        "wrote.</p>"
    )
    out.append(_img(similarity_png(pairs, threshold), "histogram of the similarity of every pair"))
    listed = (similar or pairs[:5])[:MAX_PAIRS_LISTED]
    if not listed:
        return out + ["<p>No two submissions share any code of their own.</p>"]
    if not similar:
        out.append(f"<p>No pair reaches {threshold:.0%}; the most similar:</p>")
    many = [group for group in similarity.groups(similar) if len(group) > 2]
    if many:
        items = "".join(f"<li><b>{len(group)}</b>: {_who(group)}</li>" for group in many[:20])
        out.append(
            "<p>Groups of three or more, each linked by pairs above the threshold (one source shared by many, "
            f"or the code the hints lead to):</p><ul>{items}</ul>"
        )
    rows = []
    for rank, p in enumerate(listed, 1):
        rows.append(
            f"<tr><td class=num>{rank}</td><td>{_e(p.first.student)}</td><td>{_e(p.second.student)}</td>"
            f"<td class=num>{p.similarity:.0%} {_bar(p.similarity, p.similarity >= threshold, 6)}</td>"
            f"<td class=num>{p.first_in_second:.0%}</td><td class=num>{p.second_in_first:.0%}</td>"
            f"<td class=num>{p.only_here:.0%}</td></tr>"
        )
    out.append(
        "<table><tr><th>#</th><th>first</th><th>second</th><th>similarity</th><th>first's code in second</th>"
        "<th>second's in first</th><th>shared code in no other submission</th></tr>" + "".join(rows) + "</table>"
    )
    if len(similar) > len(listed):
        out.append(f"<p class=note>{len(similar) - len(listed)} more pairs above the threshold are not listed.</p>")
    for rank, p in enumerate(similar[:MAX_PAIRS_SHOWN], 1):
        out.append(
            f"<details{' open' if rank <= 3 else ''}><summary><b>#{rank}</b> {_e(p.first.student)} and "
            f"{_e(p.second.student)}: {p.similarity:.0%} similar</summary><div class=pair>"
            f"{_code(p.first, p.lines(p.first))}{_code(p.second, p.lines(p.second))}</div></details>"
        )
    if len(similar) > MAX_PAIRS_SHOWN:
        out.append(f"<p class=note>The first {MAX_PAIRS_SHOWN} pairs are shown side by side.</p>")
    return out


def _code(code: similarity.Code, same: set[int]) -> str:
    lines = code.source.splitlines()
    shown = lines[:MAX_CODE_LINES]
    body = "".join(
        f"<span{' class=same' if n in same else ''}><i>{n}</i>{_e(line)}</span>" for n, line in enumerate(shown, 1)
    )
    more = f"<span><i></i>… {len(lines) - len(shown)} more lines</span>" if len(lines) > len(shown) else ""
    return f"<div><b>{_e(code.student)}</b><pre class=code>{body}{more}</pre></div>"


def _late_section(late: list[Student]) -> list[str]:
    out = ["<h2>Late submissions</h2>"]
    if not late:
        return out + ["<p>None recorded in the results.</p>"]
    rows = []
    for s in late:
        info = s.late or {}
        penalty = _penalty(info)
        if info.get("headline"):  # the course's late policy (term/late.py) says it in words
            details = "; ".join(_e(str(info[k])[:200]) for k in ("headline", "note") if info.get(k))
            details += f"; due {_e(info['due'])}" if info.get("due") else ""
        else:
            details = "; ".join(
                f"{_e(k)}: {_e(str(v)[:200])}"
                for k, v in info.items()
                if k not in ("penalty", "late_submission_penalty", "points", "late") and v not in (None, "", [], {})
            )
        rows.append(
            f"<tr><td>{_e(s.id)}</td><td>{_e(s.extra.get('timestamp') or '')}</td>"
            f"<td class=num>{'−' + format(penalty, 'g') if penalty else '0'}</td>"
            f"<td class=num>{_e(format(s.score, 'g')) if s.score is not None else ''}</td><td>{details}</td></tr>"
        )
    return out + [
        "<table><tr><th>student</th><th>submitted</th><th>penalty</th><th>score</th><th>details</th></tr>"
        + "".join(rows)
        + "</table>"
    ]


def _students_section(students: list[Student], looks: list[Look]) -> list[str]:
    looked = flagged(looks)
    head = "".join(f"<th>{_e(c.title)}</th>" for c in ALL)
    rows = []
    for s in students:
        parts = "".join(
            f"<td class=num>{format(v, 'g') if (v := s.part(c)) is not None and c in s.graded_categories else ''}</td>"
            for c in CATEGORIES
        )
        mine = feedback.finite_number((s.timing.get("student") or {}).get("speedup"))
        ref = feedback.finite_number((s.timing.get("reference") or {}).get("speedup"))
        speed = f"{mine:.2f}× / {ref:.2f}×" if mine is not None and ref is not None else ""
        agent = f"{s.heldout_return:.1f}" if s.heldout_return is not None else ""
        link = f"<a href='{_e(quote(s.id))}/feedback.html'>{_e(s.id)}</a>" if s.results is not None else _e(s.id)
        rows.append(
            f"<tr><td>{link}</td>{parts}<td class=num><b>{format(s.score, 'g') if s.score is not None else '–'}</b></td>"
            f"<td class=num>{speed}</td><td class=num>{agent}</td>"
            f"<td>{'needs a look' if s.id in looked else ''}</td></tr>"
        )
    return [
        "<h2>Every student</h2><table>",
        f"<tr><th>student</th>{head}<th>total</th><th>speedup / reference's</th><th>agent return</th><th></th></tr>",
        *rows,
        "</table>",
    ]


# --- the command ----------------------------------------------------------------------------


def run(
    output: Path,
    submitted: Path | None,
    *,
    roster: Path | None = None,
    id_column: str | None = None,
    threshold: float = similarity.THRESHOLD,
) -> Report:
    """Write ``output/report.html``; ReportError when nothing is graded there."""
    if not Path(output).is_dir():
        raise ReportError(f"no folder {output}: pass --output with the folder `make grade` wrote")
    students = gather(Path(output), submitted)
    if not any(s.results is not None for s in students):
        raise ReportError(f"no graded results in {output}: run `make grade` (or pass --output) first")
    roster_ids = _roster_ids(roster, id_column, students) if roster else None
    compared = None
    if submitted is not None:
        read_code(students, Path(submitted))
        compared = sum(1 for s in students if s.code is not None and s.code.comparable)
    pairs = similarity.ranked_pairs([s.code for s in students if s.code is not None])
    looks = needs_a_look(students, roster_ids)
    made = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    text = page(students, pairs, threshold, compared=compared, looks=looks, made=made)
    path = Path(output) / NAME
    write_atomic(path, text)
    graded = sum(s.results is not None for s in students)
    similar = sum(p.similarity >= threshold for p in pairs)
    return Report(path, len(students), graded, len(flagged(looks)), similar, threshold)


def _roster_ids(roster: Path, id_column: str | None, students: list[Student]) -> set[str]:
    from autograder.term import export

    try:
        header, rows = export.read_roster(roster)
        matched, _ = export.match_roster(header, rows, {s.id for s in students}, id_column)
    except export.ExportError as exc:
        raise ReportError(str(exc)) from None
    return set(matched.values())  # the students some roster row holds, through whichever column holds their id

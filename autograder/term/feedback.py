"""The feedback a student gets, made from their results.json alone.

``page(results_doc)`` is one self-contained HTML file: score per part, what to fix first (each
distinct failure once, however many tests share it), what passed, the student's timings beside
the reference's, their fitness curve and frames of their trained agent driving the car. It holds
no absolute path and nothing of the grader's internals, and hides ``after_published`` tests
unless ``publish``. ``stage()`` writes the pages where ``nbgrader release_feedback`` looks and as
one zip per student (``python -m autograder feedback``).
"""

from __future__ import annotations

import base64
import copy
import html
import importlib.util
import io
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import paths
from autograder.categories import CATEGORIES, TOTAL
from autograder.categories import title as title_of
from autograder.config import AGENT
from autograder.results import read_results, write_atomic

AGENT_SEED = 900_001  # a held-out start state of the grader's (never one the loop trained on)
HIDDEN = ("hidden",)  # Gradescope visibility never shown to students
UNPUBLISHED = ("after_published",)

# Absolute paths (POSIX or Windows): only their last component is shown.
_ABS_PATH = re.compile(r"(?<![\w.:/-])(?:[A-Za-z]:\\|/)(?:[^\s'\"():,;<>\\/]+[\\/])+([^\s'\"():,;<>\\/]+)")
# Lines that describe the grader rather than the student's code.
_INTERNAL = re.compile(r"autograder[/.]|harness|observations\.json|bwrap|bubblewrap|site-packages|runpy|<frozen ")


def clean(text: str) -> str:
    """``text`` without grader internals: absolute paths cut to their file name, internal lines dropped."""
    kept = []
    for line in str(text).splitlines():
        if _INTERNAL.search(line):
            continue
        kept.append(_ABS_PATH.sub(lambda m: m.group(1), line))
    return "\n".join(kept).strip()


def title(test: dict) -> str:
    """A readable title: the test's docstring when it has one, else its name in words."""
    name = str(test.get("name", ""))
    head, _, doc = name.partition(": ")
    if doc.strip():
        return doc.strip()
    words = re.sub(r"^test_", "", head)
    for category in CATEGORIES:
        words = re.sub(rf"^{category}_", "", words)
    words = re.sub(r"\[(.*)\]$", r" (\1)", words).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else "Test"


def visible_tests(doc: dict, publish: bool) -> tuple[list[dict], int]:
    """(tests the student may see, how many are held back until grades are published)."""
    shown, held = [], 0
    for test in doc.get("tests") or []:
        visibility = test.get("visibility", "visible")
        if visibility in HIDDEN or (visibility in UNPUBLISHED and not publish):
            held += 1
        else:
            shown.append(test)
    return shown, held


@dataclass
class Group:
    """Tests that share one outcome and message, shown once."""

    passed: bool
    message: str
    tests: list[dict] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        seen = [(t.get("tags") or ["other"])[0] for t in self.tests]
        return [c for c in CATEGORIES if c in seen] + sorted({c for c in seen if c not in CATEGORIES})


def grouped(tests: list[dict]) -> list[Group]:
    """Failures first, then passes (each in part order); tests with one outcome and message merged,
    across parts: an unfinished function fails many tests for one reason."""
    groups: dict[tuple, Group] = {}
    for test in tests:
        passed = test.get("status") == "passed"
        message = "" if passed else _collapse_lines(clean(test.get("output", "")))
        key = (passed, message, (test.get("tags") or ["other"])[0] if passed else "")
        groups.setdefault(key, Group(passed, message)).tests.append(test)
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(groups.values(), key=lambda g: (g.passed, order.get(g.categories[0], 99)))


def _collapse_lines(text: str) -> str:
    """Runs of one repeated line become that line once with a count."""
    out, previous, count = [], None, 0
    for line in text.splitlines() + [None]:
        if line == previous:
            count += 1
            continue
        if previous is not None:
            out.append(previous + (f"   (× {count})" if count > 1 else ""))
        previous, count = line, 1
    return "\n".join(out)


# --- pictures -----------------------------------------------------------------------------


def png_base64(fig) -> str:
    """A matplotlib figure as a base64 PNG; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def pyplot():
    """matplotlib.pyplot on the Agg backend: no screen needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fitness_png(history: list[list[float]]) -> str | None:
    """Best and mean return per generation as a base64 PNG (None without a usable history)."""
    rows = [[float(x) for x in row] for row in history or [] if isinstance(row, list) and row]
    if not rows:
        return None
    plt = pyplot()
    gens = range(len(rows))
    fig, ax = plt.subplots(figsize=(6, 3), dpi=100)
    ax.plot(gens, [max(row) for row in rows], marker="o", ms=3, label="best")
    ax.plot(gens, [sum(row) / len(row) for row in rows], marker="o", ms=3, label="mean")
    ax.axhline(AGENT.solved_return, color="grey", ls=":", lw=1, label=f"solved ({AGENT.solved_return:g})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations are whole: no tick at 0.25
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)  # off the curves
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_base64(fig)


def finite_number(value) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def timing_png(timing: dict) -> str | None:
    """Seconds of the serial and the parallel run, the student's beside the reference's."""
    sides = [(label, timing.get(key) or {}) for label, key in (("your code", "student"), ("reference", "reference"))]
    values = {
        label: (finite_number(side.get("serial_seconds")), finite_number(side.get("parallel_seconds")))
        for label, side in sides
    }
    if not any(v is not None for pair in values.values() for v in pair):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.2), dpi=100)
    labels = list(values)
    for offset, (kind, colour) in enumerate((("serial", "#9aa7b8"), ("parallel", "#2f6db5"))):
        ys = [i * 3 + offset for i in range(len(labels))]
        xs = [values[label][offset] or 0 for label in labels]
        ax.barh(ys, xs, color=colour, label=kind)
        for y, x, label in zip(ys, xs, labels, strict=True):
            ax.text(
                x, y, f" {x:.2f} s" if values[label][offset] is not None else " not measured", va="center", fontsize=8
            )
    ax.set_yticks([i * 3 + 0.5 for i in range(len(labels))])
    ax.set_yticklabels([f"{label}\n{_speedup_text(dict(sides)[label])}" for label in labels], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("seconds (median)")
    ax.margins(x=0.25)
    # Above the bars, never over one of their labels.
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return png_base64(fig)


def _timeline_rows(timeline) -> list[tuple[str, list[tuple[float, float]]]]:
    """(label, [(start ms, length ms), ...]) per process of a recorded timeline, or [] if it is not one."""
    rows, workers = [], 0
    for row in timeline.get("processes") or [] if isinstance(timeline, dict) else []:
        if not isinstance(row, dict):
            continue
        spans = [
            (float(s[0]), float(s[1]) - float(s[0]))
            for s in row.get("episodes") or []
            if isinstance(s, list)
            and len(s) == 2
            and finite_number(s[0]) is not None
            and finite_number(s[1]) is not None
        ]
        workers += not row.get("caller")
        backing = finite_number(row.get("backing"))
        name = "caller" if row.get("caller") else f"worker {workers}"
        rows.append((name + (f"\nran {backing:.0%}" if backing is not None else ""), spans))
    return rows


def gantt_png(timelines: dict) -> str | None:
    """Which process played which episode when, in one generation of the first timed evolve_parallel run: the
    student's beside the reference's (None when neither was recorded)."""
    panels = [
        (title, rows)
        for title, key in (("your evolve_parallel", "student"), ("reference solution", "reference"))
        if (rows := _timeline_rows((timelines or {}).get(key)))
    ]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(6, 0.9 + 0.45 * sum(len(r) for _, r in panels)), dpi=100, squeeze=False, sharex=True
    )
    for ax, (title, rows) in zip(axes[:, 0], panels, strict=True):
        for y, (_, spans) in enumerate(rows):
            colours = ["#2f6db5", "#7fa7d9"] * (len(spans) // 2 + 1)
            ax.broken_barh(spans, (y - 0.35, 0.7), facecolors=colours[: len(spans)])
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label for label, _ in rows], fontsize=8)
        ax.invert_yaxis()
        generation = (timelines.get("student" if title.startswith("your") else "reference") or {}).get("generation")
        ax.set_title(f"{title}: generation {generation}, one bar per episode", fontsize=9)
        ax.set_xlabel("milliseconds from the generation's first episode", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return png_base64(fig)


def _speedup_text(side: dict) -> str:
    value = finite_number(side.get("speedup"))
    return f"speedup {value:.2f}×" if value is not None else "speedup not measured"


def _interval_text(side: dict) -> str:
    """`` (1.70–1.85× from round to round)`` when the rounds measured an interval."""
    span = side.get("interval")
    if not (isinstance(span, list) and len(span) == 2 and all(finite_number(v) is not None for v in span)):
        return ""
    return f" ({span[0]:.2f}–{span[1]:.2f}× from round to round)"


def _trusted_helper():
    """The grader's own evolution.py (never a student's copy)."""
    spec = importlib.util.spec_from_file_location("_feedback_trusted_evolution", paths.helper_module())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def agent_frames(agent_params: dict, frames: int = 6, seed: int = AGENT_SEED) -> tuple[str, str, float] | None:
    """(strip PNG, GIF, return) of one episode of the trained agent, base64; None if it cannot be drawn."""
    from autograder import readback

    try:
        params = readback.params(agent_params)
    except Exception:  # noqa: BLE001 -- whatever is wrong with them, there is nothing to draw
        return None
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from PIL import Image

        ev = _trusted_helper()
        env = ev.make_env(render_mode="rgb_array")
    except Exception:  # noqa: BLE001 -- no pygame or pillow: the page goes without the pictures
        return None
    shots, total = [], 0.0
    try:
        observation, _ = env.reset(seed=seed)
        for step in range(ev.MAX_STEPS):
            if step % 6 == 0:
                shots.append(env.render())
            observation, reward, terminated, truncated, _ = env.step(ev.forward(observation, params))
            total += float(reward)
            if terminated or truncated:
                break
        shots.append(env.render())
    finally:
        env.close()
    small = [Image.fromarray(s).resize((240, 160), Image.Resampling.BILINEAR) for s in shots]
    picks = [small[round(i * (len(small) - 1) / (frames - 1))] for i in range(frames)]
    strip = Image.new("RGB", (240 * frames + 4 * (frames - 1), 160), "#c8ccd2")
    for i, image in enumerate(picks):
        strip.paste(image, (i * 244, 0))
    buffer = io.BytesIO()
    strip.save(buffer, format="PNG", optimize=True)
    palette = small[0].quantize(colors=32)
    animation = [image.quantize(palette=palette) for image in small]
    gif = io.BytesIO()
    animation[0].save(
        gif, format="GIF", save_all=True, append_images=animation[1:], loop=0, duration=200, optimize=True
    )
    return (
        base64.b64encode(buffer.getvalue()).decode("ascii"),
        base64.b64encode(gif.getvalue()).decode("ascii"),
        total,
    )


# --- the page -----------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:62em;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{margin-bottom:.2em} .sub{color:#666;margin-top:0}
table.parts td{padding:.15em .8em .15em 0} .bar{display:inline-block;height:.7em;background:#2f6db5;vertical-align:middle}
.barbg{display:inline-block;width:8em;height:.7em;background:#e4e8ee;vertical-align:middle}
.total td{font-weight:bold;border-top:1px solid #ccc} .held td{color:#555;font-style:italic}
.group{border-left:4px solid #b33;padding:.3em .8em;margin:.8em 0;background:#fcf5f5}
.group.pass{border-color:#3a3;background:#f4faf4}
.group h3{margin:.1em 0;font-size:1em} .pts{float:right;font-weight:bold}
pre{white-space:pre-wrap;background:#fff;border:1px solid #eee;padding:.5em;font-size:.9em;margin:.4em 0}
ul.tests{margin:.2em 0 .2em 1.2em;padding:0} .note{color:#555;font-size:.95em}
img{max-width:100%} details summary{cursor:pointer}
"""


def page(results_doc, *legacy, publish: bool = False, agent: bool = True) -> str:
    """The feedback page for one results.json document.

    Everything comes from ``results_doc``; any part it lacks (timings, fitness history, agent
    parameters) is left out of the page. ``publish`` also shows tests marked after_published.
    (The older call ``page(student, doc, history, label, speedup)`` still works.)
    """
    if isinstance(results_doc, str):  # page(student, doc, history, label, speedup)
        student, doc, history, label, _ = (results_doc, *legacy)
        results_doc = copy.deepcopy(doc)
        extra = results_doc.setdefault("extra_data", {})
        extra.setdefault("student_id", student)
        if history:
            extra.setdefault("fitness", {"history": history, "label": label})
        agent = False
    esc = html.escape
    extra = results_doc.get("extra_data") or {}
    student = str(extra.get("student_id") or "")
    tests, held = visible_tests(results_doc, publish)

    body = [
        f"<h1>Feedback: {esc(paths.ASSIGNMENT)}</h1>",
        f"<p class=sub>{esc(student)}"
        + (f" · submitted {esc(str(extra['timestamp']))}" if extra.get("timestamp") else "")
        + (f" · {esc(_late_line(extra.get('late')))}" if _late_line(extra.get("late")) else "")
        + "</p>",
    ]
    body.append(_parts_table(results_doc, tests, held, publish))
    groups = grouped(tests)
    failed = [g for g in groups if not g.passed]
    if failed:
        body.append("<h2>What to fix</h2>")
        body += [_group_html(g) for g in failed]
    passed = [g for g in groups if g.passed]
    if passed:
        body.append(
            f"<details{' open' if not failed else ''}><summary><b>What passed</b> "
            f"({sum(len(g.tests) for g in passed)} tests)</summary>"
        )
        body += [_group_html(g) for g in passed]
        body.append("</details>")
    if held:
        body.append(
            f"<p class=note>{held} more test{'s' if held != 1 else ''} will be shown when grades are published.</p>"
        )
    body += _timing_section(extra.get("timing"))
    body += _fitness_section(extra.get("fitness"))
    if agent:
        body += _agent_section(extra.get("agent_params"))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>Feedback {esc(student)}: {esc(paths.ASSIGNMENT)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _parts_table(doc: dict, tests: list[dict], held: int, publish: bool) -> str:
    """Points per part, then the total every export shows (``score``, after any late penalty) out of the
    assignment's maximum: tests held back until grades are published count in it, on a row of their own."""
    rows = []

    def row(label: str, value: str, fraction: float | None = None, css: str = "") -> None:
        bar = (
            f"<span class=barbg><span class=bar style='width:{8 * fraction:.2f}em'></span></span>"
            if fraction is not None
            else ""
        )
        rows.append(f"<tr{css}><td>{html.escape(label)}</td><td>{bar}</td><td>{value}</td></tr>")

    for category in CATEGORIES:
        mine = [t for t in tests if (t.get("tags") or [None])[0] == category]
        if mine:
            score = sum(float(t.get("score") or 0) for t in mine)
            maximum = sum(float(t.get("max_score") or 0) for t in mine)
            row(title_of(category), f"{score:g}/{maximum:g}", score / maximum if maximum else 0)
    if held:
        hidden = [t for t in doc.get("tests") or [] if t not in tests]
        score = sum(float(t.get("score") or 0) for t in hidden)
        maximum = sum(float(t.get("max_score") or 0) for t in hidden)
        row(
            f"Tests shown when grades are published ({held})",
            f"{score:g}/{maximum:g}",
            score / maximum if maximum else 0,
            " class=held",
        )
    late = (doc.get("extra_data") or {}).get("late") or {}
    if late.get("penalty"):
        row(f"Late penalty: {late.get('headline', 'late')}", f"&minus;{float(late['penalty']):g}")
    maximum = sum(float(t.get("max_score") or 0) for t in doc.get("tests") or []) or TOTAL
    row("Total", f"{float(doc.get('score') or 0):g}/{maximum:g}", css=" class=total")
    return f"<table class=parts>{''.join(rows)}</table>"


def _late_line(late) -> str:
    """The submission against its due date, for the page's subtitle ("" when there is nothing to say)."""
    if not isinstance(late, dict) or late.get("status") in (None, "no due date", "no timestamp"):
        return ""
    due = f" (due {late['due']})" if late.get("due") else ""
    return f"{late.get('headline') or late['status']}{due}"


def _group_html(group: Group) -> str:
    esc = html.escape
    score = sum(float(t.get("score") or 0) for t in group.tests)
    maximum = sum(float(t.get("max_score") or 0) for t in group.tests)
    parts = ", ".join(title_of(c) for c in group.categories)
    if len(group.tests) == 1:
        head, listing = f"{esc(parts)}: {esc(title(group.tests[0]))}", ""
    else:
        head = f"{esc(parts)}: {len(group.tests)} tests" + (" failed with the same message" if not group.passed else "")
        listing = "<ul class=tests>" + "".join(f"<li>{esc(title(t))}</li>" for t in group.tests) + "</ul>"
    message = f"<pre>{esc(group.message)}</pre>" if group.message else ""
    return (
        f"<div class='group{' pass' if group.passed else ''}'><h3><span class=pts>{score:g}/{maximum:g}</span>"
        f"{head}</h3>{message}{listing}</div>"
    )


def _timing_section(timing) -> list[str]:
    if not isinstance(timing, dict):
        return []
    out = ["<h2>Timings</h2>"]
    mine, ref = timing.get("student") or {}, timing.get("reference") or {}
    rounds = timing.get("rounds")
    out.append(
        f"<p>Your speedup: <b>{html.escape(_speedup_text(mine).removeprefix('speedup '))}</b>"
        f"{html.escape(_interval_text(mine))}; the reference solution's, timed beside yours: "
        f"<b>{html.escape(_speedup_text(ref).removeprefix('speedup '))}</b>{html.escape(_interval_text(ref))}"
        + (f" (median of {int(rounds)} rounds)" if isinstance(rounds, int) else "")
        + ".</p>"
    )
    judgement = timing.get("judgement") if isinstance(timing.get("judgement"), dict) else {}
    full_at = finite_number(judgement.get("full_marks_at"))
    if full_at is not None:
        out.append(f"<p class=note>Full marks from a speedup of {full_at:.2f}× beside this reference.</p>")
    if timing.get("inconclusive"):
        out.append(
            f"<p class=note>The measurement was inconclusive: {html.escape(clean(timing['inconclusive']))}. "
            "Your own numbers are shown anyway, and the points follow the evidence of parallel work below.</p>"
        )
    concurrency, reference = (
        finite_number(judgement.get("concurrency")),
        finite_number(judgement.get("reference_concurrency")),
    )
    if concurrency is not None:
        full = finite_number(judgement.get("full_concurrency_at"))
        out.append(
            f"<p>Evidence of parallel work: on average <b>{concurrency:.2f}</b> of your processes were each playing "
            "an episode while any was (running, or ready and waiting for a core, by the grader's own CPU samples"
            + (f"; the reference's {reference:.2f}" if reference is not None else "")
            + (f"; full marks from {full:.2f}" if full is not None else "")
            + "). Workers that take turns reach 1 at most, whatever the machine.</p>"
        )
    png = timing_png(timing)
    if png:
        out.append(
            f"<img alt='serial and parallel seconds, yours beside the reference' src='data:image/png;base64,{png}'>"
        )
    gantt = gantt_png(timing.get("timeline"))
    if gantt:
        out.append(
            "<p class=note>Who played what, when: each bar is one episode, each row one process. Bars that overlap "
            'in different rows ran at the same time; a staircase means the workers took turns. "ran" is the '
            "share of its episodes' time the process really ran or waited for a core, by the grader's samples.</p>"
            f"<img alt='episodes of one generation per process over time' src='data:image/png;base64,{gantt}'>"
        )
    return out


def _fitness_section(fitness) -> list[str]:
    if not isinstance(fitness, dict):
        return []
    png = fitness_png(fitness.get("history") or [])
    if not png:
        return []
    label = clean(str(fitness.get("label") or ""))
    return [
        "<h2>Fitness curve</h2>" + (f"<p class=note>{html.escape(label)}</p>" if label else ""),
        f"<img alt='best and mean return per generation' src='data:image/png;base64,{png}'>",
    ]


def _agent_section(agent_params) -> list[str]:
    if not isinstance(agent_params, dict):
        return []
    drawn = agent_frames(agent_params)
    if not drawn:
        return []
    strip, gif, total = drawn
    return [
        "<h2>Your trained agent</h2>",
        f"<p class=note>One episode from a start state it never trained on (return {total:.1f}; "
        f"{AGENT.solved_return:g} or more counts as solved).</p>",
        f"<img alt='the car, six moments of one episode' src='data:image/png;base64,{strip}'>",
        f"<details><summary>Animation</summary><img alt='the episode, animated' "
        f"src='data:image/gif;base64,{gif}'></details>",
    ]


# --- staging for students -----------------------------------------------------------------


class NothingToStage(Exception):
    """No graded results to make feedback from; the message says what to run first."""


@dataclass
class Staged:
    exchange: list[str] = field(default_factory=list)  # staged in nbgrader's feedback/ layout
    zipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def describe(self, feedback_dir: Path, zips: Path) -> str:
        lines = [
            f"{len(self.zipped)} feedback zip(s) in {zips}/ (<student>.zip)",
            f"{len(self.exchange)} page(s) in {feedback_dir}/<student>/{paths.ASSIGNMENT}/ for "
            f"`nbgrader release_feedback {paths.ASSIGNMENT}`"
            + (
                ""
                if len(self.exchange) == len(self.zipped)
                else " (students who submitted through nbgrader's exchange; the others get their zip)"
            ),
        ]
        for student, why in self.failed.items():
            lines.append(f"not written for {student}: {why}")
        return "\n".join(lines)


def stage(
    output: Path, submitted: Path, feedback_dir: Path, zips: Path, *, students=None, publish=False, agent=True
) -> Staged:
    """Write every graded student's page into ``feedback_dir`` (exchange students) and ``zips``."""
    graded = sorted(p.parent.name for p in Path(output).glob("*/results.json"))
    if graded:
        from autograder import batch, output_lock
        from autograder.term import late

        try:
            batch.refresh_late(output, submitted)  # a changed late policy shows on the pages at once
        except (late.PolicyError, output_lock.Busy) as exc:
            raise NothingToStage(str(exc)) from None
    if students:
        unknown = [s for s in students if s not in graded]
        if unknown:
            raise NothingToStage(f"no results for {', '.join(unknown)} in {output}: grade them first")
        graded = [s for s in graded if s in students]
    if not graded:
        raise NothingToStage(f"no graded results in {output}: run `make grade` (or pass --output) first")
    staged = Staged()
    for student in graded:
        doc = read_results(Path(output) / student / "results.json")
        if doc is None:
            staged.failed[student] = "results.json is unreadable: grade again with --force"
            continue
        text = page(doc, publish=publish, agent=agent)
        source = Path(submitted) / student / paths.ASSIGNMENT
        stamp = _read(source / "timestamp.txt") or str((doc.get("extra_data") or {}).get("timestamp") or "")
        secret = _read(source / "submission_secret.txt")
        name = f"{paths.ASSIGNMENT}.html"
        if secret:  # release_feedback needs the secret the student's own copy hashes with
            target = Path(feedback_dir) / student / paths.ASSIGNMENT
            write_atomic(target / name, text)
            write_atomic(target / "timestamp.txt", stamp)
            write_atomic(target / "submission_secret.txt", secret)
            staged.exchange.append(student)
        Path(zips).mkdir(parents=True, exist_ok=True)
        tmp = Path(zips) / f".{student}.zip.partial"
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(f"{paths.ASSIGNMENT}-feedback.html", text)
            tmp.replace(Path(zips) / f"{student}.zip")
        except BaseException:  # interrupted too: no half-written zip is left beside the others
            tmp.unlink(missing_ok=True)
            raise
        staged.zipped.append(student)
    return staged


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path.is_file() and not path.is_symlink() else None
    except (OSError, UnicodeDecodeError):
        return None

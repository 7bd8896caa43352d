"""The feedback page a student gets: scores per part, each test's message, their fitness
curve and their measured speedup next to the reference's. One self-contained HTML file."""

from __future__ import annotations

import base64
import html
import io

from autograder.results import category_scores


def fitness_png(history: list[list[float]]) -> str | None:
    """Best and mean return per generation as a base64 PNG (None without a history)."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gens = range(len(history))
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(gens, [max(row) for row in history], label="best")
    ax.plot(gens, [sum(row) / len(row) for row in history], label="mean")
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def page(student: str, results: dict, history: list[list[float]] | None, history_label: str,
         speedup: dict | None) -> str:
    """The HTML page for one student."""
    esc = html.escape
    parts = category_scores(results["tests"])
    rows = "".join(f"<tr><td>Part {esc(c)}</td><td>{s:g}/{m:g}</td></tr>" for c, (s, m) in parts.items())
    total = sum(m for _, m in parts.values())
    body = [f"<h1>Feedback: {esc(student)}</h1>",
            f"<table>{rows}<tr class=total><td>Total</td><td>{results['score']:g}/{total:g}</td></tr></table>"]
    for category in parts:
        body.append(f"<h2>Part {esc(category)}</h2><ul>")
        for test in (t for t in results["tests"] if t["tags"] == [category]):
            mark = "pass" if test["status"] == "passed" else "fail"
            body.append(f"<li class={mark}><b>{test['score']:g}/{test['max_score']:g}</b> {esc(test['name'])}"
                        f"<pre>{esc(test['output'])}</pre></li>")
        body.append("</ul>")
    if speedup:
        body.append("<h2>Speedup</h2>" + "".join(f"<p>{esc(k)}: {esc(v)}</p>" for k, v in speedup.items()))
    png = fitness_png(history or [])
    if png:
        body.append(f"<h2>Fitness curve</h2><p>{esc(history_label)}</p>"
                    f"<img alt='best and mean return per generation' src='data:image/png;base64,{png}'>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto} td{padding:0 1em} .total{font-weight:bold}"
             " pre{white-space:pre-wrap;background:#f4f4f4;padding:.4em} .fail b{color:#b00} .pass b{color:#070}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Feedback {esc(student)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")

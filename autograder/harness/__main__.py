"""``python -m harness JOB.json``: run the calls listed in the job, one result file per call.

The job is ``{"calls": [{"phase", "function", "kwargs", "keep", "fallback"}...], "start_method"}``, where the
optional ``fallback`` (``{"function", "kwargs"}``) is called when the first function raises and
``start_method``, if set, becomes multiprocessing's default before the submission is imported. Before a
call ``out/<phase>.started`` is written, after it ``out/<phase>.json``, so a run killed
half-way still tells the grader which call hung.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback

MAX_ITEMS = 100_000  # more numbers than any valid answer has: stop converting, report the size


def _error(exc: BaseException) -> dict:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": "".join(lines)[-3000:]}


def _numbers(values) -> list:
    import numpy as np

    array = np.asarray(values, dtype=np.float64)
    if array.size > MAX_ITEMS:
        raise ValueError(f"{array.size} numbers")
    # NaN and infinity are not JSON: send them as text, which the grader reports as "not a finite number".
    return [x if math.isfinite(x) else repr(x) for x in array.reshape(-1).tolist()]


def _describe_best(best) -> dict:
    import numpy as np

    info: dict = {"type": type(best).__name__, "arrays": {}}
    if not isinstance(best, dict):
        return info
    info["keys"] = [str(key) for key in list(best)[:20]]
    for key in ("w1", "b1", "w2", "b2"):
        if key in best:
            value = best[key]
            try:
                shape = list(np.shape(value))
                info["arrays"][key] = {"type": type(value).__name__, "shape": shape, "values": _numbers(value)}
            except Exception as exc:  # not numbers
                info["arrays"][key] = {"type": type(value).__name__, "error": str(exc)[:300]}
    return info


def _describe_history(history) -> dict:
    info: dict = {"type": type(history).__name__, "rows": []}
    try:
        rows = list(history)[:10_000]
    except Exception:
        return info
    for row in rows:
        entry: dict = {"type": type(row).__name__}
        try:
            items = list(row)
            entry["item_types"] = sorted({type(item).__name__ for item in items})
            entry["values"] = _numbers(items)
        except Exception as exc:
            entry["error"] = str(exc)[:300]
        info["rows"].append(entry)
    return info


def _describe(result, keep: str) -> dict:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"shape_error": f"returned a {type(result).__name__}, not a (best_params, history) pair"}
    best, history = result
    if keep == "summary":  # timed runs: keep the file small, the grader only counts
        return {"generations": len(history) if hasattr(history, "__len__") else None}
    return {"best": _describe_best(best), "history": _describe_history(history)}


def _write(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as fh:
        job = json.load(fh)
    os.makedirs("out", exist_ok=True)
    out = os.path.abspath("out")
    os.environ["NEUROEVO_RECORD"] = os.path.abspath(os.environ.get("NEUROEVO_RECORD", "record"))
    os.makedirs(os.environ["NEUROEVO_RECORD"], exist_ok=True)
    caller = os.getpid()
    if job.get("start_method"):
        import multiprocessing

        multiprocessing.set_start_method(job["start_method"], force=True)
    t0 = time.monotonic_ns()
    try:
        import submission
    except BaseException as exc:  # SyntaxError, NameError, SystemExit... in the student's cells
        _write(os.path.join(out, "import.json"), {"pid": caller, "error": _error(exc)})
        return 0
    _write(os.path.join(out, "import.json"), {"pid": caller, "t0": t0, "t1": time.monotonic_ns()})
    for call in job["calls"]:
        phase = call["phase"]
        _write(os.path.join(out, f"{phase}.started"), {"t0": time.monotonic_ns()})
        record = {"phase": phase, "pid": caller, "function": call["function"], "t0": time.monotonic_ns()}
        attempts = [(call["function"], call["kwargs"])]
        if call.get("fallback"):
            attempts.append((call["fallback"]["function"], call["fallback"]["kwargs"]))
        for name, kwargs in attempts:
            record["function"] = name
            try:
                function = getattr(submission, name)
                result = function(**kwargs)
                record["result"] = _describe(result, call.get("keep", "full"))
                record.pop("error", None)
                break
            except BaseException as exc:  # anything the student's code raises, SystemExit included
                record.setdefault("errors", []).append({"function": name, **_error(exc)})
                record["error"] = record["errors"][-1]
        record["t1"] = time.monotonic_ns()
        _write(os.path.join(out, f"{phase}.json"), record)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

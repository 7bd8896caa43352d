"""``python -m harness < JOB``: import the submission, make one call, write what it returned.

Every run of student code is this one process doing one call, in a fresh folder. The job
arrives on standard input as ``{"function", "kwargs", "start_method"}`` (``function`` null: import only) and is read before the
submission is imported; it holds nothing the call's own arguments do not already tell, so
a run cannot learn what the grader will do with it. The harness writes ``out/import.json``
once the submission is imported and ``out/result.json`` after the call, then tells the
sandbox's supervisor it is done (``$NEUROEVO_DONE_FD``), which ends the whole process tree:
threads or processes the submission left behind never keep a run alive.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback

MAX_ITEMS = 100_000  # more numbers than any valid answer has: stop converting, report the size
MAX_ROWS = 10_000


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
    info["keys"] = [str(key)[:50] for key in list(best)[:20]]
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
        rows = list(history)[:MAX_ROWS]
    except Exception:
        return info
    for row in rows:
        entry: dict = {"type": type(row).__name__}
        try:
            items = list(row)
            entry["item_types"] = sorted({type(item).__name__ for item in items})[:10]
            entry["values"] = _numbers(items)
        except Exception as exc:
            entry["error"] = str(exc)[:300]
        info["rows"].append(entry)
    return info


def _describe(result) -> dict:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return {"shape_error": f"returned a {type(result).__name__}, not a (best_params, history) pair"}
    best, history = result
    return {"best": _describe_best(best), "history": _describe_history(history)}


def _write(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _done() -> None:
    """Tell the supervisor the result is written: it ends the run's whole process tree now."""
    fd = os.environ.get("NEUROEVO_DONE_FD")
    if fd and fd.isdigit():
        try:
            os.write(int(fd), b"done\n")
        except OSError:
            pass
    os._exit(0)  # without the supervisor (tests), do not wait for the submission's threads


def main() -> int:
    job = json.loads(sys.stdin.read())
    sys.stdin.close()
    os.close(0)
    os.open(os.devnull, os.O_RDONLY)  # fd 0 again, now empty
    out = os.path.abspath("out")
    os.environ["NEUROEVO_RECORD"] = os.path.abspath("record")
    caller = os.getpid()
    if job.get("start_method"):
        import multiprocessing

        multiprocessing.set_start_method(job["start_method"], force=True)
    function, kwargs = job["function"], job["kwargs"]
    del job
    t0 = time.monotonic_ns()
    try:
        import submission
    except BaseException as exc:  # SyntaxError, NameError, SystemExit... in the student's cells
        _write(os.path.join(out, "import.json"), {"pid": caller, "error": _error(exc)})
        _done()
    _write(os.path.join(out, "import.json"), {"pid": caller, "t0": t0, "t1": time.monotonic_ns()})
    if function is None:  # the grader's start-up baseline: import only
        _done()
    record = {"pid": caller, "function": function, "t0": time.monotonic_ns()}
    try:
        record["result"] = _describe(getattr(submission, function)(**kwargs))
    except BaseException as exc:  # anything the student's code raises, SystemExit included
        record["error"] = _error(exc)
    record["t1"] = time.monotonic_ns()
    _write(os.path.join(out, "result.json"), record)
    sys.stdout.flush()
    sys.stderr.flush()
    _done()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

# --- Added by the autograder: every episode played is recorded --------------------------
# This text is appended to the trusted copy of evolution.py placed beside the submission, so
# ``from evolution import episode`` gets the recording version in the caller and in every
# worker. One JSON line per episode goes to <$NEUROEVO_RECORD>/<pid>.jsonl, with when it started and
# ended (the system's monotonic clock, which the grader's CPU samples share); the grader replays the
# recorded episodes with its own copy of the helper, and sets each process's claimed episodes against
# the CPU time it saw that process use, so a forged line gains nothing.
import json as _record_json
import time as _record_time

_untraced_episode = episode  # noqa: F821  (defined above in evolution.py)


def episode(params: dict, seed: int | None = None) -> float:  # noqa: F811
    started = _record_time.monotonic_ns()
    total = _untraced_episode(params, seed)
    folder = os.environ.get("NEUROEVO_RECORD")  # noqa: F821
    if folder:
        line = {
            "pid": os.getpid(),  # noqa: F821
            "t0": started,
            "t": _record_time.monotonic_ns(),
            "seed": None if seed is None else int(seed),
            "params": {key: value.tolist() for key, value in _check_params(params).items()},  # noqa: F821
            "ret": total,
        }
        with open(os.path.join(folder, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as fh:  # noqa: F821
            fh.write(_record_json.dumps(line) + "\n")
    return total


episode.__doc__ = _untraced_episode.__doc__

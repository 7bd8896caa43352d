"""Failure messages written for the student: what went wrong and the likely cause."""

from __future__ import annotations

import signal

from autograder import hints
from autograder.config import SANDBOX

PICKLE_HINT = hints.PICKLING  # the wording the notebook's tests and the self-check use too


def tail(text: str, lines: int = 8, width: int = 200) -> str:
    """The last ``lines`` non-empty lines of ``text``, each cut to ``width`` characters."""
    kept = [line[:width] for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def first_line(text: str) -> str:
    """The first non-empty line of a message, for a report that must stay on one line."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "no message")


def exception(error: dict, function: str) -> str:
    """A message for an exception the student's ``function`` raised (as the harness reported it)."""
    kind, text = str(error.get("type", "Exception")), str(error.get("message", ""))
    trace = tail(str(error.get("traceback", "")), 6)
    lowered = text.lower()
    if kind == "NotImplementedError":
        return hints.not_implemented(function)
    if hints.is_pickling_error(kind, text):
        return f"{function} failed with {kind}: {text}\n{PICKLE_HINT}"
    if kind == "AttributeError" and "module 'submission' has no attribute" in text:
        return (
            f"no function named {function} was found in your cells: keep the name and signature of "
            "the stub (and keep it in the cell it came in)"
        )
    if kind == "TypeError" and ("argument" in lowered or "keyword" in lowered) and function in text:
        return f"{function} was called as the assignment specifies and failed: {text}; keep the stub's signature"
    message = f"{function} raised {kind}: {text}"
    return message + (f"\nlast lines of the traceback:\n{trace}" if trace else "")


def run_failure(outcome, doing: str, wall_seconds: float) -> str:
    """A message for a sandboxed run that ended without writing its result while ``doing``."""
    if outcome.timed_out:
        return (
            f"timed out after {wall_seconds:.0f} s while {doing}: look for an endless loop, a Pool that "
            "is never closed or joined, or far more work than asked for (one episode per candidate per "
            "generation)"
        )
    code = outcome.returncode
    if code is None:
        return f"could not start the run while {doing}: {tail(outcome.stderr, 3)}"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        cause = (
            (
                f" (usually the memory limit of {SANDBOX.memory_bytes / 2**30:.0f} GiB or the limit of "
                f"{SANDBOX.max_processes} processes)"
            )
            if name == "SIGKILL"
            else ""
        )
        message = f"the run was killed by {name}{cause} while {doing}"
    else:
        message = f"the run stopped with exit status {code} while {doing} (did your code call exit()?)"
    if outcome.output_truncated:
        message += f"; it printed more than {SANDBOX.output_bytes // 1024} KiB (the rest was dropped)"
    err = tail(outcome.stderr)
    return message + (f"\nlast lines of stderr:\n{err}" if err else "")

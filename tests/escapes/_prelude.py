"""Put before every escape: how a student finds the grader from inside a run, with nothing but /proc."""

import glob
import json
import os
import signal


def _cmdlines():
    """(pid, argv) of every process the run can see."""
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(path, "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        yield int(path.split("/")[2]), [a.decode("utf-8", "replace") for a in argv]


def _grader_roots():
    """The --root of every autograder.gradescope_run (Gradescope's /autograder)."""
    return {argv[argv.index("--root") + 1] for _, argv in _cmdlines() if "--root" in argv[:-1]}


def _grader_pids():
    """Every process of the grader: its own, the zygotes, the launchers."""
    words = ("autograder", "zygote", "launcher")
    return [pid for pid, argv in _cmdlines() if pid != os.getpid() and any(w in " ".join(argv) for w in words)]


def _templates():
    """The template folders named in the zygotes' settings (their command lines are public)."""
    found = set()
    for _, argv in _cmdlines():
        for arg in argv:
            if arg.startswith("{") and '"template"' in arg:
                try:
                    found.add(json.loads(arg)["template"])
                except (ValueError, KeyError):
                    pass
    return found


def _kill_grader():
    """SIGKILL every grader process the run can see."""
    for pid in _grader_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

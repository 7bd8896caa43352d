"""Close the grader's files to runs that have no bubblewrap around them, and prove it with a probe run.

Under bubblewrap a run sees only its own folder and a read-only Python environment. A root
grader without it (a Docker container without user namespaces, such as Gradescope's) runs each
run as a fresh unprivileged account instead (``accounts.py``), so ordinary file permissions
decide what a run can touch. Before any student is graded, :func:`secure` therefore

1. **opens a passage** to the Python environment: a folder on its way that other users cannot
   pass through (say ``/root`` holding a pyenv interpreter) gets the pass-through bit (``o+x``)
   only, never read;
2. **closes the private folders** (the reference solution, hidden tests, the grader's code,
   submissions, results): mode 0700, owner only (the batch's scratch is pass-through only, 0711,
   and the templates in it 0700). Under bubblewrap too: its namespaces hide them from this
   grader's runs, but not from the runs of another grader on the same machine without it;
3. **probes**: a trusted script (``reach.py``) runs exactly as student code would and reports
   its ids, capabilities and what it could read or write. Anything private it can read,
   anything protected it can change, or any privilege it kept stops the batch with one line
   saying what to fix (a grader fault, exit 3), before any student is graded.

Under bubblewrap the probe runs too (it proves the namespaces hide the same paths); as a plain
user without bubblewrap nothing can be closed, and the grader's loud warning says so instead.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import accounts, bwrap
from .limits import Limits
from .process import PROCESS, isolation_mode, run

REACH = Path(__file__).resolve().with_name("reach.py")


class Exposed(RuntimeError):
    """A run could reach something it must not: the message says what and how to fix it."""


@dataclass
class Secured:
    """What :func:`secure` changed and saw."""

    passages: list[str] = field(default_factory=list)
    """Folders given the pass-through bit so runs reach the Python environment."""
    closed: list[str] = field(default_factory=list)
    """Private folders whose mode was narrowed to 0700."""
    probe: dict = field(default_factory=dict)
    """The probe run's report."""

    def describe(self) -> str:
        parts = []
        if self.passages:
            parts.append(f"gave other users pass-through only (o+x) on {', '.join(self.passages)}")
        if self.closed:
            parts.append(f"made {', '.join(self.closed)} private to the grader (mode 0700)")
        return "; ".join(parts)


def close(paths: Iterable[Path]) -> list[str]:
    """Mode 0700 on each existing private folder (0600 on a file); the paths changed."""
    changed: list[str] = []
    for path in paths:
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = 0o700 if stat.S_ISDIR(info.st_mode) else 0o600
        if stat.S_IMODE(info.st_mode) & 0o077:  # a run's account is new: it is never the owner
            os.chmod(path, wanted)
            changed.append(str(path))
    return changed


def probe(private: Iterable[Path], protected: Iterable[Path], scratch: Path) -> dict:
    """Run ``reach.py`` as a run would be run, in a new folder under ``scratch``; its report."""
    workdir = Path(tempfile.mkdtemp(prefix="probe-", dir=scratch))
    try:
        job = {"read": [str(p) for p in private], "write": [str(p) for p in protected]}
        outcome = run(
            [sys.executable, "-I", "-S", "-c", REACH.read_text(encoding="utf-8")],
            workdir=workdir,
            limits=Limits(wall_seconds=60),
            stdin=json.dumps(job).encode(),
        )
    finally:
        accounts.remove_tree(workdir)
    if outcome.returncode != 0:
        detail = (outcome.stderr.strip().splitlines() or [outcome.verdict])[-1]
        raise Exposed(
            f"a test run as an unprivileged user could not start ({detail[:200]}): every folder on the way to "
            f"the Python environment ({', '.join(map(str, bwrap.python_roots()))}) and to the scratch folder "
            f"{scratch} must let other users pass (chmod o+x), and the environment must be readable by them"
        )
    try:
        return json.loads(outcome.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise Exposed(f"the isolation probe printed no report: {outcome.stdout[-200:]!r}") from None


def verdict(report: dict, *, dropped: bool) -> str | None:
    """What is wrong in a probe's report, in one sentence for staff; None when nothing is."""
    if report.get("readable"):
        return (
            f"student code could read {', '.join(report['readable'][:3])}: make it private to the grader "
            "(chmod -R go-rwx) or grade with bubblewrap"
        )
    if report.get("writable"):
        return (
            f"student code could change {', '.join(report['writable'][:3])}: remove write access for other "
            "users (chmod -R go-w) or grade with bubblewrap"
        )
    if not report.get("own_folder"):
        return "student code could not write in its own folder: the sandbox cannot hand folders to run accounts here"
    if dropped:
        if 0 in report.get("uids", [0]) or 0 in report.get("gids", [0]) or report.get("groups"):
            return f"student code kept root's ids ({report.get('uids')}, groups {report.get('groups')})"
        if int(report.get("cap_eff") or "0", 16) or int(report.get("cap_prm") or "0", 16):
            return f"student code kept capabilities (CapEff {report.get('cap_eff')})"
        if report.get("no_new_privs") != "1":
            return "student code could gain privileges through setuid programs (no_new_privs is not set)"
    return None


def secure(private: Iterable[Path], protected: Iterable[Path], scratch: Path) -> Secured:
    """Open the passage, close ``private``, and prove with a probe run that it holds; raises :class:`Exposed`.

    ``protected``: folders a run must not change (the grader's code, its environment, results).
    Does nothing for a plain user without bubblewrap, who can neither switch accounts nor hide files.
    """
    private = [Path(p) for p in private]
    protected = [*(Path(p) for p in protected), *bwrap.python_roots()]
    mode = isolation_mode()
    root = accounts.is_root()
    if mode == PROCESS and not root:
        return Secured()
    done = Secured()
    if mode == PROCESS:  # plain permissions are the boundary: set them
        done.passages = accounts.open_passage([*bwrap.python_roots(), scratch])
    # Closed under bubblewrap too, where the namespaces already hide them from this grader's runs:
    # a run of another grader on the machine that has no bubblewrap (two courses on one server)
    # meets only file permissions, and /proc shows it where this grader's files are.
    done.closed = close(private)
    done.probe = probe(private, protected, scratch)
    problem = verdict(done.probe, dropped=root)
    if problem:
        raise Exposed(problem)
    return done

"""Run untrusted student code in a sandbox with limits.

API (used by the grader core; keep it stable):

    outcome = run(argv, workdir=Path, limits=Limits(wall_seconds=...), env={...})

``argv`` runs with ``workdir`` as its current folder. Under bubblewrap (``isolation ==
"bubblewrap"``) the run sees only ``workdir`` (read-write) and a read-only Python environment,
with no network and its own PID namespace; where bubblewrap cannot work it is a plain child
process (``"process"``) and :func:`isolation_warning` says so. Either way the grader measures
wall and CPU time from outside, keeps at most ``limits.output_bytes`` of each output stream,
and kills the whole process tree on a time, memory or process-count overrun, or when the main
process ends (no orphan ``Pool`` workers survive). ``Limits`` other than the time default to the
grader's settings (``config.SandboxSettings``). A session (``session.Session``) serves many runs of
one submission from one zygote, each handled by the same run engine (``engine.Run``).
"""

from . import cgroups
from .limits import Limits, Outcome
from .process import SandboxError, isolation_mode, isolation_warning, run

__all__ = ["Limits", "Outcome", "SandboxError", "cgroups", "isolation_mode", "isolation_warning", "run"]

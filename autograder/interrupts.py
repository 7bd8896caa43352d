"""How the grader's commands are stopped: SIGTERM as Ctrl-C, and clean-up that no second signal cuts short.

A scheduler, a container runtime or ``kill`` stops a process with SIGTERM, whose default action ends
it at once: no ``finally`` runs, so a batch's memory-backed folders would stay mounted. Inside
``terminate_as_interrupt`` SIGTERM raises KeyboardInterrupt instead, so both stops unwind the same way.
Inside ``deferred`` neither takes effect until the block is done: a second Ctrl-C (or a SIGTERM after a
Ctrl-C) cannot leave a folder mounted or an export half written.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _in_main_thread() -> bool:
    """Only the main thread may set signal handlers (and only it receives signals)."""
    return threading.current_thread() is threading.main_thread()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt inside the block, as Ctrl-C does."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class Held:
    """The stop signal that arrived while a ``deferred`` block ran (None: none did)."""

    signum: int | None = None


@contextmanager
def deferred(redeliver: bool = True) -> Iterator[Held]:
    """Ctrl-C and SIGTERM wait until the block is done.

    ``redeliver``: a signal that arrived is then raised again, with the handlers from before the block
    (KeyboardInterrupt, or the default action); otherwise the caller reads it from the yielded ``Held``.
    """
    held = Held()
    if not _in_main_thread():
        yield held
        return

    def hold(signum, frame):
        if held.signum is None:
            held.signum = signum

    previous = {signum: signal.signal(signum, hold) for signum in STOP_SIGNALS}
    try:
        yield held
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if redeliver and held.signum is not None:
            signal.raise_signal(held.signum)

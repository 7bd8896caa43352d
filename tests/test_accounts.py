"""The account a root grader gives each run: what ``accounts.end`` leaves of it (nothing), on hand-made leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from autograder.sandbox import accounts

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="accounts are switched to by a root grader"
)


def _own(path, uid):
    os.chown(path, uid, uid, follow_symlinks=False)


def test_accounts_sweep_removes_every_own_file_whatever_fills_a_folder(tmp_path, monkeypatch):
    """Files of the run's uid are all removed, in every shared folder, however many it made in one of them;
    other accounts' files stay, and world-writable folders of others are searched too."""
    uid, _ = accounts.next_ids()
    monkeypatch.setattr(accounts, "MAX_SCANNED", 5)
    shm, tmp = tmp_path / "shm", tmp_path / "tmp"
    for folder in (shm, tmp):
        folder.mkdir()
        folder.chmod(0o1777)
    for i in range(50):
        (shm / f"fill-{i}").write_text("")
        _own(shm / f"fill-{i}", uid)
    (tmp / "marker").write_text("left")
    _own(tmp / "marker", uid)
    (tmp / "someone-else").write_text("kept")
    shared = tmp / "shared-by-others"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "inner").write_text("")
    _own(shared / "inner", uid)

    removed = accounts.remove_files_of(uid, roots=(str(shm), str(tmp)))

    assert len(removed) == 52
    assert not list(shm.iterdir()) and sorted(p.name for p in tmp.iterdir()) == ["shared-by-others", "someone-else"]
    assert not list(shared.iterdir())


def test_accounts_sweep_removes_a_tree_too_deep_for_recursion(tmp_path):
    """A folder chain 3,000 levels deep is removed, not a RecursionError in the grader."""
    uid, _ = accounts.next_ids()
    root = tmp_path / "deep"
    root.mkdir()
    here = os.getcwd()
    try:
        os.chdir(root)
        for _ in range(3000):
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(here)
    _own(root, uid)
    tmp_path.chmod(0o1777)

    assert accounts.remove_files_of(uid, roots=(str(tmp_path),)) == [str(root)]
    assert not root.exists()


def test_accounts_end_kills_a_daemon_that_left_the_process_tree():
    """A double-forked, session-leading daemon of the run's uid is killed; nothing of another uid is touched."""
    uid, gid = accounts.next_ids()
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(60)\n"
    subprocess.run([sys.executable, "-I", "-S", "-c", code], user=uid, group=gid, extra_groups=[], check=True)
    deadline = time.monotonic() + 5
    while not accounts.processes_of(uid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert accounts.processes_of(uid), "the daemon did not start"

    escaped = accounts.end(uid, gid)

    assert escaped == 1 and not accounts.processes_of(uid)

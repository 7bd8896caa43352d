"""Unit tests of ``autograder.sandbox.run``: limits, crashes, leftovers and isolation.

Each behaviour runs under bubblewrap (when this machine can use it) and as a plain child
process (the fallback); the isolation tests need bubblewrap. Limits are kept to a few
seconds so the file runs quickly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from autograder.sandbox import Limits, Outcome, SandboxError, cgroups, isolation_mode, isolation_warning, run

HAVE_BWRAP = isolation_mode() == "bubblewrap"
MODES = [pytest.param("bubblewrap", marks=pytest.mark.skipif(not HAVE_BWRAP, reason=isolation_warning())), "process"]
needs_bwrap = pytest.mark.skipif(not HAVE_BWRAP, reason=isolation_warning() or "bubblewrap unusable")
PROJECT = Path(__file__).resolve().parents[1]
FAST = Limits(wall_seconds=3, memory_bytes=1 * 2**30, max_processes=24, output_bytes=64 * 1024)


def survivors(token: str) -> list[int]:
    """PIDs of live processes whose command line mentions ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in cmdline and state not in ("Z", "X"):
            found.append(int(entry))
    return found


def run_code(tmp_path: Path, source: str, mode: str, limits: Limits = FAST, **kwargs) -> tuple[Outcome, str]:
    """Run ``source`` as a script in a fresh working folder; returns the outcome and the script's token."""
    token = f"sbx_{uuid.uuid4().hex}"
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    script = workdir / f"{token}.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    outcome = run([sys.executable, script.name], workdir=workdir, limits=limits, isolation=mode, **kwargs)
    return outcome, token


@pytest.mark.parametrize("mode", MODES)
def test_run_normal_exit_reports_output_and_times(tmp_path, mode):
    """A well-behaved script: status 0, its output, the isolation used, times measured by the grader."""
    outcome, _ = run_code(tmp_path, "print('hello'); import sys; print('warn', file=sys.stderr)", mode)
    assert outcome.ok, outcome.verdict
    assert (outcome.stdout, outcome.stderr) == ("hello\n", "warn\n")
    assert outcome.isolation == mode
    assert outcome.verdict == "finished normally"
    assert 0 < outcome.wall_seconds < FAST.wall_seconds


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how, code", [("sys.exit", 7), ("os._exit", 3)])
def test_run_exit_codes_are_passed_through(tmp_path, mode, how, code):
    """sys.exit(n) and os._exit(n) give returncode n and a verdict naming the status."""
    outcome, _ = run_code(tmp_path, f"import os, sys\n{how}({code})", mode)
    assert outcome.returncode == code
    assert f"status {code}" in outcome.verdict


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "source",
    ["import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "import ctypes\nctypes.string_at(0)"],
    ids=["kill", "ctypes"],
)
def test_run_segfault_gives_negative_returncode(tmp_path, mode, source):
    """A segmentation fault is reported as returncode -SIGSEGV with a readable verdict."""
    outcome, _ = run_code(tmp_path, source, mode)
    assert outcome.returncode == -signal.SIGSEGV, outcome
    assert "SIGSEGV" in outcome.verdict and "crashed" in outcome.verdict


@pytest.mark.parametrize("mode", MODES)
def test_run_hang_is_killed_at_the_time_limit(tmp_path, mode):
    """An endless loop (with a Pool worker) is killed at the wall-clock limit, workers included."""
    source = """
        import time
        from multiprocessing import Pool
        pool = Pool(2)
        pool.map_async(time.sleep, [100, 100])
        while True:
            time.sleep(0.1)
    """
    limits = Limits(wall_seconds=1.5, memory_bytes=FAST.memory_bytes, max_processes=24)
    outcome, token = run_code(tmp_path, source, mode, limits)
    assert outcome.timed_out and not outcome.ok
    assert outcome.returncode == -signal.SIGKILL
    assert 1.5 <= outcome.wall_seconds < 4, "the run should stop right after its limit"
    assert "time limit" in outcome.verdict
    assert survivors(token) == [], "Pool workers outlived a timed-out run"


@pytest.mark.parametrize("mode", MODES)
def test_run_memory_hog_gets_a_memory_verdict(tmp_path, mode):
    """Allocating without end ends in a memory-limit verdict, not a machine out of memory."""
    source = """
        chunks = []
        while True:
            chunks.append(b"x" * 2**24)
    """
    limits = Limits(wall_seconds=10, memory_bytes=256 * 2**20, max_processes=24)
    outcome, _ = run_code(tmp_path, source, mode, limits)
    assert outcome.memory_exceeded, outcome
    assert "memory limit" in outcome.verdict
    assert not outcome.timed_out


@pytest.mark.parametrize("mode", MODES)
def test_run_memory_hog_in_pool_workers_is_stopped(tmp_path, mode):
    """Workers that each stay under the per-process cap but together exceed it are stopped."""
    source = """
        import time
        from multiprocessing import Pool

        def hog(_):
            block = b"x" * (150 * 2**20)
            time.sleep(30)
            return len(block)

        with Pool(4) as pool:
            pool.map(hog, range(4))
    """
    limits = Limits(wall_seconds=8, memory_bytes=400 * 2**20, max_processes=24)
    outcome, token = run_code(tmp_path, source, mode, limits)
    assert outcome.memory_exceeded and not outcome.timed_out, outcome
    assert "memory limit" in outcome.verdict
    assert survivors(token) == []


@pytest.mark.parametrize("mode", MODES)
def test_run_fork_bomb_is_contained(tmp_path, mode):
    """A fork bomb hits the process limit, is killed quickly and leaves nothing behind."""
    source = """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """
    # A generous time limit: the bomb must be stopped by the process limit (well before it).
    limits = Limits(wall_seconds=10, memory_bytes=FAST.memory_bytes, max_processes=20)
    outcome, token = run_code(tmp_path, source, mode, limits)
    assert outcome.process_limit_hit and not outcome.timed_out, outcome
    assert "process limit" in outcome.verdict
    deadline = time.monotonic() + 2
    while survivors(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert survivors(token) == [], "fork bomb processes survived the run"


@pytest.mark.parametrize("mode", MODES)
def test_run_output_flood_is_truncated(tmp_path, mode):
    """Megabytes of output are read and dropped beyond the cap, with the flag set."""
    source = """
        import sys
        line = "y" * 1023 + "\\n"
        for _ in range(8 * 1024):
            sys.stdout.write(line)
        sys.stderr.write(line * 2048)
    """
    outcome, _ = run_code(tmp_path, source, mode)
    assert outcome.returncode == 0
    assert outcome.output_truncated
    assert len(outcome.stdout) == FAST.output_bytes and len(outcome.stderr) == FAST.output_bytes
    assert "dropped" in outcome.verdict


@pytest.mark.parametrize("mode", MODES)
def test_run_setsid_double_fork_leaves_no_survivor(tmp_path, mode):
    """A daemon that setsid()s and double-forks is found and killed when the run ends."""
    source = """
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(60)
            os._exit(0)
        time.sleep(0.3)
    """
    outcome, token = run_code(tmp_path, source, mode)
    assert outcome.returncode == 0, outcome
    assert outcome.killed_orphans >= 1
    assert survivors(token) == [], "a double-forked daemon survived the run"


@pytest.mark.parametrize("mode", MODES)
def test_run_ends_when_the_command_says_done(tmp_path, mode):
    """Writing "done" on $NEUROEVO_DONE_FD ends the run at once: a lingering thread or process cannot keep it alive."""
    source = """
        import os, threading, time, multiprocessing
        threading.Thread(target=time.sleep, args=(60,)).start()
        multiprocessing.Process(target=time.sleep, args=(60,)).start()
        os.write(int(os.environ["NEUROEVO_DONE_FD"]), b"done")
        time.sleep(60)
    """
    start = time.perf_counter()
    outcome, token = run_code(tmp_path, source, mode, Limits(wall_seconds=30, memory_bytes=FAST.memory_bytes))
    assert outcome.ok and outcome.said_done, outcome.verdict
    assert time.perf_counter() - start < 10
    assert survivors(token) == []


@pytest.mark.parametrize("mode", MODES)
def test_run_sees_its_own_process_ids(tmp_path, mode):
    """The watchdog records the ids the run's processes had as they saw them (the records name these)."""
    source = """
        import os, time
        from multiprocessing import Pool

        def whoami(_):
            time.sleep(0.05)
            return os.getpid()

        with Pool(2) as pool:
            print(*sorted(set(pool.map(whoami, range(8), chunksize=1))), os.getpid())
    """
    outcome, _ = run_code(tmp_path, source, mode, Limits(wall_seconds=10, memory_bytes=FAST.memory_bytes))
    assert outcome.ok, outcome.verdict
    *workers, caller = [int(x) for x in outcome.stdout.split()]
    assert {caller, *workers} <= set(outcome.inner_pids), (outcome.stdout, outcome.inner_pids)


@pytest.mark.skipif(not cgroups.controller().available, reason="no writable control groups here")
@pytest.mark.parametrize("mode", MODES)
def test_run_shared_memory_counts_against_the_cap(tmp_path, mode):
    """Shared anonymous memory spread over processes is capped for the whole run by the kernel."""
    source = """
        import mmap, time
        from multiprocessing import Pool

        def hog(_):
            size = 384 * 2**20
            block = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
            for offset in range(0, size, mmap.PAGESIZE):
                block[offset] = 1
            time.sleep(20)

        with Pool(3) as pool:
            pool.map(hog, range(3), chunksize=1)
    """
    limits = Limits(wall_seconds=30, memory_bytes=768 * 2**20, max_processes=24)
    start = time.perf_counter()
    outcome, token = run_code(tmp_path, source, mode, limits)
    assert outcome.memory_exceeded and outcome.kernel_caps, outcome.verdict
    assert time.perf_counter() - start < 20, "the run was not stopped when the kernel killed a task"
    assert survivors(token) == []


@needs_bwrap
def test_isolation_keyrings_do_not_carry_between_runs(tmp_path):
    """A key added to the user or session keyring in one run is not there in the next."""
    source = """
        import ctypes, sys
        libc = ctypes.CDLL(None, use_errno=True)
        if sys.argv[1:] == ["add"]:
            for keyring in (-4, -3):
                libc.syscall(248, b"user", b"carried", b"x", 1, keyring)
        print(libc.syscall(249, b"user", b"carried", None, 0) > 0)
    """
    import platform

    if platform.machine() != "x86_64":
        pytest.skip("the probe uses x86_64 system call numbers")
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "probe.py").write_text(textwrap.dedent(source))
    first = run([sys.executable, "probe.py", "add"], workdir=workdir, limits=FAST)
    second = run([sys.executable, "probe.py"], workdir=workdir, limits=FAST)
    assert first.stdout.strip() == "True", first.stderr
    assert second.stdout.strip() == "False", "a key added in one run was read by the next"


@pytest.mark.parametrize("mode", MODES)
def test_run_file_size_is_capped(tmp_path, mode):
    """Writing a file larger than file_bytes fails ("File too large": Python ignores SIGXFSZ) instead of filling the disk."""
    source = """
        with open("big.bin", "wb") as f:
            for _ in range(64):
                f.write(b"0" * 2**20)
    """
    limits = Limits(wall_seconds=5, memory_bytes=FAST.memory_bytes, file_bytes=4 * 2**20)
    outcome, _ = run_code(tmp_path, source, mode, limits)
    assert outcome.returncode == 1 and "File too large" in outcome.stderr, outcome
    assert (tmp_path / "work" / "big.bin").stat().st_size <= 4 * 2**20


@pytest.mark.parametrize("mode", MODES)
def test_run_cpu_time_counts_pool_workers(tmp_path, mode):
    """CPU time includes the Pool workers, measured from outside the run."""
    source = """
        import time
        from multiprocessing import Pool

        def spin(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass

        with Pool(2) as pool:
            pool.map(spin, [0.4, 0.4], chunksize=1)
    """
    outcome, _ = run_code(tmp_path, source, mode, Limits(wall_seconds=10, memory_bytes=FAST.memory_bytes))
    assert outcome.ok, outcome.verdict
    assert outcome.cpu_seconds >= 0.75, f"workers' CPU time missing: {outcome.cpu_seconds:.2f} s"


@needs_bwrap
def test_isolation_cannot_read_outside_files(tmp_path):
    """Files outside the working folder (a solutions folder, the project tree) are invisible."""
    secret = tmp_path / "solutions" / "answer.py"
    secret.parent.mkdir()
    secret.write_text("ANSWER = 42\n")
    source = f"""
        import os
        for path in [{str(secret)!r}, "../solutions/answer.py", {str(PROJECT / "pyproject.toml")!r},
                     {str(PROJECT / "solutions")!r}, {str(Path.home() / ".bashrc")!r}, "/etc/passwd", "/home"]:
            print(path, os.path.exists(path))
    """
    outcome, _ = run_code(tmp_path, source, "bubblewrap")
    assert outcome.ok, outcome.stderr
    assert "True" not in outcome.stdout, f"the sandbox could see outside files:\n{outcome.stdout}"


@needs_bwrap
def test_isolation_cannot_write_outside_workdir(tmp_path):
    """Writes outside the working folder fail or vanish with the sandbox; inside it they work."""
    outside = tmp_path / "grades"
    outside.mkdir()
    source = f"""
        import sys
        open("inside.txt", "w").write("ok")
        for path in [{str(outside / "results.json")!r}, "/usr/evil", {sys.prefix + "/evil"!r}]:
            try:
                open(path, "w").write("0")
                print("wrote", path)
            except OSError as exc:
                print("refused", path, type(exc).__name__)
        open("/tmp/left_behind", "w").write("x")
    """
    outcome, _ = run_code(tmp_path, source, "bubblewrap")
    assert outcome.ok, outcome.stderr
    assert "wrote" not in outcome.stdout, outcome.stdout
    assert (tmp_path / "work" / "inside.txt").read_text() == "ok"
    assert list(outside.iterdir()) == [] and not Path(sys.prefix, "evil").exists()


@needs_bwrap
def test_isolation_private_tmp_is_capped(tmp_path):
    """The in-memory /tmp cannot eat RAM: it holds at most memory_bytes, and its pages count against the run's cap."""
    source = """
        try:
            with open("/tmp/fill", "wb") as f:
                for _ in range(64):
                    f.write(b"0" * 2**20)
        except OSError as exc:
            print(exc.strerror)
    """
    limits = Limits(wall_seconds=5, memory_bytes=32 * 2**20, file_bytes=2**30)
    outcome, _ = run_code(tmp_path, source, "bubblewrap", limits)
    if outcome.kernel_caps:  # the control group counts /tmp's pages: the run is stopped for memory first
        assert outcome.memory_exceeded, outcome
    else:
        assert outcome.stdout.strip() == "No space left on device", outcome


@needs_bwrap
def test_isolation_has_no_network(tmp_path):
    """A socket connect to a port listening on the host's 127.0.0.1 fails inside the sandbox."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        source = f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1)
                print("connected")
            except OSError as exc:
                print("refused", exc)
        """
        outcome, _ = run_code(tmp_path, source, "bubblewrap")
    assert outcome.ok, outcome.stderr
    assert outcome.stdout.startswith("refused"), outcome.stdout


@needs_bwrap
def test_isolation_has_its_own_pid_namespace(tmp_path):
    """The run sees only its own processes, with small PIDs."""
    source = """
        import os
        print(os.getpid(), sum(name.isdigit() for name in os.listdir("/proc")))
    """
    outcome, _ = run_code(tmp_path, source, "bubblewrap")
    pid, visible = map(int, outcome.stdout.split())
    assert pid < 10 and visible <= 4, f"pid {pid}, {visible} processes visible"


def test_fallback_can_be_forced_and_warns(tmp_path, monkeypatch):
    """NEUROEVO_SANDBOX=process forces plain child processes and a loud warning."""
    monkeypatch.setenv("NEUROEVO_SANDBOX", "process")
    outcome, _ = run_code(tmp_path, "print(1)", None)
    assert outcome.isolation == "process" and outcome.ok
    # As root each run is an account of its own, and the note says so; as a plain user nothing isolates.
    assert ("not in bubblewrap namespaces" if os.geteuid() == 0 else "WITHOUT isolation") in isolation_warning()


def test_fallback_warning_is_empty_when_isolated():
    """With bubblewrap working, there is nothing to warn about."""
    assert (isolation_warning() == "") == HAVE_BWRAP


def test_run_rejects_bad_requests(tmp_path, monkeypatch):
    """A missing working folder, an unknown mode or silly limits are clear errors."""
    with pytest.raises(SandboxError, match="does not exist"):
        run([sys.executable, "-c", "0"], workdir=tmp_path / "missing", limits=FAST)
    monkeypatch.setenv("NEUROEVO_SANDBOX", "docker")
    with pytest.raises(SandboxError, match="not a sandbox mode"):
        run([sys.executable, "-c", "0"], workdir=tmp_path, limits=FAST)
    with pytest.raises(ValueError, match="max_processes"):
        Limits(wall_seconds=1, max_processes=0)


SESSION_PROBE = """
import ctypes, glob, json, os, random, sys, time
import numpy as np
state = {}
for path in ("/tmp/mark", "/dev/shm/mark", "mark_here", os.path.expanduser("~/mark")):
    state[path] = os.path.exists(path)
    try:
        open(path, "w").write("x")
    except OSError:
        pass
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(0x5EED, 4096, 0o1666)  # IPC_CREAT | 0666: a SysV segment outlives its processes
state["sysv_seen"] = libc.shmget(0x5EED, 4096, 0o666) >= 0 and shm >= 0 and os.path.exists("/tmp/never")
state["pid"] = os.getpid()
state["random"] = [random.random(), float(np.random.random())]
state["cgroup"] = open("/proc/self/cgroup").read()
json.dump(state, open("out.json", "w"))
if sys.argv[1:] != ["stay"]:
    os.write(int(os.environ["NEUROEVO_DONE_FD"]), b"done")
time.sleep(60)
"""


def _session_run(session, tmp_path, limits=None):
    run_dir = Path(tempfile.mkdtemp(dir=session.runs))
    (run_dir / "harness").mkdir()
    (run_dir / "harness" / "__main__.py").write_text(SESSION_PROBE)
    os.chmod(run_dir, 0o755)
    outcome = session.run(run_dir, stdin=b"{}", limits=limits or Limits(wall_seconds=20, memory_bytes=2**30))
    state = json.loads((run_dir / "out.json").read_text()) if (run_dir / "out.json").exists() else None
    return outcome, state


@needs_bwrap
def test_session_runs_share_nothing(tmp_path):
    """Runs forked by one session: each ends at 'done', sees pid 1, fresh /tmp, /dev/shm, randomness, no earlier marks."""
    from autograder.sandbox.session import Session

    template, runs = tmp_path / "template", tmp_path / "runs"
    template.mkdir()
    runs.mkdir()
    with Session(template, runs, preload=("numpy",)) as session:
        first, state1 = _session_run(session, tmp_path)
        second, state2 = _session_run(session, tmp_path)
    for outcome, state in ((first, state1), (second, state2)):
        assert outcome.ok and outcome.said_done and outcome.wall_seconds < 10, outcome.verdict
        assert state["pid"] == 1
    assert not any(v for k, v in state2.items() if k.endswith("mark")), state2
    assert state1["random"] != state2["random"], "forked runs drew the same unseeded random numbers"
    assert state1["cgroup"] != state2["cgroup"] or "run-" not in state1["cgroup"]


def test_session_run_can_be_ended_after_generation_0(tmp_path):
    """A run asked to stop after pop_size recorded episodes ends there: generation 0 recorded, far from the whole call."""
    from autograder import observe, paths, workspace

    collector = observe.Observer(tmp_path / "reference", observe.Plan.draw(0))
    assert collector.load(paths.reference_notebook()) is None
    kwargs = {"generations": 25, "pop_size": 16, "seed": 3, "sigma": 0.5, "processes": 2}
    try:
        result = workspace.run_call(
            collector.template,
            "evolve_parallel",
            kwargs,
            wall_seconds=30,
            start_method=observe.start_method(),
            expected_episodes=25 * 16,
            session=collector.session,
            stop_after_episodes=16,
        )
        assert result.outcome.stopped and "ended by the grader" in result.outcome.verdict
        assert result.result is None, "the call was ended before it returned"
        assert 16 <= len(result.episodes) < 25 * 16 // 2, len(result.episodes)
        assert collector.first_generation_problem("evolve_parallel", {**kwargs, "seed": 4}, wall_seconds=30) is None
    finally:
        collector.close()


@pytest.mark.skipif(not HAVE_BWRAP and os.geteuid() != 0, reason="a plain user without bubblewrap closes nothing")
def test_guard_closes_private_folders_in_every_mode(tmp_path):
    """The grader's private folders become 0700 under bubblewrap too (another grader's runs on the machine may have
    no namespaces, and /proc shows them where these folders are), and the probe run reads nothing of them."""
    from autograder.sandbox import guard

    secret, protected, scratch = tmp_path / "solutions", tmp_path / "autograder", tmp_path / "scratch"
    for folder in (secret, protected, scratch):
        folder.mkdir()
    (secret / "reference.ipynb").write_text("### BEGIN SOLUTION")
    os.chmod(secret, 0o755)  # as a clone with the usual umask leaves it
    done = guard.secure([secret], [protected], scratch)
    assert secret.stat().st_mode & 0o777 == 0o700, f"{isolation_mode()}: the private folder stayed open"
    assert str(secret) in done.describe() and not done.probe.get("readable"), done.probe

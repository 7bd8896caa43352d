"""First process of a sandbox session: imports the heavy modules once, then forks one clean child per run.

It runs before any untrusted code, as:

    python zygote.py '<settings as JSON>'

Settings: ``cmd_fd`` (commands from the grader), ``status_fd`` (reports to the grader),
``template`` (the folder holding the trusted helper), ``preload`` (modules to import once),
``env`` (set before importing them). Commands, one JSON object per line:

* ``{"op": "run", "confine", "tmpfs_bytes", "private_tmp", "keep", "env", "stdin"}``: fork the run's child
  (``confine``: the launcher's settings for it); it waits for ``go`` before anything else, so the grader
  can put it in the run's control group;
* ``{"op": "go"}``: let it start;
* ``{"op": "kill"}``: kill every process of the run, reap them, report ``ended``.

Reports, one line each: ``ready PRIVATE`` (1 if runs can get their own namespaces), ``forked PID``,
``started`` (the child's trusted setup is done: from here on, what happens is the run's doing),
``done`` (the run wrote ``done`` on its done pipe: its results are on disk), ``exited STATUS``,
``ended CPU_US`` (CPU time of everything reaped for the run), ``failed TEXT``. After ``ended`` a
marker line goes to stdout and stderr so the grader can cut the session's output into runs.
Runs are strictly one at a time and carry no number: nothing in a child tells it how many
runs came before it.

The child makes the run's own world before it runs student code: a new mount and IPC namespace
with an empty size-capped ``/tmp`` and ``/dev/shm`` (where the kernel allows it), then the steps
every run takes (``launcher.confine``: the limits, a fresh uid and gid as root, a new session
keyring, the run's folder), then a job on standard input.
The zygote itself is non-dumpable and a child subreaper: orphans of a run come back to it and
are killed with the run.
"""

import ctypes
import json
import os
import resource
import runpy
import select
import signal
import sys

# A run is confined, supervised and ended as the launcher does it: it is bound beside this file.
from launcher import become_supervisor, confine, kill_leftovers, offer_done_pipe

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
MS_NOEXEC = 8
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MARKER = "\x00neuroevo-run-end\x00\n"
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _own_world(tmpfs_bytes, pid_namespace=False, keep=()):
    """A private /tmp, /dev/shm and IPC namespace (and a PID namespace) for this run, where the kernel lets us.

    ``keep``: folders the run needs that lie under /tmp or /dev/shm (a Python environment installed
    there): they are bound again, read-only, into the new empty ones.
    """
    flags = CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWPID if pid_namespace else 0)
    if _libc is None or _libc.unshare(flags) != 0:
        return False
    _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    held = {}
    for path in keep:
        try:
            held[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            continue
    options = f"size={tmpfs_bytes},mode=1777".encode()
    for target in (b"/tmp", b"/dev/shm"):
        if os.path.isdir(target) and _libc.mount(b"tmpfs", target, b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
            return False
    for path, fd in held.items():
        os.makedirs(path, exist_ok=True)
        source = f"/proc/self/fd/{fd}".encode()
        if _libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None) != 0:
            return False
        _libc.mount(None, path.encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, None)
        os.close(fd)
    return True


def _child(run, go_r, done_w, job_r, started_w, keep_path):
    """The run: wait for go, build its world, drop privileges, run the harness. Never returns.

    Under bubblewrap the run also gets a PID namespace of its own: the process running the harness
    is pid 1 there (every run sees the same ids, and none sees another's), and this process only
    waits for it, passing its exit status on.
    """
    try:
        os.read(go_r, 1)
        os.close(go_r)
        os.setsid()
        private = run.get("private_tmp")
        # Under bubblewrap only: in a plain process the run's folder may itself lie under /tmp.
        if private and not _own_world(run["tmpfs_bytes"], pid_namespace=True, keep=run.get("keep", ())):
            raise RuntimeError("no private /tmp, /dev/shm and process ids could be made for the run")
        if private:
            pid = os.fork()
            if pid:
                _pass_on(pid)
            _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
        confine(run["confine"])
        os.dup2(job_r, 0)
        os.environ.update(run["env"])
        os.environ["HOME"] = run["confine"]["cwd"]
        offer_done_pipe(done_w)
        for fd in range(3, 1024):
            if fd not in (done_w, started_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _fresh_randomness()
        os.write(started_w, b"s")  # the trusted setup is done: whatever fails from here on is the run's own
        os.close(started_w)
        sys.path[:] = [run["confine"]["cwd"]] + keep_path
        sys.argv = ["harness"]
        del run, keep_path
        runpy.run_module("harness", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException as exc:  # the harness reports the submission's errors itself; this is the world's setup
        os.write(2, f"sandbox: the run could not start: {type(exc).__name__}: {exc}\n".encode())
        os._exit(111)
    os._exit(0)


def _pass_on(pid):
    """Wait for the run's first process and end the same way (exit code or signal). Never returns."""
    for fd in range(3, 1024):
        try:
            os.close(fd)
        except OSError:
            pass
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _fresh_randomness():
    """New OS entropy for the generators every forked run would otherwise share with the zygote.

    An unseeded ``np.random.*`` or ``random.*`` call must differ from run to run, as it would in a
    new process, or a loop that forgets to seed would look deterministic.
    """
    import random

    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _note_started(current, report):
    """Report ``started`` once the child said so (non-blocking: nothing said yet leaves it for later)."""
    fd = current["started_r"]
    if fd is None:
        return
    ready, _, _ = select.select([fd], [], [], 0)
    if not ready:
        return
    if os.read(fd, 8):
        report("started")
    os.close(fd)
    current["started_r"] = None


def main():
    settings = json.loads(sys.argv[1])
    cmd_fd, status_fd = settings["cmd_fd"], settings["status_fd"]
    for fd in (cmd_fd, status_fd):
        os.set_inheritable(fd, False)
    become_supervisor()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the grader's Ctrl-C is the grader's to handle

    def report(line):
        os.write(status_fd, (line + "\n").encode())

    os.environ.update(settings["env"])
    os.chdir(settings["template"])
    sys.path.insert(0, settings["template"])
    try:
        for name in settings["preload"]:
            __import__(name)
    except BaseException as exc:
        report(f"failed preloading {name}: {type(exc).__name__}: {exc}")
        return 1
    keep_path = [p for p in sys.path if p != settings["template"]]
    probe = os.fork()
    if probe == 0:  # can this machine give each run its own /tmp, /dev/shm and IPC namespace?
        os._exit(0 if _own_world(2**20) else 1)
    _, probe_status = os.waitpid(probe, 0)
    report(f"ready {int(os.waitstatus_to_exitcode(probe_status) == 0)}")

    buffer, current = b"", None  # current: {"pid", "done_r", "go_w"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    while True:
        watch = [cmd_fd] + [current[k] for k in ("done_r", "started_r") if current and current[k] is not None]
        ready, _, _ = select.select(watch, [], [], 0.005)
        if current and current["started_r"] is not None and (current["started_r"] in ready or current["pid"]):
            _note_started(current, report)
        while current is not None and current["pid"] is not None:  # reap: note the run's own exit
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == current["pid"]:
                _note_started(current, report)  # before the exit, whatever order the pipes were read in
                report(f"exited {status}")
                current["pid"] = None
        if current and current["done_r"] in ready:
            data = os.read(current["done_r"], 64)
            if data.startswith(b"done"):
                report("done")
            if not data or data.startswith(b"done"):
                os.close(current["done_r"])
                current["done_r"] = None
        if cmd_fd not in ready:
            continue
        chunk = os.read(cmd_fd, 1 << 16)
        if not chunk:
            kill_leftovers()
            return 0
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command = json.loads(line)
            op = command["op"]
            if op == "run":
                go_r, go_w = os.pipe()
                done_r, done_w = os.pipe()
                job_r, job_w = os.pipe()
                started_r, started_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    for fd in (go_w, done_r, job_w, started_r, cmd_fd, status_fd):
                        os.close(fd)
                    _child(command, go_r, done_w, job_r, started_w, keep_path)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)  # after the fork: the child never sees it
                for fd in (go_r, done_w, job_r, started_w):
                    os.close(fd)
                os.write(job_w, command["stdin"].encode())
                os.close(job_w)
                current = {"pid": pid, "done_r": done_r, "go_w": go_w, "started_r": started_r}
                report(f"forked {pid}")
            elif op == "go" and current:
                os.write(current["go_w"], b"g")
                os.close(current["go_w"])
                current["go_w"] = None
            elif op == "kill" and current:
                kill_leftovers()
                if current["pid"] is not None:
                    report("exited 9")  # the wait status of a SIGKILL
                for fd in (current["done_r"], current.get("go_w"), current.get("started_r")):
                    if fd is not None:
                        os.close(fd)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu_us = int(((after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)) * 1e6)
                for stream in (sys.stdout, sys.stderr):
                    stream.write(MARKER)
                    stream.flush()
                report(f"ended {cpu_us}")
                current = None


if __name__ == "__main__":
    raise SystemExit(main())

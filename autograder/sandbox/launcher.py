"""First process of every sandboxed run: applies the limits, runs the command, reports how it ended.

It runs before any untrusted code, with the standard library only, as:

    python -I -S launcher.py '<settings as JSON>' COMMAND [ARGS...]

(bubblewrap shows this one file to the run read-only, not the package it lives in).

Settings: ``status_fd`` (write end of a pipe to the grader) and what :func:`confine` applies
before anything else. It writes two lines on ``status_fd``: ``started PID`` when the command is
forked and ``exited STATUS KILLED CPU_US`` when it has ended (raw wait status, leftover processes
it killed, CPU microseconds of everything it waited for: bubblewrap exits without waiting for its
init, so the grader's own ``wait4`` cannot see that time), then ``done 0|1`` (whether the command
said it was done).
The command never inherits ``status_fd``, and this process turns itself non-dumpable so the
command cannot reach the pipe through ``/proc``. As a child subreaper it adopts every orphan
of the command (Pool workers, double-forked daemons) and kills them before reporting.

The command gets the write end of a second pipe, its number in ``$NEUROEVO_DONE_FD``: once
it writes ``done`` there (its results are on disk), the run is over, and this process kills
the whole tree at once instead of waiting for threads or processes the command left running.
"""

import json
import os
import resource
import select
import signal
import sys

PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


# keyctl's system call number, by machine (the C library has no wrapper for it).
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "armv7l": 311, "i686": 288, "ppc64le": 311, "s390x": 280}
KEYCTL_JOIN_SESSION_KEYRING = 1


def _new_session_keyring() -> None:
    """Replace the session keyring inherited from the grader with a new, empty one of this run's own.

    Keys live in the kernel, not in files: without this, a key one run adds to the shared session
    keyring would be there for the next. (The user keyring is per uid, and each run gets a new uid.)
    """
    number = _SYS_KEYCTL.get(os.uname().machine)
    if not sys.platform.startswith("linux") or number is None:
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None, 0, 0, 0)


def drop_privileges(uid: int, gid: int) -> None:
    """Become ``uid``/``gid`` for good: no supplementary groups, no capabilities, no way back up.

    Switching every id away from root clears all capabilities; no_new_privs keeps setuid programs
    and file capabilities from granting any again. Checked, not assumed: a switch that did not
    take raises, and the run never starts.
    """
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        raise PermissionError(f"could not switch to uid {uid} and gid {gid}")
    if sys.platform.startswith("linux"):
        with open("/proc/self/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        if int(fields.get("CapEff", "0").strip(), 16) or int(fields.get("CapPrm", "0").strip(), 16):
            raise PermissionError(f"uid {uid} kept capabilities")


def _cap(kind: int, value: int) -> None:
    soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def confine(settings: dict) -> None:
    """Make this process the run's before anything of the run's runs, in the launcher and a session's zygote
    alike (``settings``: ``engine.Run.confinement``): limits while any can still be set (no core files, no POSIX
    message queues, which outlive processes and folders, memory, file size, processes), then the run's account
    for good, a session keyring of its own, and its folder."""
    _cap(resource.RLIMIT_CORE, 0)
    _cap(resource.RLIMIT_MSGQUEUE, 0)
    _cap(resource.RLIMIT_AS, settings["memory_bytes"])
    _cap(resource.RLIMIT_FSIZE, settings["file_bytes"])
    if settings.get("nproc"):
        _cap(resource.RLIMIT_NPROC, settings["nproc"])
    if settings.get("uid") is not None:
        drop_privileges(settings["uid"], settings["gid"])
    _new_session_keyring()
    os.chdir(settings["cwd"])


def become_supervisor() -> None:
    """Turn this process into a run's supervisor: non-dumpable, so the run cannot reach its pipes through
    ``/proc``, and a child subreaper, so every orphan of the run comes back here to be killed with it."""
    _prctl(PR_SET_DUMPABLE, 0)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def offer_done_pipe(done_w: int) -> None:
    """Hand the write end of the done pipe down to the run, its number in ``$NEUROEVO_DONE_FD``."""
    os.set_inheritable(done_w, True)
    os.environ["NEUROEVO_DONE_FD"] = str(done_w)


def _children() -> list:
    """PIDs whose parent is this process (orphans of the command land here too)."""
    me = os.getpid()
    try:
        text = open(f"/proc/{me}/task/{me}/children").read()
        return [int(pid) for pid in text.split()]
    except OSError:
        pass
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.append(int(entry))
    return found


def _reap_all() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def kill_leftovers() -> int:
    """Kill every remaining descendant; orphans are re-parented here (a subreaper), so loop until none is left.

    The supervisor's end of every run, in the launcher and in a session's zygote alike."""
    killed = set()
    for _ in range(10000):
        _reap_all()
        alive = _children()
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except (ProcessLookupError, PermissionError):
                pass
        for pid in alive:  # wait for each, so its own children are re-parented to us
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    return len(killed)


def _wait(pid: int, done_r: int) -> tuple:
    """Wait until the command exits or says it is done; (raw wait status, whether it said done)."""
    watching = True
    while True:
        try:
            reaped, raw = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0, False
        if reaped == pid:
            return raw, False
        if reaped:
            continue  # an orphan adopted here: reap the next one at once
        if not watching:
            select.select([], [], [], 0.005)
            continue
        ready, _, _ = select.select([done_r], [], [], 0.005)
        if ready:
            try:
                data = os.read(done_r, 64)
            except OSError:
                data = b""
            if data.startswith(b"done"):
                return 0, True
            if not data:  # every holder closed it without a word: only the exit is left to wait for
                watching = False


def main() -> int:
    settings = json.loads(sys.argv[1])
    command = sys.argv[2:]
    status_fd = settings["status_fd"]
    os.set_inheritable(status_fd, False)
    confine(settings)
    become_supervisor()

    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(status_fd)
            os.close(done_r)
            offer_done_pipe(done_w)
            os.execvp(command[0], command)
        except OSError as exc:
            os.write(2, f"sandbox: cannot start {command[0]}: {exc.strerror}\n".encode())
        os._exit(127)
    os.close(done_w)
    os.write(status_fd, f"started {pid}\n".encode())
    status, said_done = _wait(pid, done_r)
    killed = kill_leftovers()
    # Everything this process waited for: the command, its waited-for workers, the leftovers.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_us = int((usage.ru_utime + usage.ru_stime) * 1e6)
    os.write(status_fd, f"exited {status} {killed} {cpu_us}\ndone {int(said_done)}\n".encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

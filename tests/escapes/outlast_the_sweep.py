"""Leaves state behind for a later run: a folder tree 3,000 levels deep in /dev/shm (which once crashed the
clean-up with a RecursionError, so the grader wrote no results.json), marker files in every shared
folder after a thousand filler files, and a POSIX message queue (which outlived the grading when
/dev/mqueue was not mounted, and later runs of other uids found it).
"""

import ctypes


def _deep(root, depth=3000):
    try:
        os.mkdir(root)
    except OSError:
        return
    here = os.open(".", os.O_RDONLY)
    try:
        os.chdir(root)
        for _ in range(depth):
            os.mkdir("d")
            os.chdir("d")
    except OSError:
        pass
    finally:
        os.fchdir(here)
        os.close(here)


_deep(f"/dev/shm/neuroevo-escape-deep-{os.getpid()}")
for _folder in ("/dev/shm", "/run/lock", "/tmp", "/var/tmp"):
    try:
        for _i in range(1000 if _folder == "/dev/shm" else 0):
            open(f"{_folder}/neuroevo-escape-fill-{os.getpid()}-{_i}", "w").close()
        with open(f"{_folder}/neuroevo-escape-marker-{os.getpid()}", "w") as _fh:
            _fh.write("left behind")
    except OSError:
        pass
try:  # O_CREAT | O_RDWR, mode 0666, default attributes
    ctypes.CDLL(None, use_errno=True).mq_open(b"/neuroevo-escape", 0o100 | 0o2, 0o666, None)
except (AttributeError, OSError):
    pass


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    raise NotImplementedError()


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    raise NotImplementedError()

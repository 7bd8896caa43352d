"""Turns the files the grader reads back into traps: symlinks to /dev/zero and a FIFO.

The harness writes each result with os.replace; patched, that leaves a symlink instead, and
the episode records get a /dev/zero symlink and a FIFO beside them. A grader that followed
them would read forever or block; the sandbox removes them, so the run just has no results.
"""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = ""


def _trap(src, dst):
    os.unlink(src)
    os.symlink("/dev/zero", dst)


os.replace = _trap
_records = os.environ.get("NEUROEVO_RECORD", "record")
os.makedirs(_records, exist_ok=True)
os.symlink("/dev/zero", os.path.join(_records, "zzz.jsonl"))
os.mkfifo(os.path.join(_records, "fifo.jsonl"))


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return {}, []


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return {}, []

"""The solution cell signals every process it can reach, its parent first.

Its own process may finish the job before the sandbox is torn down, so the run can still
report results: the functions return nothing useful, and the other students are unaffected.
"""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = ""
NEEDS_ISOLATION = True  # without a PID namespace this would kill the grader (and more)

import signal

os.kill(os.getppid(), signal.SIGKILL)
os.kill(-1, signal.SIGKILL)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return {}, []


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return {}, []

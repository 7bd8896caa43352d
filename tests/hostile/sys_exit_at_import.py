"""The solution cell calls sys.exit() when it runs (left over from a script)."""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = "SystemExit"

import sys

sys.exit(3)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return {}, []


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return {}, []

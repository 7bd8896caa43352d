"""The solution cell segfaults as soon as it runs, before any function is called."""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = "SIGSEGV"

import ctypes

ctypes.string_at(0)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return {}, []


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return {}, []

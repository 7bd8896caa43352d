"""evolve_serial returns None; evolve_parallel returns strings and a bare number."""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = "NoneType"


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return None


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return "best_params", 42

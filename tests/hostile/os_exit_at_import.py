"""The solution cell ends the process with os._exit(0): no exception, no result, status 0."""

LOSES = ("serial", "parallel", "determinism", "speedup", "agent")
MESSAGE = "exit status 0"

os._exit(0)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return {}, []


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return {}, []

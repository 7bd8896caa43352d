"""Both functions return lazy generators instead of a dict and lists."""

LOSES = ("serial", "parallel", "determinism", "agent")
MAY_LOSE = ("speedup",)
MESSAGE = "generator"


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    best = (value for value in initialize_parameters(I_SIZE, H_SIZE, O_SIZE).values())
    history = ((float(g) for _ in range(pop_size)) for g in range(generations))
    return best, history


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return evolve_serial(generations, pop_size, seed, sigma)

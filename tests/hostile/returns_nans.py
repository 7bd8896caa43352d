"""The loop runs, but every return and every parameter is NaN."""

LOSES = ("serial", "parallel", "determinism", "agent")
MAY_LOSE = ("speedup",)
MESSAGE = "not a finite number"


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    best = {key: np.full_like(value, np.nan) for key, value in initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng).items()}
    return best, [[float("nan")] * pop_size for _ in range(generations)]


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return evolve_serial(generations, pop_size, seed, sigma)

"""evolve_parallel hands the whole generation to the pool as one chunk (chunksize=pop_size): one worker
plays every episode of it while the others wait, so the loop is correct but no faster than the serial one."""

LOSES = ("speedup",)
MESSAGE = "took turns"


def _run(generations, pop_size, seed, sigma, mapper):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(mapper(partial(episode, seed=episode_seed), population))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _run(generations, pop_size, seed, sigma, map)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        return _run(generations, pop_size, seed, sigma, partial(pool.map, chunksize=pop_size))

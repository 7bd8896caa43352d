"""Each Pool worker fills most of a process's memory cap: together they go far over the run's limit."""

LOSES = ("parallel", "determinism", "speedup")
MESSAGE = "memory"


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(map(partial(episode, seed=episode_seed), population))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def _greedy(params):
    block = b"x" * (1700 * 2**20)
    time.sleep(60)
    return len(block)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        pool.map(_greedy, range(pop_size), chunksize=1)
    return {}, []

"""Keeps the best candidate seen so far as the parent, and returns it: when a generation does worse than an
earlier one, the next generation is sampled around the earlier generation's best (elitism by return)."""

LOSES = ("serial", "parallel", "speedup", "agent")
MESSAGE = "earlier generation"


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    parent, parent_return = None, -np.inf
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(map(partial(episode, seed=episode_seed), population))
        history.append(returns)
        if max(returns) > parent_return:
            parent, parent_return = population[int(np.argmax(returns))], max(returns)
        if generation + 1 < generations:
            population = [sample_params(parent, rng, sigma) for _ in range(pop_size)]
    return parent, history


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    parent, parent_return = None, -np.inf
    with Pool(processes) as pool:
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = pool.map(partial(episode, seed=episode_seed), population)
            history.append(returns)
            if max(returns) > parent_return:
                parent, parent_return = population[int(np.argmax(returns))], max(returns)
            if generation + 1 < generations:
                population = [sample_params(parent, rng, sigma) for _ in range(pop_size)]
    return parent, history

"""Correct, with its own order of draws (the episode seed before the population, the next generation
before recording the history), the same in both functions."""

LOSES = ()


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    episode_seed = int(rng.integers(2**31 - 1))
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        returns = [episode(candidate, seed=episode_seed) for candidate in population]
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            episode_seed = int(rng.integers(2**31 - 1))
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
        history.append(returns)
    return best, history


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    rng = np.random.default_rng(seed)
    episode_seed = int(rng.integers(2**31 - 1))
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        for generation in range(generations):
            returns = pool.map(partial(episode, seed=episode_seed), population)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                episode_seed = int(rng.integers(2**31 - 1))
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
            history.append(returns)
    return best, history

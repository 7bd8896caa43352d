"""Correct, testing each generation with pool.imap (which keeps the order of the population), in chunks of 2.

Small chunks keep both workers busy at any population size: chunks of 6 (what map picks for the real
48 candidates) leave 2 workers 2 chunks each at the test budgets' 24, whose episode lengths differ enough
that such a loop loses most of the speedup points there, which would measure chunking, not imap."""

LOSES = ()


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


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = list(pool.imap(partial(episode, seed=episode_seed), population, chunksize=2))
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history

"""A new episode seed for every candidate: candidates are compared on different start states."""

LOSES = ("serial", "parallel", "agent")


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        seeds = [int(rng.integers(2**31 - 1)) for _ in population]
        returns = list(map(episode, population, seeds))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        for generation in range(generations):
            seeds = [int(rng.integers(2**31 - 1)) for _ in population]
            returns = pool.starmap(episode, zip(population, seeds))
            history.append(returns)
            best = population[int(np.argmax(returns))]
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history

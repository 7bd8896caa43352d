"""The workers sample the new candidates with np.random: the result depends on the worker split."""

LOSES = ("determinism",)


def _sample_and_test(job):
    best, sigma, episode_seed = job
    candidate = best if sigma is None else sample_params(best, np.random.default_rng(), sigma)
    return candidate, episode(candidate, seed=episode_seed)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(map(partial(episode, seed=episode_seed), population))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        episode_seed = int(rng.integers(2**31 - 1))
        results = pool.map(_sample_and_test, [(p, None, episode_seed) for p in population])
        for generation in range(generations):
            population = [candidate for candidate, _ in results]
            returns = [ret for _, ret in results]
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                episode_seed = int(rng.integers(2**31 - 1))
                results = pool.map(_sample_and_test, [(best, sigma, episode_seed)] * pop_size)
    return best, history

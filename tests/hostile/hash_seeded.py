"""Seeds its generator with the seed and the hash of a string: the same in every run of one interpreter
(and under a grader that pins PYTHONHASHSEED), but different after every restart of a notebook, so the
seed alone does not fix the result."""

LOSES = ("determinism",)
MESSAGE = "gave different returns"


def _rng(seed):
    return np.random.default_rng([seed, hash("neuroevolution") & 0xFFFFFFFF])


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    rng = _rng(seed)
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
    rng = _rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = pool.map(partial(episode, seed=episode_seed), population)
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history

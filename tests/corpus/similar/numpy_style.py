# Written independently of original.py: numpy arrays, a generation helper, functools.partial.

import functools


def _next_generation(parent, rng, sigma, n):
    return [sample_params(parent, rng, sigma) for k in range(n)]


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    """Serial evolution."""
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for k in range(pop_size)]
    log = []
    for _ in range(generations):
        s = rng.integers(2**31 - 1)
        fitness = np.array([episode(p, int(s)) for p in population])
        log.append(fitness.tolist())
        elite = population[fitness.argmax()]
        population = _next_generation(elite, rng, sigma, pop_size)
    return elite, log


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    """Parallel evolution."""
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for k in range(pop_size)]
    log = []
    with Pool(processes=processes) as p:
        for _ in range(generations):
            s = rng.integers(2**31 - 1)
            fitness = np.array(p.map(functools.partial(episode, seed=int(s)), population))
            log.append(fitness.tolist())
            elite = population[fitness.argmax()]
            population = _next_generation(elite, rng, sigma, pop_size)
    return elite, log

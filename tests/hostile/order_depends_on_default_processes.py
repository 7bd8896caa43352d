"""evolve_parallel keeps population order only for processes 1, 2 and 3, the counts the grader once compared:
with the default processes=None (or more than 3) its history is in another order (first seen as
imap_unordered's completion order; here reversed, so the difference shows every time)."""

LOSES = ('determinism',)
MESSAGE = 'processes=None'

def _run(generations, pop_size, seed, sigma, mapper):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for g in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        pairs = mapper(episode_seed, population)  # (index, return) pairs, in some order
        history.append([r for _, r in pairs])
        best = population[max(pairs, key=lambda p: p[1])[0]]
        if g + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def _indexed_episode(item, seed):
    index, params = item
    return index, episode(params, seed=seed)


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _run(generations, pop_size, seed, sigma,
                lambda s, pop: [(i, episode(p, seed=s)) for i, p in enumerate(pop)])


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        if processes is None or processes > 3:
            # numbers of processes the grader never compared: returns in another order
            mapper = lambda s, pop: sorted(pool.map(partial(_indexed_episode, seed=s), enumerate(pop)), key=lambda p: -p[0])
        else:
            mapper = lambda s, pop: pool.map(partial(_indexed_episode, seed=s), enumerate(pop))
        return _run(generations, pop_size, seed, sigma, mapper)

# original.py copied, then every name changed, comments and docstrings added, the layout redone.

# my own helper to evaluate everybody
def evaluate_everyone(population,  episode_seed) :
    results = []   # returns, in order
    for candidate in population :
        results.append( episode(candidate, seed = episode_seed) )
    return results

def evolve_serial(generations, pop_size, seed, sigma=1.0):
    """Runs the generate / test / select loop."""
    random_gen = np.random.default_rng(seed)
    # generation zero
    population = []
    for idx in range(pop_size):
        population.append(initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng = random_gen))
    history = []
    best_params = None
    current = 0
    while current < generations:
        # same start state for everyone
        episode_seed = int(random_gen.integers(0, 2**31-1))
        returns = evaluate_everyone(population, episode_seed)
        history.append(returns)
        best_index = 0
        for idx in range(1, len(returns)):
            if returns[idx] > returns[best_index]:
                best_index = idx
        best_params = population[best_index]
        population = []
        for idx in range(pop_size):
            population.append(sample_params(best_params, random_gen, sigma))
        current += 1
    return best_params, history

def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    """Same thing, with a pool of worker processes."""
    random_gen = np.random.default_rng(seed)
    population = []
    for idx in range(pop_size):
        population.append(initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng = random_gen))
    history = []
    best_params = None
    pool = Pool(processes)
    try:
        for current in range(generations):
            episode_seed = int(random_gen.integers(0, 2**31-1))
            returns = pool.starmap(episode, [(candidate, episode_seed) for candidate in population])
            history.append(returns)
            best_index = 0
            for idx in range(1, len(returns)):
                if returns[idx] > returns[best_index]:
                    best_index = idx
            best_params = population[best_index]
            population = []
            for idx in range(pop_size):
                population.append(sample_params(best_params, random_gen, sigma))
    finally:
        pool.close()
        pool.join()
    return best_params, history

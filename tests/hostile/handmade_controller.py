"""A correct loop whose long runs (training budgets) return a hand-made controller instead of the
selected candidate: action = sign(velocity), which solves the task from most start states."""

LOSES = ("agent",)
MESSAGE = "not tested in its last generation"

def _handmade():
    # Push in the direction of the velocity: w1 copies the velocity into every hidden unit, w2 sums them.
    return {"w1": np.array([[0.0] * 10, [60.0] * 10]), "b1": np.zeros(10),
            "w2": np.full((10, 1), 3.0), "b2": np.zeros(1)}


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
            returns = pool.map(partial(episode, seed=episode_seed), population)
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return (_handmade() if generations > 3 else best), history

"""Appends one deeply nested JSON line to its own episode record (nesting that makes a recursive
JSON parser fail). The loop itself is correct, apart from the tampering."""

LOSES = ("serial", "parallel", "speedup", "agent")
MESSAGE = "nested too deeply"


def _poison():
    folder = os.environ.get("NEUROEVO_RECORD") or "record"
    try:
        with open(os.path.join(folder, f"{os.getpid()}.jsonl"), "a") as fh:
            fh.write("[" * 5_000 + "]" * 5_000 + "\n")  # short enough to be read, too deep to parse recursively
    except OSError:
        pass


_poison()


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
    return best, history

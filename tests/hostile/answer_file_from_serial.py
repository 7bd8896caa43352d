"""evolve_serial leaves its answer in a file (in its folder, /tmp and /dev/shm); evolve_parallel returns
a saved answer without playing anything when it finds one, else it works correctly. When every run
starts clean it never finds one, so it earns full marks honestly; a leak would cost it the parallel
category (a run that plays nothing)."""

LOSES = ()
MAY_LOSE = ("speedup",)  # timing noise on a busy machine
MESSAGE = ""
NEEDS_ISOLATION = True

import json

_FILES = ["answer.json", "/tmp/answer.json", "/dev/shm/answer.json"]


def _key(generations, pop_size, seed, sigma):
    return f"{generations}-{pop_size}-{seed}-{sigma}"


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


def _serial_then_save(generations, pop_size, seed, sigma=1.0):
    best, history = _serial_inner(generations, pop_size, seed, sigma)
    text = json.dumps({"key": _key(generations, pop_size, seed, sigma),
                       "best": {k: v.tolist() for k, v in best.items()}, "history": history})
    for path in _FILES:
        try:
            with open(path, "w") as fh:
                fh.write(text)
        except OSError:
            pass
    return best, history


_serial_inner = evolve_serial
evolve_serial = _serial_then_save


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    for path in _FILES:
        try:
            saved = json.load(open(path))
        except (OSError, ValueError):
            continue
        if saved["key"] == _key(generations, pop_size, seed, sigma):
            return {k: np.array(v) for k, v in saved["best"].items()}, saved["history"]
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

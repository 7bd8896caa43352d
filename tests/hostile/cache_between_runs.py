"""Unseeded: draws from np.random.default_rng() with no seed, but caches each seed's answer in every
place that might outlive a run (./.cache, /tmp, /dev/shm, $HOME) and replays it, so that two runs
with the same seed agree. Only a grader that starts every run clean sees the missing seeding."""

LOSES = ("determinism",)
MAY_LOSE = ("speedup",)  # timing noise on a busy machine
MESSAGE = "gave different returns"
NEEDS_ISOLATION = True

import pickle

_PLACES = ["./.cache", "/tmp/.neuroevo-cache", "/dev/shm/.neuroevo-cache", os.path.expanduser("~/.neuroevo-cache")]


def _remembered(key):
    for place in _PLACES:
        try:
            with open(os.path.join(place, key), "rb") as fh:
                return pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError):
            continue
    return None


def _remember(key, value):
    for place in _PLACES:
        try:
            os.makedirs(place, exist_ok=True)
            with open(os.path.join(place, key), "wb") as fh:
                pickle.dump(value, fh)
        except OSError:
            continue


def _loop(generations, pop_size, seed, sigma, mapper):
    key = f"{generations}-{pop_size}-{seed}-{sigma}"
    draws = _remembered(key)
    rng = np.random.default_rng()  # no seed: every run different, unless the cache survives
    if draws is None:
        draws = {"state": rng.bit_generator.state}
        _remember(key, draws)
    rng.bit_generator.state = draws["state"]
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = mapper(partial(episode, seed=episode_seed), population)
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _loop(generations, pop_size, seed, sigma, lambda f, xs: list(map(f, xs)))


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        return _loop(generations, pop_size, seed, sigma, pool.map)

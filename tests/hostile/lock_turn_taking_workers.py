"""Pool workers take turns on a shared lock, one episode at a time, and sleep while they wait: every
episode is played by a worker process, the CPU time looks like one busy core, and no two episodes are
ever played at once (no speedup on any machine)."""

LOSES = ("speedup",)
MESSAGE = "took turns"

import multiprocessing as _mp

_TURN = [None]


def _take_turns(lock):
    _TURN[0] = lock


def _play_in_turn(params, seed):
    with _TURN[0]:
        return episode(params, seed=seed)


def _run(generations, pop_size, seed, sigma, mapper, play):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(mapper(partial(play, seed=episode_seed), population))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _run(generations, pop_size, seed, sigma, map, episode)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes, initializer=_take_turns, initargs=(_mp.Lock(),)) as pool:
        return _run(generations, pop_size, seed, sigma, partial(pool.map, chunksize=1), _play_in_turn)

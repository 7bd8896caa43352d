"""Workers play their episodes one at a time behind a shared lock and busy-wait while waiting, so no
episode overlaps another (speedup 0.88x) yet CPU time per wall second is about 1.9: it once earned the
"used more than one core" points, and on a busy grader the speedup points."""

LOSES = ('speedup',)
MESSAGE = 'took turns'

import multiprocessing as _mp

_LOCK = [None]


def _init_worker(lock):
    _LOCK[0] = lock


def _one_at_a_time(params, seed):
    """Play the episode while holding a lock shared by all workers; wait for it by spinning."""
    lock = _LOCK[0]
    while not lock.acquire(block=False):
        pass  # busy-wait: burns a core, so CPU time looks parallel
    try:
        return episode(params, seed=seed)
    finally:
        lock.release()


def _run(generations, pop_size, seed, sigma, mapper, play):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for g in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(mapper(partial(play, seed=episode_seed), population))
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if g + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _run(generations, pop_size, seed, sigma, map, episode)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes, initializer=_init_worker, initargs=(_mp.Lock(),)) as pool:
        return _run(generations, pop_size, seed, sigma, partial(pool.map, chunksize=1), _one_at_a_time)

"""Patches gymnasium's MountainCar step with a busy pause in every process except this cell's own workers, to slow the reference's timings, with serialised spin-lock workers (no real speedup)."""

LOSES = ('speedup',)
MESSAGE = 'no real speedup'

import multiprocessing as _mp

from gymnasium.envs.classic_control import continuous_mountain_car as _cmc

_LOCK = [None]
_FAST = [False]  # True only inside this cell's own workers
_real_step = _cmc.Continuous_MountainCarEnv.step


def _step(self, action):
    """The environment's step, plus a busy pause everywhere except in this cell's own workers."""
    if not _FAST[0]:
        end = time.perf_counter() + 15e-6
        while time.perf_counter() < end:
            pass
    return _real_step(self, action)


_cmc.Continuous_MountainCarEnv.step = _step  # every env in this process and its forks


def _init_worker(lock):
    _LOCK[0] = lock
    _FAST[0] = True


def _one_at_a_time(params, seed):
    """Play the episode while holding a lock shared by all workers; wait for it by spinning."""
    lock = _LOCK[0]
    while not lock.acquire(block=False):
        pass
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

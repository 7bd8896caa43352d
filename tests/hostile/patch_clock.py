"""Fakes a speedup: evolve_parallel runs serially but slows down every clock and claims many cores."""

LOSES = ("parallel", "speedup")
MAY_LOSE = ("determinism",)
MESSAGE = ""

import multiprocessing


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


def _slow(clock):
    def slowed(*args):
        return clock(*args) / 8

    return slowed


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    for name in ("perf_counter", "time", "monotonic", "process_time"):
        setattr(time, name, _slow(getattr(time, name)))
    for name in ("perf_counter_ns", "time_ns", "monotonic_ns"):
        setattr(time, name, lambda clock=getattr(time, name): clock() // 8)
    os.cpu_count = multiprocessing.cpu_count = lambda: 64
    return evolve_serial(generations, pop_size, seed, sigma)

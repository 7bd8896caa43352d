"""Speedup without parallelism: evolve_serial sleeps as long as it worked once the population is large
(the timed size), and evolve_parallel runs the same loop in the calling process while a busy-loop
process keeps the other core warm, so the CPU time looks parallel too."""

LOSES = ("parallel", "speedup")
MESSAGE = "calling process"

import multiprocessing


def _spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


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


def _serial_loop(generations, pop_size, seed, sigma):
    return evolve_serial.__wrapped__(generations, pop_size, seed, sigma)


def _slowed(function):
    def slowed(generations, pop_size, seed, sigma=1.0):
        start = time.perf_counter()
        answer = function(generations, pop_size, seed, sigma)
        if pop_size >= 40:
            time.sleep(time.perf_counter() - start)
        return answer
    slowed.__wrapped__ = function
    return slowed


evolve_serial = _slowed(evolve_serial)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    spinner = multiprocessing.Process(target=_spin, args=(5.0,), daemon=True)
    spinner.start()
    try:
        return _serial_loop(generations, pop_size, seed, sigma)
    finally:
        spinner.terminate()

"""Three processes each map 1.5 GiB of shared anonymous memory (MAP_SHARED | MAP_ANONYMOUS) and touch
every page: 4.5 GiB in all against the 3 GiB cap, which limits counted per process never see."""

LOSES = ("parallel", "determinism", "speedup")
MAY_LOSE = ("agent",)
MESSAGE = "memory"
NEEDS_KERNEL_CAPS = True

import mmap
import multiprocessing


def _hog(_):
    size = 1536 * 2**20
    block = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    page = b"x" * mmap.PAGESIZE
    for offset in range(0, size, mmap.PAGESIZE):
        block[offset:offset + mmap.PAGESIZE] = page
    time.sleep(30)
    return 0


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
    with multiprocessing.Pool(3) as pool:
        pool.map(_hog, range(3))
    return evolve_serial(generations, pop_size, seed, sigma)

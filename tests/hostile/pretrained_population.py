"""No evolution at all: every generation of every run is copies of one hand-made controller (push in the
direction of the velocity), played honestly, one episode seed per generation drawn from the seeded rng. Its
runs are perfectly reproducible, but nothing about them comes from the seed's draws, so it must earn no
determinism points either (found by a student's-eye attack: it once got the full 20)."""

LOSES = ("serial", "parallel", "determinism", "agent")
MESSAGE = "determinism is judged only once the seed draws the candidates"


def _controller():
    return {"w1": np.array([[0.0] * 10, [60.0] * 10]), "b1": np.zeros(10),
            "w2": np.full((10, 1), 3.0), "b2": np.zeros(1)}


def _loop(mapper, generations, pop_size, seed):
    rng = np.random.default_rng(seed)
    history = []
    for generation in range(generations):
        population = [_controller() for _ in range(pop_size)]
        episode_seed = int(rng.integers(2**31 - 1))
        history.append(list(mapper(partial(episode, seed=episode_seed), population)))
    return population[0], history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _loop(map, generations, pop_size, seed)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        return _loop(pool.map, generations, pop_size, seed)

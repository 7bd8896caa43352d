"""Returns objects whose == always says True instead of real parameters and returns."""

LOSES = ("serial", "parallel", "determinism", "agent")
MAY_LOSE = ("speedup",)


class Anything:
    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    best = {key: Anything() for key in ("w1", "b1", "w2", "b2")}
    return best, [[Anything() for _ in range(pop_size)] for _ in range(generations)]


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    return evolve_serial(generations, pop_size, seed, sigma)

# Written independently of original.py: a lambda in map, max over (return, index), a pool closed by hand.

def evolve_serial(generations, pop_size, seed, sigma=1.0):
    r = np.random.default_rng(seed)
    people = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=r) for _ in range(pop_size)]
    hist = []
    for gen in range(generations):
        es = int(r.integers(2**31 - 1))
        rets = list(map(lambda c: episode(c, seed=es), people))
        hist.append(rets)
        best = max(zip(rets, range(len(rets))))[1]
        winner = people[best]
        people = [sample_params(winner, r, sigma) for _ in range(pop_size)]
    print("done", len(hist))
    return winner, hist


def _play(args):
    params, es = args
    return episode(params, seed=es)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    r = np.random.default_rng(seed)
    people = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=r) for _ in range(pop_size)]
    hist = []
    pool = Pool(processes)
    for gen in range(generations):
        es = int(r.integers(2**31 - 1))
        rets = pool.map(_play, [(c, es) for c in people])
        hist.append(rets)
        best = max(zip(rets, range(len(rets))))[1]
        winner = people[best]
        people = [sample_params(winner, r, sigma) for _ in range(pop_size)]
    pool.close()
    return winner, hist

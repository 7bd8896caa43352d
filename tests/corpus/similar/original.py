# A correct solution in a style of its own: explicit loops, a helper, a while loop, starmap.

def play_all(candidates, start):
    scores = []
    for net in candidates:
        scores.append(episode(net, seed=start))
    return scores


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    gen = np.random.default_rng(seed)
    pop = []
    for i in range(pop_size):
        pop.append(initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=gen))
    all_scores = []
    champion = None
    g = 0
    while g < generations:
        start = int(gen.integers(0, 2**31 - 1))
        scores = play_all(pop, start)
        all_scores.append(scores)
        top = 0
        for i in range(1, len(scores)):
            if scores[i] > scores[top]:
                top = i
        champion = pop[top]
        pop = []
        for i in range(pop_size):
            pop.append(sample_params(champion, gen, sigma))
        g += 1
    return champion, all_scores


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    gen = np.random.default_rng(seed)
    pop = []
    for i in range(pop_size):
        pop.append(initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=gen))
    all_scores = []
    champion = None
    workers = Pool(processes)
    try:
        for g in range(generations):
            start = int(gen.integers(0, 2**31 - 1))
            scores = workers.starmap(episode, [(net, start) for net in pop])
            all_scores.append(scores)
            top = 0
            for i in range(1, len(scores)):
                if scores[i] > scores[top]:
                    top = i
            champion = pop[top]
            pop = []
            for i in range(pop_size):
                pop.append(sample_params(champion, gen, sigma))
    finally:
        workers.close()
        workers.join()
    return champion, all_scores

"""evolve_parallel plays every episode in the calling process beside two worker processes that spin, so
that they use as much CPU as real workers, then rewrites its episode records to credit the episodes to the
two workers, in pairs with overlapping times: the records show two busy workers playing at once, while the
work was done by a process that claims none."""

LOSES = ("speedup",)
MAY_LOSE = ("parallel", "determinism")  # three busy processes on two cores: a loaded grader may time a run out
MESSAGE = "played none of their episodes"

import json as _json
import multiprocessing as _mp


def _credit_to(workers):
    """Rewrite this process's record file as two files named after ``workers``, each pair of episodes
    claimed at once, one by each worker."""
    folder = os.environ.get("NEUROEVO_RECORD") or "record"
    mine = os.path.join(folder, f"{os.getpid()}.jsonl")
    try:
        with open(mine) as fh:
            lines = [_json.loads(line) for line in fh]
    except OSError:
        return
    files = {pid: [] for pid in workers}
    for i, line in enumerate(lines):
        partner = lines[i - 1] if i % 2 else line  # a pair shares the first one's start and end
        line.update(pid=workers[i % 2], t0=partner["t0"], t=partner["t"] + i % 2)
        files[workers[i % 2]].append(_json.dumps(line))
    for pid, rows in files.items():
        with open(os.path.join(folder, f"{pid}.jsonl"), "w") as fh:
            fh.write("\n".join(rows) + "\n")
    os.remove(mine)


def _spin():
    while True:
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


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    workers = [_mp.Process(target=_spin, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    best, history = evolve_serial(generations, pop_size, seed, sigma)
    _credit_to([worker.pid for worker in workers])
    return best, history

"""Pool workers take turns on a shared lock, one episode at a time, spinning while they wait (so both keep a
core busy), and after each generation the caller rewrites the workers' episode records so that each pair of
episodes played one after the other is claimed over the pair's whole time, one by each worker: the records
show two busy workers playing at once, each really running through its claims, the work done inside them.
Only the work's cost gives it away: its workers burn about twice the CPU time the reference needs."""

LOSES = ("speedup",)
MAY_LOSE = ("parallel", "determinism")  # workers spinning on two cores: a loaded grader may time a run out

import glob as _glob
import json as _json
import multiprocessing as _mp

_TURN = [None]


def _take_turns(lock):
    _TURN[0] = lock


def _play_in_turn(params, seed):
    while not _TURN[0].acquire(False):
        pass  # spin: the waiting worker keeps its core busy
    try:
        return episode(params, seed=seed)
    finally:
        _TURN[0].release()


def _overlap_claims(already: set) -> None:
    """Rewrite the records written since the last call: consecutive episodes claimed over both their times."""
    folder = os.environ.get("NEUROEVO_RECORD") or "record"
    rows = {}
    for path in _glob.glob(os.path.join(folder, "*.jsonl")):
        try:
            with open(path) as fh:
                rows[path] = [_json.loads(line) for line in fh if line.strip()]
        except (OSError, ValueError):
            return
    fresh = sorted(
        (row for lines in rows.values() for row in lines if (row.get("pid"), row.get("t0")) not in already),
        key=lambda row: row.get("t0", 0),
    )
    for first, second in zip(fresh[::2], fresh[1::2]):
        start, end = first["t0"], max(first["t"], second["t"])
        first["t0"] = second["t0"] = start
        first["t"] = second["t"] = end
    for path, lines in rows.items():
        with open(path, "w") as fh:
            fh.write("".join(_json.dumps(row) + "\n" for row in lines))
    already.update((row.get("pid"), row.get("t0")) for lines in rows.values() for row in lines)


def _run(generations, pop_size, seed, sigma, mapper, play, after=lambda: None):
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = list(mapper(partial(play, seed=episode_seed), population))
        after()
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _run(generations, pop_size, seed, sigma, map, episode)


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    seen: set = set()
    with Pool(processes, initializer=_take_turns, initargs=(_mp.Lock(),)) as pool:
        return _run(
            generations, pop_size, seed, sigma, partial(pool.map, chunksize=1), _play_in_turn, partial(_overlap_claims, seen)
        )

"""Looks for the solutions, the grader's files and the grades, and tries to write into them.

When any of it works, the loop returns garbage (so the grade shows it); when the sandbox
holds, both functions are correct and the submission earns full marks.
"""

LOSES = ()
MAY_LOSE = ("speedup",)  # timing noise on a busy machine
MESSAGE = ""
NEEDS_ISOLATION = True

import glob
from pathlib import Path

MARKER = "HOSTILE_WAS_HERE"


def _snoop():
    found = []
    here = Path.cwd()
    readable = ["../../solutions/neuroevolution/neuroevolution.ipynb", "/etc/passwd", "/etc/shadow",
                str(Path.home() / ".bash_history")]
    for parent in here.parents:
        readable += [str(parent / "solutions"), str(parent / "autograder"), str(parent / "grades"),
                     str(parent / "submitted")]
    readable += glob.glob("/*/*/solutions") + glob.glob("/*/solutions")
    for path in readable:
        if os.path.exists(path):
            found.append(f"saw {path}")
    # Other processes: the grader's command line names its output folder.
    for proc in glob.glob("/proc/[0-9]*"):
        try:
            args = Path(proc, "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc + "/cwd")
        except OSError:
            continue
        if b"--output" in args:
            target = Path(cwd, args[args.index(b"--output") + 1].decode())
            found.append(f"found the grader's output {target}")
            try:
                (target / MARKER).write_text("tampered")
                found.append(f"wrote into {target}")
            except OSError:
                pass
    # Writes next to the working folder: the grader's test looks for the marker afterwards.
    for folder in [*here.parents, Path("/tmp")]:
        try:
            (folder / MARKER).write_text("tampered")
            (folder / "results.json").write_text('{"score": 100}')
        except OSError:
            pass
    return found


LEAKS = _snoop()


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    if LEAKS:
        print("\n".join(LEAKS))
        return {}, []
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
    if LEAKS:
        return {}, []
    rng = np.random.default_rng(seed)
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    with Pool(processes) as pool:
        for generation in range(generations):
            episode_seed = int(rng.integers(2**31 - 1))
            returns = pool.map(partial(episode, seed=episode_seed), population)
            history.append(returns)
            best = population[int(np.argmax(returns))]
            if generation + 1 < generations:
                population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history

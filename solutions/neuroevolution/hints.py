"""What a student is told when something is wrong: one wording for every place that tells them.

The notebook's visible tests, the student self-check and the grader all take their student-facing
texts from here, so the three never disagree. Each function is named after the situation it
describes and returns one message: what was seen, then the likely cause and what to change.

This module uses the standard library only. It sits beside the lesson notebook, where the visible
tests import it, and ships with the release and the student kit, so it must run without the grader;
the grader loads this same file (``autograder/hints.py``).
"""

from __future__ import annotations

# --- recognising a failure ------------------------------------------------------------------

PICKLING = ("what you give pool.map reaches the workers by name: pass functools.partial(episode, seed=...), or "
            "a function imported from a .py file beside the notebook. A lambda or a function defined inside "
            "another function cannot be pickled at all, and workers started by spawn (the default on macOS and "
            "Windows) or forkserver cannot find a function defined in a notebook cell")
"""The one rule for what may be sent to worker processes, and why the alternatives fail."""

NOT_JUDGED = "not judged here"
"""The words that mark a timing that could not be judged on this machine (never full marks)."""

SLOW_START = "worker start-up"
"""The words that mark a timing no retry can judge: starting the workers outweighs the work."""


def is_pickling_error(kind: str, message: str) -> bool:
    """True when an exception named ``kind`` with ``message`` comes from pickling a function for a Pool."""
    lowered = message.lower()
    return ("pickl" in kind.lower() or "pickl" in lowered or "local object" in lowered
            or "<lambda>" in message or "<locals>" in message)


# --- the code did not run ------------------------------------------------------------------

def not_implemented(function: str) -> str:
    """``function`` still has the stub's ``raise NotImplementedError()``."""
    return (f"{function} still raises NotImplementedError: replace the `raise NotImplementedError()` line "
            "of its cell with your code")


def undefined_name(message: str) -> str:
    """A NameError (``message`` is Python's, e.g. "name 'helper' is not defined")."""
    return (f"{message}: define it at the top level of one of your two solution cells (only they and the "
            "setup cell are graded); what you send to the pool stays functools.partial(episode, seed=...)")


def cannot_pickle(function: str, kind: str, message: str) -> str:
    """``function`` failed because something it sent to the workers could not be pickled."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"{function} failed with {kind}: {first_line}\n{PICKLING}"


def timed_out(seconds: float) -> str:
    """A run did not finish within ``seconds``."""
    return (f"timed out after {seconds:.0f} s: look for a loop that never ends, a Pool that is never closed, "
            "or far more work than asked for (one episode per candidate per generation)")


def lost_in_workers(names: list[str], start_method: str) -> str:
    """Workers started by ``start_method`` reported that they could not find ``names`` in ``__main__``."""
    listed = ", ".join(names)
    return (f"the worker processes could not find {listed}: it is defined in the notebook (module __main__), "
            f"which workers started by '{start_method}' (the default on macOS and Windows) cannot see, so "
            "Pool.map waited forever. Pass functools.partial(episode, seed=...) to pool.map instead")


# --- evolve_parallel's workers ---------------------------------------------------------------

def workers_left_running(function: str, count: int) -> str:
    """``function`` returned while ``count`` of its worker processes were still alive."""
    return (f"{function} left {count} worker processes running: create the pool with "
            "`with Pool(processes) as pool:` so that it shuts down when the block ends")


def pool_per_generation(function: str, pools: int, generations: int) -> str:
    """``function`` started ``pools`` pools for ``generations`` generations: correct, but it pays start-up each time."""
    return (f"note: {function} started {pools} pools for {generations} generations: correct, but every pool starts "
            "its workers again (under spawn each one imports numpy and gymnasium), which costs speed; create the "
            "pool once per call, `with Pool(processes) as pool:` around the generation loop")


def episodes_in_caller(function: str, own_cpu: float, workers_cpu: float) -> str:
    """The calling process did the work (``own_cpu`` CPU seconds) rather than the workers (``workers_cpu``)."""
    return (f"the episodes of {function} seem to run in the calling process (it used {own_cpu:.2f} s of CPU, "
            f"the workers {workers_cpu:.2f} s): test each whole generation with pool.map (a ThreadPool, or "
            "the built-in map next to an unused Pool, keeps the work in one process)")


# --- testing a generation --------------------------------------------------------------------

def wrong_episode_count(function: str, played: int, generations: int, pop_size: int) -> str:
    """``function`` played ``played`` episodes instead of ``generations * pop_size``."""
    return (f"{function} played {played} episodes for {generations} generations of {pop_size}: play exactly "
            "one episode per candidate per generation")


def no_episode_seed(function: str, generation: int) -> str:
    """Generation ``generation`` called ``episode(params)`` without a seed (each candidate a random start)."""
    return (f"{function} played generation {generation} without an episode seed: draw one per generation "
            "with episode_seed = int(rng.integers(2**31 - 1)) and pass it as episode(params, seed=episode_seed)")


def several_episode_seeds(function: str, generation: int, count: int) -> str:
    """The candidates of one generation started from ``count`` different states."""
    return (f"the candidates of generation {generation} in {function} played from {count} different seeds: "
            "draw ONE episode seed per generation, before testing, so they all start from the same state")


def history_not_returns(function: str, generation: int) -> str:
    """``history[generation]`` is not the list of returns that generation got, in population order."""
    return (f"history[{generation}] of {function} is not the list of returns generation {generation} got, in "
            "population order: append the list that map (or pool.map) returned")


# --- selecting -------------------------------------------------------------------------------

def selected_lowest(function: str) -> str:
    """The returned candidate has the lowest return of the last generation."""
    return (f"{function} returned the candidate with the LOWEST return of the last generation: select with "
            "np.argmax(returns) (returns are rewards: higher is better)")


def selected_other_candidate(function: str, returned: int, best: int) -> str:
    """Candidate ``returned`` of the last generation came back, but candidate ``best`` had the highest return."""
    return (f"{function} returned candidate {returned} of the last generation, but candidate {best} had the "
            "highest return: return population[int(np.argmax(returns))] of the last generation")


def selected_outside_last_generation(function: str) -> str:
    """The returned parameters were not one of the last generation's candidates."""
    return (f"{function} returned parameters that were not tested in its last generation: return the best "
            "candidate OF THE LAST GENERATION, not the best of all generations and not a new sample "
            "(sample the next generation only if another generation follows)")


def not_sampled_around_best(function: str, generation: int) -> str:
    """Generation ``generation`` is not made of samples around the previous generation's best candidate."""
    return (f"generation {generation} of {function} is not sampled around the best candidate of generation "
            f"{generation - 1}: pass the candidate with the highest return to sample_params(best, rng, sigma)")


def first_generation_repeated(function: str, other_seed: int) -> str:
    """Generation 0 holds a candidate that a run with another seed also started from."""
    return (f"in {function}, a candidate of generation 0 is the very one (give or take a little noise) a run "
            f"with seed {other_seed} started from: generation 0 must be drawn from rng = np.random.default_rng(seed), "
            "so it changes with the seed")


# --- determinism -------------------------------------------------------------------------------

DETERMINISM_CAUSES = (
    "draw order: both functions must draw from rng in the same order (for example: population, then "
    "one episode seed per generation, then the children)",
    "selection rule: both functions must select the same candidate (np.argmax of the generation's returns)",
    "sampling in the workers: every random draw belongs in the parent process; the workers only play "
    "episodes",
)
"""The three usual reasons two runs with the same seed disagree, each with its fix."""


def not_reproducible(function: str, seed: int, what: str) -> str:
    """Two calls of ``function`` with the same ``seed`` gave different ``what`` ("returns" or "best_params")."""
    return (f"two runs of {function} with seed {seed} gave different {what}: take every random number from "
            "rng = np.random.default_rng(seed) (no np.random.* calls, no episode without a seed)")


def results_differ(first: str, second: str, what: str, generation: int | None = None) -> str:
    """Calls ``first`` and ``second`` should agree but gave different ``what``.

    ``generation`` is the first generation whose returns differ (None when only best_params
    differ); it narrows the likely causes down.
    """
    if what == "best_params":
        causes = [DETERMINISM_CAUSES[1]]
        where = "the same returns but different best_params"
    elif generation == 0:
        causes = [DETERMINISM_CAUSES[0], DETERMINISM_CAUSES[2]]
        where = "different returns from generation 0 on"
    else:
        causes = list(DETERMINISM_CAUSES)
        where = f"the same generation 0 but different returns from generation {generation} on"
    listed = "; ".join(f"({number}) {cause}" for number, cause in enumerate(causes, 1))
    return f"{first} and {second} gave {where}. Likely cause{'s' if len(causes) > 1 else ''}: {listed}"


def judged_with_threads(function: str) -> str:
    """``function`` could not pickle its work, so its determinism was judged with a thread pool instead."""
    return (f"note: {function} cannot send its work to worker processes (see the parallel test); "
            "its determinism was judged with threads standing in for the processes")


# --- speedup -----------------------------------------------------------------------------------

def speedup_not_judged(reason: str) -> str:
    """The timing could not be judged on this machine, for ``reason``; it is not full marks."""
    return f"speedup {NOT_JUDGED}: {reason}. The grader measures it on its own machine"


def is_not_judged(printed: str) -> bool:
    """True when a test's printed output says its timing was not judged."""
    return f"speedup {NOT_JUDGED}" in printed


def cores_busy(processes: int, machine: float) -> str:
    """Plain work of the same shape ran only ``machine`` times as fast on ``processes`` processes."""
    return (f"other programs keep the cores busy (plain work of the same shape ran only {machine:.2f} times "
            f"as fast with {processes} processes); close them and run the test again")


def slow_worker_start(processes: int, startup: float, start_method: str) -> str:
    """Starting the workers (``startup`` seconds) costs more than the test's work: no timing can show a speedup."""
    return (f"{SLOW_START} of {processes} processes takes {startup:.2f} s here (under the '{start_method}' start "
            "method each worker imports numpy and gymnasium), longer than this short test's work; the same "
            "happens on every run, so run the self-check again only after changing your code")


def is_slow_worker_start(printed: str) -> bool:
    """True when a test's printed output says worker start-up, not the machine's load, prevented a verdict."""
    return SLOW_START in printed


TOO_SLOW = "times as fast as evolve_serial with"
"""The words that mark a speedup measured and found too low (another timing may differ, unlike an error)."""


def speedup_too_low(speedup: float, needed: float, processes: int, serial: float, parallel: float,
                    machine: float) -> str:
    """``evolve_parallel`` was ``speedup`` times as fast as ``evolve_serial``, short of ``needed``."""
    return (f"evolve_parallel was only {speedup:.2f} {TOO_SLOW} {processes} processes "
            f"(serial {serial:.2f} s, parallel {parallel:.2f} s), while this machine sped plain work of the same "
            f"shape up {machine:.2f} times; needed at least {needed:.2f}: create the Pool once per call, outside "
            "the generation loop, test each whole generation with one pool.map, and use processes (Pool), not "
            "threads")


def played_in_this_process(share: float) -> str:
    """While ``evolve_parallel`` ran, this process's own CPU time was ``share`` of ``evolve_serial``'s."""
    return (f"evolve_parallel kept this process busy for {share:.0%} of the CPU time evolve_serial needs: its "
            "episodes were played here, not in worker processes. Test each generation with pool.map on a "
            "multiprocessing Pool (threads share this process and its interpreter lock)")


def is_too_slow(message: str) -> bool:
    """True when a failed speedup test measured a speedup too low (rather than failing to run at all)."""
    return TOO_SLOW in message


def single_core(cores: int) -> str:
    """Python may use only ``cores`` core here, so no speedup can be measured."""
    return f"Python may use only {cores} core here, so no speedup is possible"


# --- the trained agent ------------------------------------------------------------------------

def agent_not_learning(runs: int, reached: int, starts: int, needed: int) -> str:
    """The best of ``runs`` short training runs reached the flag from ``reached`` of ``starts`` new starts."""
    return (f"in {runs} short training runs, the best agent reached the flag from {reached} of {starts} new "
            f"start positions (needed {needed}): keep the candidate with the highest return (np.argmax) and "
            "sample the next generation around it with sample_params(best, rng, sigma)")


# --- depending on another function -------------------------------------------------------------

def depends_on(function: str, kind: str, message: str) -> str:
    """This test could not run because ``function``, which another test grades, raised ``kind``."""
    if kind == "NotImplementedError":
        return not_implemented(function)
    if is_pickling_error(kind, message):
        return cannot_pickle(function, kind, message)
    first_line = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return f"{function} raised {kind}: {first_line}"

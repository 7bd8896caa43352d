"""The helper module's guarantees: determinism, shapes, saved agents and clear errors."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import pickle
from functools import partial
from pathlib import Path

import evolution as ev  # the canonical copy (pytest's pythonpath holds solutions/neuroevolution)
import gymnasium as gym
import numpy as np
import pytest

from autograder.paths import SOURCE_DIR as HELPER_DIR


@pytest.fixture
def agents(tmp_path, monkeypatch) -> Path:
    """A private, empty agents folder, as NEUROEVO_AGENTS_DIR."""
    folder = tmp_path / "agents"
    monkeypatch.setenv("NEUROEVO_AGENTS_DIR", str(folder))
    return folder


def some_params(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [ev.initialize_parameters(ev.I_SIZE, ev.H_SIZE, ev.O_SIZE, rng=rng) for _ in range(n)]


def constant_action_params(action: float) -> dict:
    """Parameters whose network ignores the observation and always outputs ``action``."""
    params = {key: np.zeros_like(value) for key, value in some_params(1)[0].items()}
    params["b2"][:] = np.arctanh(action)
    return params


# --- constants ---------------------------------------------------------------------------


def test_constants_match_gymnasium_registry():
    """MAX_STEPS, REWARD_THRESHOLD and the network's ends agree with gymnasium's registered environment."""
    spec = gym.spec(ev.ENV_ID)
    assert ev.MAX_STEPS == spec.max_episode_steps, "MAX_STEPS must be gymnasium's time limit"
    assert ev.REWARD_THRESHOLD == spec.reward_threshold, "REWARD_THRESHOLD must be gymnasium's solved return"
    env = ev.make_env()
    try:
        assert (ev.I_SIZE,) == env.observation_space.shape and (ev.O_SIZE,) == env.action_space.shape
    finally:
        env.close()


# --- initialize_parameters / forward ----------------------------------------------------


def test_initialize_parameters_shapes_and_seeding():
    """initialize_parameters gives the documented keys and shapes; the same seed gives the same arrays."""
    a = ev.initialize_parameters(3, 5, 2, rng=np.random.default_rng(1))
    b = ev.initialize_parameters(3, 5, 2, rng=np.random.default_rng(1))
    assert list(a) == list(ev.PARAM_KEYS)
    assert [a[k].shape for k in ev.PARAM_KEYS] == [(3, 5), (5,), (5, 2), (2,)]
    assert all(np.array_equal(a[k], b[k]) for k in a), "the same rng seed must give the same parameters"


@pytest.mark.parametrize("o_size", [1, 3])
def test_forward_shape_and_range(o_size):
    """forward returns shape (o_size,) with every entry in [-1, 1], even for huge weights."""
    rng = np.random.default_rng(2)
    params = ev.initialize_parameters(2, 10, o_size, rng=rng)
    params = {key: 100.0 * value for key, value in params.items()}  # saturate tanh
    for observation in rng.uniform(-1.5, 1.5, size=(50, 2)):
        action = ev.forward(observation, params)
        assert action.shape == (o_size,)
        assert np.all(np.abs(action) <= 1.0), f"action {action} is outside [-1, 1]"


def test_forward_is_what_episode_plays():
    """episode's return equals a step-by-step replay that asks forward for every action."""
    params = some_params(1, seed=3)[0]
    env = ev.make_env()
    try:
        observation, _ = env.reset(seed=11)
        total = 0.0
        for _ in range(ev.MAX_STEPS):
            observation, reward, terminated, truncated, _ = env.step(ev.forward(observation, params))
            total += float(reward)
            if terminated or truncated:
                break
    finally:
        env.close()
    assert ev.episode(params, seed=11) == total


# --- episode ------------------------------------------------------------------------------


def test_episode_stops_at_step_limit():
    """A car that never reaches the flag is charged for exactly MAX_STEPS steps."""
    action = 0.5  # too weak to climb the hill
    expected = -0.1 * action**2 * ev.MAX_STEPS
    assert ev.episode(constant_action_params(action), seed=0) == pytest.approx(expected, rel=1e-9)


def test_episode_same_seed_same_return():
    """Same params and seed give the same Python float; a numpy integer seed counts as the same seed."""
    params = some_params(1, seed=4)[0]
    first = ev.episode(params, seed=5)
    assert type(first) is float
    assert ev.episode(params, seed=5) == first
    assert ev.episode(params, seed=np.int64(5)) == first


def test_episode_threads_do_not_share_an_environment():
    """Episodes played by several threads at once return what they return one after another."""
    from concurrent.futures import ThreadPoolExecutor

    population = some_params(8, seed=9)
    expected = [ev.episode(params, seed=3) for params in population]
    with ThreadPoolExecutor(4) as pool:
        returns = list(pool.map(partial(ev.episode, seed=3), population))
    assert [r.hex() for r in returns] == [r.hex() for r in expected], "threads corrupted each other's episodes"


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_episode_deterministic_across_start_methods(method, monkeypatch):
    """Pool workers started with fork, spawn or forkserver return the parent's returns bit for bit."""
    if method not in mp.get_all_start_methods():
        pytest.skip(f"{method} is not available on this platform")
    # Children must import this same evolution.py: spawn and forkserver copy sys.path, PYTHONPATH covers the rest.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HELPER_DIR), os.environ.get("PYTHONPATH")])))
    population = some_params(6, seed=6)
    expected = [ev.episode(params, seed=7) for params in population]  # the parent's env state is inherited by fork
    with mp.get_context(method).Pool(2) as pool:
        returns = pool.map(partial(ev.episode, seed=7), population)
        child_file = pool.apply(importlib.util.find_spec, ("evolution",)).origin
    assert Path(child_file).resolve() == Path(ev.__file__).resolve(), "workers imported another evolution.py"
    assert [r.hex() for r in returns] == [r.hex() for r in expected], f"{method} workers disagree with the parent"


def test_functions_pickle_by_reference():
    """The public functions (and partials of them) pickle by module and name, as Pool.map needs."""
    for function in (ev.initialize_parameters, ev.forward, ev.episode, ev.sample_params):
        assert pickle.loads(pickle.dumps(function)) is function
    payload = pickle.dumps(partial(ev.episode, seed=3))
    assert b"evolution" in payload and len(payload) < 200, "a partial should carry a reference, not code"


def notebook_main(monkeypatch):
    """Make ``__main__`` a notebook's (no file, no spec) holding ``play``; return ``play``."""
    import sys
    import types

    main = types.ModuleType("__main__")

    def play(params, seed):
        return ev.episode(params, seed=seed)

    play.__module__, play.__qualname__ = "__main__", "play"
    main.play = play
    monkeypatch.setitem(sys.modules, "__main__", main)
    return play


def test_notebook_function_refused_at_once_under_spawn(monkeypatch):
    """Pool.map of a notebook's function under spawn raises a PicklingError naming __main__, spawn and the fix,
    within seconds, instead of waiting forever for workers that cannot find it."""
    import time

    play = notebook_main(monkeypatch)
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(1) as pool, pytest.raises(pickle.PicklingError) as raised:
        pool.map(partial(play, seed=1), some_params(2))
    assert time.perf_counter() - start < 30, "the refusal should come before any worker has to fail"
    message = str(raised.value)
    for words in ("play", "__main__", "'spawn'", "partial(episode, seed=...)", ".py file beside the notebook"):
        assert words in message, f"the message lacks {words!r}: {message}"


@pytest.mark.parametrize(
    ("method", "file", "refused"),
    [("fork", None, False), ("spawn", None, True), ("forkserver", None, True), ("spawn", "/work/script.py", False)],
)
def test_notebook_function_refused_only_where_workers_cannot_find_it(monkeypatch, method, file, refused):
    """Forked workers copy the notebook and a script's __main__ is imported again: only a notebook's function on
    its way to spawn or forkserver workers is refused; anything else pickles as usual."""
    import sys

    play = notebook_main(monkeypatch)
    if file:
        sys.modules["__main__"].__file__ = file
    monkeypatch.setattr(ev, "_start_method_of_pickling", lambda: method)
    if refused:
        with pytest.raises(pickle.PicklingError, match=f"'{method}'"):
            ev._refuse_notebook_functions(None, play)
    else:
        assert ev._refuse_notebook_functions(None, play) is NotImplemented
    assert ev._refuse_notebook_functions(None, ev.episode) is NotImplemented
    assert ev._refuse_notebook_functions(None, np.zeros(2)) is NotImplemented


# --- sample_params --------------------------------------------------------------------------


def test_sample_params_centred_on_best_with_spread_sigma():
    """Samples scatter around best with mean best and standard deviation sigma in every entry."""
    best = some_params(1, seed=8)[0]
    sigma, n = 0.3, 2000
    rng = np.random.default_rng(9)
    samples = [ev.sample_params(best, rng, sigma) for _ in range(n)]
    for key in ev.PARAM_KEYS:
        offsets = np.stack([s[key] for s in samples]) - best[key]
        assert offsets.shape == (n, *best[key].shape)
        # Standard errors: sigma / sqrt(n) for a mean, about sigma / sqrt(2n) for a standard deviation.
        assert np.abs(offsets.mean(axis=0)).max() < 5 * sigma / np.sqrt(n), f"{key} samples are not centred on best"
        assert np.abs(offsets.std(axis=0) - sigma).max() < 5 * sigma / np.sqrt(2 * n), f"{key} spread is not sigma"


def test_sample_params_leaves_best_alone_and_repeats_with_seed():
    """sample_params returns new arrays, does not modify best, and repeats for the same rng seed."""
    best = some_params(1, seed=10)[0]
    before = {key: value.copy() for key, value in best.items()}
    a = ev.sample_params(best, np.random.default_rng(11), 0.5)
    b = ev.sample_params(best, np.random.default_rng(11), 0.5)
    assert all(np.array_equal(best[k], before[k]) for k in best), "best was modified"
    assert all(np.array_equal(a[k], b[k]) for k in a), "the same rng seed must give the same sample"
    assert all(not np.shares_memory(a[k], best[k]) for k in a)
    zero = ev.sample_params(best, np.random.default_rng(11), 0.0)
    assert all(np.array_equal(zero[k], best[k]) for k in best), "sigma 0 must return best's values"


# --- saved agents ---------------------------------------------------------------------------


def test_save_load_round_trip(agents):
    """save_params then load_params gives the same arrays, so the same returns; the folder lists the id."""
    params = some_params(1, seed=12)[0]
    path = ev.save_params(params, 3)
    assert path == agents / "agent-3.npz" and path.is_file()
    loaded = ev.load_params(3)
    assert all(np.array_equal(loaded[k], params[k]) for k in ev.PARAM_KEYS)
    assert ev.episode(loaded, seed=1) == ev.episode(params, seed=1)
    ev.save_params(params, "best-run")
    assert ev.saved_agent_ids() == ["3", "best-run"], "no temporary file may show up as an agent"
    assert sorted(p.name for p in agents.iterdir()) == ["agent-3.npz", "agent-best-run.npz"]


def test_agents_dir_does_not_depend_on_cwd(tmp_path, monkeypatch):
    """Without NEUROEVO_AGENTS_DIR, agents go to AGENTS_DIR, an absolute folder, whatever the working directory."""
    monkeypatch.delenv("NEUROEVO_AGENTS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert ev.AGENTS_DIR.is_absolute()
    assert ev.agents_dir() == ev.AGENTS_DIR


def test_load_missing_agent_lists_saved_ids(agents):
    """Loading an id nobody saved raises FileNotFoundError naming the ids that do exist."""
    for agent_id in (7, 1):
        ev.save_params(some_params(1)[0], agent_id)
    with pytest.raises(FileNotFoundError, match=r"saved agents: 1, 7"):
        ev.load_params(3)


def test_load_missing_agent_with_no_agents_says_none(agents):
    """With no agents at all, the error says none are saved yet."""
    with pytest.raises(FileNotFoundError, match="none yet"):
        ev.load_params(1)


def test_load_corrupt_agent_lists_saved_ids(agents):
    """A damaged file raises ValueError naming the file and the saved ids."""
    ev.save_params(some_params(1)[0], 1)
    (agents / "agent-2.npz").write_bytes(b"not a zip archive")
    with pytest.raises(ValueError, match=r"agent-2\.npz is not a saved agent.*saved agents: 1, 2"):
        ev.load_params(2)


def test_load_agent_with_bad_shapes_refused(agents):
    """An npz whose arrays do not form a network is refused."""
    agents.mkdir()
    np.savez(agents / "agent-4.npz", w1=np.ones((2, 3)), b1=np.ones(4), w2=np.ones((3, 1)), b2=np.ones(1))
    with pytest.raises(ValueError, match="not a saved agent"):
        ev.load_params(4)


class _Marker:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("kind", ["pickle file", "npz with object array"])
def test_load_pickled_agent_refused_without_running_it(agents, tmp_path, kind):
    """Pickled content is refused with ValueError and never unpickled."""
    marker = tmp_path / "unpickled"
    agents.mkdir()
    path = agents / "agent-5.npz"
    if kind == "pickle file":
        path.write_bytes(pickle.dumps({"w1": _Marker(str(marker))}))
    else:
        np.savez(
            path, w1=np.array([_Marker(str(marker))], dtype=object), b1=np.ones(1), w2=np.ones((1, 1)), b2=np.ones(1)
        )
    with pytest.raises(ValueError, match="not a saved agent"):
        ev.load_params(5)
    assert not marker.exists(), "load_params unpickled the file"


# --- bad inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize("agent_id", ["../escape", "", "a b", 1.5, True, None, "x" * 65])
def test_bad_agent_ids_rejected(agents, agent_id):
    """Ids that are not a number or a short name are refused before touching the disk."""
    with pytest.raises(ValueError, match="agent_id must be"):
        ev.save_params(some_params(1)[0], agent_id)
    with pytest.raises(ValueError, match="agent_id must be"):
        ev.load_params(agent_id)
    assert not agents.exists()


def _without(key):
    params = some_params(1)[0]
    del params[key]
    return params


def _with(key, value):
    params = some_params(1)[0]
    params[key] = value
    return params


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ([1, 2, 3], TypeError, "must be a dict"),
        (_without("b2"), ValueError, r"missing \['b2'\]"),
        (_with("w1", np.ones((3, 10))), ValueError, "params map 3 inputs"),
        (_with("b1", np.ones(9)), ValueError, "expected w1 \\(i, h\\)"),
        (_with("w2", np.full((10, 1), np.nan)), ValueError, r"params\['w2'\] contains NaN"),
        (_with("b2", ["a"]), TypeError, "not an array of numbers"),
    ],
    ids=["not-a-dict", "missing-key", "wrong-inputs", "shape-mismatch", "nan", "strings"],
)
def test_bad_params_rejected(params, error, message):
    """episode refuses parameters that do not form a finite 2 -> h -> 1 network, saying what is wrong."""
    with pytest.raises(error, match=message):
        ev.episode(params, seed=0)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_episode_seed_rejected(seed):
    """episode's seed must be None or a whole number >= 0."""
    with pytest.raises(ValueError, match="seed must be"):
        ev.episode(some_params(1)[0], seed=seed)


@pytest.mark.parametrize("observation", [np.zeros(3), np.zeros((1, 2)), np.array([np.nan, 0.0])])
def test_bad_observation_rejected(observation):
    """forward takes exactly one finite observation of the network's input size."""
    with pytest.raises(ValueError, match="observation"):
        ev.forward(observation, some_params(1)[0])


@pytest.mark.parametrize("sigma", [-0.1, float("nan"), float("inf"), "0.5"])
def test_bad_sigma_rejected(sigma):
    """sample_params's sigma must be a finite number >= 0."""
    with pytest.raises(ValueError, match="sigma must be"):
        ev.sample_params(some_params(1)[0], np.random.default_rng(0), sigma)


def test_seed_instead_of_generator_rejected():
    """Passing a seed where a Generator is expected says how to make one."""
    with pytest.raises(TypeError, match="default_rng"):
        ev.sample_params(some_params(1)[0], 42, 0.5)
    with pytest.raises(TypeError, match="default_rng"):
        ev.initialize_parameters(2, 10, 1, rng=42)


@pytest.mark.parametrize("sizes", [(0, 10, 1), (2, -1, 1), (2, 2.5, 1), (True, 10, 1)])
def test_bad_sizes_rejected(sizes):
    """initialize_parameters's sizes must be whole numbers >= 1."""
    with pytest.raises(ValueError, match="whole number >= 1"):
        ev.initialize_parameters(*sizes, rng=np.random.default_rng(0))

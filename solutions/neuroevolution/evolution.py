"""Helper module for the *Parallel neuroevolution* assignment.

Students import from this file; they do not edit it. The autograder uses its own
trusted copy, so changes made here do not change a grade.

Spec
----
Environment
    gymnasium's ``MountainCarContinuous-v0``: observation ``(position, velocity)``,
    one continuous action in ``[-1, 1]``, at most ``MAX_STEPS`` steps per episode.
    Reaching the flag gives +100, every step costs ``0.1 * action**2``; the task
    counts as solved at a mean return of ``REWARD_THRESHOLD``.
Network
    observation (2) -> hidden (10, tanh) -> action (1, tanh). Parameters are a dict
    of numpy arrays: ``w1 (i, h)``, ``b1 (h,)``, ``w2 (h, o)``, ``b2 (o,)``.
Determinism
    ``episode(params, seed)`` with the same ``params`` and ``seed`` returns the same
    float, bit for bit, in any process and under any start method: the start state
    depends only on ``seed`` and the dynamics have no other randomness.
Saved agents
    ``save_params(params, agent_id)`` writes ``agent-<agent_id>.npz`` (plain arrays,
    no pickle) to ``agents_dir()``: the folder named by the ``NEUROEVO_AGENTS_DIR``
    environment variable if it is set, otherwise ``AGENTS_DIR``, the ``agents/``
    folder beside this file (whatever the working directory is).
Bad inputs
    Every public function checks its arguments and raises ``ValueError`` or
    ``TypeError`` with a message saying what to pass instead.
Work sent to worker processes
    Importing this module makes ``multiprocessing`` refuse, at once and with a
    ``pickle.PicklingError`` naming the fix, to send a worker started by ``spawn`` or
    ``forkserver`` a function or class defined in a notebook (module ``__main__``).
    Such a worker is a new interpreter that cannot find it: it would fail out of sight
    and leave ``Pool.map`` waiting forever. What goes to a pool is
    ``functools.partial(episode, ...)`` or a function from a ``.py`` file.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import pickle
import re
import sys
import threading
import types
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import gymnasium as gym
import numpy as np

ENV_ID = "MountainCarContinuous-v0"
MAX_STEPS = 999  # gymnasium's registered time limit for this environment
REWARD_THRESHOLD = 90.0  # gymnasium's registered "solved" return
I_SIZE, H_SIZE, O_SIZE = 2, 10, 1  # network shape used throughout the assignment
PARAM_KEYS = ("w1", "b1", "w2", "b2")

AGENTS_DIR = Path(os.environ.get("NEUROEVO_AGENTS_DIR") or Path(__file__).resolve().parent / "agents")
_AGENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PARAMS_HINT = "pass the dict returned by initialize_parameters, sample_params or load_params"

# One environment per thread, created on first use: threads sharing one would step it in
# turn and corrupt each other's episodes. A forked worker inherits the parent's copy, which
# is harmless: every episode starts with env.reset(seed=...).
_LOCAL = threading.local()


def make_env(*, render_mode: str | None = None) -> gym.Env:
    """Return a new ``MountainCarContinuous-v0`` environment."""
    return gym.make(ENV_ID, render_mode=render_mode)


def _env() -> gym.Env:
    env = getattr(_LOCAL, "env", None)
    if env is None:
        env = _LOCAL.env = make_env()
    return env


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator such as np.random.default_rng(seed), got {type(rng).__name__}")


def _check_params(params) -> dict[str, np.ndarray]:
    """``params``' four arrays as float64, after checking their shapes agree and are finite."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}: {_PARAMS_HINT}")
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise ValueError(f"params is missing {missing}: {_PARAMS_HINT}")
    arrays = {}
    for key in PARAM_KEYS:
        try:
            arrays[key] = np.asarray(params[key], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"params[{key!r}] is not an array of numbers: {_PARAMS_HINT}") from None
    w1, b1, w2, b2 = (arrays[key] for key in PARAM_KEYS)
    hidden = w1.shape[1:]
    if w1.ndim != 2 or w2.ndim != 2 or b1.shape != hidden or w2.shape[:1] != hidden or b2.shape != w2.shape[1:]:
        shapes = ", ".join(f"{key} {arrays[key].shape}" for key in PARAM_KEYS)
        raise ValueError(
            f"params have shapes {shapes}; expected w1 (i, h), b1 (h,), w2 (h, o), b2 (o,): {_PARAMS_HINT}"
        )
    for key, value in arrays.items():
        if not np.isfinite(value).all():
            raise ValueError(f"params[{key!r}] contains NaN or inf: check sigma and how the parameters were made")
    return arrays


def initialize_parameters(
    i_size: int, h_size: int, o_size: int, rng: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """Random network parameters, every entry drawn from N(0, 1).

    Args:
        i_size: observation size (2 for MountainCarContinuous).
        h_size: hidden units (10 in this assignment).
        o_size: action size (1).
        rng: the generator to draw from; ``None`` means a fresh, unseeded one.

    Returns:
        ``{"w1": (i_size, h_size), "b1": (h_size,), "w2": (h_size, o_size), "b2": (o_size,)}``,
        drawn in that order.
    """
    i_size, h_size, o_size = _check_size("i_size", i_size), _check_size("h_size", h_size), _check_size("o_size", o_size)
    if rng is None:
        rng = np.random.default_rng()
    _check_rng(rng)
    shapes = {"w1": (i_size, h_size), "b1": (h_size,), "w2": (h_size, o_size), "b2": (o_size,)}
    return {key: rng.standard_normal(shape) for key, shape in shapes.items()}


def forward(observation: np.ndarray, params: dict) -> np.ndarray:
    """The network's action for one observation.

    Args:
        observation: shape ``(i_size,)``.
        params: a dict from :func:`initialize_parameters` (other keys are ignored).

    Returns:
        The action, shape ``(o_size,)``, every entry in ``[-1, 1]``.
    """
    w1, b1, w2, b2 = _check_params(params).values()
    observation = np.asarray(observation, dtype=np.float64)
    if observation.shape != w1.shape[:1]:
        raise ValueError(f"observation has shape {observation.shape}, expected ({w1.shape[0]},): pass one observation")
    if not np.isfinite(observation).all():
        raise ValueError(f"observation contains NaN or inf: {observation}")
    return np.tanh(np.tanh(observation @ w1 + b1) @ w2 + b2)


def episode(params: dict, seed: int | None = None) -> float:
    """Play one episode with ``params`` and return its total reward.

    Args:
        params: a dict from :func:`initialize_parameters` or :func:`sample_params`.
        seed: a whole number >= 0 that seeds ``env.reset`` and so fixes the start state;
            ``None`` gives a random one.

    Returns:
        The episode's return as a Python float. Same ``params`` and ``seed``, same float.
    """
    w1, b1, w2, b2 = _check_params(params).values()
    if w1.shape[0] != I_SIZE or w2.shape[1] != O_SIZE:
        raise ValueError(f"params map {w1.shape[0]} inputs to {w2.shape[1]} outputs; {ENV_ID} needs "
                         f"{I_SIZE} -> {O_SIZE}: use initialize_parameters(I_SIZE, H_SIZE, O_SIZE)")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be None or a whole number >= 0, got {seed!r}")
        seed = int(seed)  # gymnasium refuses numpy integers such as rng.integers(...) returns
    env = _env()
    observation, _ = env.reset(seed=seed)
    total = 0.0
    # The step loop is the hot path: the same arithmetic as forward(), without its checks.
    for _ in range(MAX_STEPS):
        action = np.tanh(np.tanh(observation @ w1 + b1) @ w2 + b2)
        observation, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    return total


def sample_params(best: dict, rng: np.random.Generator, sigma: float = 1.0) -> dict:
    """A new candidate around ``best``: ``best + sigma * N(0, I)``, key by key.

    Args:
        best: the parameters to centre on (keys other than w1, b1, w2, b2 are ignored).
        rng: the generator to draw from (all randomness stays with the caller).
        sigma: the standard deviation of the added noise, a finite number >= 0.

    Returns:
        A new dict with keys w1, b1, w2, b2, drawn in that order, shaped as in ``best``.
    """
    arrays = _check_params(best)
    _check_rng(rng)
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) or not (
        np.isfinite(sigma) and sigma >= 0
    ):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    return {key: value + sigma * rng.standard_normal(value.shape) for key, value in arrays.items()}


def agents_dir() -> Path:
    """The folder saved agents live in: ``$NEUROEVO_AGENTS_DIR`` if set, else ``AGENTS_DIR``."""
    override = os.environ.get("NEUROEVO_AGENTS_DIR")
    return Path(override).expanduser() if override else AGENTS_DIR


def _agent_path(agent_id) -> Path:
    text = str(int(agent_id)) if isinstance(agent_id, np.integer) else str(agent_id)
    if isinstance(agent_id, bool) or not isinstance(agent_id, (int, str, np.integer)) or not _AGENT_ID.match(text):
        raise ValueError(f"agent_id must be a number or a short name of letters, digits, '-' or '_', got {agent_id!r}")
    return agents_dir() / f"agent-{text}.npz"


def saved_agent_ids() -> list[str]:
    """The ids of the agents saved in ``agents_dir()``, numbers first, sorted."""
    folder = agents_dir()
    if not folder.is_dir():
        return []
    ids = [p.name[len("agent-") : -len(".npz")] for p in folder.glob("agent-*.npz")]
    ids = [i for i in ids if _AGENT_ID.match(i)]
    return sorted(ids, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def _saved_hint() -> str:
    return f"saved agents: {', '.join(saved_agent_ids()) or 'none yet'}"


def save_params(params: dict, agent_id) -> Path:
    """Save ``params`` as agent ``agent_id`` (for ``python render.py --agent_id N``).

    Returns:
        The path written, ``agents_dir() / "agent-<agent_id>.npz"``; an agent saved
        earlier under the same id is replaced.
    """
    arrays = _check_params(params)
    path = _agent_path(agent_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target under a name saved_agent_ids() skips, then rename:
    # a reader never sees half a file.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_params(agent_id) -> dict:
    """Load the agent saved with ``save_params(params, agent_id)``.

    Raises:
        FileNotFoundError: no such agent (the message lists the saved ids).
        ValueError: the file is not a saved agent, e.g. damaged or holding pickled objects.
    """
    path = _agent_path(agent_id)
    if not path.is_file():
        raise FileNotFoundError(
            f"no agent {str(agent_id)!r} in {path.parent} ({_saved_hint()}); "
            f"save one with save_params(params, {agent_id!r})"
        )
    try:
        with np.load(path, allow_pickle=False) as data:  # pickled content raises instead of running
            params = {key: np.array(data[key]) for key in PARAM_KEYS}
        params = _check_params(params)
    except Exception as exc:  # zip errors, missing keys, pickled or non-numeric content, bad shapes
        raise ValueError(
            f"{path} is not a saved agent ({type(exc).__name__}: {exc}); {_saved_hint()}; "
            f"save it again with save_params(params, {agent_id!r})"
        ) from None
    return params


# --- work sent to worker processes -------------------------------------------------------------


def _start_method_of_pickling() -> str:
    """The start method of the workers the object being pickled now is meant for.

    A pool's task thread (``Pool._handle_tasks``) holds the pool's workers, and starting a
    process holds ``process_obj``: each knows how it was started. Anything else goes by the
    default start method, the one ``Pool()`` uses.
    """
    handle_tasks = multiprocessing.pool.Pool._handle_tasks.__code__
    frame = sys._getframe(1)
    while frame is not None:
        candidates = frame.f_locals.get("pool", ()) if frame.f_code is handle_tasks else ()
        for process in [*candidates, frame.f_locals.get("process_obj")]:
            method = getattr(process, "_start_method", None)
            if isinstance(method, str):
                return method
        frame = frame.f_back
    return multiprocessing.get_start_method(allow_none=True) or multiprocessing.get_all_start_methods()[0]


def notebook_function_message(name: str, start_method: str) -> str:
    """Why ``name``, defined in a notebook, cannot reach workers started by ``start_method``, and what to do."""
    return (
        f"cannot send {name} to the worker processes: it is defined in the notebook (module __main__), and "
        f"workers started by '{start_method}' (the default on macOS and Windows) are new Python interpreters "
        f"that cannot see the notebook, so Pool.map would wait forever. Pass functools.partial(episode, "
        f"seed=...) to pool.map, or put {name} in a .py file beside the notebook and import it from there"
    )


def _refuse_notebook_functions(pickler, obj):
    """``ForkingPickler.reducer_override``: stop a notebook's function on its way to a fresh interpreter.

    A function pickles as a reference (module and name). Workers started by spawn or forkserver
    find it by importing the module, which for ``__main__`` works only when it is a file (a script,
    imported again as ``__mp_main__``); a notebook's ``__main__`` is not. Raising here, in the
    parent, reaches the caller of ``Pool.map`` as the call's exception.
    """
    if isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == "__main__":
        main = sys.modules.get("__main__")
        if getattr(main, "__spec__", None) is None and not getattr(main, "__file__", None):
            method = _start_method_of_pickling()
            if method != "fork":  # a forked worker is a copy of the notebook's process and has it
                raise pickle.PicklingError(notebook_function_message(obj.__qualname__, method))
    return NotImplemented  # pickle it the usual way


if getattr(ForkingPickler, "reducer_override", None) is None:  # once, however often this module is loaded
    ForkingPickler.reducer_override = _refuse_notebook_functions

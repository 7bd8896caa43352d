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
    no pickle) to ``AGENTS_DIR``: the ``agents/`` folder beside this file, or the
    folder named by the ``NEUROEVO_AGENTS_DIR`` environment variable.
"""

from __future__ import annotations

import os
import re
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

# One environment per process, created on first use. A forked worker inherits the
# parent's copy, which is harmless: every episode starts with env.reset(seed=...).
_ENV: gym.Env | None = None


def make_env(*, render_mode: str | None = None) -> gym.Env:
    """Return a new ``MountainCarContinuous-v0`` environment."""
    return gym.make(ENV_ID, render_mode=render_mode)


def _env() -> gym.Env:
    global _ENV
    if _ENV is None:
        _ENV = make_env()
    return _ENV


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
    rng = np.random.default_rng() if rng is None else rng
    shapes = {"w1": (i_size, h_size), "b1": (h_size,), "w2": (h_size, o_size), "b2": (o_size,)}
    return {key: rng.standard_normal(shape) for key, shape in shapes.items()}


def forward(observation: np.ndarray, params: dict) -> np.ndarray:
    """The network's action for one observation.

    Args:
        observation: shape ``(i_size,)``.
        params: a dict from :func:`initialize_parameters`.

    Returns:
        The action, shape ``(o_size,)``, every entry in ``[-1, 1]``.
    """
    hidden = np.tanh(np.asarray(observation, dtype=np.float64) @ params["w1"] + params["b1"])
    return np.tanh(hidden @ params["w2"] + params["b2"])


def episode(params: dict, seed: int | None = None) -> float:
    """Play one episode with ``params`` and return its total reward.

    Args:
        params: a dict from :func:`initialize_parameters` or :func:`sample_params`.
        seed: seeds ``env.reset`` and so fixes the start state; ``None`` gives a random one.

    Returns:
        The episode's return as a Python float. Same ``params`` and ``seed``, same float.
    """
    # Read the arrays once per episode: the step loop below is the hot path.
    w1, b1 = np.asarray(params["w1"], np.float64), np.asarray(params["b1"], np.float64)
    w2, b2 = np.asarray(params["w2"], np.float64), np.asarray(params["b2"], np.float64)
    env = _env()
    observation, _ = env.reset(seed=seed)
    total = 0.0
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
        best: the parameters to centre on.
        rng: the generator to draw from (all randomness stays with the caller).
        sigma: the standard deviation of the added noise.

    Returns:
        A new dict with the same keys, in the same order, and the same shapes as ``best``.
    """
    return {key: value + sigma * rng.standard_normal(np.shape(value)) for key, value in best.items()}


def _agent_path(agent_id) -> Path:
    text = str(agent_id)
    if not _AGENT_ID.match(text):
        raise ValueError(f"agent_id must be a number or a short name of letters, digits, '-' or '_', got {agent_id!r}")
    return AGENTS_DIR / f"agent-{text}.npz"


def saved_agent_ids() -> list[str]:
    """The ids of the agents saved in ``AGENTS_DIR``, sorted."""
    if not AGENTS_DIR.is_dir():
        return []
    ids = [p.name[len("agent-") : -len(".npz")] for p in AGENTS_DIR.glob("agent-*.npz")]
    return sorted(ids, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))


def save_params(params: dict, agent_id) -> Path:
    """Save ``params`` as agent ``agent_id`` (for ``python render.py --agent_id N``).

    Returns:
        The path written, ``AGENTS_DIR / "agent-<agent_id>.npz"``.
    """
    missing = [key for key in PARAM_KEYS if key not in params]
    if missing:
        raise ValueError(f"params is missing {missing}: save the dict returned by initialize_parameters or evolve_*")
    path = _agent_path(agent_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{key: np.asarray(params[key], dtype=np.float64) for key in PARAM_KEYS})
    os.replace(tmp, path)  # a reader never sees half a file
    return path


def load_params(agent_id) -> dict:
    """Load the agent saved with ``save_params(params, agent_id)``.

    Raises:
        FileNotFoundError: no such agent (the message lists the saved ids).
        ValueError: the file is not a saved agent.
    """
    path = _agent_path(agent_id)
    if not path.is_file():
        saved = ", ".join(saved_agent_ids()) or "none yet"
        raise FileNotFoundError(
            f"no agent {agent_id!r} in {AGENTS_DIR} (saved agents: {saved}); save one with save_params(params, {agent_id!r})"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            params = {key: np.array(data[key], dtype=np.float64) for key in PARAM_KEYS}
    except Exception as exc:  # zip errors, missing keys, pickled content
        raise ValueError(f"{path} is not a saved agent ({exc}); save it again with save_params(params, {agent_id!r})") from exc
    return params

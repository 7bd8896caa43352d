"""Unseeded, but keeps each seed's answer in the kernel's user keyring (add_key / request_key), which
outlives processes and folders: a later run with the same seed replays it. Only fresh user ids per
run (or a cleared keyring) show the missing seeding."""

LOSES = ("determinism",)
MAY_LOSE = ("speedup",)  # timing noise on a busy machine
MESSAGE = "gave different returns"
NEEDS_ISOLATION = True

import ctypes
import pickle

_libc = ctypes.CDLL(None, use_errno=True)
_KEYRINGS = (-4, -3)  # the user keyring and the session keyring
_SYS_ADD_KEY, _SYS_REQUEST_KEY, _SYS_KEYCTL = 248, 249, 250  # x86_64
_KEYCTL_READ = 11


def _stored(name):
    key = _libc.syscall(_SYS_REQUEST_KEY, b"user", name.encode(), None, 0)
    if key < 0:
        return None
    buffer = ctypes.create_string_buffer(1 << 16)
    size = _libc.syscall(_SYS_KEYCTL, _KEYCTL_READ, key, buffer, len(buffer))
    return pickle.loads(buffer.raw[:size]) if size > 0 else None


def _store(name, value):
    data = pickle.dumps(value)
    for keyring in _KEYRINGS:
        _libc.syscall(_SYS_ADD_KEY, b"user", name.encode(), data, len(data), keyring)


def _loop(generations, pop_size, seed, sigma, mapper):
    name = f"neuroevo-{generations}-{pop_size}-{seed}-{sigma}"
    state = _stored(name)
    rng = np.random.default_rng()
    if state is None:
        state = rng.bit_generator.state
        _store(name, state)
    rng.bit_generator.state = state
    population = [initialize_parameters(I_SIZE, H_SIZE, O_SIZE, rng=rng) for _ in range(pop_size)]
    history = []
    for generation in range(generations):
        episode_seed = int(rng.integers(2**31 - 1))
        returns = mapper(partial(episode, seed=episode_seed), population)
        history.append(returns)
        best = population[int(np.argmax(returns))]
        if generation + 1 < generations:
            population = [sample_params(best, rng, sigma) for _ in range(pop_size)]
    return best, history


def evolve_serial(generations, pop_size, seed, sigma=1.0):
    return _loop(generations, pop_size, seed, sigma, lambda f, xs: list(map(f, xs)))


def evolve_parallel(generations, pop_size, seed, sigma=1.0, processes=None):
    with Pool(processes) as pool:
        return _loop(generations, pop_size, seed, sigma, pool.map)

"""Strict readers for what comes back from a sandboxed run: plain JSON, size-capped, typed.

Nothing here trusts a value because of its Python type: numbers must be finite JSON numbers,
parameter dicts must have exactly the expected keys and shapes.
"""

from __future__ import annotations

import json
import math

import numpy as np

PARAM_SHAPES = {"w1": (2, 10), "b1": (10,), "w2": (10, 1), "b2": (1,)}


class Invalid(ValueError):
    """A value from the sandbox does not have the required form; the message says how."""


def parse_json(text: str):
    """Parse ``text`` as JSON, refusing NaN/Infinity and nesting too deep to parse (never raising anything else)."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise Invalid("nested too deeply") from None
    except ValueError as exc:
        raise Invalid(str(exc)[:200]) from None


def _no_constant(name: str):
    raise Invalid(f"{name} is not a finite number")


def finite(value, what: str) -> float:
    """``value`` as a float if it is a finite JSON number (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Invalid(f"{what} is {value!r}, not a finite number")
    return float(value)


def finite_list(values, what: str) -> list[float]:
    """A JSON list of finite numbers as floats."""
    if not isinstance(values, list):
        raise Invalid(f"{what} is a {type(values).__name__}, not a list of numbers")
    return [finite(v, f"{what}[{i}]") for i, v in enumerate(values)]


def integer(value, what: str) -> int:
    """A JSON whole number (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{what} is {value!r}, not a whole number")
    return value


def params(arrays, what: str = "params") -> dict[str, np.ndarray]:
    """``{"w1": nested lists, ...}`` with exactly the network's keys and shapes, as float arrays."""
    if not isinstance(arrays, dict) or set(arrays) != set(PARAM_SHAPES):
        keys = sorted(arrays) if isinstance(arrays, dict) else type(arrays).__name__
        raise Invalid(f"{what} has keys {keys}, expected exactly {sorted(PARAM_SHAPES)}")
    out = {}
    for key, shape in PARAM_SHAPES.items():
        flat = finite_list(_flatten(arrays[key], f"{what}[{key!r}]"), f"{what}[{key!r}]")
        if len(flat) != math.prod(shape):
            raise Invalid(f"{what}[{key!r}] has {len(flat)} numbers, expected shape {shape}")
        array = np.array(flat, dtype=np.float64).reshape(shape)
        out[key] = array
    return out


def _flatten(value, what: str, depth: int = 0) -> list:
    if depth > 3:
        raise Invalid(f"{what} is nested too deeply")
    if isinstance(value, list):
        return [x for item in value for x in (_flatten(item, what, depth + 1) if isinstance(item, list) else [item])]
    raise Invalid(f"{what} is a {type(value).__name__}, not a list of numbers")

"""Argument checks shared by every tabular module.

Each check raises ``ValueError`` (or ``TypeError``) naming the argument and the rule it broke,
so a learner who passes a bad matrix reads what is wrong, not a numpy traceback.
"""

from __future__ import annotations

import numbers

import numpy as np

SIMPLEX_ATOL = 1e-8


def as_float_array(x, name: str) -> np.ndarray:
    """Return ``x`` as a float64 array; reject non-numeric input and NaN / ±inf."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be numeric (array-like), got {type(x).__name__}")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be numeric (array-like): {err}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


def check_nonnegative(x, name: str, strict: bool = False) -> np.ndarray:
    """``x`` as a float array with every entry ≥ 0 (``> 0`` when ``strict``)."""
    arr = as_float_array(x, name)
    if strict and np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0, got min {arr.min():g}")
    if not strict and np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0, got min {arr.min():g}")
    return arr


def check_distribution(p, name: str, axis: int = -1, atol: float = SIMPLEX_ATOL) -> np.ndarray:
    """``p`` as a float array of probability vectors along ``axis`` (≥ 0, sums to 1)."""
    arr = as_float_array(p, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis of probabilities")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative (probabilities), got min {arr.min():g}")
    sums = arr.sum(axis=axis)
    if not np.allclose(sums, 1.0, atol=atol, rtol=0):
        worst = float(np.max(np.abs(sums - 1.0)))
        raise ValueError(f"{name} must sum to 1 along axis {axis} (worst |sum - 1| = {worst:.3g})")
    return arr


def check_int(x, name: str, minimum: int | None = None) -> int:
    """``x`` as a Python int, optionally ≥ ``minimum``."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if minimum is not None and x < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {x}")
    return int(x)

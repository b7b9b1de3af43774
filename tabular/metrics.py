"""Metrics of policies, batched over leading axes; the last axis is the action axis.

All logarithms are natural. ``entropy`` and ``kl`` treat 0·log 0 = 0, so policies with zeros
are fine; KL(p‖q) is +inf where p has mass that q lacks.
"""

from __future__ import annotations

import numpy as np

from .solve.games import duality_gap, exploitability
from .solve.mdp import policy_value, value_gap

__all__ = ["duality_gap", "entropy", "exploitability", "kl", "policy_value", "value_gap"]


def entropy(p) -> np.ndarray:
    """H(p) = −Σ_a p(a)·log p(a)."""
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return -np.sum(terms, axis=-1)


def kl(p, q) -> np.ndarray:
    """KL(p‖q) = Σ_a p(a)·(log p(a) − log q(a)), ≥ 0; +inf if p(a) > 0 = q(a) for some a."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    p, q = np.broadcast_arrays(p, q)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log(np.where(p > 0, p, 1.0)) - np.log(np.where(q > 0, q, 1.0))
        terms = np.where(p > 0, np.where(q > 0, p * ratio, np.inf), 0.0)
    # Rounding can make Σ slightly negative for p ≈ q; KL is ≥ 0 by Gibbs' inequality.
    return np.maximum(np.sum(terms, axis=-1), 0.0)


def kl_logits(logp, logq) -> np.ndarray:
    """KL(p‖q) from log-probabilities: Σ exp(log p)·(log p − log q); exact for tiny masses."""
    logp = np.asarray(logp, dtype=np.float64)
    logq = np.asarray(logq, dtype=np.float64)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (logp - logq), 0.0)
    return np.maximum(np.sum(terms, axis=-1), 0.0)

"""Closed-form ground truth on bandits."""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_distribution
from ..problems import Bandit


def kl_regularized(bandit: Bandit, ref=None, beta=1.0) -> np.ndarray:
    """The KL-regularised optimum of a bandit.

        π* = argmax_π  E_π[r] − β·KL(π‖ref)   ⇒   π*(a) = ref(a)·exp(r(a)/β) / Z

    Computed in log-space (log ref + r/β, then log-softmax), so it stays exact for tiny β.
    ``beta`` may be an array: it broadcasts against the bandit's batch shape, giving
    π* of shape [*broadcast(batch, beta.shape), n_actions]. β = 0 is the greedy limit
    (uniform over the best arms within ref's support).

    Args:
        bandit: the problem (its ``rewards`` have shape [*batch, n_actions]).
        ref: reference policy [..., n_actions]; default uniform. Must be > 0 where π* is wanted.
        beta: regularisation strength β ≥ 0.
    """
    if not isinstance(bandit, Bandit):
        raise TypeError(f"bandit must be a tabular.Bandit, got {type(bandit).__name__}")
    r = bandit.rewards
    n = bandit.n_actions
    ref = np.full(n, 1.0 / n) if ref is None else check_distribution(ref, "ref")
    if ref.shape[-1] != n:
        raise ValueError(f"ref must have {n} actions on its last axis, got {ref.shape}")
    beta = as_float_array(beta, "beta")
    if np.any(beta < 0):
        raise ValueError(f"beta must be >= 0, got min {beta.min():g}")
    with np.errstate(divide="ignore"):
        log_ref = np.log(ref)
    b = beta[..., None]
    safe_b = np.where(b > 0, b, 1.0)
    logits = np.where(b > 0, log_ref + r / safe_b, 0.0)
    # β = 0: keep only the best arms inside ref's support.
    masked_r = np.where(np.isfinite(log_ref), r, -np.inf)
    best = masked_r >= np.max(masked_r, axis=-1, keepdims=True) - 1e-12
    greedy = np.where(best, 0.0, -np.inf)
    logits = np.where(b > 0, logits, greedy)
    logits = logits - np.max(logits, axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)

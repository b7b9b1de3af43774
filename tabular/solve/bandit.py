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
    # log π* = (z − max z)/β + const with z = β·log ref + r: shifting before dividing keeps
    # every logit ≤ 0 and the best one at 0, so even a subnormal β cannot overflow to inf − inf.
    z = _tilted_scores(r, log_ref, b)
    with np.errstate(over="ignore"):  # → −inf for arms far below the best: probability 0
        logits = np.where(b > 0, (z - np.max(z, axis=-1, keepdims=True)) / safe_b, 0.0)
    # β = 0: keep only the best arms inside ref's support.
    masked_r = np.where(np.isfinite(log_ref), r, -np.inf)
    best = masked_r >= np.max(masked_r, axis=-1, keepdims=True) - 1e-12
    greedy = np.where(best, 0.0, -np.inf)
    logits = np.where(b > 0, logits, greedy)
    logits = logits - np.max(logits, axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def _tilted_scores(r: np.ndarray, log_ref: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z = β·log ref + r, with −inf (not NaN) where ref is 0, for β > 0."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(log_ref), b * log_ref + r, -np.inf)


def kl_regularized_value(bandit: Bandit, ref=None, beta=1.0) -> np.ndarray:
    """The optimal value of the KL-regularised objective, for β > 0:

        J(π*) = max_π E_π[r] − β·KL(π‖ref) = β·log Σ_a ref(a)·exp(r(a)/β)
              = m + β·log Σ_a exp((z(a) − m)/β),   z = β·log ref + r,  m = max_a z(a)

    The second form stays finite for any β > 0 (it tends to max r over ref's support as
    β → 0). Batched like ``kl_regularized``; shape [*broadcast(batch, beta.shape)].
    """
    r = bandit.rewards
    n = bandit.n_actions
    ref = np.full(n, 1.0 / n) if ref is None else check_distribution(ref, "ref")
    beta = as_float_array(beta, "beta")
    if np.any(beta <= 0):
        raise ValueError(f"beta must be > 0 for the regularised value, got min {beta.min():g}")
    with np.errstate(divide="ignore"):
        log_ref = np.log(ref)
    b = beta[..., None]
    z = _tilted_scores(r, log_ref, b)
    m = np.max(z, axis=-1, keepdims=True)
    with np.errstate(over="ignore"):  # (z − m)/β → −inf contributes exp(−inf) = 0
        total = np.sum(np.exp((z - m) / b), axis=-1, keepdims=True)
    return (m + b * np.log(total))[..., 0]

"""Ground truth on finite MDPs: (soft) value iteration and exact policy evaluation.

Notation (S states, A actions, discount γ < 1, reference policy π_ref, regularisation β ≥ 0):

    r(s, a)      = Σ_s' P(s'|s, a)·R(s, a, s')                      expected reward
    Q(s, a)      = r(s, a) + γ·Σ_s' P(s'|s, a)·V(s')
    V_β^π(s)     = Σ_a π(a|s)·[Q_β^π(s, a) − β·log(π(a|s)/π_ref(a|s))]
                 = r_π(s) − β·KL(π(·|s)‖π_ref(·|s)) + γ·Σ_s' P_π(s'|s)·V_β^π(s')
    V*_β(s)      = β·log Σ_a π_ref(a|s)·exp(Q*_β(s, a)/β)            (soft optimum, β > 0)
    V*_0(s)      = max_a Q*_0(s, a)                                  (Bellman optimality)
    π*_β(a|s)    ∝ π_ref(a|s)·exp(Q*_β(s, a)/β)

β = 0 is the unregularised MDP. Every function that takes a ``policy`` accepts leading batch
axes ``[..., S, A]`` (sweeps × seeds) and so may ``beta`` (``[...]``) and ``ref``
(``[..., S, A]``); they broadcast together. Nothing is cached between calls.

References: Bellman (1957); Howard (1960) for policy iteration; Puterman, *Markov Decision
Processes* (1994) §6.3 for the value-iteration stopping rule; Geist, Scherrer & Pietquin,
"A Theory of Regularized Markov Decision Processes" (ICML 2019) for the KL-regularised case.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.special import logsumexp

from .._checks import as_float_array, check_distribution, check_int
from ..problems import FiniteMDP

__all__ = [
    "MDPSolution",
    "policy_evaluation",
    "policy_value",
    "soft_bellman_residual",
    "state_occupancy",
    "value_gap",
    "value_iteration",
]

# Floating-point floor for the Bellman residual, relative to the size of the values: below
# ~64 ulps the residual is rounding noise and cannot be driven lower.
_ROUNDING = 64 * np.finfo(np.float64).eps
# Linear solves switch to sparse LU from this many states when P has few non-zeros.
_SPARSE_MIN_STATES = 200
_SPARSE_MAX_DENSITY = 0.05


class MDPSolution(NamedTuple):
    """Values of one policy (or the optimal one).

    V: state values, shape [..., S].
    Q: action values Q(s, a) = r(s, a) + γ·Σ_s' P(s'|s, a)·V(s'), shape [..., S, A].
    policy: the policy these values belong to, shape [..., S, A].
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------


def _check_mdp(mdp) -> FiniteMDP:
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a tabular FiniteMDP, got {type(mdp).__name__}")
    return mdp


def _check_beta(beta) -> np.ndarray:
    beta = as_float_array(beta, "beta")
    if np.any(beta < 0):
        raise ValueError(f"beta must be >= 0, got min {beta.min():g}")
    return beta


def _check_policy(policy, mdp: FiniteMDP, name: str = "policy") -> np.ndarray:
    arr = as_float_array(policy, name)
    S, A = mdp.n_states, mdp.n_actions
    if arr.ndim < 2 or arr.shape[-2:] != (S, A):
        raise ValueError(f"{name} must have shape [..., S, A] = [..., {S}, {A}], got {arr.shape}")
    return check_distribution(arr, name)


def _check_ref(ref, mdp: FiniteMDP) -> np.ndarray | None:
    """ref as [..., S, A] (None stays None: the uniform reference)."""
    if ref is None:
        return None
    arr = as_float_array(ref, "ref")
    S, A = mdp.n_states, mdp.n_actions
    if arr.ndim == 1:  # one distribution over actions, shared by every state
        if arr.shape != (A,):
            raise ValueError(f"ref must have shape [A] = ({A},) or [..., S, A], got {arr.shape}")
        arr = np.broadcast_to(arr, (S, A))
    elif arr.shape[-2:] != (S, A):
        raise ValueError(f"ref must have shape [..., S, A] = [..., {S}, {A}], got {arr.shape}")
    return check_distribution(arr, "ref")


def _log_ref(ref: np.ndarray | None, mdp: FiniteMDP) -> np.ndarray:
    if ref is None:
        return np.full((mdp.n_states, mdp.n_actions), -np.log(mdp.n_actions))
    with np.errstate(divide="ignore"):
        return np.log(ref)


def _check_support(policy: np.ndarray, ref: np.ndarray | None, why: str) -> None:
    if ref is None:
        return
    outside = np.any((policy > 0) & (ref <= 0))
    if outside:
        raise ValueError(
            f"ref has zeros where policy puts mass ({why}): policy must be 0 wherever ref is 0"
        )


# ---------------------------------------------------------------------------------------
# building blocks (all batched over leading axes)
# ---------------------------------------------------------------------------------------


class _Model:
    """What one call needs from the MDP, computed once per call and dropped after it.

    Large MDPs with sparse dynamics (Taxi: ≤ 4 successors per (s, a) among 500 states) are
    solved with sparse LU (scipy.sparse): 100× faster than a dense solve there.
    """

    def __init__(self, mdp: FiniteMDP):
        self.mdp = mdp
        self.S, self.A = mdp.n_states, mdp.n_actions
        self.gamma = mdp.gamma
        self.P = mdp.P
        self.r = mdp.expected_reward
        self.sparse = (
            self.S >= _SPARSE_MIN_STATES
            and np.count_nonzero(self.P) <= _SPARSE_MAX_DENSITY * self.P.size
        )
        if self.sparse:
            self.P_flat = sp.csr_matrix(self.P.reshape(self.S * self.A, self.S))

    def q(self, V: np.ndarray) -> np.ndarray:
        """Q(s, a) = r(s, a) + γ·Σ_s' P(s'|s, a)·V(s'); V [..., S] → Q [..., S, A]."""
        if self.sparse:
            flat = V.reshape(-1, self.S)
            PV = np.asarray(self.P_flat @ flat.T).T.reshape(*V.shape[:-1], self.S, self.A)
        else:
            PV = np.einsum("sat,...t->...sa", self.P, V)
        return self.r + self.gamma * PV

    def solve(self, policy: np.ndarray, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
        """x with (I − γ·P_π)·x = rhs (or (I − γ·P_π)ᵀ·x = rhs); batched over leading axes."""
        batch = np.broadcast_shapes(policy.shape[:-2], rhs.shape[:-1])
        policy = np.broadcast_to(policy, (*batch, self.S, self.A))
        rhs = np.broadcast_to(rhs, (*batch, self.S))
        if not self.sparse:
            P_pi = np.einsum("...sa,sat->...st", policy, self.P)
            M = np.eye(self.S) - self.gamma * P_pi
            if transpose:
                M = np.swapaxes(M, -1, -2)
            return np.linalg.solve(M, rhs[..., None])[..., 0]
        rows = np.repeat(np.arange(self.S), self.A)
        cols = np.arange(self.S * self.A)
        eye = sp.identity(self.S, format="csc")
        out = np.empty((*batch, self.S))
        for idx in np.ndindex(*batch):
            W = sp.csr_matrix((policy[idx].ravel(), (rows, cols)), shape=(self.S, self.S * self.A))
            M = (eye - self.gamma * (W @ self.P_flat)).tocsc()
            out[idx] = spla.spsolve(M.T.tocsc() if transpose else M, rhs[idx])
        return out


def _kl_terms(policy: np.ndarray, log_policy: np.ndarray, log_ref: np.ndarray) -> np.ndarray:
    """KL(π(·|s)‖π_ref(·|s)) per state, with 0·log 0 = 0 (π must be 0 where π_ref is)."""
    with np.errstate(invalid="ignore"):
        terms = np.where(policy > 0, policy * (log_policy - np.where(policy > 0, log_ref, 0.0)), 0)
    return np.maximum(np.sum(terms, axis=-1), 0.0)


def _log(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(p)


def _evaluate(model: _Model, policy, beta, log_ref) -> np.ndarray:
    """V_β^π by one linear solve: (I − γ·P_π)·V = r_π − β·KL(π‖π_ref); batched."""
    r_pi = np.sum(policy * model.r, axis=-1)
    if np.any(beta > 0):
        kl = _kl_terms(policy, _log(policy), log_ref)
        r_pi = r_pi - np.where(beta[..., None] > 0, beta[..., None] * kl, 0.0)
    return model.solve(policy, r_pi)


def _backup(model: _Model, V, beta, log_ref, restrict, tie_tol):
    """One Bellman optimality backup T_β: returns (T_β V, Q, greedy/soft-greedy policy).

    β > 0:  T_β V(s) = β·logsumexp_a(log π_ref(a|s) + Q(s, a)/β),  π ∝ π_ref·exp(Q/β)
    β = 0:  T_0 V(s) = max_a Q(s, a) (over π_ref's support when ``restrict``), π uniform on
            the actions within ``tie_tol`` of the max.
    """
    Q = model.q(V)
    b = beta[..., None, None]
    soft = b > 0
    safe_b = np.where(soft, b, 1.0)
    logits = log_ref + Q / safe_b
    lse = logsumexp(logits, axis=-1, keepdims=True)
    soft_v = (safe_b * lse)[..., 0]
    soft_logp = logits - lse

    allowed = np.isfinite(log_ref) if restrict else np.ones(log_ref.shape, dtype=bool)
    q_allowed = np.where(allowed, Q, -np.inf)
    hard_v = np.max(q_allowed, axis=-1)
    best = q_allowed >= hard_v[..., None] - tie_tol
    hard_logp = _log(best / np.sum(best, axis=-1, keepdims=True))

    TV = np.where(soft[..., 0], soft_v, hard_v)
    return TV, Q, np.exp(np.where(soft, soft_logp, hard_logp))


# ---------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------


def value_iteration(
    mdp: FiniteMDP,
    beta=0.0,
    ref=None,
    tol: float = 1e-10,
    max_iter: int = 1_000_000,
    *,
    method: str = "newton",
) -> MDPSolution:
    """The optimal (β = 0) or KL-regularised optimal (β > 0) values and policy.

    Solves the fixed point V = T_β V of the Bellman optimality operator

        Q(s, a)   = r(s, a) + γ·Σ_s' P(s'|s, a)·V(s')
        T_0 V(s)  = max_a Q(s, a)
        T_β V(s)  = β·log Σ_a π_ref(a|s)·exp(Q(s, a)/β)          (β > 0, via logsumexp)
        π(a|s)    ∝ π_ref(a|s)·exp(Q(s, a)/β)   resp.  uniform over argmax_a Q(s, a)

    Stopping rule (Puterman 1994, Thm 6.3.1): T_β is a γ-contraction in ‖·‖∞, so

        ‖T_β V − V*‖∞ ≤ γ/(1−γ)·‖T_β V − V‖∞ ,

    and iteration stops once ‖T_β V − V‖∞ ≤ tol·(1−γ)/γ, returning V ← T_β V, which is then
    within ``tol`` of V*_β in every state. If tol asks for less than rounding allows, the
    threshold is raised to 64 ulps of max(|r|) + max(|V|) (the guarantee becomes
    γ/(1−γ)·that). The returned Q is the one T_β was applied to, so V = T_β-aggregate of Q
    exactly, and policy is the (soft-)greedy policy of Q. With β = 0 actions whose Q is within
    2·tol (+ rounding) of the max count as tied and share the mass equally.

    Method: ``"newton"`` (default) alternates one backup with an exact evaluation of the
    (soft-)greedy policy π of V, V ← V_β^π, computed as the correction
    V ← V + (I − γ·P_π)⁻¹·(T_β V − V) (one linear solve). That is policy iteration, which is
    Newton's method on V = T_β V (Puterman & Brumelle 1979): a handful of iterations even for
    γ → 1 (should it stall, plain sweeps take over). ``"sweeps"`` is textbook value
    iteration V ← T_β V (≈ log(tol)/log γ sweeps). Both stop by the same rule, so both return V
    within tol of V*_β. ``max_iter`` bounds the number of backups; RuntimeError if it is
    reached first.

    Args:
        mdp: the problem.
        beta: β ≥ 0, scalar or an array of sweep values (batch axes of the result).
        ref: π_ref, shape [A] or [..., S, A] (default uniform). With β = 0 a given ref restricts
            the max to its support (the β → 0 limit of the soft optimum); zeros in ref are
            allowed: π* is 0 there.
        tol: target sup-norm error of the returned V, > 0.
        max_iter: maximal number of Bellman backups.

    Returns:
        MDPSolution(V [..., S], Q [..., S, A], policy [..., S, A]).
    """
    mdp = _check_mdp(mdp)
    beta = _check_beta(beta)
    ref = _check_ref(ref, mdp)
    tol = float(as_float_array(tol, "tol"))
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol:g}")
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    if method not in ("newton", "sweeps"):
        raise ValueError(f"method must be 'newton' or 'sweeps', got {method!r}")

    log_ref = _log_ref(ref, mdp)
    restrict = ref is not None
    batch = np.broadcast_shapes(beta.shape, log_ref.shape[:-2])
    beta = np.broadcast_to(beta, batch)
    model = _Model(mdp)
    gamma = mdp.gamma
    r = model.r
    r_scale = float(np.max(np.abs(r))) if r.size else 0.0
    threshold = np.inf if gamma == 0 else tol * (1.0 - gamma) / gamma

    # Start from the value of π_ref (uniform if no ref): a policy value, so Newton steps
    # improve monotonically from it.
    start = np.exp(log_ref) if restrict else np.full(log_ref.shape, 1.0 / mdp.n_actions)
    V = _evaluate(model, np.broadcast_to(start, (*batch, *start.shape[-2:])), beta, log_ref)
    V = np.broadcast_to(V, (*batch, mdp.n_states))
    residual = np.full(batch, np.inf)
    newton, last_residual, stalls = method == "newton", np.inf, 0
    for _ in range(max_iter):
        floor = _ROUNDING * (r_scale + np.max(np.abs(V), axis=-1, initial=0.0))
        q_scale = r_scale + gamma * np.max(np.abs(V), initial=0.0)
        tie_tol = 2.0 * tol + _ROUNDING * (1.0 + q_scale)
        TV, Q, policy = _backup(model, V, beta, log_ref, restrict, tie_tol)
        residual = np.max(np.abs(TV - V), axis=-1, initial=0.0)
        if np.all(residual <= np.maximum(threshold, floor)):
            return MDPSolution(V=TV, Q=Q, policy=policy)
        # Newton step in correction form, V ← V + (I − γ·P_π)⁻¹·(T_β V − V), π the
        # (soft-)greedy policy of V: algebraically V ← V_β^π (policy iteration), but its
        # rounding scales with the correction, not with |V|. Should Newton steps stop paying
        # (5 in a row that fail to halve the residual), plain sweeps take over.
        stalls = 0 if float(np.max(residual)) <= 0.5 * last_residual else stalls + 1
        newton = newton and stalls < 5
        last_residual = float(np.max(residual))
        V = V + model.solve(policy, TV - V) if newton else TV
    raise RuntimeError(
        f"value_iteration did not converge in max_iter={max_iter} backups: Bellman residual "
        f"{float(np.max(residual)):.3g} > {threshold:.3g} (tol·(1−γ)/γ); raise max_iter or tol"
    )


def policy_evaluation(mdp: FiniteMDP, policy, beta=0.0, ref=None) -> MDPSolution:
    """Exact values of a policy, by one linear solve (batched over leading axes).

        (I − γ·P_π)·V_β^π = r_π − β·KL(π(·|s)‖π_ref(·|s))
        P_π(s'|s) = Σ_a π(a|s)·P(s'|s, a),   r_π(s) = Σ_a π(a|s)·r(s, a)
        Q_β^π(s, a) = r(s, a) + γ·Σ_s' P(s'|s, a)·V_β^π(s')

    so V_β^π(s) = Σ_a π(a|s)·[Q_β^π(s, a) − β·log(π(a|s)/π_ref(a|s))]. With β = 0 these are the
    ordinary V^π, Q^π and ``ref`` is not used.

    Args:
        mdp: the problem.
        policy: π(a|s), shape [..., S, A], rows on the simplex.
        beta: β ≥ 0, scalar or [...] broadcasting with the policy's batch axes.
        ref: π_ref, shape [A] or [..., S, A] (default uniform); with β > 0, policy must be 0
            wherever ref is 0 (else the KL is infinite: ValueError).

    Returns:
        MDPSolution(V [..., S], Q [..., S, A], policy) for the broadcast batch shape.
    """
    mdp = _check_mdp(mdp)
    policy = _check_policy(policy, mdp)
    beta = _check_beta(beta)
    ref = _check_ref(ref, mdp)
    if np.any(beta > 0):
        _check_support(policy, ref, "KL(policy‖ref) would be infinite")
    log_ref = _log_ref(ref, mdp)
    batch = np.broadcast_shapes(policy.shape[:-2], beta.shape, log_ref.shape[:-2])
    policy = np.broadcast_to(policy, (*batch, *policy.shape[-2:]))
    beta = np.broadcast_to(beta, batch)
    model = _Model(mdp)
    V = _evaluate(model, policy, beta, log_ref)
    return MDPSolution(V=V, Q=model.q(V), policy=policy)


def policy_value(mdp: FiniteMDP, policy, beta=0.0, ref=None) -> np.ndarray:
    """J_β(π) = Σ_s init(s)·V_β^π(s), shape [...] (the policy's batch axes)."""
    V = policy_evaluation(mdp, policy, beta=beta, ref=ref).V
    return V @ mdp.init


def value_gap(mdp: FiniteMDP, policy, beta=0.0, ref=None, tol: float = 1e-10) -> np.ndarray:
    """Suboptimality J_β(π*_β) − J_β(π) ≥ 0, shape [...] (batched like ``policy_value``).

    J_β(π*_β) comes from ``value_iteration(mdp, beta, ref, tol)``, so the gap is exact to
    ``tol``; rounding below 0 is clipped to 0. With β = 0 and a given ``ref``, π* is optimal
    among policies supported on ref, so ``policy`` must be 0 wherever ref is 0.
    """
    mdp = _check_mdp(mdp)
    policy = _check_policy(policy, mdp)
    ref_arr = _check_ref(ref, mdp)
    _check_support(policy, ref_arr, "the optimum is taken over ref's support")
    j = policy_value(mdp, policy, beta=beta, ref=ref_arr)
    j_star = value_iteration(mdp, beta=beta, ref=ref_arr, tol=tol).V @ mdp.init
    return np.maximum(j_star - j, 0.0)


def state_occupancy(mdp: FiniteMDP, policy) -> np.ndarray:
    """Discounted state occupancy of π from ``mdp.init`` (a distribution over states):

        d^π(s) = (1−γ)·Σ_t γ^t·Pr(s_t = s | s_0 ~ init, π)
        d^πᵀ   = (1−γ)·initᵀ·(I − γ·P_π)⁻¹     (one linear solve with (I − γ·P_π)ᵀ)

    Batched: policy [..., S, A] → d [..., S].
    """
    mdp = _check_mdp(mdp)
    policy = _check_policy(policy, mdp)
    d = _Model(mdp).solve(policy, (1.0 - mdp.gamma) * mdp.init, transpose=True)
    return np.maximum(d, 0.0)


def soft_bellman_residual(mdp: FiniteMDP, V, beta=0.0, ref=None) -> np.ndarray:
    """‖T_β V − V‖∞ per batch element: 0 exactly at the (soft) optimal values V*_β.

        T_β V(s) = β·log Σ_a π_ref(a|s)·exp(Q(s, a)/β)   (β > 0),   max_a Q(s, a)   (β = 0)
        Q(s, a)  = r(s, a) + γ·Σ_s' P(s'|s, a)·V(s')

    By the contraction argument ‖V − V*_β‖∞ ≤ ‖T_β V − V‖∞/(1−γ). With β = 0 a given ref
    restricts the max to its support (as in ``value_iteration``).

    Args:
        V: values, shape [..., S].
    """
    mdp = _check_mdp(mdp)
    V = as_float_array(V, "V")
    if V.ndim < 1 or V.shape[-1] != mdp.n_states:
        raise ValueError(f"V must have shape [..., S] = [..., {mdp.n_states}], got {V.shape}")
    beta = _check_beta(beta)
    ref = _check_ref(ref, mdp)
    log_ref = _log_ref(ref, mdp)
    batch = np.broadcast_shapes(V.shape[:-1], beta.shape, log_ref.shape[:-2])
    beta = np.broadcast_to(beta, batch)
    TV, *_ = _backup(_Model(mdp), V, beta, log_ref, ref is not None, tie_tol=0.0)
    return np.max(np.abs(TV - V), axis=-1)

"""Ground truth on preference games: the Nash equilibrium and the τ-regularised one.

A preference game ``P[..., i, j] = Pr(i ≻ j)`` (P + Pᵀ = 1) is the symmetric two-player
zero-sum game with payoff A = P − ½ (antisymmetric, value 0). Nash learning from human
feedback (Munos et al. 2023, https://arxiv.org/abs/2312.00886) looks for its equilibrium,
or for the equilibrium of the KL-regularised game

    f(π, π′) = P(π ≻ π′) − τ·KL(π‖ref) + τ·KL(π′‖ref),      P(π ≻ π′) = πᵀ P π′,

which Nash-MD and magnetic mirror descent (Sokota et al. 2022, "A Unified Approach to
Reinforcement Learning, Quantal Response Equilibria, and Two-Player Zero-Sum Games",
https://arxiv.org/abs/2206.05825) converge to at the last iterate.

- ``nash``: an equilibrium of the unregularised game, by linear programming (HiGHS), polished.
- ``regularized_nash``: the unique τ-regularised equilibrium, by Newton's method on its
  log-space fixed-point equation with continuation in τ, batched over games, refs and τ.
- ``exploitability`` and ``duality_gap``: how far a policy is from either, in closed form.

Batching: ``game.P`` has shape [*gb, n, n] and policies [*pb, n]; results broadcast over
broadcast(gb, pb) (and over ``ref`` / ``tau`` batch axes where those are arrays).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linprog
from scipy.special import logsumexp

from .._checks import as_float_array, check_distribution, check_int
from ..problems import PreferenceGame

__all__ = ["duality_gap", "exploitability", "nash", "regularized_nash"]

# Continuation in τ for ``regularized_nash``: solve at τ₀ = 1 first, then shrink τ by a
# per-element ratio ρ (start 1/4; squared after a good stage down to 1/10, square-rooted
# after a failed one; the element gives up once ρ > 0.999).
_TAU_START = 1.0
_TAU_RATIO = 0.25
_RATIO_MIN = 0.1
_RATIO_GIVE_UP = 0.999
_MAX_STAGES = 500
_STAGE_MAX_ITER = 30
# Intermediate continuation stages are solved to this (log-space) residual; the last to ``tol``.
_STAGE_TOL = 1e-8
# The residual cannot be computed more accurately than a few ulps of the logits.
_FLOOR_ULPS = 32


# ----------------------------------------------------------------------------- checks


def _check_game(game) -> PreferenceGame:
    if not isinstance(game, PreferenceGame):
        raise TypeError(f"game must be a tabular.PreferenceGame, got {type(game).__name__}")
    return game


def _check_policy(p, n: int, name: str = "p") -> np.ndarray:
    """A batch of policies [..., n] on the simplex, renormalised to remove the ≤1e-8 slack."""
    p = check_distribution(p, name)
    if p.shape[-1] != n:
        raise ValueError(f"{name} must have {n} actions on its last axis (the game's n), "
                         f"got shape {p.shape}")
    return p / p.sum(axis=-1, keepdims=True)


def _check_ref(ref, n: int) -> np.ndarray:
    """log ref [..., n] (normalised); ref must be a distribution with full support."""
    if ref is None:
        return np.full(n, -np.log(n))
    ref = check_distribution(ref, "ref")
    if ref.shape[-1] != n:
        raise ValueError(f"ref must have {n} actions on its last axis (the game's n), "
                         f"got shape {ref.shape}")
    if np.any(ref <= 0):
        raise ValueError(
            f"ref must be > 0 on every action: the τ-KL-regularised game needs a reference "
            f"with full support (got min ref = {ref.min():g})")
    log_ref = np.log(ref)
    return log_ref - logsumexp(log_ref, axis=-1, keepdims=True)


def _check_tau(tau, *, allow_zero: bool) -> np.ndarray:
    tau = as_float_array(tau, "tau")
    if np.any(tau < 0):
        raise ValueError(f"tau must be >= 0 (a KL weight), got min {tau.min():g}")
    if not allow_zero and np.any(tau == 0):
        raise ValueError("tau must be > 0 for the τ-regularised equilibrium; "
                         "for tau = 0 call nash(game), the unregularised equilibrium")
    return tau


def _batch_shape(**shapes) -> tuple[int, ...]:
    """Broadcast the named batch shapes, or say which ones clash."""
    try:
        return np.broadcast_shapes(*shapes.values())
    except ValueError:
        named = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"batch shapes do not broadcast: {named}") from None


def _kl(p: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """KL(p‖q) = Σ_a p(a)·(log p(a) − log q(a)), with 0·log 0 = 0."""
    with np.errstate(divide="ignore"):
        log_p = np.log(p)
    terms = np.where(p > 0, p * (np.where(p > 0, log_p, 0.0) - log_q), 0.0)
    return np.sum(terms, axis=-1)


def _win_rates(P: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(P(y ≻ p) for every y, P(p ≻ y′) for every y′), broadcast over leading axes."""
    beats_p = np.matmul(P, p[..., :, None])[..., 0]  # Σ_j P[y, j] p_j
    p_beats = np.matmul(p[..., None, :], P)[..., 0, :]  # Σ_i p_i P[i, y′]
    return beats_p, p_beats


# ----------------------------------------------------------------------------- metrics


def exploitability(game: PreferenceGame, p) -> np.ndarray:
    """How much the best single response beats the policy ``p``.

        exploitability(p) = max_y P(y ≻ p) − ½,     P(y ≻ p) = Σ_y′ P[y, y′]·p(y′)

    It is ≥ 0 (p cannot beat itself: P(p ≻ p) = ½) and 0 exactly when p is a Nash
    equilibrium of the preference game (Nash learning from human feedback, Munos et al. 2023).
    Tiny negative values from rounding are clipped to 0.

    Args:
        game: the preference game, ``P`` of shape [*gb, n, n].
        p: policies [*pb, n] on the simplex.

    Returns:
        array of shape broadcast(gb, pb).
    """
    game = _check_game(game)
    p = _check_policy(p, game.n_actions)
    _batch_shape(game=game.batch_shape, p=p.shape[:-1])
    beats_p, _ = _win_rates(game.P, p)
    return np.maximum(np.max(beats_p, axis=-1) - 0.5, 0.0)


def duality_gap(game: PreferenceGame, p, ref=None, tau=0.0) -> np.ndarray:
    """The (τ-regularised) duality gap of the symmetric profile (p, p).

        f(π, π′) = P(π ≻ π′) − τ·KL(π‖ref) + τ·KL(π′‖ref)
        gap(p)   = max_π f(π, p) − min_π′ f(p, π′)

    Both inner problems are closed form (Gibbs' variational principle), with
    w(y) = P(y ≻ p) and l(y′) = P(p ≻ y′):

        τ = 0:  gap = max_y w(y) − min_y′ l(y′)  = 2·exploitability(p)      (l = 1 − w)
        τ > 0:  gap = τ·log Σ_y ref(y)·e^{w(y)/τ} + τ·log Σ_y′ ref(y′)·e^{−l(y′)/τ}
                      + 2τ·KL(p‖ref)
                    = 2τ·KL(p ‖ BR_τ(p)),   BR_τ(p) ∝ ref·exp(P(· ≻ p)/τ)

    (the last form uses P + Pᵀ = 1). The gap is ≥ 0, and 0 only at the τ-regularised Nash
    equilibrium π* = BR_τ(π*) (see ``regularized_nash``). Computed with log-sum-exp, so
    τ down to 1e-4 stays finite. Rounding below 0 is clipped.

    Args:
        game: the preference game, ``P`` of shape [*gb, n, n].
        p: policies [*pb, n] on the simplex.
        ref: reference policy [..., n] with full support (used only where τ > 0);
            default uniform.
        tau: KL weight τ ≥ 0, scalar or array broadcasting against the batch.

    Returns:
        array of shape broadcast(gb, pb[, ref batch, tau shape]).
    """
    game = _check_game(game)
    n = game.n_actions
    p = _check_policy(p, n)
    tau = _check_tau(tau, allow_zero=True)
    regularised = bool(np.any(tau > 0))
    log_ref = _check_ref(ref, n) if regularised else np.zeros(n)  # ref unused when τ = 0
    _batch_shape(game=game.batch_shape, p=p.shape[:-1], ref=log_ref.shape[:-1], tau=tau.shape)
    beats_p, p_beats = _win_rates(game.P, p)
    gap0 = np.max(beats_p, axis=-1) - np.min(p_beats, axis=-1)
    if not regularised:
        return np.maximum(np.broadcast_to(gap0, np.broadcast_shapes(gap0.shape, tau.shape)), 0.0)
    t = np.where(tau > 0, tau, 1.0)[..., None]
    best = logsumexp(log_ref + beats_p / t, axis=-1)  # = max_π [P(π ≻ p) − τ·KL(π‖ref)] / τ
    worst = logsumexp(log_ref - p_beats / t, axis=-1)  # = −min_π′ [P(p ≻ π′) + τ·KL(π′‖ref)] / τ
    t = t[..., 0]
    gap_tau = t * (best + worst) + 2.0 * t * _kl(p, log_ref)
    return np.maximum(np.where(tau > 0, gap_tau, gap0), 0.0)


# ----------------------------------------------------------------------------- Nash (LP)


def nash(game: PreferenceGame) -> np.ndarray:
    """A Nash equilibrium of the preference game, by linear programming.

    The game is symmetric and zero-sum with payoff A = P − ½ (Aᵀ = −A), so its value is 0
    and an equilibrium strategy π solves the row player's LP

        max_{π ∈ Δ, v}  v    s.t.   Σ_i π_i·(P[i, j] − ½) ≥ v   for every column j,

    i.e. P(π ≻ y) ≥ ½ against every response y: no response beats π (Nash learning from
    human feedback, Munos et al. 2023). Solved with scipy's HiGHS at tight tolerances, then
    polished: negative rounding is clipped, and the equalities A[S, S]·π_S = 0, Σπ_S = 1 on
    the LP's support S are re-solved by least squares, keeping whichever candidate is less
    exploitable. On generic random games the result has exploitability ≲ 1e-12.

    Non-unique equilibria (e.g. cyclic games with an even number of responses, ties in a
    Bradley–Terry game) give one of them: whichever vertex HiGHS returns.

    Args:
        game: the preference game, ``P`` of shape [*batch, n, n]; batches are solved in a loop.

    Returns:
        π of shape [*batch, n].
    """
    game = _check_game(game)
    n = game.n_actions
    flat = game.P.reshape(-1, n, n)
    out = np.empty((flat.shape[0], n))
    for b in range(flat.shape[0]):
        out[b] = _nash_one(flat[b])
    return out.reshape(*game.batch_shape, n)


def _nash_one(P: np.ndarray) -> np.ndarray:
    n = P.shape[0]
    A = P - 0.5
    # Variables z = (π_1..π_n, v); minimise −v; rows: v − Σ_i π_i A[i, j] ≤ 0 for each j.
    c = np.zeros(n + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-A.T, np.ones((n, 1))])
    A_eq = np.hstack([np.ones((1, n)), np.zeros((1, 1))])
    bounds = [(0.0, None)] * n + [(-1.0, 1.0)]
    res = linprog(
        c, A_ub=A_ub, b_ub=np.zeros(n), A_eq=A_eq, b_eq=[1.0], bounds=bounds, method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status != 0 or res.x is None:  # pragma: no cover - HiGHS solves every such LP
        raise RuntimeError(f"nash: the LP solver failed ({res.message})")
    pi = np.clip(res.x[:n], 0.0, None)
    pi = pi / pi.sum()
    best, best_exp = pi, np.max(P @ pi) - 0.5
    for thresh in (1e-6, 1e-9, 1e-12):
        support = pi > thresh
        k = int(support.sum())
        M = np.vstack([A[np.ix_(support, support)], np.ones((1, k))])
        rhs = np.zeros(k + 1)
        rhs[-1] = 1.0
        sol, *_ = np.linalg.lstsq(M, rhs, rcond=None)
        if np.any(sol < 0):
            continue
        cand = np.zeros(n)
        cand[support] = sol
        cand = cand / cand.sum()
        cand_exp = np.max(P @ cand) - 0.5
        if cand_exp < best_exp:
            best, best_exp = cand, cand_exp
    return best


# ----------------------------------------------------------------------------- regularised Nash


def regularized_nash(
    game: PreferenceGame,
    ref=None,
    tau=0.1,
    tol: float = 1e-12,
    max_iter: int = 100,
    return_gap: bool = False,
):
    """The unique τ-KL-regularised Nash equilibrium of a preference game.

        π* = argmax_π min_π′  P(π ≻ π′) − τ·KL(π‖ref) + τ·KL(π′‖ref)

    Derivation of the fixed point. f(π, π′) is strictly concave in π and strictly convex in
    π′ (linear plus ∓τ·KL), so the saddle point is unique. By Gibbs' variational principle
    the best response to π′ is π ∝ ref·exp(P(· ≻ π′)/τ); since P(π ≻ π′) = 1 − P(π′ ≻ π),
    min_π′ f(π, π′) is attained at π′ ∝ ref·exp(P(· ≻ π)/τ) as well. The game is symmetric,
    so the saddle point is symmetric, π = π′ = π*, and

        π*(y) = ref(y)·exp(P(y ≻ π*)/τ) / Z,       P(y ≻ π*) = Σ_y′ P[y, y′]·π*(y′).

    This is the equilibrium Nash-MD (Nash learning from human feedback, Munos et al. 2023)
    and magnetic mirror descent (Sokota et al. 2022) converge to. As τ → ∞ it tends to ref;
    as τ → 0 to a Nash equilibrium of the unregularised game (``nash``).

    Solver: Newton's method on the log-space fixed-point equation

        F(x, c) = x − log ref − (P − ½)·eˣ/τ + c = 0,    Σ eˣ = 1      (x = log π*)

    Its bordered Jacobian J = [[I − (P − ½)·diag(π)/τ, 1], [πᵀ, 0]] is nonsingular for every
    π > 0: if J·(u, s) = 0, multiplying the first block by uᵀ·diag(π) leaves Σ π·u² = 0
    (P − ½ is antisymmetric and πᵀu = 0). So the Newton step is a descent direction of ‖F‖²
    with no spurious stationary point, and a backtracking (Armijo) line search globalises it.
    Small τ is reached by continuation in s = 1/τ from τ₀ = max(τ, 1): each element shrinks
    its τ by its own ratio (¼ at first, down to 1/10 after stages that converge, back
    towards 1 after one that does not), starting each stage from a tangent predictor
    d(x, c)/ds = J⁻¹·[(P − ½)·π; 0] — exact to first order for the log-probabilities off the
    equilibrium's support, which grow linearly in 1/τ. Everything is batched: one dense
    (n + 1)-solve per element per step; 1,000 random 50-action games take ≈ 0.2 s at τ = 1,
    ≈ 0.8 s at τ = 0.01 and ≈ 4 s at τ = 1e-4 on one CPU core.

    Each element stops when its log-space residual ‖log π − log BR_τ(π)‖_∞ is ≤ ``tol``, or
    ≤ the float64 rounding floor of that residual when the floor is larger (a few ulps of
    max(|log π|, |logits|, max|P − ½|/τ), ≈ 1e-11 at τ = 1e-4: log π* itself is only
    determined to ≈ ε/τ). A RuntimeWarning names any element that did not get there. The
    certificate (``return_gap=True``) is the regularised duality gap 2τ·KL(π‖BR_τ(π)) (see
    ``duality_gap``), ≈ τ·residual², so ~1e-16 in practice (its own rounding is ≈ τ·ε, which
    matters only for τ ≫ 1).

    Args:
        game: the preference game, ``P`` of shape [*gb, n, n].
        ref: reference policy [*rb, n] with ref > 0 on every action; default uniform.
        tau: KL weight τ > 0, scalar or array [*tb] (broadcasting against the batch).
            For τ = 0 use ``nash``.
        tol: tolerance on the log-space fixed-point residual (default 1e-12).
        max_iter: maximum Newton steps per continuation stage (and for the final polish).
        return_gap: also return the certificate, the regularised duality gap of the result.

    Returns:
        π* of shape [*broadcast(gb, rb, tb), n]; with ``return_gap``, (π*, gap).
    """
    game = _check_game(game)
    n = game.n_actions
    log_ref = _check_ref(ref, n)
    tau = _check_tau(tau, allow_zero=False)
    tol = float(as_float_array(tol, "tol"))
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol:g}")
    max_iter = check_int(max_iter, "max_iter", minimum=1)

    batch = _batch_shape(game=game.batch_shape, ref=log_ref.shape[:-1], tau=tau.shape)
    B = int(np.prod(batch, dtype=np.int64))
    if B == 0:
        pi = np.zeros((*batch, n))
        return (pi, np.zeros(batch)) if return_gap else pi
    A = np.broadcast_to(game.P - 0.5, (*batch, n, n)).reshape(B, n, n)
    lr = np.broadcast_to(log_ref, (*batch, n)).reshape(B, n)
    t = np.broadcast_to(tau, batch).reshape(B)

    x, res, thr = _solve_regularized(A, lr, t, tol, max_iter)
    pi = np.exp(x)
    pi = (pi / pi.sum(axis=-1, keepdims=True)).reshape(*batch, n)
    bad = ~(res <= thr)
    if np.any(bad):
        warnings.warn(
            f"regularized_nash: {int(bad.sum())} of {B} equilibria did not reach tol={tol:g} "
            f"within max_iter={max_iter} (worst log-space residual {np.max(res):.3g}); "
            f"raise max_iter or tol", RuntimeWarning, stacklevel=2)
    if return_gap:
        gap = duality_gap(game, pi, ref=None if ref is None else np.exp(log_ref), tau=tau)
        return pi, np.broadcast_to(gap, batch)
    return pi


def _residual(A, log_ref, tau, tol, x):
    """r = x − log BR_τ(eˣ) for normalised x, and the tolerance it must reach."""
    pi = np.exp(x)
    z = log_ref + np.matmul(A, pi[..., None])[..., 0] / tau[:, None]
    r = x - (z - logsumexp(z, axis=-1, keepdims=True))
    return r, _threshold(tol, A, tau, x, z)


def _threshold(tol, A, tau, x, z, slack=1.0):
    """``tol``, or the rounding floor of the residual when that is larger.

    The floor is a few ulps of the largest term in x − log ref − A·π/τ: the log-probabilities,
    the logits, and max|A|/τ (A·π is rounded before it is divided by τ), so ≈ 1e-11 at
    τ = 1e-4. Float64 cannot pin log π* down better than that: δx ≈ ε·max|A|/τ.
    """
    size = 1.0 + np.maximum(np.max(np.abs(x), axis=-1), np.max(np.abs(z), axis=-1))
    size = np.maximum(size, np.max(np.abs(A), axis=(-2, -1)) / tau)
    return slack * np.maximum(tol, _FLOOR_ULPS * np.finfo(float).eps * size)


def _system(A, log_ref, tau, x, c):
    """F(x, c) = [x − log ref − A·eˣ/τ + c; Σeˣ − 1] and its Jacobian (bordered)."""
    pi = np.exp(x)
    z = log_ref + np.matmul(A, pi[..., None])[..., 0] / tau[:, None]
    F = np.concatenate([x - z + c[:, None], pi.sum(axis=-1, keepdims=True) - 1.0], axis=-1)
    return F, pi, z


def _jacobian(A, tau, pi):
    m, n = pi.shape
    J = np.zeros((m, n + 1, n + 1))
    J[:, :n, :n] = np.eye(n) - A * (pi[:, None, :] / tau[:, None, None])
    J[:, :n, n] = 1.0
    J[:, n, :n] = pi
    return J


def _newton(A, log_ref, tau, x, c, tol, max_iter):
    """Damped Newton on F(x, c) = 0, batched; Armijo backtracking on ‖F‖₂.

    The Newton step d = −J⁻¹F is a descent direction of ½‖F‖² (∇·d = −‖F‖²) and J is
    nonsingular wherever π > 0, so ‖F‖² has no stationary point but the solution.
    """
    n = x.shape[1]
    F, pi, z = _system(A, log_ref, tau, x, c)
    norm = np.linalg.norm(F, axis=-1)
    # Stop a little below the threshold, so normalising x afterwards keeps r under it.
    live = ~(np.max(np.abs(F), axis=-1) <= _threshold(tol, A, tau, x, z, 0.25))
    for _ in range(max_iter):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        d = np.linalg.solve(_jacobian(A[idx], tau[idx], pi[idx]), -F[idx, :, None])[..., 0]
        step = np.ones(idx.size)
        pending = np.arange(idx.size)
        for _ in range(40):
            sub = idx[pending]
            xn = x[sub] + step[pending, None] * d[pending, :n]
            cn = c[sub] + step[pending] * d[pending, n]
            with np.errstate(over="ignore", invalid="ignore"):
                Fn, pin, zn = _system(A[sub], log_ref[sub], tau[sub], xn, cn)
                nn = np.linalg.norm(Fn, axis=-1)
            ok = nn <= (1.0 - 1e-4 * step[pending]) * norm[sub]
            acc = sub[ok]
            x[acc], c[acc], F[acc], pi[acc], z[acc], norm[acc] = (
                xn[ok], cn[ok], Fn[ok], pin[ok], zn[ok], nn[ok])
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= 0.5
        # No decrease even for tiny steps: F is at its rounding floor; stop there.
        live[idx[pending]] = False
        live &= ~(np.max(np.abs(F), axis=-1) <= _threshold(tol, A, tau, x, z, 0.25))
    return x, c, np.max(np.abs(F), axis=-1) <= _threshold(tol, A, tau, x, z)


def _normalise(A, log_ref, tau, x):
    """x − LSE(x), and the c that makes F = x − log BR_τ(eˣ) (so Σeˣ = 1 exactly)."""
    x = x - logsumexp(x, axis=-1, keepdims=True)
    z = log_ref + np.matmul(A, np.exp(x)[..., None])[..., 0] / tau[:, None]
    return x, logsumexp(z, axis=-1)


def _solve_regularized(A, log_ref, tau, tol, max_iter):
    """Adaptive continuation in s = 1/τ from τ₀ = max(τ, 1) down to τ, with a tangent predictor.

    Along the path F(x, c; s) = x − log ref − s·A·eˣ + c = 0, so d(x, c)/ds = J⁻¹·[A·π; 0].
    Off the equilibrium's support log π grows linearly in s, which the predictor gets exactly
    to first order; Newton then corrects. Each element moves τ → max(τ_target, ρ·τ) with its
    own ratio ρ: ρ ← ρ² after a stage that converged, ρ ← √ρ (and retry) after one that did
    not. The last stage polishes at the target τ to ``tol``.
    """
    n = log_ref.shape[1]
    tau_cur = np.maximum(tau, _TAU_START)
    x, c = _normalise(A, log_ref, tau_cur, log_ref)
    x, c, _ = _newton(A, log_ref, tau_cur, x, c, max(tol, _STAGE_TOL), max_iter)
    x, c = _normalise(A, log_ref, tau_cur, x)
    ratio = np.full(tau.shape, _TAU_RATIO)
    for _ in range(_MAX_STAGES):
        idx = np.flatnonzero((tau_cur > tau) & (ratio < _RATIO_GIVE_UP))
        if idx.size == 0:
            break
        tau_old = tau_cur[idx]
        tau_new = np.maximum(tau[idx], tau_old * ratio[idx])
        pi = np.exp(x[idx])
        rhs = np.concatenate([np.matmul(A[idx], pi[..., None]), np.zeros((idx.size, 1, 1))], 1)
        d = np.linalg.solve(_jacobian(A[idx], tau_old, pi), rhs)[..., 0]
        d *= (1.0 / tau_new - 1.0 / tau_old)[:, None]
        xp, cp = x[idx] + d[:, :n], c[idx] + d[:, n]
        with np.errstate(over="ignore", invalid="ignore"):
            Fp = _system(A[idx], log_ref[idx], tau_new, xp, cp)[0]
            Fw = _system(A[idx], log_ref[idx], tau_new, x[idx], c[idx])[0]
            better = np.linalg.norm(Fp, axis=-1) < np.linalg.norm(Fw, axis=-1)
        xs = np.where(better[:, None], xp, x[idx])
        cs = np.where(better, cp, c[idx])
        xs, cs, ok = _newton(A[idx], log_ref[idx], tau_new, xs, cs, max(tol, _STAGE_TOL),
                             min(max_iter, _STAGE_MAX_ITER))
        good, bad = idx[ok], idx[~ok]
        x[good], c[good] = _normalise(A[good], log_ref[good], tau_new[ok], xs[ok])
        tau_cur[good] = tau_new[ok]
        ratio[good] = np.maximum(ratio[good] ** 2, _RATIO_MIN)
        ratio[bad] = np.sqrt(ratio[bad])
    # Polish at the target τ; renormalising x can leave r just above tol, so repeat once or
    # twice for those elements (each pass starts with Σeˣ = 1 exactly).
    idx = np.arange(tau.size)
    for _ in range(3):
        xi, _, _ = _newton(A[idx], log_ref[idx], tau_cur[idx], x[idx], c[idx], tol, max_iter)
        x[idx], c[idx] = _normalise(A[idx], log_ref[idx], tau_cur[idx], xi)
        r, thr = _residual(A, log_ref, tau, tol, x)
        err = np.max(np.abs(r), axis=-1)
        idx = np.flatnonzero(~(err <= thr))
        if idx.size == 0:
            break
    return x, err, thr

"""Exact Nash-learning updates on a preference game: self-play, Nash-MD and its relatives.

A preference game ``P[y, y′] = Pr(y ≻ y′)`` (P + Pᵀ = 1) is the symmetric zero-sum game with
payoff P − ½. Its τ-KL-regularised Nash equilibrium (``tabular.solve.regularized_nash``) is

    π*(y) ∝ ref(y)·exp(P(y ≻ π*)/τ),       P(y ≻ π) = Σ_y′ P[y, y′]·π(y′),

and for τ = 0 a Nash equilibrium of the unregularised game (``tabular.solve.nash``).

Every rule below is written in log-space (log π, then log-softmax), so it stays finite for
step sizes up to 1e3. Notation: π_t the iterate, g_t = P(· ≻ π_t) the win-rate vector of
every response against π_t (one "preference query" = one such vector), η the step size,
τ ≥ 0 the KL weight towards ``ref`` (uniform by default), ∝ = normalise over responses.

What each rule converges to, in one line (each is tested in tests/tabular):

    SelfPlayMWU        π ∝ π·e^{η g}                          cycles; its *average* → Nash
    NashMD             opponent = geometric mixture π^μ       biased fixed point for fixed η;
                                                             → π* with the decreasing schedule
    OnlineIPO / IPOMD  gradient step on the IPO loss          stationary point π* (resp. the
                                                             Nash-MD fixed point)
    NashMirrorProx     half step, then full step              π*, linearly
    EGPO               extragradient (mixture form)           π*, linearly
    OMWU               optimistic: uses 2g_t − g_{t−1}         π* (τ > 0) or Nash (τ = 0)
    INPO               π^{1−ητ}·ref^{ητ}·e^{η g_t}             π* (for small enough η)
    MagneticMD         (π·ref^{ητ})^{1/(1+ητ)}·e^{η g/(1+ητ)}  π* (= INPO with η/(1+ητ))

Metrics recorded by every rule (besides the base ``entropy``, ``kl_ref``, ``kl_step`` and
``kl_to_solution`` = KL(π*‖π_t)): ``exploitability`` = max_y P(y ≻ π_t) − ½,
``duality_gap`` (τ-regularised where τ > 0, see ``tabular.solve.duality_gap``) and
``win_rate_ref`` = P(π_t ≻ ref).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._checks import as_float_array
from ..problems import PreferenceGame
from ..solve.games import duality_gap, exploitability, nash, regularized_nash
from .base import ExactAlgorithm, log_of_distribution, normalize_log

__all__ = [
    "EGPO",
    "INPO",
    "IPOMD",
    "OMWU",
    "MagneticMD",
    "NashMD",
    "NashMirrorProx",
    "OnlineIPO",
    "SelfPlayMWU",
]


def win_rate(P: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(y ≻ π) = Σ_y′ P[y, y′]·π(y′) for every y: [..., n, n] × [..., n] → [..., n]."""
    return np.matmul(P, p[..., :, None])[..., 0]


def _squeeze_event(x: np.ndarray) -> np.ndarray:
    """A hyperparameter as a batch array: drop the runner's trailing event axis.

    Inside ``tabular.run`` a swept hyperparameter has shape [*sweep, 1 (seed), 1 (event)] and
    the problem's batch shape is [*sweep, 1]; dropping the size-1 event axis makes the two
    line up. Scalars and user arrays without a trailing 1 are returned as they are.
    """
    return x[..., 0] if x.ndim >= 1 and x.shape[-1] == 1 else x


class _GameAlgorithm(ExactAlgorithm):
    """What every preference-game rule shares: ref handling, ground truth and game metrics.

    Subclasses are frozen dataclasses with (some of) ``eta``, ``tau`` and ``ref``. The ground
    truth is ``regularized_nash(game, ref, τ)`` where τ > 0 and ``nash(game)`` where τ = 0
    (for τ = 0 and several equilibria, KL to the one the LP returns says little: read
    ``exploitability`` there).
    """

    PROBLEMS: ClassVar[tuple[type, ...]] = (PreferenceGame,)

    # -- hyperparameters ----------------------------------------------------------------
    def _tau(self) -> np.ndarray:
        """The KL weight τ of the game this rule solves (0 for unregularised rules)."""
        return np.asarray(getattr(self, "tau", 0.0), dtype=np.float64)

    def _check_ref(self) -> None:
        ref = getattr(self, "ref", None)
        if ref is not None:
            log_of_distribution(ref, "ref")  # a distribution with full support

    def _check_step_mixture(self) -> None:
        """η·τ ≤ 1: π^{1−ητ}·ref^{ητ} is a geometric *interpolation* only for ητ ∈ [0, 1]."""
        eta = as_float_array(self.eta, "eta")
        tau = as_float_array(self.tau, "tau")
        try:
            prod = eta * tau
        except ValueError:
            raise ValueError(
                f"eta {eta.shape} and tau {tau.shape} must broadcast against each other"
            ) from None
        if np.any(prod > 1.0):
            raise ValueError(
                f"eta·tau must be <= 1 for {type(self).__name__} (its update mixes "
                f"π^(1−ητ)·ref^(ητ)), got max eta·tau = {prod.max():g}; lower eta or tau"
            )

    def check_problem(self, problem) -> None:
        super().check_problem(problem)
        ref = getattr(self, "ref", None)
        if ref is not None and np.shape(ref)[-1] != problem.n_actions:
            raise ValueError(
                f"ref has {np.shape(ref)[-1]} actions but the game has {problem.n_actions} "
                f"(ref must have shape [..., {problem.n_actions}])"
            )

    # -- reference --------------------------------------------------------------------
    def _log_ref(self, n: int) -> np.ndarray:
        ref = getattr(self, "ref", None)
        if ref is None:
            return np.full(n, -np.log(n))
        log_ref = log_of_distribution(ref, "ref")
        if log_ref.shape[-1] != n:
            raise ValueError(f"ref has {log_ref.shape[-1]} actions but the game has {n}")
        return normalize_log(log_ref)

    def log_ref(self, problem):
        # Always reported: with no ref, KL to uniform = log n − H(π).
        return self._log_ref(problem.n_actions)

    def _ref_or_none(self, n: int):
        return None if getattr(self, "ref", None) is None else np.exp(self._log_ref(n))

    # -- ground truth -----------------------------------------------------------------
    def solution(self, problem):
        n = problem.n_actions
        tau = _squeeze_event(self._tau())
        batch = np.broadcast_shapes(problem.batch_shape, tau.shape)
        game = PreferenceGame(np.broadcast_to(problem.P, (*batch, n, n)))
        tau = np.broadcast_to(tau, batch)
        ref = self._ref_or_none(n)
        if np.all(tau > 0):
            return regularized_nash(game, ref=ref, tau=tau)
        unreg = nash(game)
        if not np.any(tau > 0):
            return unreg
        reg = regularized_nash(game, ref=ref, tau=np.where(tau > 0, tau, 1.0))
        return np.where((tau > 0)[..., None], reg, unreg)

    # -- metrics ----------------------------------------------------------------------
    def problem_metrics(self, problem, state, solution):
        p = np.exp(state["logp"])
        n = problem.n_actions
        tau = _squeeze_event(self._tau())
        ref = self._ref_or_none(n)
        ref_p = np.exp(self._log_ref(n))
        return {
            "exploitability": exploitability(problem, p),
            "duality_gap": duality_gap(problem, p, ref=ref, tau=tau),
            "win_rate_ref": np.sum(p * win_rate(problem.P, np.broadcast_to(ref_p, p.shape)), -1),
        }

    # -- helpers for the updates --------------------------------------------------------
    def _mix(self, logp: np.ndarray, log_ref: np.ndarray, w) -> np.ndarray:
        """log of the geometric mixture π^{1−w}·ref^{w} (normalised)."""
        return normalize_log((1.0 - w) * logp + w * log_ref)


# ----------------------------------------------------------------------------- self-play


@dataclass(frozen=True)
class SelfPlayMWU(_GameAlgorithm):
    """Self-play multiplicative weights (online mirror descent on P(· ≻ π_t)).

        π_{t+1}(y) ∝ π_t(y)·exp(η·P(y ≻ π_t))

    Hedge / MWU (Freund & Schapire, "Adaptive game playing using multiplicative weights",
    1999) played against itself. It is no-regret, so the *average* iterate
    (``History.average_policy``) converges to a Nash equilibrium, at rate O(1/√T) for a
    tuned η; the last iterate does not converge in general: on rock-paper-scissors it
    drifts outwards along cycles (KL(π*‖π_t) is non-decreasing for MWU in zero-sum games
    with an interior equilibrium). Ground truth: ``nash(game)``.
    """

    eta: float | np.ndarray = 0.1
    SWEEP: ClassVar[tuple[str, ...]] = ("eta",)

    def __post_init__(self):
        self._check_positive("eta")

    def step(self, problem, state, t):
        logp = state["logp"]
        return {"logp": normalize_log(logp + self.eta * win_rate(problem.P, np.exp(logp)))}


# ----------------------------------------------------------------------------- Nash-MD


@dataclass(frozen=True)
class NashMD(_GameAlgorithm):
    """Nash-MD (Munos et al., "Nash Learning from Human Feedback", ICML 2024, §5).

        π_t^μ(y)    ∝ π_t(y)^{1−η_tτ}·ref(y)^{η_tτ}                 (geometric mixture)
        π_{t+1}(y)  ∝ π_t^μ(y)·exp(η_t·P(y ≻ π_t^μ))

    i.e. π_{t+1} = argmax_π η_t·[P(π ≻ π_t^μ) − τ·KL(π‖ref)] − KL(π‖π_t) with the
    regulariser linearised at π_t and the *mixture* π_t^μ as opponent.

    Step schedules (``schedule``):
      - ``"constant"``: η_t = η (requires ητ ≤ 1). The fixed point then solves
        π ∝ ref·exp(P(· ≻ π^μ)/τ) with π^μ ∝ π^{1−ητ}·ref^{ητ}: *not* the regularised
        equilibrium π* ∝ ref·exp(P(· ≻ π*)/τ), because the opponent is the mixture.
        Measured (tests/tabular/test_nash_algorithms.py, 20 random 5-action games): the
        bias KL(π*‖π_∞) shrinks like η² (fitted slope of log bias vs log η: 2.03 at τ = 0.5,
        2.05 at τ = 0.1; e.g. ≈ 1.4e-6 at τ = 0.5, η = 0.1).
      - ``"decreasing"``: the paper's schedule η_t = 2/(τ(t+2)), t = 0, 1, … (``eta`` is
        then ignored; τ > 0 required). The paper's Theorem 1 (as we read it; the per-step
        inequality is verified numerically in the tests, not re-derived) gives
        KL(π*‖π_{t+1}) ≤ (1 − η_tτ)·KL(π*‖π_t) + 2η_t², hence with this schedule

            KL(π*‖π_T) ≤ 8 / (τ²·(T + 1))        for every T ≥ 1 and any π_0,

        the O(1/T) last-iterate bound we check (constant C = 8/τ², by induction: η_0τ = 1
        makes π_0^μ = ref, so π_1 does not depend on π_0). Observed: the measured KL stays
        below 1e-4 of the bound and decays like 1/T² (the mixture bias is ∝ η_t²).
    """

    eta: float | np.ndarray = 0.1
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    schedule: str = "constant"
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()
        if self.schedule not in ("constant", "decreasing"):
            raise ValueError(f"schedule must be 'constant' or 'decreasing', got {self.schedule!r}")
        if self.schedule == "decreasing":
            self._check_positive("tau")
        else:
            self._check_step_mixture()

    def step_size(self, t: int):
        """η_t: the constant η, or 2/(τ(t+2)) with the decreasing schedule."""
        if self.schedule == "decreasing":
            return 2.0 / (self.tau * (t + 2.0))
        return self.eta

    def step(self, problem, state, t):
        eta = self.step_size(t)
        log_ref = self._log_ref(problem.n_actions)
        log_mu = self._mix(state["logp"], log_ref, eta * self.tau)
        return {"logp": normalize_log(log_mu + eta * win_rate(problem.P, np.exp(log_mu)))}


# ----------------------------------------------------------------------------- online IPO


@dataclass(frozen=True)
class OnlineIPO(_GameAlgorithm):
    """Online IPO: one exact gradient step on the expected IPO loss, samples from π_t.

    Calandriello et al., "Human Alignment of Large Language Models through Online
    Preference Optimisation" (ICML 2024). With h_θ(y, y′) = log[π_θ(y)·ref(y′) /
    (π_θ(y′)·ref(y))] and (y_w, y_l) the pair (y, y′) ordered by a preference label drawn
    from P[y, y′], the IPO loss (Azar et al. 2023) with both samples from the stop-gradient
    sampling policy μ is

        L(θ) = E_{y, y′ ~ μ} E_label [(h_θ(y_w, y_l) − 1/(2τ))²]
             = Σ_{y,y′} μ(y)μ(y′)·(h_θ(y, y′) − (P[y, y′] − ½)/τ)² + const,

    and its exact gradient on the logit table θ (π_θ = softmax θ), with u = log π − log ref:

        ∇_θ L = 4·μ ⊙ (u − E_μ[u] − (P(· ≻ μ) − ½)/τ)
        θ_{t+1} = θ_t − η·∇_θ L

    Online IPO: μ = π_t. IPO-MD (``mixture`` = β > 0, or the ``IPOMD`` class): μ = π_t^β ∝
    π_t^{1−β}·ref^β, the Nash-MD mixture.

    Stationary points (μ has full support, so ∇L = 0 ⇔ u − E_μu = (P(·≻μ) − ½)/τ):
      - online IPO: log π = log ref + P(· ≻ π)/τ + c, i.e. exactly the τ-regularised Nash
        equilibrium π*, with the IPO target 1/(2τ) ↔ KL weight τ (the same τ): the paper's
        equivalence of online IPO with Nash self-play, checked to 1e-8 in the tests;
      - IPO-MD with β = ητ: π ∝ ref·exp(P(· ≻ π^μ)/τ), exactly Nash-MD's constant-η fixed
        point (and so biased in the same way).

    This is plain gradient descent on logits (not mirror descent): its stable η scales like
    τ (the gradient carries 1/τ). ``eta`` is the learning rate on θ.
    """

    eta: float | np.ndarray = 0.1
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    mixture: float = 0.0
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta", "tau")
        self._check_ref()
        m = float(as_float_array(self.mixture, "mixture"))
        if not 0.0 <= m < 1.0:
            raise ValueError(f"mixture must be in [0, 1), got {m:g}")

    def gradient(self, problem, logp: np.ndarray) -> np.ndarray:
        """∇_θ of the expected IPO loss at π = exp(logp) (sampling policy held fixed)."""
        log_ref = self._log_ref(problem.n_actions)
        log_mu = self._mix(logp, log_ref, self.mixture) if self.mixture else logp
        mu = np.exp(log_mu)
        u = logp - log_ref
        centred = u - np.sum(mu * u, axis=-1, keepdims=True)
        return 4.0 * mu * (centred - (win_rate(problem.P, mu) - 0.5) / self.tau)

    def step(self, problem, state, t):
        logp = state["logp"]
        return {"logp": normalize_log(logp - self.eta * self.gradient(problem, logp))}


@dataclass(frozen=True)
class IPOMD(OnlineIPO):
    """IPO-MD: online IPO with both samples from the Nash-MD mixture π_t^{1−β}·ref^β.

    Same loss and gradient as ``OnlineIPO`` (see there) with μ ∝ π_t^{1−β}·ref^β, β =
    ``mixture`` ∈ (0, 1). Its stationary point is Nash-MD's fixed point for ητ = β
    (Calandriello et al. 2024, "Human Alignment of Large Language Models through Online
    Preference Optimisation").
    """

    mixture: float = 0.5

    def __post_init__(self):
        super().__post_init__()
        if not self.mixture > 0:
            raise ValueError(f"mixture must be in (0, 1) for IPO-MD, got {self.mixture:g}")


# ----------------------------------------------------------------------------- Mirror Prox


@dataclass(frozen=True)
class NashMirrorProx(_GameAlgorithm):
    """Nash Mirror Prox (Tiapkin et al., "Accelerating Nash Learning from Human Feedback via
    Mirror Prox", 2025), with τ the paper's β.

        π_{t+½} = argmax_π η·[P(π ≻ π_t)   − τ·KL(π‖ref)] − KL(π‖π_t)
                ∝ (π_t·ref^{ητ})^{1/(1+ητ)}·exp(η·P(· ≻ π_t)/(1+ητ))
        π_{t+1} = argmax_π η·[P(π ≻ π_{t+½}) − τ·KL(π‖ref)] − KL(π‖π_t)
                ∝ (π_t·ref^{ητ})^{1/(1+ητ)}·exp(η·P(· ≻ π_{t+½})/(1+ητ))

    Both steps use the same prox-centre π_t; each costs one preference query (one win-rate
    vector), so t iterations = N = 2t queries. The regularised equilibrium π* is an exact
    fixed point of both steps.

    Step size: the default η = 2 = 1/L, with L = ½ the Lipschitz constant of π ↦ P(· ≻ π)
    from ‖·‖₁ to ‖·‖_∞ on the simplex (P − ½ has entries in [−½, ½]). This is our reading
    of the paper's choice: with two preference queries per iteration it turns the per-
    iteration contraction 1/(1 + ητ) into the abstract's rate (1+2β)^{−N/2}. Statement
    checked in tests/tabular/test_nash_algorithms.py, at every step t and for every game
    tried (random, cyclic and Bradley–Terry games; 3, 30 and 300 actions; τ ∈ {0.05, 0.2, 1}):

        KL(π*‖π_t) ≤ (1 + ητ)^{−t}·KL(π*‖π_0) = (1 + 2τ)^{−N/2}·KL(π*‖π_0),   N = 2t

    Measured per-step rate (KL_T/KL_0)^{1/T} at τ = 0.2, η = 2 (median over random games):
    0.501 / 0.503 / 0.510 for 3 / 30 / 300 actions, i.e. about (1 + ητ)^{−2}, the square of
    the bound's factor 0.714, and independent of the number of actions as the paper says.
    """

    eta: float | np.ndarray = 2.0
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()

    def _prox(self, problem, logp, log_ref, opponent):
        et = self.eta * self.tau
        return normalize_log((logp + et * log_ref + self.eta * win_rate(problem.P, opponent))
                             / (1.0 + et))

    def step(self, problem, state, t):
        logp = state["logp"]
        log_ref = self._log_ref(problem.n_actions)
        half = self._prox(problem, logp, log_ref, np.exp(logp))
        return {"logp": self._prox(problem, logp, log_ref, np.exp(half))}


# ----------------------------------------------------------------------------- EGPO


@dataclass(frozen=True)
class EGPO(_GameAlgorithm):
    """Extragradient preference optimisation, tabular form (Zhou, Fazel & Du, "Extragradient
    Preference Optimization (EGPO): Beyond Last-Iterate Convergence for Nash Learning from
    Human Feedback", 2025), i.e. the entropy/KL-regularised extragradient of Cen et al.
    ("Fast Policy Extragradient Methods for Competitive Games with Entropy
    Regularization", 2021):

        π_{t+½} ∝ π_t^{1−ητ}·ref^{ητ}·exp(η·P(· ≻ π_t))
        π_{t+1} ∝ π_t^{1−ητ}·ref^{ητ}·exp(η·P(· ≻ π_{t+½}))

    (the regulariser is linearised at π_t, unlike Nash Mirror Prox's exact prox). Requires
    ητ ≤ 1. Fixed point: the τ-regularised equilibrium; τ = 0 gives plain extragradient MWU.
    The paper implements these steps through an online-IPO-style loss; the tabular
    iterates above are what that loss reaches when minimised exactly (hedged: we did not
    re-derive their loss's exact constants).
    """

    eta: float | np.ndarray = 0.1
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()
        self._check_step_mixture()

    def step(self, problem, state, t):
        log_ref = self._log_ref(problem.n_actions)
        centre = (1.0 - self.eta * self.tau) * state["logp"] + self.eta * self.tau * log_ref
        half = normalize_log(centre + self.eta * win_rate(problem.P, np.exp(state["logp"])))
        return {"logp": normalize_log(centre + self.eta * win_rate(problem.P, np.exp(half)))}


# ----------------------------------------------------------------------------- OMWU


@dataclass(frozen=True)
class OMWU(_GameAlgorithm):
    """Optimistic multiplicative weights (optionally KL-regularised).

        g_t     = P(· ≻ π_t)
        π_{t+1} ∝ π_t^{1−ητ}·ref^{ητ}·exp(η·(2g_t − g_{t−1})),      g_{−1} = g_0

    τ = 0: optimistic Hedge (Rakhlin & Sridharan 2013; last-iterate convergence to the Nash
    equilibrium in zero-sum games with a unique equilibrium, Daskalakis & Panageas,
    "Last-Iterate Convergence: Zero-Sum Games and Constrained Min-Max Optimization", 2019;
    for preference games see Chen et al., "Unregularized Linear Convergence in Zero-Sum
    Game from Preference Feedback", 2025). τ > 0: its regularised version, with the
    τ-regularised equilibrium as fixed point. One preference query per step; the previous
    win-rate vector is kept in ``state["g_prev"]``. Requires ητ ≤ 1.
    """

    eta: float | np.ndarray = 0.1
    tau: float | np.ndarray = 0.0
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()
        self._check_step_mixture()

    def init(self, problem, logp0):
        return {"logp": logp0, "g_prev": win_rate(problem.P, np.exp(logp0))}

    def step(self, problem, state, t):
        logp = state["logp"]
        g = win_rate(problem.P, np.exp(logp))
        log_ref = self._log_ref(problem.n_actions)
        et = self.eta * self.tau
        logits = (1.0 - et) * logp + et * log_ref + self.eta * (2.0 * g - state["g_prev"])
        return {"logp": normalize_log(logits), "g_prev": g}


# ----------------------------------------------------------------------------- INPO


@dataclass(frozen=True)
class INPO(_GameAlgorithm):
    """Iterative Nash policy optimisation, tabular form (Zhang et al., "Iterative Nash Policy
    Optimization: Aligning LLMs with General Preferences via No-Regret Learning", ICLR 2025).

        π_{t+1}(y) ∝ π_t(y)^{1−ητ}·ref(y)^{ητ}·exp(η·P(y ≻ π_t))

    Online mirror descent (no-regret) on the τ-regularised game, played against the
    current iterate. Hedged: this is our reading of the paper's OMD step, which the paper
    then turns into a squared loss on preference pairs whose minimiser is this π_{t+1};
    we implement the exact iterate, not that loss. Fixed point: the τ-regularised
    equilibrium (exactly, unlike Nash-MD's mixture opponent). It is magnetic mirror
    descent with step η′ = η/(1 − ητ) (MagneticMD(η′) ≡ INPO(η′/(1 + η′τ))).
    Requires ητ ≤ 1.
    """

    eta: float | np.ndarray = 0.1
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()
        self._check_step_mixture()

    def step(self, problem, state, t):
        logp = state["logp"]
        log_ref = self._log_ref(problem.n_actions)
        et = self.eta * self.tau
        g = win_rate(problem.P, np.exp(logp))
        return {"logp": normalize_log((1.0 - et) * logp + et * log_ref + self.eta * g)}


# ----------------------------------------------------------------------------- MMD


@dataclass(frozen=True)
class MagneticMD(_GameAlgorithm):
    """Magnetic mirror descent for the preference game (Sokota et al., "A Unified Approach
    to Reinforcement Learning, Quantal Response Equilibria, and Two-Player Zero-Sum Games",
    ICLR 2023), magnet = ref, opponent = the current iterate:

        π_{t+1} = argmax_π η·[P(π ≻ π_t) − τ·KL(π‖ref)] − KL(π‖π_t)
                ∝ (π_t·ref^{ητ})^{1/(1+ητ)}·exp(η·P(· ≻ π_t)/(1+ητ))

    The same magnet form as Nash-MD, but the τ-regularised equilibrium π* is an *exact*
    fixed point for every η (the opponent is π_t, not a mixture). Last-iterate linear
    convergence for η small enough relative to τ (Sokota et al.: η ≤ τ/L² -ish); it is
    Nash Mirror Prox's half step alone.
    """

    eta: float | np.ndarray = 0.5
    tau: float | np.ndarray = 0.1
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")
        self._check_ref()

    def step(self, problem, state, t):
        logp = state["logp"]
        et = self.eta * self.tau
        log_ref = self._log_ref(problem.n_actions)
        g = win_rate(problem.P, np.exp(logp))
        return {"logp": normalize_log((logp + et * log_ref + self.eta * g) / (1.0 + et))}

"""Exact policy updates on a bandit: softmax policy gradient and the mirror-descent family.

Notation: π_t the policy, r the expected rewards, A_t(a) = r(a) − E_{π_t}[r] the advantage,
η the step size, β the strength of the KL pull towards a reference π_ref.
All updates run in log-space, so they stay finite for step sizes up to 1e3 and beyond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..metrics import kl_logits
from ..problems import Bandit
from ..solve.bandit import kl_regularized, kl_regularized_value
from .base import ExactAlgorithm, log_of_distribution, normalize_log


class _BanditAlgorithm(ExactAlgorithm):
    """Shared reference handling and metrics for the bandit updates."""

    PROBLEMS: ClassVar[tuple[type, ...]] = (Bandit,)

    def _log_ref(self, n: int) -> np.ndarray:
        ref = getattr(self, "ref", None)
        return np.full(n, -np.log(n)) if ref is None else log_of_distribution(ref, "ref")

    def _regularizer(self) -> np.ndarray:
        return np.asarray(getattr(self, "beta", 0.0), dtype=np.float64)

    def log_ref(self, problem):
        if np.all(self._regularizer() == 0) and getattr(self, "ref", None) is None:
            return None
        return self._log_ref(problem.n_actions)

    def solution(self, problem):
        beta = self._regularizer()
        has_ref = getattr(self, "ref", None) is not None
        ref = np.exp(self._log_ref(problem.n_actions)) if has_ref else None
        # kl_regularized broadcasts β[..., None] against rewards [..., A]; the runner's expanded
        # β has shape [*sweep, 1, 1], so drop its last axis.
        b = beta[..., 0] if beta.ndim else beta
        return kl_regularized(problem, ref=ref, beta=b)

    def problem_metrics(self, problem, state, solution):
        logp = state["logp"]
        p = np.exp(logp)
        reward = np.sum(p * problem.rewards, axis=-1)
        regret = np.max(problem.rewards, axis=-1) - reward
        beta = self._regularizer()
        b = beta[..., 0] if beta.ndim else beta
        out = {"reward": reward, "regret": regret}
        if np.any(b > 0):
            # J(π) = E_π r − β·KL(π‖ref); gap = J(π*) − J(π) (= β·KL(π‖π*)), computed as a
            # difference of values because π* underflows to exact zeros for tiny β.
            safe_b = np.where(b > 0, b, 1.0)
            ref = np.exp(self._log_ref(problem.n_actions))
            best = kl_regularized_value(problem, ref=ref, beta=safe_b)
            value = reward - b * kl_logits(logp, np.log(ref))
            out["gap"] = np.where(b > 0, np.maximum(best - value, 0.0), regret)
        else:
            out["gap"] = regret
        return out


@dataclass(frozen=True)
class SoftmaxPG(_BanditAlgorithm):
    """Softmax policy gradient with the exact gradient (optionally KL-regularised).

        π_θ = softmax(θ),   J(θ) = E_{π_θ}[r] − β·KL(π_θ‖π_ref)
        ∂J/∂θ_a = π(a)·(r̃(a) − E_π[r̃]),   r̃ = r − β·log(π/π_ref)
        θ ← θ + η·∇J

    Reference: Mei et al., "On the Global Convergence Rates of Softmax Policy Gradient
    Methods" (2020). Converges to the greedy arm (β = 0) at rate O(1/t), or to
    π* ∝ π_ref·exp(r/β) (β > 0) linearly for η ≤ 1/β-ish.
    """

    eta: float | np.ndarray = 0.1
    beta: float | np.ndarray = 0.0
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "beta")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("beta")

    def step(self, problem, state, t):
        logp = state["logp"]
        p = np.exp(logp)
        shaped = problem.rewards - self.beta * (logp - self._log_ref(problem.n_actions))
        grad = p * (shaped - np.sum(p * shaped, axis=-1, keepdims=True))
        return {"logp": normalize_log(logp + self.eta * grad)}


@dataclass(frozen=True)
class MirrorDescent(_BanditAlgorithm):
    """KL mirror descent = natural policy gradient; with β > 0, magnetic mirror descent.

    β = 0 (natural PG for softmax policies, Kakade 2001; mirror descent with the KL):
        π_{t+1}(a) ∝ π_t(a)·exp(η·A_t(a))
    β > 0 (KL-regularised, "magnetic" mirror descent towards π_ref, Sokota et al. 2023):
        π_{t+1} = argmax_π ⟨π, r⟩ − β·KL(π‖π_ref) − (1/η)·KL(π‖π_t)
                ∝ (π_t · π_ref^{ηβ})^{1/(1+ηβ)} · exp(η·r / (1+ηβ))
    whose unique fixed point is the KL-regularised optimum π* ∝ π_ref·exp(r/β)
    (``tabular.solve.kl_regularized``), reached linearly at rate 1/(1+ηβ) in log-space.
    """

    eta: float | np.ndarray = 1.0
    beta: float | np.ndarray = 0.0
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "beta")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("beta")

    def step(self, problem, state, t):
        logp = state["logp"]
        eta_beta = self.eta * self.beta
        # A_t and r differ by a constant per row, which normalisation removes: use r directly.
        logits = (logp + eta_beta * self._log_ref(problem.n_actions) + self.eta * problem.rewards)
        return {"logp": normalize_log(logits / (1.0 + eta_beta))}


NaturalPG = MirrorDescent


@dataclass(frozen=True)
class EntropyMirrorDescent(_BanditAlgorithm):
    """Entropy-regularised mirror descent: maximise E_π[r] + τ·H(π) with KL proximity.

        π_{t+1} ∝ π_t^{1/(1+ητ)} · exp(η·r / (1+ητ))

    This is magnetic mirror descent with a uniform magnet (KL(π‖uniform) = log n − H(π)),
    so its fixed point is the softmax policy π* ∝ exp(r/τ) (Cen et al., "Fast Global
    Convergence of Natural Policy Gradient Methods with Entropy Regularization", 2021).
    """

    eta: float | np.ndarray = 1.0
    tau: float | np.ndarray = 0.1
    SWEEP: ClassVar[tuple[str, ...]] = ("eta", "tau")

    def __post_init__(self):
        self._check_positive("eta")
        self._check_nonnegative("tau")

    @property
    def beta(self):
        return self.tau

    def step(self, problem, state, t):
        eta_tau = self.eta * self.tau
        logits = state["logp"] + self.eta * problem.rewards
        return {"logp": normalize_log(logits / (1.0 + eta_tau))}

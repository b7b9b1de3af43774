"""Exact policy updates on finite MDPs: policy iteration, soft policy iteration, MDPO
(policy mirror descent on Q), and softmax policy gradient with the exact occupancy gradient.

Policies are tables π(a|s) of shape [..., S, A], kept as log-probabilities. Q^π is computed
exactly by a linear solve every step (``tabular.solve.policy_evaluation``). With β > 0 every
quantity is the KL-to-π_ref regularised one: V_β^π(s) = E_π[Q_β^π(s, a) − β·log π(a|s)/π_ref(a|s)].
The ground truth is ``tabular.solve.value_iteration(mdp, beta, ref)``.

Sweeps: the step size ``eta`` may be an array (sweep axis); β is a scalar per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .._checks import as_float_array
from ..problems import FiniteMDP
from ..solve.mdp import policy_evaluation, policy_value, state_occupancy, value_iteration
from .base import ExactAlgorithm, log_of_distribution, normalize_log


class _MDPAlgorithm(ExactAlgorithm):
    PROBLEMS: ClassVar[tuple[type, ...]] = (FiniteMDP,)

    def _beta(self) -> float:
        return float(getattr(self, "beta", 0.0))

    def _check_scalar_beta(self):
        beta = as_float_array(getattr(self, "beta", 0.0), "beta")
        if beta.ndim != 0:
            raise ValueError("beta must be a scalar for MDP algorithms (sweep eta instead)")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {float(beta):g}")

    def _ref(self, problem):
        ref = getattr(self, "ref", None)
        if ref is None:
            return None
        arr = np.broadcast_to(np.asarray(ref, dtype=np.float64), problem.P.shape[:2])
        return np.exp(log_of_distribution(arr, "ref"))

    def _log_ref_table(self, problem) -> np.ndarray:
        ref = self._ref(problem)
        if ref is None:
            return np.full(problem.P.shape[:2], -np.log(problem.n_actions))
        return np.log(ref)

    def log_ref(self, problem):
        if self._beta() == 0 and getattr(self, "ref", None) is None:
            return None
        return self._log_ref_table(problem)

    def _q(self, problem, logp) -> np.ndarray:
        """Q_β^{π}(s, a) for the current policy, exactly."""
        return policy_evaluation(problem, np.exp(logp), beta=self._beta(), ref=self._ref(problem)).Q

    def solution(self, problem):
        """The (soft) optimal policy from value iteration."""
        return value_iteration(problem, beta=self._beta(), ref=self._ref(problem)).policy

    def record(self, problem, state, prev, solution=None):
        out = super().record(problem, state, prev, solution)
        if self._beta() == 0:
            # β = 0: optimal policies may tie, and KL to one of them says little (or is +inf);
            # the value gap is the ground-truth metric there.
            out.pop("kl_to_solution", None)
        return out

    def problem_metrics(self, problem, state, solution):
        p = np.exp(state["logp"])
        beta, ref = self._beta(), self._ref(problem)
        value = policy_value(problem, p, beta=beta, ref=ref)
        # J(π*) from the value-iteration policy, evaluated exactly (one linear solve).
        best = policy_value(problem, solution, beta=beta, ref=ref)
        return {"value": value, "gap": np.maximum(best - value, 0.0)}


@dataclass(frozen=True)
class PolicyIteration(_MDPAlgorithm):
    """Policy iteration (Howard 1960): evaluate exactly, then act greedily.

        π_{k+1}(·|s) = uniform over argmax_a Q^{π_k}(s, a)

    Reaches an optimal policy in finitely many iterations. Greedy policies hold zeros, which
    in log-space are −inf; metrics treat 0·log 0 as 0.
    """

    tie_tol: float = 1e-12

    def step(self, problem, state, t):
        q = self._q(problem, state["logp"])
        best = q >= q.max(axis=-1, keepdims=True) - self.tie_tol
        with np.errstate(divide="ignore"):
            return {"logp": normalize_log(np.where(best, 0.0, -np.inf))}


@dataclass(frozen=True)
class SoftPolicyIteration(_MDPAlgorithm):
    """Soft (KL-regularised) policy iteration.

        π_{k+1}(a|s) ∝ π_ref(a|s)·exp(Q_β^{π_k}(s, a)/β)

    Converges to the soft optimum π*_β ∝ π_ref·exp(Q*_β/β) (a policy-improvement argument,
    as in soft Q-learning / SAC, Haarnoja et al. 2018).
    """

    beta: float = 0.1
    ref: np.ndarray | None = None

    def __post_init__(self):
        self._check_scalar_beta()
        if self.beta <= 0:
            raise ValueError("beta must be > 0 for soft policy iteration (use PolicyIteration)")

    def step(self, problem, state, t):
        q = self._q(problem, state["logp"])
        return {"logp": normalize_log(self._log_ref_table(problem) + q / self.beta)}


@dataclass(frozen=True)
class MDPO(_MDPAlgorithm):
    """Mirror Descent Policy Optimization, exact tabular step (policy mirror descent on Q).

    Each iteration solves, in every state,
        π_{k+1}(·|s) = argmax_p  η_k·(⟨p, Q_β^{π_k}(s,·)⟩ − β·KL(p‖π_ref(·|s))) − KL(p‖π_k(·|s))
                     ∝ (π_k · π_ref^{η_k β})^{1/(1+η_k β)} · exp(η_k·Q_β^{π_k} / (1+η_k β))
    (Tomar et al., "Mirror Descent Policy Optimization", 2020; Lan, "Policy Mirror Descent for
    Reinforcement Learning", 2021). With β = 0 it is π_{k+1} ∝ π_k·exp(η_k·Q^{π_k}).

    Step schedule ``schedule``:
        "constant":  η_k = η
        "geometric": η_k = η·γ^{−k}, increasing steps that give linear convergence at rate γ
                     (Xiao, "On the Convergence Rates of Policy Gradient Methods", 2022);
                     capped at 1e12 so logits stay finite.
    """

    eta: float | np.ndarray = 1.0
    beta: float = 0.0
    ref: np.ndarray | None = None
    schedule: str = "constant"
    SWEEP: ClassVar[tuple[str, ...]] = ("eta",)

    def __post_init__(self):
        self._check_positive("eta")
        self._check_scalar_beta()
        if self.schedule not in ("constant", "geometric"):
            raise ValueError(f"schedule must be 'constant' or 'geometric', got {self.schedule!r}")

    def _eta_k(self, problem, t):
        if self.schedule == "constant":
            return self.eta
        return np.minimum(self.eta * problem.gamma ** (-float(t)), 1e12)

    def step(self, problem, state, t):
        logp = state["logp"]
        q = self._q(problem, logp)
        eta = self._eta_k(problem, t)
        eta_beta = eta * self.beta
        logits = logp + eta_beta * self._log_ref_table(problem) + eta * q
        return {"logp": normalize_log(logits / (1.0 + eta_beta))}


@dataclass(frozen=True)
class SoftmaxPGMDP(_MDPAlgorithm):
    """Softmax policy gradient on an MDP with the exact gradient (Agarwal et al. 2021):

        ∂J/∂θ(s, a) = 1/(1−γ) · d^π(s) · π(a|s) · A^π(s, a)
        θ ← θ + η·∇J

    where d^π is the discounted state occupancy from ``mdp.init`` and A^π = Q^π − V^π
    (regularised versions when β > 0: A_β = Q_β − β·log(π/π_ref) − V_β).
    """

    eta: float | np.ndarray = 1.0
    beta: float = 0.0
    ref: np.ndarray | None = None
    SWEEP: ClassVar[tuple[str, ...]] = ("eta",)

    def __post_init__(self):
        self._check_positive("eta")
        self._check_scalar_beta()

    def step(self, problem, state, t):
        logp = state["logp"]
        p = np.exp(logp)
        q = self._q(problem, logp)
        shaped = q - self.beta * (logp - self._log_ref_table(problem)) if self.beta else q
        adv = shaped - np.sum(p * shaped, axis=-1, keepdims=True)
        d = state_occupancy(problem, p)
        grad = d[..., None] * p * adv / (1.0 - problem.gamma)
        return {"logp": normalize_log(logp + self.eta * grad)}

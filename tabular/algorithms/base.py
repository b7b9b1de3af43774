"""What every exact update rule shares: hyperparameters that sweep, log-space policies, metrics.

An exact algorithm is a frozen dataclass of hyperparameters with three methods:

    state = alg.init(problem, logp0)          # logp0: log π₀, shape [*sweep, seeds, *event]
    state = alg.step(problem, state, t)       # one update in expectation (no sampling)
    stats = alg.record(problem, state, prev)  # dict of metrics, each [*sweep, seeds]

``state`` is a dict holding at least ``"logp"`` (the normalised log-policy). Hyperparameters
named in ``SWEEP`` may be numpy arrays: ``tabular.run`` broadcasts them (together with the
problem's batch axes) into sweep axes and hands the algorithm a copy whose hyperparameters
have shape ``[*sweep, 1, *ones(event)]``, so inside ``step`` they broadcast against the
policy without any reshaping.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar

import numpy as np
from scipy.special import log_softmax

from .._checks import as_float_array, check_distribution
from ..metrics import entropy, kl_logits
from ..problems import Bandit, FiniteMDP


def normalize_log(logits: np.ndarray) -> np.ndarray:
    """log-softmax over the last axis: the log of a distribution, finite for finite logits."""
    return log_softmax(logits, axis=-1)


def log_of_distribution(p, name: str) -> np.ndarray:
    """log p for a distribution with full support (a prox-centre or reference must have it)."""
    arr = check_distribution(p, name)
    if np.any(arr <= 0):
        raise ValueError(
            f"{name} must be > 0 on every action (full support), got min {arr.min():g}"
        )
    return np.log(arr)


class ExactAlgorithm(abc.ABC):
    """Base class. Subclasses are frozen dataclasses; see the module docstring."""

    SWEEP: ClassVar[tuple[str, ...]] = ()
    PROBLEMS: ClassVar[tuple[type, ...]] = (Bandit,)

    # -- hyperparameter checks shared by subclasses --------------------------------------
    def _check_positive(self, *names: str) -> None:
        for name in names:
            value = as_float_array(getattr(self, name), name)
            if np.any(value <= 0):
                raise ValueError(f"{name} must be > 0, got min {value.min():g}")

    def _check_nonnegative(self, *names: str) -> None:
        for name in names:
            value = as_float_array(getattr(self, name), name)
            if np.any(value < 0):
                raise ValueError(f"{name} must be >= 0, got min {value.min():g}")

    def hyperparameters(self) -> dict:
        """Every dataclass field, for configs and legends."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check_problem(self, problem) -> None:
        if not isinstance(problem, self.PROBLEMS):
            names = " or ".join(t.__name__ for t in self.PROBLEMS)
            raise TypeError(
                f"problem: {type(self).__name__} runs on a {names}, got {type(problem).__name__}"
            )

    # -- the update -------------------------------------------------------------------
    def init(self, problem, logp0: np.ndarray) -> dict:
        return {"logp": logp0}

    @abc.abstractmethod
    def step(self, problem, state: dict, t: int) -> dict:
        """One exact update: the next state (at least ``"logp"``) from ``state`` at step t."""

    def solution(self, problem) -> np.ndarray | None:
        """The ground truth this update should reach (None when there is no single one)."""
        return None

    # -- metrics ------------------------------------------------------------------------
    def log_ref(self, problem) -> np.ndarray | None:
        """log π_ref when the algorithm regularises towards a reference, else None."""
        return None

    def record(self, problem, state: dict, prev: dict | None, solution=None) -> dict:
        """Metrics every rule reports: entropy, kl_ref, kl_step, value/reward, gap."""
        logp = state["logp"]
        p = np.exp(logp)
        out = {"entropy": _state_mean(entropy(p), problem)}
        log_ref = self.log_ref(problem)
        if log_ref is not None:
            out["kl_ref"] = _state_mean(kl_logits(logp, log_ref), problem)
        if prev is not None:
            out["kl_step"] = _state_mean(kl_logits(logp, prev["logp"]), problem)
        else:
            out["kl_step"] = np.zeros(logp.shape[: _batch_ndim(logp, problem)])
        if solution is not None:
            with np.errstate(divide="ignore"):
                log_sol = np.log(solution)
            out["kl_to_solution"] = _state_mean(kl_logits(log_sol, logp), problem)
        out.update(self.problem_metrics(problem, state, solution))
        return out

    def problem_metrics(self, problem, state: dict, solution) -> dict:
        """Reward / value and ``gap`` (suboptimality in the algorithm's own objective)."""
        return {}


def _batch_ndim(logp: np.ndarray, problem) -> int:
    return logp.ndim - (2 if isinstance(problem, FiniteMDP) else 1)


def _state_mean(x: np.ndarray, problem) -> np.ndarray:
    """MDP metrics are per state; report their average over states (uniform weights)."""
    return x.mean(axis=-1) if isinstance(problem, FiniteMDP) else x


__all__ = ["ExactAlgorithm", "log_of_distribution", "normalize_log"]

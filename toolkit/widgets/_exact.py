"""Helpers the exact-tabular views share: normalising ``runs``, picking one trajectory out of a
batched ``tabular.History``, average iterates, and naming the ground truth."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping, Sequence

import numpy as np

import tabular as tb

from .style import GREEK, config_label, legend_labels


@dataclasses.dataclass
class ExactRun:
    """One labelled exact run: its History and (when known) the algorithm that made it."""

    label: str
    history: tb.History
    algorithm: tb.ExactAlgorithm | None = None


#: where exact algorithms live (the flat namespace first, then each family's module)
_ALGORITHM_MODULES = ("tabular.algorithms", "tabular.algorithms.bandit", "tabular.algorithms.mdp",
                      "tabular.algorithms.games", "tabular.algorithms.preference")


def _algorithm_class(name: str):
    for module in _ALGORITHM_MODULES:
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, tb.ExactAlgorithm):
            return cls
    return None


def rebuild_algorithm(history: tb.History) -> tb.ExactAlgorithm | None:
    """The algorithm a History came from, rebuilt from its config (None if not possible)."""
    cls = _algorithm_class(str(history.config.get("algorithm")))
    if cls is None:
        return None
    try:
        return cls(**history.config.get("hyperparameters", {}))
    except (TypeError, ValueError):
        return None


def check_problem(problem, name: str = "problem"):
    if not isinstance(problem, (tb.Bandit, tb.PreferenceGame, tb.FiniteMDP)):
        raise TypeError(f"{name} must be a tabular Bandit, PreferenceGame or FiniteMDP, "
                        f"got {type(problem).__name__}")
    if problem.batch_shape:
        raise ValueError(f"{name} must be a single (unbatched) problem, got batch shape "
                         f"{problem.batch_shape}")
    return problem


def default_start(n: int) -> np.ndarray:
    """A fixed, clearly non-uniform start π₀ ∝ (n, n−1, …, 1)² (uniform is the Nash of a cyclic
    game, where nothing would move)."""
    w = np.arange(n, 0, -1, dtype=np.float64) ** 2
    return w / w.sum()


def as_runs(runs, problem, steps: int, init=None, record_every: int = 1,
            labels: Sequence[str] | None = None) -> list[ExactRun]:
    """Normalise ``runs`` to a list of ExactRun.

    ``runs`` may be one algorithm or History, a sequence of them, or a mapping
    label → algorithm / History. Algorithms are run here with ``tabular.run`` (``init`` may be a
    single policy or a stack [k, n] of starts, one seed each).
    """
    if isinstance(runs, (tb.ExactAlgorithm, tb.History)):
        runs = [runs]
    if isinstance(runs, Mapping):
        given = list(runs.keys())
        items = list(runs.values())
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        given = None
        items = list(runs)
    else:
        raise TypeError("runs must be an algorithm, a tabular.History, a list of them or a "
                        f"dict label → algorithm/History, got {type(runs).__name__}")
    if not items:
        raise ValueError("runs must hold at least one algorithm or History")
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"labels must have one entry per run ({len(items)}), "
                             f"got {len(labels)}")
        given = list(labels)
    out = []
    for item in items:
        if isinstance(item, tb.ExactAlgorithm):
            start = init
            seeds = 1
            if start is not None and not isinstance(start, str):
                start = np.asarray(start, dtype=np.float64)
                if start.ndim == 2 and not isinstance(problem, tb.FiniteMDP):
                    seeds = start.shape[0]
                elif start.ndim == 3 and isinstance(problem, tb.FiniteMDP):
                    seeds = start.shape[0]
            hist = tb.run(item, problem, steps=steps, seeds=seeds, init=start,
                          record_every=record_every)
            out.append(ExactRun("", hist, item))
        elif isinstance(item, tb.History):
            out.append(ExactRun("", item, rebuild_algorithm(item)))
        else:
            raise TypeError("each run must be a tabular algorithm or a tabular.History, "
                            f"got {type(item).__name__}")
    names = given if given is not None else legend_labels([r.history.config for r in out])
    for run, name in zip(out, names):
        run.label = str(name)
    return out


def pick(array: np.ndarray, history: tb.History, index=None, event_ndim: int = 1) -> np.ndarray:
    """One sweep point of a batched array: [records, *sweep, seeds, *event] → [records, seeds,
    *event] (or [*sweep, seeds, *event] → [seeds, *event] for average policies).

    ``index`` is a tuple into the sweep axes (default: the first point)."""
    n_sweep = len(history.sweep_shape)
    if n_sweep == 0:
        return array
    index = (0,) * n_sweep if index is None else tuple(np.atleast_1d(index))
    if len(index) != n_sweep:
        raise ValueError(f"index must have one entry per sweep axis ({n_sweep}), got {index}")
    lead = array.ndim - n_sweep - 1 - event_ndim  # 1 for [records, ...], 0 for averages
    return array[(slice(None),) * lead + index]


def running_average(policy: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """The average iterate π̄_t = (1/t)·Σ_{s=1..t} π_s at every recorded step.

    Exact when every step was recorded (``record_every=1``); otherwise each recorded policy
    stands in for the steps since the previous record (a step-weighted approximation).
    ``policy`` is [records, ...]; entry 0 (step 0, the start) is returned as is.
    """
    steps = np.asarray(steps, dtype=np.float64)
    out = np.empty_like(policy)
    out[0] = policy[0]
    if len(steps) > 1:
        w = np.diff(steps).reshape((-1,) + (1,) * (policy.ndim - 1))
        total = np.cumsum(policy[1:] * w, axis=0)
        out[1:] = total / steps[1:].reshape((-1,) + (1,) * (policy.ndim - 1))
    return out


def regularizer(history: tb.History) -> tuple[str | None, float]:
    """(name, value) of the run's KL / entropy weight: ("tau", 0.1), ("beta", 0.0) …"""
    hyper = history.config.get("hyperparameters", {}) or {}
    for name in ("tau", "beta", "alpha"):
        if name in hyper and np.ndim(hyper[name]) == 0 and hyper[name] is not None:
            return name, float(hyper[name])
    return None, 0.0


def reference(history: tb.History):
    hyper = history.config.get("hyperparameters", {}) or {}
    ref = hyper.get("ref")
    return None if ref is None else np.asarray(ref, dtype=np.float64)


def truth_label(problem, history: tb.History) -> str:
    """What ``history.solution`` is, in words a learner knows."""
    name, value = regularizer(history)
    sym = GREEK.get(name or "", name or "")
    if isinstance(problem, tb.Bandit):
        if value > 0:
            return f"KL-regularised optimum π* ∝ π_ref·exp(r/{sym}) ({sym}={value:.3g})"
        return "best arm (unregularised optimum)"
    if isinstance(problem, tb.PreferenceGame):
        if value > 0:
            return f"regularised Nash π*_{sym} ({sym}={value:.3g})"
        return "Nash equilibrium"
    if value > 0:
        return f"soft-optimal policy ({sym}={value:.3g})"
    return "optimal policy"


def run_title(run: ExactRun) -> str:
    return run.label or config_label(run.history.config)


def action_names(problem, names=None) -> list[str]:
    n = problem.n_actions
    if names is not None:
        names = [str(s) for s in names]
        if len(names) != n:
            raise ValueError(f"action_names must have {n} entries, got {len(names)}")
        return names
    if isinstance(problem, tb.Bandit):
        return [f"action {i} (r={problem.rewards[i]:.2f})" for i in range(n)]
    if isinstance(problem, tb.PreferenceGame):
        return [f"response {chr(65 + i) if n <= 26 else i}" for i in range(n)]
    return [f"action {i}" for i in range(n)]

"""The batched runner: one call runs an exact update over every hyperparameter × seed.

    hist = tabular.run(MirrorDescent(eta=np.logspace(-2, 1, 32)), Bandit.random(100),
                       steps=1000, seeds=64, init="random")
    hist.policy.shape          # [records, 32, 64, 100]
    hist.metrics["entropy"]    # [records, 32, 64]

Sweep axes are the broadcast of the problem's batch axes and every array-valued
hyperparameter named in the algorithm's ``SWEEP`` (numpy broadcasting rules, right-aligned),
followed by one seed axis. Seeds matter for exact updates only through the initial policy
(``init="random"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_softmax

from ._checks import as_float_array, check_distribution, check_int
from .algorithms.base import ExactAlgorithm
from .problems import Bandit, FiniteMDP, PreferenceGame

try:  # a progress bar on long runs, when tqdm is there (it is a dependency of mirrorlab)
    from tqdm.auto import tqdm
except ImportError:  # pragma: no cover
    tqdm = None


@dataclass
class History:
    """Everything a run recorded.

    Attributes:
        policy: [records, *sweep, seeds, n_actions] (MDP: [..., S, A]) — π at each record.
        average_policy: [*sweep, seeds, ...] — the running average of π_1 … π_T over *every*
            step (the "average iterate" that no-regret dynamics converge in).
        metrics: name → [records, *sweep, seeds].
        steps: [records] — the step index of each record (0 is the initial policy).
        sweep: name → [*sweep] values of every swept hyperparameter (and "batch" axes).
        solution: the algorithm's ground truth broadcast to [*sweep, 1, ...], or None.
        config: algorithm name, hyperparameters, problem type, steps, seeds.
    """

    policy: np.ndarray
    average_policy: np.ndarray
    metrics: dict[str, np.ndarray]
    steps: np.ndarray
    sweep: dict[str, np.ndarray] = field(default_factory=dict)
    sweep_shape: tuple[int, ...] = ()
    solution: np.ndarray | None = None
    config: dict = field(default_factory=dict)

    @property
    def final_policy(self) -> np.ndarray:
        return self.policy[-1]

    def to_frame(self):
        """Long-form records: one row per (record, sweep index, seed) with every metric.

        Returns a pandas DataFrame when pandas is installed, else a list of dicts.
        """
        n_rec = len(self.steps)
        shape = (n_rec, *self.sweep_shape)
        names = list(self.metrics)
        n_seeds = next(iter(self.metrics.values())).shape[-1] if names else 1
        rows = []
        for idx in np.ndindex(*shape, n_seeds):
            row = {"step": int(self.steps[idx[0]])}
            for name, values in self.sweep.items():
                row[name] = np.asarray(values)[idx[1:-1]].item()
            row["seed"] = idx[-1]
            for name in names:
                row[name] = float(self.metrics[name][idx])
            rows.append(row)
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows)


def _sweep_values(algorithm: ExactAlgorithm) -> dict[str, np.ndarray]:
    return {
        name: as_float_array(getattr(algorithm, name), name)
        for name in algorithm.SWEEP
        if np.ndim(getattr(algorithm, name)) > 0
    }


def _event_ndim(problem) -> int:
    return 2 if isinstance(problem, FiniteMDP) else 1


def _expand_problem(problem, n_sweep: int):
    """Insert leading ones up to the sweep rank and a seed axis before the event axes."""
    if isinstance(problem, Bandit):
        r = problem.rewards
        pad = (1,) * (n_sweep - (r.ndim - 1))
        noise = np.broadcast_to(problem.noise_std, r.shape)
        return Bandit(r.reshape(pad + r.shape[:-1] + (1, r.shape[-1])),
                      noise.reshape(pad + r.shape[:-1] + (1, r.shape[-1])))
    if isinstance(problem, PreferenceGame):
        P = problem.P
        pad = (1,) * (n_sweep - (P.ndim - 2))
        return PreferenceGame(P.reshape(pad + P.shape[:-2] + (1,) + P.shape[-2:]))
    return problem


def _initial_logp(init, problem, sweep_shape, n_seeds: int, seed: int) -> np.ndarray:
    event = (problem.n_states, problem.n_actions) if isinstance(problem, FiniteMDP) else (
        problem.n_actions,)
    shape = (*sweep_shape, n_seeds, *event)
    if init is None or (isinstance(init, str) and init == "uniform"):
        return np.full(shape, -np.log(event[-1]))
    if isinstance(init, str):
        if init != "random":
            raise ValueError(f"init must be None, 'uniform', 'random' or a policy, got {init!r}")
        # One draw per seed, shared across the sweep (common random numbers: differences
        # between hyperparameters are not confounded by different starts).
        rng = np.random.default_rng(seed)
        logits = rng.standard_normal((n_seeds, *event))
        return np.broadcast_to(log_softmax(logits, axis=-1), shape).copy()
    p = check_distribution(init, "init")
    if p.shape[-len(event):] != event:
        raise ValueError(f"init must end with the event shape {event}, got {p.shape}")
    try:
        p = np.broadcast_to(p, shape)
    except ValueError:
        raise ValueError(f"init shape {p.shape} does not broadcast to {shape}") from None
    with np.errstate(divide="ignore"):
        return np.log(p).copy()


def run(algorithm: ExactAlgorithm, problem, steps: int, seeds: int = 1, init=None,
        record_every: int = 1, seed: int = 0, record_policy: bool = True,
        progress: bool | None = None) -> History:
    """Run an exact update for ``steps`` steps on every sweep point and seed at once.

    Args:
        algorithm: an exact update rule (``tabular.algorithms``); array hyperparameters sweep.
        problem: a Bandit, PreferenceGame or FiniteMDP (batched problems add sweep axes).
        steps: number of updates (≥ 0).
        seeds: number of seeds (the last batch axis).
        init: None / "uniform" (every seed starts uniform), "random" (Gaussian logits drawn
            per seed from ``seed``), or an initial policy broadcastable to [..., seeds, *event].
        record_every: record metrics (and the policy) every this many steps; the initial and
            the final policy are always recorded.
        record_policy: keep π at every record (False saves memory on huge sweeps: only the
            final policy is then stored, as ``policy[0]``).
        progress: show a tqdm bar (default: when steps × sweep size is large).
    """
    if not isinstance(algorithm, ExactAlgorithm):
        raise TypeError(f"algorithm must be a tabular algorithm, got {type(algorithm).__name__}")
    algorithm.check_problem(problem)
    steps = check_int(steps, "steps", minimum=0)
    seeds = check_int(seeds, "seeds", minimum=1)
    record_every = check_int(record_every, "record_every", minimum=1)

    swept = _sweep_values(algorithm)
    try:
        sweep_shape = np.broadcast_shapes(problem.batch_shape, *(v.shape for v in swept.values()))
    except ValueError:
        shapes = {"problem batch": problem.batch_shape} | {k: v.shape for k, v in swept.items()}
        raise ValueError(f"sweep axes do not broadcast: {shapes}") from None
    n_sweep = len(sweep_shape)
    tail = (1,) * (1 + _event_ndim(problem))  # seed axis + event axes
    expanded = {
        name: value.reshape((1,) * (n_sweep - value.ndim) + value.shape + tail)
        for name, value in swept.items()
    }
    alg = dataclasses.replace(algorithm, **expanded) if expanded else algorithm
    prob = _expand_problem(problem, n_sweep)

    logp0 = _initial_logp(init, problem, sweep_shape, seeds, seed)
    state = alg.init(prob, logp0)
    solution = alg.solution(prob)

    record_at = set(range(0, steps + 1, record_every)) | {steps}
    policies, records, rec_steps = [], [], []

    def take(t, state, prev):
        rec_steps.append(t)
        if record_policy or t == steps:
            policies.append(np.exp(state["logp"]))
        stats = alg.record(prob, state, prev, solution)
        records.append({k: np.broadcast_to(v, (*sweep_shape, seeds)) for k, v in stats.items()})

    take(0, state, None)
    total = np.zeros_like(logp0)
    n_points = int(np.prod(sweep_shape, dtype=np.int64)) * seeds
    show = progress if progress is not None else steps * n_points * logp0.shape[-1] > 5e8
    bar = tqdm(total=steps, desc=type(algorithm).__name__, disable=not show or tqdm is None,
               leave=False) if tqdm is not None else None
    try:
        for t in range(1, steps + 1):
            prev = state
            state = alg.step(prob, state, t - 1)
            total += np.exp(state["logp"])
            if t in record_at:
                take(t, state, prev)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    if not record_policy:
        policies = policies[-1:]
    metrics = {k: np.stack([r[k] for r in records]) for k in records[0]}
    sweep = {name: np.broadcast_to(v.reshape((1,) * (n_sweep - v.ndim) + v.shape), sweep_shape)
             for name, v in swept.items()}
    average = total / steps if steps else np.exp(logp0)
    return History(
        policy=np.stack(policies),
        average_policy=average,
        metrics=metrics,
        steps=np.asarray(rec_steps),
        sweep=sweep,
        sweep_shape=tuple(sweep_shape),
        solution=None if solution is None else np.asarray(solution),
        config={
            "algorithm": type(algorithm).__name__,
            "hyperparameters": algorithm.hyperparameters(),
            "problem": type(problem).__name__,
            "steps": steps,
            "seeds": seeds,
            "init": init if isinstance(init, (str, type(None))) else "array",
        },
    )

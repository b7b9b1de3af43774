"""Algorithm recipes: which advantage estimator feeds which loss, and what else a step needs.

A recipe is a small frozen dataclass of hyperparameters with two methods the trainer calls
without knowing which algorithm it runs:

    batch = recipe.collect(ctx)                 # no grad: sample → score → advantages
    loss, diagnostics = recipe.loss(policy, batch, ctx)   # with grad, on the current policy

``collect`` returns ``Rollouts`` whose ``extras`` carry everything fixed at generation time
(``rewards``, ``advantages``, ``ref_logprobs``, old values, a greedy baseline, preferences), so
a batch can wait in the trainer's staleness queue and still be scored consistently later.
``loss`` recomputes log π with the current parameters and calls one pure function from
``toolkit.objectives``. ``ctx`` (a ``Context``) is the trainer's handle on the policy, the task,
the random generators and exact mode; a recipe samples and scores only through it.

Every recipe reads top to bottom: collect, then loss (CleanRL style). Conventions:
rows of one prompt are consecutive (group size G); ``weights`` is None when sampling and the
exact-mode probability weights otherwise, and is passed to every objective.

Batch-level statistics (GRPO ``scale="batch"``, REINFORCE++'s global normalisation, BAPO's
adaptive bounds) are computed over the whole batch; in exact mode that batch is the full
enumerated population, so the exact step is their large-batch limit rather than the mean of
small-batch steps. Every other recipe's exact step is exactly the expected sampled step.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from . import advantages as A
from . import objectives as O
from .rollouts import Rollouts

__all__ = [
    "ALGORITHMS",
    "DPO",
    "GRPO",
    "OPMD",
    "PPO",
    "REC",
    "REINFORCE",
    "RLOO",
    "TOPR",
    "Algorithm",
    "AsymRE",
    "BAPO",
    "Context",
    "NashMD",
    "OnlineDPO",
    "ReMax",
    "ReinforcePP",
    "select_rows",
]


# ---------------------------------------------------------------------------------------------
# the context a recipe works through
# ---------------------------------------------------------------------------------------------


def _accepts_kw(fn, name: str) -> bool:
    return _accepts_kw_cached(getattr(fn, "__func__", fn), name)


@functools.lru_cache(maxsize=256)
def _accepts_kw_cached(fn, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


@dataclass
class Context:
    """What a recipe may use: the policy, the task, the generators and the step's settings.

    ``sample`` / ``rewards`` / ``preference`` go through here so that exact mode (enumerate,
    expected rewards) and the trainer's random generators apply without the recipe caring.
    """

    policy: Any
    task: Any
    group_size: int
    prompts_per_step: int
    exact: bool
    generator: torch.Generator
    rng: np.random.Generator
    sample_kwargs: dict = dataclasses.field(default_factory=dict)
    modules: dict = dataclasses.field(default_factory=dict)

    def prompts(self, n: int | None = None) -> list:
        return self.task.prompts(self.prompts_per_step if n is None else n, self.rng)

    def sample(self, prompts: list, group_size: int | None = None, **kwargs) -> Rollouts:
        """G completions per prompt: sampled, or in exact mode every group enumerated."""
        G = self.group_size if group_size is None else group_size
        if self.exact:
            enumerate_ = getattr(self.policy, "enumerate", None)
            if enumerate_ is None:
                raise TypeError(f"exact=True needs a policy with enumerate(prompts, "
                                f"group_size) (e.g. TabularPolicy); "
                                f"{type(self.policy).__name__} has none")
            return enumerate_(prompts, G, **kwargs)
        return self.policy.sample(prompts, G, generator=self.generator,
                                  **{**self.sample_kwargs, **kwargs})

    def sample_greedy(self, prompts: list) -> Rollouts:
        """One greedy completion per prompt (deterministic, so the same in exact mode)."""
        return self.policy.sample(prompts, 1, generator=self.generator, greedy=True,
                                  **self.sample_kwargs)

    def rewards(self, rollouts: Rollouts, expected: bool = False) -> Tensor:
        """[B] rewards from the task (expected rewards in exact mode or if ``expected``)."""
        fn = getattr(self.task, "rewards", None)
        if fn is None:
            raise TypeError(f"this algorithm needs a reward task (with rewards(rollouts)); "
                            f"{type(self.task).__name__} has none")
        if _accepts_kw(fn, "rng"):
            r = fn(rollouts, rng=None if (self.exact or expected) else self.rng)
        else:
            r = fn(rollouts)
        return _check_scores("task.rewards", r, rollouts)

    def preference(self, first: Rollouts, second: Rollouts, sampled: bool = True) -> Tensor:
        """[B] P(first ≻ second) row by row: a sampled 0/1 outcome when ``sampled`` (and not in
        exact mode), else the probability."""
        fn = getattr(self.task, "preference", None)
        if fn is None:
            raise TypeError(f"this algorithm needs a preference task (with preference(first, "
                            f"second)); {type(self.task).__name__} has none")
        rng = self.rng if (sampled and not self.exact) else None
        p = _check_scores("task.preference", fn(first, second, rng=rng), first)
        if bool((p < 0).any()) or bool((p > 1).any()):
            raise ValueError("task.preference must return probabilities in [0, 1]")
        return p


def _check_scores(name: str, x: Any, rollouts: Rollouts) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must return a torch.Tensor of shape [B], got "
                        f"{type(x).__name__}")
    B = rollouts.batch_size
    if x.shape != (B,):
        raise ValueError(f"{name} returned shape {tuple(x.shape)}, expected ({B},): one value "
                         f"per completion")
    if not bool(torch.isfinite(x).all()):
        bad = torch.nonzero(~torch.isfinite(x)).reshape(-1)[:5].tolist()
        raise ValueError(f"{name} returned non-finite values (NaN or inf) at rows {bad}: "
                         f"rewards must be finite")
    return x.detach().to(rollouts.logprobs.dtype)


def select_rows(rollouts: Rollouts, index, group_size: int = 1) -> Rollouts:
    """The sub-batch of ``rollouts`` at row ``index`` (weights and row tensors follow)."""
    idx = torch.as_tensor(index, dtype=torch.long)
    pick = idx.tolist()
    extras = {}
    for k, v in rollouts.extras.items():   # per-row tensors follow the rows; the rest is kept
        if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[0] == rollouts.batch_size:
            extras[k] = v[idx]
        elif not isinstance(v, Tensor):
            extras[k] = v
    return Rollouts(
        prompts=[rollouts.prompts[i] for i in pick],
        prompt_ids=rollouts.prompt_ids[idx], prompt_mask=rollouts.prompt_mask[idx],
        completion_ids=rollouts.completion_ids[idx],
        completion_mask=rollouts.completion_mask[idx], logprobs=rollouts.logprobs[idx],
        group_size=group_size,
        weights=None if rollouts.weights is None else rollouts.weights[idx],
        version=rollouts.version,
        texts=None if rollouts.texts is None else [rollouts.texts[i] for i in pick],
        extras=extras,
    )


# ---------------------------------------------------------------------------------------------
# shared pieces
# ---------------------------------------------------------------------------------------------


def _real(name: str, value: Any, minimum: float | None = None, strict: bool = False,
          maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def _choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_eps(eps_low: float, eps_high: float) -> None:
    _real("eps_low", eps_low, minimum=0.0, maximum=1.0)
    _real("eps_high", eps_high, minimum=0.0)


def _check_kl(beta: float, kl: str) -> None:
    _real("beta", beta, minimum=0.0)
    _choice("kl", kl, O.KL_KINDS)


def _ref_logprobs(ctx: Context, rollouts: Rollouts) -> Tensor:
    return ctx.policy.ref_logprobs(rollouts).detach()


def _kl_shaped(rewards: Tensor, rollouts: Rollouts, ref_logp: Tensor, beta: float,
               kl: str) -> Tensor:
    """r − β·Σ_t k(μ‖π_ref)_t: the KL penalty folded into the sequence reward."""
    if beta == 0:
        return rewards
    tokens = A.kl_in_reward(rewards, rollouts.logprobs, ref_logp, rollouts.completion_mask,
                            beta, kl)
    return tokens.sum(dim=1)


def _weighted_std(x: Tensor, weights: Tensor) -> Tensor:
    mean = (weights * x).sum()
    return ((weights * (x - mean).square()).sum()).sqrt()


def _group_advantages(rewards: Tensor, G: int, scale: str, weights: Tensor | None) -> Tensor:
    """``A.group_relative``; in exact mode a "batch" std is the weighted population std."""
    if scale == "batch" and weights is not None:
        centred = A.group_relative(rewards, G, scale="none")
        return centred / (_weighted_std(rewards, weights) + 1e-6)
    return A.group_relative(rewards, G, scale=scale)


def _standard_batch(ctx: Context) -> tuple[Rollouts, Tensor, Tensor]:
    """Sample G completions for a fresh set of prompts; score them; log π_ref."""
    rollouts = ctx.sample(ctx.prompts())
    return rollouts, ctx.rewards(rollouts), _ref_logprobs(ctx, rollouts)


def _true_values(ctx: Context, rollouts: Rollouts, beta: float, kl: str) -> Tensor:
    """V(x) = Σ_y μ(y|x)·r̃(x, y) for every row's prompt, by enumerating the responses.

    Needs ``policy.enumerate`` (tabular). r̃ is the expected reward (minus β·k when the KL is
    folded into the reward), under the policy that generated ``rollouts``.
    """
    enumerate_ = getattr(ctx.policy, "enumerate", None)
    if enumerate_ is None:
        raise TypeError("baseline='true' needs a policy with enumerate() (e.g. TabularPolicy)")
    G = rollouts.group_size
    prompts = rollouts.prompts[::G]
    every = enumerate_(prompts, 1)
    r = _kl_shaped(ctx.rewards(every, expected=True), every, _ref_logprobs(ctx, every), beta, kl)
    n = len(prompts)
    values = (every.weights * n * r).reshape(n, -1).sum(dim=1)   # weights·n = μ(y|x)
    return values.repeat_interleave(G)


def _clipped_surrogate(recipe, policy, batch: Rollouts) -> tuple[Tensor, dict]:
    """PPO-clip on the batch's precomputed advantages (the KL, if any, is already in them).

    Shared by RLOO, REINFORCE++ and ReMax, which differ only in how they build advantages.
    """
    logp = policy.logprobs(batch)
    return O.grpo(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                  ref_logp=batch.extras["ref_logprobs"], eps_low=recipe.eps_low,
                  eps_high=recipe.eps_high, aggregation=recipe.aggregation,
                  weights=batch.weights)


def _seq_logp(logp: Tensor, mask: Tensor) -> Tensor:
    return torch.where(mask != 0, logp, logp.new_zeros(())).sum(dim=1)


class Algorithm(abc.ABC):
    """Base class of the recipes (frozen dataclasses). See the module docstring."""

    name: ClassVar[str] = "algorithm"
    #: the smallest group size the recipe's baseline works with
    min_group_size: ClassVar[int] = 1
    #: "rewards", "preference" or "pairs": what the task must provide
    needs: ClassVar[str] = "rewards"

    def group_size_rule(self) -> int:
        return self.min_group_size

    def check(self, *, policy, task, group_size: int, exact: bool) -> None:
        """Raise a clear error before training when the setup cannot work."""
        minimum = self.group_size_rule()
        if group_size < minimum:
            raise ValueError(f"group_size must be >= {minimum} for {self.name}'s group "
                             f"baseline, got {group_size}")
        method = {"rewards": "rewards", "preference": "preference", "pairs": "pairs"}[self.needs]
        if not callable(getattr(task, method, None)):
            raise TypeError(f"{self.name} needs a task with {method}(…); "
                            f"{type(task).__name__} has none")
        if not callable(getattr(task, "prompts", None)) and self.needs != "pairs":
            raise TypeError(f"task must have prompts(n, rng); {type(task).__name__} has none")

    def make_modules(self, policy) -> dict[str, torch.nn.Module]:
        """Extra trainable modules (PPO's value head); trained and saved with the policy."""
        return {}

    @abc.abstractmethod
    def collect(self, ctx: Context) -> Rollouts:
        """No grad: sample, score, and attach advantages (and anything else) as extras."""

    @abc.abstractmethod
    def loss(self, policy, batch: Rollouts, ctx: Context) -> tuple[Tensor, dict]:
        """With grad, on the current policy: ``(loss, diagnostics)`` from one objective."""

    def config(self) -> dict:
        """Name and hyperparameters (JSON-friendly): for checkpoints and legends."""
        out = {"name": self.name}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


# ---------------------------------------------------------------------------------------------
# REINFORCE family
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class REINFORCE(Algorithm):
    """REINFORCE with a baseline: ℓ = −(r̃ − b)·log π(y), optionally importance-weighted.

    baseline: "mean" (group mean, G ≥ 2), "none" (b = 0) or "true" (b = V(x) = E_μ[r̃], by
    enumerating the responses: tabular only — exact mode then equals ``tabular.SoftmaxPG``).
    importance_weight: multiply by sg(π/μ) (plain IS-corrected off-policy REINFORCE, no
    clipping); False is the uncorrected estimator. beta, kl: KL to π_ref folded into the
    reward, r̃ = r − β·k(μ‖π_ref) (k1 = log μ/π_ref reproduces ``SoftmaxPG(beta=β)``).
    """

    baseline: str = "mean"
    importance_weight: bool = False
    beta: float = 0.0
    kl: str = "k1"
    aggregation: str = "grpo"
    name: ClassVar[str] = "REINFORCE"

    def __post_init__(self):
        _choice("baseline", self.baseline, ("mean", "none", "true"))
        _check_kl(self.beta, self.kl)
        if not isinstance(self.importance_weight, bool):
            raise TypeError("importance_weight must be a bool")

    def group_size_rule(self) -> int:
        return 2 if self.baseline == "mean" else 1

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        shaped = _kl_shaped(rewards, rollouts, ref_logp, self.beta, self.kl)
        if self.baseline == "mean":
            adv = A.group_relative(shaped, rollouts.group_size, scale="none")
        elif self.baseline == "true":
            adv = shaped - _true_values(ctx, rollouts, self.beta, self.kl)
        else:
            adv = shaped
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        adv, mask, w = batch.extras["advantages"], batch.completion_mask, batch.weights
        if self.importance_weight:
            return O.rec(logp, batch.logprobs, adv, mask, clip="none", importance_weight=True,
                         aggregation=self.aggregation, weights=w)
        return O.reinforce(logp, adv, mask, aggregation=self.aggregation, weights=w)


@dataclass(frozen=True)
class GRPO(Algorithm):
    """GRPO: group-relative advantages + PPO-clip surrogate + KL to π_ref.

    A = (r̃ − mean_g r̃)/σ (``scale``: "group" σ per group, "batch" σ over the batch, "none"),
    ℓ = −min(ρA, clip(ρ, 1−ε_low, 1+ε_high)·A) + β·k(π‖π_ref) with ``kl_in="loss"``, or
    r̃ = r − β·k(μ‖π_ref) with ``kl_in="reward"``. ``aggregation``: "grpo", "dapo", "dr_grpo",
    "sum" (see ``objectives.aggregate``).
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.0
    kl: str = "k3"
    kl_in: str = "loss"
    scale: str = "group"
    aggregation: str = "grpo"
    max_tokens: int | None = None
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "GRPO"

    def __post_init__(self):
        _check_eps(self.eps_low, self.eps_high)
        _check_kl(self.beta, self.kl)
        _choice("kl_in", self.kl_in, ("loss", "reward"))
        _choice("scale", self.scale, A.SCALES)
        _choice("aggregation", self.aggregation, O.AGGREGATIONS)

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        beta_r = self.beta if self.kl_in == "reward" else 0.0
        shaped = _kl_shaped(rewards, rollouts, ref_logp, beta_r, self.kl)
        adv = _group_advantages(shaped, rollouts.group_size, self.scale, rollouts.weights)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.grpo(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                      ref_logp=batch.extras["ref_logprobs"],
                      beta=self.beta if self.kl_in == "loss" else 0.0, eps_low=self.eps_low,
                      eps_high=self.eps_high, kl=self.kl, aggregation=self.aggregation,
                      weights=batch.weights, max_tokens=self.max_tokens)


@dataclass(frozen=True)
class RLOO(Algorithm):
    """RLOO: leave-one-out baseline A_i = r̃_i − mean_{j≠i} r̃_j, PPO-clip surrogate.

    KL folded into the reward (β, k), as in TRL's RLOOTrainer. On-policy the surrogate's
    gradient is exactly REINFORCE with the leave-one-out baseline.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.0
    kl: str = "k1"
    aggregation: str = "grpo"
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "RLOO"

    def __post_init__(self):
        _check_eps(self.eps_low, self.eps_high)
        _check_kl(self.beta, self.kl)

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        shaped = _kl_shaped(rewards, rollouts, ref_logp, self.beta, self.kl)
        adv = A.rloo(shaped, rollouts.group_size)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        return _clipped_surrogate(self, policy, batch)


@dataclass(frozen=True)
class ReinforcePP(Algorithm):
    """REINFORCE++: per-token KL in the reward, returns-to-go, global advantage normalisation.

        r_t = −β·k(μ‖π_ref)_t (+ r on the last token),  G_t = Σ_{k≥t} γ^{k−t} r_k
        Â = (G − mean_batch)/std_batch,   ℓ = PPO-clip(ρ, Â)

    ``baseline="mean"`` subtracts the group mean reward first (REINFORCE++-baseline, G ≥ 2).
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.01
    kl: str = "k1"
    gamma: float = 1.0
    baseline: str = "none"
    aggregation: str = "grpo"
    name: ClassVar[str] = "REINFORCE++"

    def __post_init__(self):
        _check_eps(self.eps_low, self.eps_high)
        _check_kl(self.beta, self.kl)
        _real("gamma", self.gamma, minimum=0.0, maximum=1.0)
        _choice("baseline", self.baseline, ("none", "mean"))

    def group_size_rule(self) -> int:
        return 2 if self.baseline == "mean" else 1

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        r = rewards
        if self.baseline == "mean":
            r = A.group_relative(rewards, rollouts.group_size, scale="none")
        mask = rollouts.completion_mask
        token_rewards = A.kl_in_reward(r, rollouts.logprobs, ref_logp, mask, self.beta, self.kl)
        returns = A.returns_to_go(token_rewards, mask, self.gamma)
        # exact mode: the population statistics of the enumerated batch (weighted by token)
        adv = A.batch_normalized(returns, mask, weights=rollouts.weights)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        return _clipped_surrogate(self, policy, batch)


@dataclass(frozen=True)
class ReMax(Algorithm):
    """ReMax: the greedy completion's reward is the baseline, A = r(y) − r(ŷ_greedy).

    Needs ``policy.sample(prompts, 1, greedy=True)``. The loss is the PPO-clip surrogate, whose
    on-policy gradient is ReMax's REINFORCE gradient; the clip only matters for stale batches.
    """

    eps_low: float = 0.2
    eps_high: float = 0.2
    aggregation: str = "grpo"
    name: ClassVar[str] = "ReMax"

    def __post_init__(self):
        _check_eps(self.eps_low, self.eps_high)

    def collect(self, ctx):
        prompts = ctx.prompts()
        rollouts = ctx.sample(prompts)
        rewards = ctx.rewards(rollouts)
        greedy = ctx.sample_greedy(prompts)
        greedy_rewards = ctx.rewards(greedy).repeat_interleave(rollouts.batch_size // len(prompts))
        adv = A.remax(rewards, greedy_rewards)
        return rollouts.with_extras(rewards=rewards, advantages=adv,
                                    ref_logprobs=_ref_logprobs(ctx, rollouts),
                                    greedy_rewards=greedy_rewards)

    def loss(self, policy, batch, ctx):
        return _clipped_surrogate(self, policy, batch)


@dataclass(frozen=True)
class PPO(Algorithm):
    """PPO with a value head and GAE.

        r_t = −β·k(μ‖π_ref)_t (+ r on the last token)
        A_t, R_t = GAE(r, V_old; γ, λ)
        loss = PPO-clip(ρ, A; ε) + vf_coef·½·max((V − R)², (V_clip − R)²)

    The value head comes from ``policy.make_value_head()`` (a value table V(x) for a
    ``TabularPolicy``: for one-token responses A = r − β·k − V(x)); it is trained with the
    policy by the same optimizer and saved in checkpoints.
    """

    eps: float = 0.2
    value_clip: float | None = 0.2
    vf_coef: float = 0.5
    gamma: float = 1.0
    lam: float = 0.95
    beta: float = 0.0
    kl: str = "k1"
    aggregation: str = "grpo"
    name: ClassVar[str] = "PPO"

    def __post_init__(self):
        _real("eps", self.eps, minimum=0.0, maximum=1.0)
        if self.value_clip is not None:
            _real("value_clip", self.value_clip, minimum=0.0)
        _real("vf_coef", self.vf_coef, minimum=0.0)
        _real("gamma", self.gamma, minimum=0.0, maximum=1.0)
        _real("lam", self.lam, minimum=0.0, maximum=1.0)
        _check_kl(self.beta, self.kl)

    def make_modules(self, policy):
        make = getattr(policy, "make_value_head", None)
        if make is None:
            raise TypeError(f"PPO needs a value head: {type(policy).__name__} has no "
                            f"make_value_head()")
        return {"value_head": make()}

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        mask = rollouts.completion_mask
        old_values = ctx.modules["value_head"].values(rollouts).detach()
        token_rewards = A.kl_in_reward(rewards, rollouts.logprobs, ref_logp, mask, self.beta,
                                       self.kl)
        adv, returns = A.gae(token_rewards, old_values, mask, self.gamma, self.lam)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp,
                                    old_values=old_values, returns=returns)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        values = ctx.modules["value_head"].values(batch)
        return O.ppo(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                     values, batch.extras["old_values"], batch.extras["returns"], eps=self.eps,
                     value_clip=self.value_clip, vf_coef=self.vf_coef,
                     aggregation=self.aggregation, weights=batch.weights)


# ---------------------------------------------------------------------------------------------
# off-policy-minded REINFORCE variants
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OPMD(Algorithm):
    """OPMD: ℓ = −(r − b)·log π + (τ/2)·(log π − log μ)², a mirror-descent step of size 1/τ.

    baseline "mean" (group mean) or "soft" (b = τ·log mean_j exp(r_j/τ)).
    """

    tau: float = 1.0
    baseline: str = "mean"
    aggregation: str = "grpo"
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "OPMD"

    def __post_init__(self):
        _real("tau", self.tau, minimum=0.0, strict=self.baseline == "soft")
        _choice("baseline", self.baseline, ("mean", "soft"))

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        G = rollouts.group_size
        if self.baseline == "soft":
            adv = rewards - A.opmd_baseline(rewards, G, self.tau)
        else:
            adv = A.group_relative(rewards, G, scale="none")
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.opmd(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                      tau=self.tau, aggregation=self.aggregation, weights=batch.weights)


@dataclass(frozen=True)
class AsymRE(Algorithm):
    """AsymRE: REINFORCE with the group-mean baseline lowered by δ: ℓ = −(r − mean + δ)·log π."""

    shift: float = 0.1
    aggregation: str = "grpo"
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "AsymRE"

    def __post_init__(self):
        _real("shift", self.shift)

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        adv = A.group_relative(rewards, rollouts.group_size, scale="none")
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.asymre(logp, batch.extras["advantages"], batch.completion_mask,
                        shift=self.shift, aggregation=self.aggregation, weights=batch.weights)


@dataclass(frozen=True)
class REC(Algorithm):
    """REC: group-relative REINFORCE that drops tokens whose ratio left the trust region.

    clip: "one-side", "two-side", "ring" or "none"; importance_weight multiplies kept terms by
    sg(ρ). Advantages: group-relative with ``scale``.
    """

    clip: str = "one-side"
    eps_low: float = 0.2
    eps_high: float = 0.2
    ring: tuple[float, float] = (0.6, 2.0)
    importance_weight: bool = False
    scale: str = "group"
    aggregation: str = "grpo"
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "REC"

    def __post_init__(self):
        _choice("clip", self.clip, ("one-side", "two-side", "ring", "none"))
        _check_eps(self.eps_low, self.eps_high)
        _choice("scale", self.scale, A.SCALES)
        if not isinstance(self.ring, (tuple, list)) or len(self.ring) != 2:
            raise ValueError(f"ring must be a pair (eps_low_prime, eps_high_prime), "
                             f"got {self.ring!r}")

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        adv = _group_advantages(rewards, rollouts.group_size, self.scale, rollouts.weights)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.rec(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                     clip=self.clip, eps_low=self.eps_low, eps_high=self.eps_high,
                     ring=tuple(self.ring), importance_weight=self.importance_weight,
                     aggregation=self.aggregation, weights=batch.weights)


@dataclass(frozen=True)
class TOPR(Algorithm):
    """TOPR: ℓ = −sg(α)·R·log π with α = clamp(π/μ, 0, 1) on negatives (R ≤ threshold), else 1.

    baseline "none" uses raw rewards R (the paper), "mean" the group-centred reward.
    """

    threshold: float = 0.0
    baseline: str = "none"
    aggregation: str = "grpo"
    name: ClassVar[str] = "TOPR"

    def __post_init__(self):
        _real("threshold", self.threshold)
        _choice("baseline", self.baseline, ("none", "mean"))

    def group_size_rule(self) -> int:
        return 2 if self.baseline == "mean" else 1

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        adv = rewards
        if self.baseline == "mean":
            adv = A.group_relative(rewards, rollouts.group_size, scale="none")
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.topr(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                      threshold=self.threshold, aggregation=self.aggregation,
                      weights=batch.weights)


@dataclass(frozen=True)
class BAPO(Algorithm):
    """BAPO: PPO-clip whose bounds widen per batch until positive advantages carry
    ``target_pos_share`` of the gradient weight; c_low ∈ low_range, c_high ∈ high_range."""

    target_pos_share: float = 0.5
    low_range: tuple[float, float] = (0.6, 0.9)
    high_range: tuple[float, float] = (1.2, 3.0)
    step_low: float = 0.05
    step_high: float = 0.05
    scale: str = "group"
    aggregation: str = "grpo"
    min_group_size: ClassVar[int] = 2
    name: ClassVar[str] = "BAPO"

    def __post_init__(self):
        _real("target_pos_share", self.target_pos_share, minimum=0.0, maximum=1.0)
        for name in ("low_range", "high_range"):
            v = getattr(self, name)
            if not isinstance(v, (tuple, list)) or len(v) != 2:
                raise ValueError(f"{name} must be a pair (start, end), got {v!r}")
        lo, hi = (_real("low_range[i]", x) for x in self.low_range)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"low_range must satisfy 0 <= start <= end <= 1, "
                             f"got {self.low_range!r}")
        lo, hi = (_real("high_range[i]", x) for x in self.high_range)
        if not 1.0 <= lo <= hi:
            raise ValueError(f"high_range must satisfy 1 <= start <= end, "
                             f"got {self.high_range!r}")
        _real("step_low", self.step_low, minimum=0.0, strict=True)
        _real("step_high", self.step_high, minimum=0.0, strict=True)
        _choice("scale", self.scale, A.SCALES)

    def collect(self, ctx):
        rollouts, rewards, ref_logp = _standard_batch(ctx)
        adv = _group_advantages(rewards, rollouts.group_size, self.scale, rollouts.weights)
        return rollouts.with_extras(rewards=rewards, advantages=adv, ref_logprobs=ref_logp)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.bapo(logp, batch.logprobs, batch.extras["advantages"], batch.completion_mask,
                      target_pos_share=self.target_pos_share,
                      low_range=tuple(self.low_range), high_range=tuple(self.high_range),
                      step_low=self.step_low, step_high=self.step_high,
                      aggregation=self.aggregation, weights=batch.weights)


# ---------------------------------------------------------------------------------------------
# preference recipes
# ---------------------------------------------------------------------------------------------


def _pairs_logp(policy, batch: Rollouts) -> tuple[Tensor, Tensor]:
    """Summed log π of the first and second member of each pair (rows 2i, 2i+1)."""
    seq = _seq_logp(policy.logprobs(batch), batch.completion_mask)
    return seq[0::2], seq[1::2]


def _pair_ref(batch: Rollouts) -> tuple[Tensor, Tensor]:
    seq = _seq_logp(batch.extras["ref_logprobs"], batch.completion_mask)
    return seq[0::2], seq[1::2]


@dataclass(frozen=True)
class OnlineDPO(Algorithm):
    """Online DPO: two fresh samples per pair, ranked by the preference task, DPO loss.

    Each group of G (even) samples is split into pairs (rows 2i, 2i+1). The winner is a
    Bernoulli draw of P(y ≻ y′); exact mode averages both orderings with weights P and 1 − P.
    """

    beta: float = 0.1
    variant: str = "sigmoid"
    min_group_size: ClassVar[int] = 2
    needs: ClassVar[str] = "preference"
    name: ClassVar[str] = "OnlineDPO"

    def __post_init__(self):
        _real("beta", self.beta, minimum=0.0, strict=True)
        _choice("variant", self.variant, O.DPO_VARIANTS)

    def check(self, *, policy, task, group_size, exact):
        super().check(policy=policy, task=task, group_size=group_size, exact=exact)
        if group_size % 2:
            raise ValueError(f"group_size must be even for OnlineDPO (pairs), got {group_size}")

    def collect(self, ctx):
        rollouts = ctx.sample(ctx.prompts())
        B = rollouts.batch_size
        first = select_rows(rollouts, range(0, B, 2))
        second = select_rows(rollouts, range(1, B, 2))
        p = ctx.preference(first, second)          # probability (exact) or 0/1 outcome
        if not ctx.exact and bool(((p > 0) & (p < 1)).any()):
            p = (torch.as_tensor(ctx.rng.random(p.shape[0]), dtype=p.dtype) < p).to(p.dtype)
        wins = torch.stack([p, 1 - p], dim=1).reshape(-1)   # row reward: won its pair
        return rollouts.with_extras(pref_first=p.repeat_interleave(2), rewards=wins,
                                    ref_logprobs=_ref_logprobs(ctx, rollouts))

    def loss(self, policy, batch, ctx):
        logp_a, logp_b = _pairs_logp(policy, batch)
        ref_a, ref_b = _pair_ref(batch)
        p = batch.extras["pref_first"][0::2]
        if batch.weights is None:
            return O.online_dpo(logp_a, logp_b, ref_a, ref_b, p > 0.5, beta=self.beta,
                                variant=self.variant)
        # exact: E[ℓ] = Σ_pairs w·(P·ℓ(a ≻ b) + (1 − P)·ℓ(b ≻ a))
        w = batch.weights[0::2] * 2
        both = torch.ones(2 * p.shape[0], dtype=torch.bool)
        return O.online_dpo(torch.cat([logp_a, logp_b]), torch.cat([logp_b, logp_a]),
                            torch.cat([ref_a, ref_b]), torch.cat([ref_b, ref_a]), both,
                            beta=self.beta, variant=self.variant,
                            weights=torch.cat([w * p, w * (1 - p)]))


@dataclass(frozen=True)
class NashMD(Algorithm):
    """Nash-MD for sampled policies: y ~ π, y′ ~ π^λ ∝ π^(1−λ)·π_ref^λ,
    ℓ = −(P(y ≻ y′) − ½)·log π(y) + β·k(π‖π_ref).

    Needs ``policy.sample(..., mixture_coef=λ)``. ``preference="probability"`` uses
    P(y ≻ y′) from the task (a preference model), "sample" a Bernoulli outcome (a label). In
    exact mode y is enumerated and P(y ≻ π^λ) is computed exactly over y′.
    """

    beta: float = 0.1
    mixture_coef: float = 0.5
    kl: str = "k2"
    preference: str = "probability"
    aggregation: str = "sum"
    needs: ClassVar[str] = "preference"
    name: ClassVar[str] = "NashMD"

    def __post_init__(self):
        _check_kl(self.beta, self.kl)
        _real("mixture_coef", self.mixture_coef, minimum=0.0, maximum=1.0)
        _choice("preference", self.preference, ("probability", "sample"))
        _choice("aggregation", self.aggregation, O.AGGREGATIONS)

    def collect(self, ctx):
        prompts = ctx.prompts()
        if ctx.exact:
            ys, pref = self._exact_preference(ctx, prompts)
        else:
            ys = ctx.sample(prompts)
            opponents = ctx.sample(prompts, mixture_coef=self.mixture_coef)
            pref = ctx.preference(ys, opponents, sampled=self.preference == "sample")
        return ys.with_extras(rewards=pref, advantages=pref - 0.5,
                              ref_logprobs=_ref_logprobs(ctx, ys))

    def _exact_preference(self, ctx, prompts):
        ys = ctx.policy.enumerate(prompts, 1)
        opp = ctx.policy.enumerate(prompts, 1, mixture_coef=self.mixture_coef)
        n, K = len(prompts), ys.batch_size // len(prompts)
        rows = torch.arange(n * K).reshape(n, K)
        first = rows[:, :, None].expand(n, K, K).reshape(-1)     # y index
        second = rows[:, None, :].expand(n, K, K).reshape(-1)    # y′ index
        p = ctx.preference(select_rows(ys, first), select_rows(opp, second), sampled=False)
        mix = (opp.weights * n).reshape(n, 1, K)                  # π^λ(y′ | x)
        return ys, (p.reshape(n, K, K) * mix).sum(dim=2).reshape(-1)

    def loss(self, policy, batch, ctx):
        logp = policy.logprobs(batch)
        return O.nash_md(logp, batch.extras["ref_logprobs"], batch.extras["rewards"],
                         batch.completion_mask, beta=self.beta, kl=self.kl,
                         aggregation=self.aggregation, weights=batch.weights)


@dataclass(frozen=True)
class DPO(Algorithm):
    """Offline DPO (IPO, SLiC with ``variant``) on the task's fixed pair dataset.

    Each step draws ``prompts_per_step`` pairs from ``task.pairs`` (exact mode: every pair,
    the full-batch loss). Needs ``policy.encode(prompts, completions)``. Staleness has no
    effect on the loss (it uses no behaviour log-probabilities).
    """

    beta: float = 0.1
    variant: str = "sigmoid"
    needs: ClassVar[str] = "pairs"
    name: ClassVar[str] = "DPO"

    def __post_init__(self):
        _real("beta", self.beta, minimum=0.0, strict=True)
        _choice("variant", self.variant, O.DPO_VARIANTS)

    def check(self, *, policy, task, group_size, exact):
        super().check(policy=policy, task=task, group_size=1, exact=exact)
        if not callable(getattr(policy, "encode", None)):
            raise TypeError(f"DPO needs policy.encode(prompts, completions); "
                            f"{type(policy).__name__} has none")

    def collect(self, ctx):
        if ctx.exact:
            prompts, chosen, rejected = ctx.task.pairs(None, None)
        else:
            prompts, chosen, rejected = ctx.task.pairs(ctx.prompts_per_step, ctx.rng)
        rows_p = [p for p in prompts for _ in range(2)]
        rows_c = [c for pair in zip(chosen, rejected) for c in pair]   # chosen, rejected, …
        batch = dataclasses.replace(ctx.policy.encode(rows_p, rows_c), group_size=2)
        return batch.with_extras(ref_logprobs=_ref_logprobs(ctx, batch))

    def loss(self, policy, batch, ctx):
        chosen, rejected = _pairs_logp(policy, batch)
        ref_c, ref_r = _pair_ref(batch)
        return O.dpo(chosen, rejected, ref_c, ref_r, beta=self.beta, variant=self.variant)


ALGORITHMS: dict[str, type[Algorithm]] = {
    cls.name: cls for cls in (REINFORCE, GRPO, RLOO, ReinforcePP, ReMax, PPO, OPMD, AsymRE,
                              REC, TOPR, BAPO, OnlineDPO, NashMD, DPO)
}

"""The one interface between the trainer and any policy: ``Rollouts`` and ``Policy``.

The trainer never knows whether it drives a logit table or a transformer. Both policies
produce the same ``Rollouts`` (completions as token ids with a mask and the sampling
log-probabilities) and answer the same four questions about them:

    rollouts = policy.sample(prompts, group_size)        # no grad; records log μ(y)
    logp     = policy.logprobs(rollouts)                  # [B, T] log π(y_t | …), with grad
    ref_logp = policy.ref_logprobs(rollouts)              # [B, T] log π_ref, no grad
    ent      = policy.entropy(rollouts)                   # [B, T] H(π(· | …)) per position

A bandit is a language model whose responses are one token long: for a ``TabularPolicy``
T = 1 and the token is the action.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@dataclass
class Rollouts:
    """A batch of sampled completions, B = len(prompts) · group_size rows.

    Rows of one prompt's group are consecutive. Tensors live on the policy's device.

    Attributes:
        prompts: the task prompts, one per row (repeated group_size times).
        prompt_ids: [B, P] prompt token ids (left-padded for LMs; for tabular policies the
            context index as a [B, 1] tensor).
        prompt_mask: [B, P] 1 on real prompt tokens.
        completion_ids: [B, T] sampled token ids (right-padded).
        completion_mask: [B, T] 1.0 on completion tokens (including a final EOS), 0 on padding.
        logprobs: [B, T] log μ(y_t) of the policy that sampled (detached), 0 on padding.
        group_size: G.
        weights: [B] or None. Exact mode: the probability weight of each row (sums to 1) so
            that a loss averaged with these weights is the expected loss.
        version: the policy version (optimizer steps taken) that produced the rows.
        texts: decoded completions (LM) or action labels, for display.
        extras: anything a task or an algorithm wants to carry along (e.g. a greedy baseline).
    """

    prompts: list[Any]
    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    logprobs: torch.Tensor
    group_size: int
    weights: torch.Tensor | None = None
    version: int = 0
    texts: list[str] | None = None
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        B = self.completion_ids.shape[0]
        if len(self.prompts) != B:
            raise ValueError(f"prompts has {len(self.prompts)} rows, completion_ids has {B}")
        for name in ("completion_mask", "logprobs"):
            if getattr(self, name).shape != self.completion_ids.shape:
                raise ValueError(
                    f"{name} shape {tuple(getattr(self, name).shape)} != completion_ids shape "
                    f"{tuple(self.completion_ids.shape)}"
                )
        if self.group_size < 1 or B % self.group_size:
            raise ValueError(f"group_size {self.group_size} must divide the batch size {B}")
        if self.weights is not None and self.weights.shape != (B,):
            raise ValueError(f"weights must have shape [B] = ({B},)")

    @property
    def batch_size(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def n_groups(self) -> int:
        return self.batch_size // self.group_size

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(dim=-1)

    def with_extras(self, **extras) -> Rollouts:
        return replace(self, extras={**self.extras, **extras})


@runtime_checkable
class Policy(Protocol):
    """What the trainer needs from a policy (``TabularPolicy`` and ``LMPolicy`` implement it)."""

    def sample(self, prompts: list[Any], group_size: int, **kwargs) -> Rollouts:
        """Keyword arguments the trainer and recipes pass: ``generator`` (torch.Generator),
        ``greedy=True`` (ReMax's baseline), ``mixture_coef=λ`` (sample from
        π^(1−λ)·π_ref^λ, Nash-MD), plus the user's sampling kwargs (``max_new_tokens`` …).
        Optional extras some recipes use: ``enumerate(prompts, G)`` (exact mode),
        ``make_value_head()`` (PPO), ``encode(prompts, completions)`` (offline DPO)."""
        ...

    def logprobs(self, rollouts: Rollouts) -> torch.Tensor: ...

    def ref_logprobs(self, rollouts: Rollouts) -> torch.Tensor: ...

    def entropy(self, rollouts: Rollouts) -> torch.Tensor: ...

    def parameters(self): ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> Any: ...


@runtime_checkable
class Task(Protocol):
    """Where prompts come from and how completions are scored.

    A reward task implements ``rewards``; a preference task implements ``preference``
    (and may also offer ``rewards``, e.g. the win rate against the rest of the group).
    """

    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[Any]: ...

    def rewards(self, rollouts: Rollouts) -> torch.Tensor:
        """[B] scalar reward per completion (finite; the trainer rejects NaN).

        A task with random rewards may take ``rng: np.random.Generator | None = None`` as a
        keyword: the trainer passes its generator (None in exact mode: expected rewards)."""
        ...


@runtime_checkable
class PreferenceTask(Protocol):
    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[Any]: ...

    def preference(self, first: Rollouts, second: Rollouts,
                   rng: np.random.Generator | None = None) -> torch.Tensor:
        """[B] P(first ≻ second) row by row (rng given: a sampled 0/1 outcome instead)."""
        ...

"""Policies the trainer can drive: all implement ``toolkit.rollouts.Policy``.

- ``TabularPolicy``: a logit table (bandit, preference game, contextual bandit), with the
  exact mode ``enumerate`` that makes one step the expected update.
- ``LMPolicy`` (``toolkit.policies.lm``, imported on first use): a causal language model.

Optional capabilities a recipe may ask for (duck-typed, not part of the core protocol):
``sample(..., greedy=True)`` (ReMax), ``sample(..., mixture_coef=λ)`` (Nash-MD),
``enumerate(prompts, G)`` (exact mode), ``make_value_head()`` (PPO),
``encode(prompts, completions)`` (offline pairs, DPO).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import torch

from ..rollouts import Rollouts
from .tabular import MAX_ENUMERATED_ROWS, TabularPolicy, TabularValueHead

__all__ = [
    "MAX_ENUMERATED_ROWS", "LMPolicy", "TabularPolicy", "TabularValueHead", "ValueHead",
    "lora_config",
]


@runtime_checkable
class ValueHead(Protocol):
    """A critic PPO trains beside the policy (``policy.make_value_head()`` builds one).

    ``values(rollouts)`` is [B, T]: V of the state *before* each completion token, with grad.
    """

    def values(self, rollouts: Rollouts) -> torch.Tensor: ...

    def parameters(self): ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> Any: ...


def __getattr__(name):
    if name in ("LMPolicy", "lora_config"):
        return getattr(importlib.import_module(f"{__name__}.lm"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""A logit table that the trainer drives exactly like a language model.

A bandit is a language model whose responses are one token long: the prompt is a context
index (0 for a plain bandit), the completion is one token, the sampled action. A
``TabularPolicy`` holds logits θ of shape [n_contexts, n_actions] and

    π(a | x) = softmax(θ[x])[a]

It implements the ``toolkit.rollouts.Policy`` interface (``sample``, ``logprobs``,
``ref_logprobs``, ``entropy``, ``parameters``, ``state_dict``) plus what only a table can do:
**exact mode**, ``enumerate(prompts, G)``, which lists every ordered group of G actions with
its probability, so a loss averaged with those weights *is* the expected loss and one
optimizer step is the expected update — the bridge to ``tabular``.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from tabular._checks import check_int

from ..rollouts import Rollouts

__all__ = ["MAX_ENUMERATED_ROWS", "TabularPolicy", "TabularValueHead"]

MAX_ENUMERATED_ROWS = 200_000


def _as_table(x: Any, name: str, shape: tuple[int, int], dtype: torch.dtype) -> Tensor:
    """Logits given as [A] (shared by every context) or [n_contexts, A]; finite."""
    t = torch.as_tensor(np.asarray(x, dtype=np.float64) if not isinstance(x, Tensor) else x)
    t = t.detach().to(dtype).clone()
    if t.dim() == 1:
        t = t.expand(shape[0], -1).clone()
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape [n_actions] = ({shape[1]},) or "
                         f"[n_contexts, n_actions] = {shape}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return t


class TabularPolicy(torch.nn.Module):
    """Softmax policy over a logit table, one row per context (prompt).

    Args:
        n_actions: number of responses (arms) A ≥ 1.
        n_contexts: number of contexts (prompts) ≥ 1; 1 for a bandit or a preference game.
        init_logits: initial logits, [A] (same row for every context) or [n_contexts, A];
            default zeros (uniform policy).
        ref: reference logits (or log-probabilities), [A] or [n_contexts, A]; default the
            initial logits. Frozen: stored as a buffer, never trained.
        dtype: float64 by default, so exact-mode checks hold to 1e-10.

    Prompts are context indices (ints in [0, n_contexts)). Completions are [B, 1] action ids.
    """

    def __init__(self, n_actions: int, n_contexts: int = 1, init_logits=None, ref=None,
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        n_actions = check_int(n_actions, "n_actions", minimum=1)
        n_contexts = check_int(n_contexts, "n_contexts", minimum=1)
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        shape = (n_contexts, n_actions)
        init = (torch.zeros(shape, dtype=dtype) if init_logits is None
                else _as_table(init_logits, "init_logits", shape, dtype))
        ref_t = init.clone() if ref is None else _as_table(ref, "ref", shape, dtype)
        self.n_actions = n_actions
        self.n_contexts = n_contexts
        self.logits = torch.nn.Parameter(init)
        self.register_buffer("ref_logits", ref_t)

    # -- tables --------------------------------------------------------------------------
    def log_table(self) -> Tensor:
        """log π(a | x) for every context and action, [n_contexts, A] (with grad)."""
        return torch.log_softmax(self.logits, dim=-1)

    def probs(self) -> Tensor:
        """π(a | x) as a detached [n_contexts, A] table."""
        return torch.softmax(self.logits.detach(), dim=-1)

    def ref_probs(self) -> Tensor:
        return torch.softmax(self.ref_logits, dim=-1)

    def _behaviour_log_table(self, greedy: bool, mixture_coef: float | None) -> Tensor:
        log_pi = torch.log_softmax(self.logits.detach(), dim=-1)
        if mixture_coef is None or mixture_coef == 0.0:
            return log_pi
        lam = float(mixture_coef)
        log_ref = torch.log_softmax(self.ref_logits, dim=-1)
        return torch.log_softmax((1.0 - lam) * log_pi + lam * log_ref, dim=-1)

    # -- prompts -------------------------------------------------------------------------
    def _contexts(self, prompts) -> Tensor:
        if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__len__"):
            raise TypeError("prompts must be a list of context indices (ints)")
        if len(prompts) == 0:
            raise ValueError("prompts must not be empty")
        ids = []
        for p in prompts:
            if isinstance(p, bool) or not isinstance(p, numbers.Integral):
                raise TypeError(f"prompts must be context indices (ints), got {type(p).__name__}")
            if not 0 <= p < self.n_contexts:
                raise ValueError(f"prompt (context index) {p} is out of range "
                                 f"[0, {self.n_contexts})")
            ids.append(int(p))
        return torch.tensor(ids, dtype=torch.long)

    def _rollouts(self, ctx: Tensor, actions: Tensor, log_table: Tensor, group_size: int,
                  weights: Tensor | None = None) -> Rollouts:
        """Rows (context, action) → Rollouts with log μ(a | x) from ``log_table``."""
        B = ctx.shape[0]
        logprobs = log_table[ctx, actions].reshape(B, 1)
        return Rollouts(
            prompts=[int(c) for c in ctx.tolist()],
            prompt_ids=ctx.reshape(B, 1).clone(),
            prompt_mask=torch.ones(B, 1, dtype=self.logits.dtype),
            completion_ids=actions.reshape(B, 1).clone(),
            completion_mask=torch.ones(B, 1, dtype=self.logits.dtype),
            logprobs=logprobs.detach().clone(),
            group_size=group_size,
            weights=weights,
            texts=[f"a{int(a)}" for a in actions.tolist()],
        )

    # -- the Policy interface -------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompts, group_size: int, generator: torch.Generator | None = None,
               greedy: bool = False, mixture_coef: float | None = None,
               max_new_tokens: int | None = None) -> Rollouts:
        """Draw ``group_size`` actions per prompt; rows of one prompt are consecutive.

        Args:
            prompts: context indices, one per group.
            group_size: G ≥ 1.
            generator: torch generator (the trainer's, for reproducibility).
            greedy: take argmax π (ties: the lowest index) instead of sampling (ReMax's
                baseline); logprobs are still log π of the chosen action.
            mixture_coef: λ in [0, 1]: sample from the geometric mixture
                π^λ ∝ π^(1−λ)·π_ref^λ (Nash-MD's opponent); logprobs are log π^λ.
            max_new_tokens: accepted for interface compatibility with language-model
                policies; a tabular response is always one token, so it must be ≥ 1.
        """
        group_size = check_int(group_size, "group_size", minimum=1)
        if max_new_tokens is not None:
            check_int(max_new_tokens, "max_new_tokens", minimum=1)
        if mixture_coef is not None:
            if isinstance(mixture_coef, bool) or not isinstance(mixture_coef, numbers.Real):
                raise TypeError(f"mixture_coef must be a real in [0, 1], got "
                                f"{type(mixture_coef).__name__}")
            if not 0.0 <= float(mixture_coef) <= 1.0:
                raise ValueError(f"mixture_coef must be in [0, 1], got {mixture_coef}")
        per_prompt = self._contexts(prompts)
        log_table = self._behaviour_log_table(greedy, mixture_coef)
        rows = log_table[per_prompt]                                   # [n_prompts, A]
        if greedy:
            actions = rows.argmax(dim=-1).repeat_interleave(group_size)
        else:  # one categorical per prompt, G draws each: rows of a group are consecutive
            actions = torch.multinomial(rows.exp(), group_size, replacement=True,
                                        generator=generator).reshape(-1)
        ctx = per_prompt.repeat_interleave(group_size)
        return self._rollouts(ctx, actions, log_table, group_size)

    def logprobs(self, rollouts: Rollouts) -> Tensor:
        """[B, 1] log π(a | x) of the rows' actions, with grad."""
        ctx, actions = self._rows(rollouts)
        return self.log_table()[ctx, actions].reshape(-1, 1)

    @torch.no_grad()
    def ref_logprobs(self, rollouts: Rollouts) -> Tensor:
        """[B, 1] log π_ref(a | x), no grad."""
        ctx, actions = self._rows(rollouts)
        return torch.log_softmax(self.ref_logits, dim=-1)[ctx, actions].reshape(-1, 1)

    def entropy(self, rollouts: Rollouts) -> Tensor:
        """[B, 1] H(π(· | x)) of each row's context (exact: a table has every action), grad."""
        ctx, _ = self._rows(rollouts)
        log_table = self.log_table()
        ent = -(log_table.exp() * log_table).sum(dim=-1)
        return ent[ctx].reshape(-1, 1)

    def _rows(self, rollouts: Rollouts) -> tuple[Tensor, Tensor]:
        if not isinstance(rollouts, Rollouts):
            raise TypeError(f"rollouts must be Rollouts, got {type(rollouts).__name__}")
        if rollouts.completion_ids.shape[1] != 1 or rollouts.prompt_ids.shape[1] != 1:
            raise ValueError("a TabularPolicy reads rollouts with one prompt token (the "
                             "context) and one completion token (the action), got "
                             f"prompt_ids {tuple(rollouts.prompt_ids.shape)}, completion_ids "
                             f"{tuple(rollouts.completion_ids.shape)}")
        ctx = rollouts.prompt_ids[:, 0].long()
        actions = rollouts.completion_ids[:, 0].long()
        if bool((ctx < 0).any()) or bool((ctx >= self.n_contexts).any()):
            raise ValueError(f"rollouts hold context indices outside [0, {self.n_contexts})")
        if bool((actions < 0).any()) or bool((actions >= self.n_actions).any()):
            raise ValueError(f"rollouts hold actions outside [0, {self.n_actions})")
        return ctx, actions

    # -- exact mode ----------------------------------------------------------------------
    @torch.no_grad()
    def enumerate(self, prompts, group_size: int, mixture_coef: float | None = None,
                  max_rows: int = MAX_ENUMERATED_ROWS) -> Rollouts:
        """Every ordered group of G actions per prompt, weighted by its probability.

        For each prompt x and each tuple (a_1, …, a_G) ∈ A^G, G rows with
        ``weights = Π_i μ(a_i | x) / G / n_prompts``; the weights sum to 1, so a loss averaged
        with them equals E[loss] over i.i.d. groups drawn from μ (uniform over the prompts
        given). μ = π, or the geometric mixture with ``mixture_coef``.

        Raises ValueError when n_prompts·A^G·G rows exceed ``max_rows`` (default 200,000).
        """
        group_size = check_int(group_size, "group_size", minimum=1)
        ctx = self._contexts(prompts)
        A, G, n = self.n_actions, group_size, ctx.shape[0]
        rows = n * A**G * G
        if rows > max_rows:
            raise ValueError(
                f"exact mode would enumerate n_prompts·n_actions^group_size·group_size = "
                f"{n}·{A}^{G}·{G} = {rows:,} rows (> max_rows = {max_rows:,}): reduce "
                f"group_size or n_actions, or sample instead (exact=False)"
            )
        log_table = self._behaviour_log_table(False, mixture_coef)
        groups = torch.tensor(list(itertools.product(range(A), repeat=G)),
                              dtype=torch.long).reshape(-1, G)              # [A^G, G]
        actions = groups.reshape(1, -1).expand(n, -1).reshape(-1)          # [n·A^G·G]
        row_ctx = ctx.repeat_interleave(A**G * G)
        log_group = log_table[row_ctx, actions].reshape(-1, G).sum(dim=1)  # [n·A^G]
        weights = (log_group.exp() / (G * n)).repeat_interleave(G)
        return self._rollouts(row_ctx, actions, log_table, G, weights=weights)

    # -- optional capabilities -----------------------------------------------------------
    def make_value_head(self) -> TabularValueHead:
        """A value table V(x), one entry per context (PPO's critic for a bandit)."""
        return TabularValueHead(self.n_contexts, dtype=self.logits.dtype)

    @torch.no_grad()
    def encode(self, prompts, completions) -> Rollouts:
        """Rollouts for given (prompt, action) rows (offline pairs); logprobs = log π now."""
        ctx = self._contexts(prompts)
        if len(completions) != ctx.shape[0]:
            raise ValueError(f"completions has {len(completions)} rows, prompts has "
                             f"{ctx.shape[0]}")
        acts = []
        for a in completions:
            if isinstance(a, bool) or not isinstance(a, numbers.Integral):
                raise TypeError(f"completions must be action indices (ints), got "
                                f"{type(a).__name__}")
            if not 0 <= a < self.n_actions:
                raise ValueError(f"completion (action) {a} is out of range [0, {self.n_actions})")
            acts.append(int(a))
        actions = torch.tensor(acts, dtype=torch.long)
        return self._rollouts(ctx, actions, self.log_table().detach(), 1)

    def extra_repr(self) -> str:
        return f"n_actions={self.n_actions}, n_contexts={self.n_contexts}, " \
               f"dtype={self.logits.dtype}"


class TabularValueHead(torch.nn.Module):
    """V(x) as a table: ``values(rollouts)`` is [B, T] (T = 1), the value of each row's prompt.

    The ``ValueHead`` interface PPO needs: ``values(rollouts) -> Tensor[B, T]`` with grad (the
    value of the state before each completion token), ``parameters()``, ``state_dict()``.
    A language-model value head implements the same three.
    """

    def __init__(self, n_contexts: int, dtype: torch.dtype = torch.float64):
        super().__init__()
        n_contexts = check_int(n_contexts, "n_contexts", minimum=1)
        self.table = torch.nn.Parameter(torch.zeros(n_contexts, dtype=dtype))

    def values(self, rollouts: Rollouts) -> Tensor:
        ctx = rollouts.prompt_ids[:, 0].long()
        T = rollouts.completion_ids.shape[1]
        return self.table[ctx].reshape(-1, 1).expand(-1, T)

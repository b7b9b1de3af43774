"""Tasks for tabular policies: where prompts come from and how completions are scored.

Each implements ``toolkit.rollouts.Task`` (``prompts`` and ``rewards``) or ``PreferenceTask``
(``prompts`` and ``preference``); the ground truth lives in the ``tabular`` problem they wrap.

    BanditTask(tb.Bandit([1.0, 0.5, 0.2]))                   r(a) = rewards[a]
    BanditTask(tb.Bandit(means, noise_std=0.3))              + Gaussian noise when sampled
    BanditTask(tb.Bandit(p), noise="bernoulli")              r ~ Bernoulli(p[a]) (0/1 verifier)
    ContextualBanditTask(R)                                  prompt x ~ context_probs, r = R[x, a]
    PreferenceTask(tb.PreferenceGame.cyclic(3))              y ≻ y′ ~ Bernoulli(P[y, y′])
    PreferencePairs.from_game(game, n_pairs=200, seed=0)     a fixed offline pair dataset (DPO)

Randomness: ``rewards(rollouts, rng=None)`` and ``preference(first, second, rng=None)`` draw
noise only from the ``rng`` they are given (the trainer's numpy generator, so a checkpoint
restores it); with ``rng=None`` they return expected values. Exact mode scores with
``rng=None``: it enumerates actions, and averages over reward noise analytically.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

import tabular as tb
from tabular._checks import check_int

from .rollouts import Rollouts

__all__ = ["BanditTask", "ContextualBanditTask", "PreferencePairs", "PreferenceTask"]

NOISES = ("gaussian", "bernoulli")


def _check_rng(rng) -> np.random.Generator | None:
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator or None, got {type(rng).__name__}")
    return rng


def _rows(rollouts: Rollouts, n_contexts: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """(context, action) integer arrays of one-token tabular rollouts."""
    if not isinstance(rollouts, Rollouts):
        raise TypeError(f"rollouts must be Rollouts, got {type(rollouts).__name__}")
    if rollouts.completion_ids.shape[1] != 1:
        raise ValueError("tabular tasks score one-token completions (an action id), got "
                         f"completion_ids of shape {tuple(rollouts.completion_ids.shape)}")
    ctx = rollouts.prompt_ids[:, 0].long().cpu().numpy()
    act = rollouts.completion_ids[:, 0].long().cpu().numpy()
    if np.any(act < 0) or np.any(act >= n_actions):
        raise ValueError(f"rollouts hold actions outside [0, {n_actions}) for this task")
    if np.any(ctx < 0) or np.any(ctx >= n_contexts):
        raise ValueError(f"rollouts hold contexts outside [0, {n_contexts}) for this task")
    return ctx, act


def _tensor_like(x: np.ndarray, rollouts: Rollouts) -> Tensor:
    return torch.as_tensor(x, dtype=rollouts.logprobs.dtype, device=rollouts.logprobs.device)


class ContextualBanditTask:
    """A contextual bandit: prompt x drawn from ``context_probs``, reward R[x, a] (+ noise).

    Args:
        rewards: expected rewards [n_contexts, n_actions].
        noise_std: Gaussian noise std (scalar or broadcastable to rewards), used when an rng
            is given and noise="gaussian".
        context_probs: distribution of prompts over contexts (default uniform).
        noise: "gaussian" (mean + N(0, σ²)) or "bernoulli" (r ~ Bernoulli(R[x, a]); needs
            0 ≤ R ≤ 1): the 0/1 reward of a verifier.
    """

    def __init__(self, rewards, noise_std=0.0, context_probs=None, noise: str = "gaussian"):
        R = np.asarray(rewards, dtype=np.float64)
        if R.ndim != 2 or R.shape[0] < 1 or R.shape[1] < 1:
            raise ValueError(f"rewards must have shape [n_contexts, n_actions], got {R.shape}")
        if not np.all(np.isfinite(R)):
            raise ValueError("rewards must be finite (found NaN or inf)")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {list(NOISES)}, got {noise!r}")
        std = np.asarray(noise_std, dtype=np.float64)
        if not np.all(np.isfinite(std)) or np.any(std < 0):
            raise ValueError("noise_std must be finite and >= 0")
        try:
            std = np.broadcast_to(std, R.shape).copy()
        except ValueError:
            raise ValueError(f"noise_std shape {std.shape} does not broadcast to rewards "
                             f"{R.shape}") from None
        if noise == "bernoulli" and (np.any(R < 0) or np.any(R > 1)):
            raise ValueError("noise='bernoulli' needs rewards (success probabilities) in [0, 1]")
        if context_probs is None:
            probs = np.full(R.shape[0], 1.0 / R.shape[0])
        else:
            probs = np.asarray(context_probs, dtype=np.float64)
            if probs.shape != (R.shape[0],) or np.any(probs < 0) or \
                    not np.isclose(probs.sum(), 1.0, atol=1e-8):
                raise ValueError(f"context_probs must be a distribution over the "
                                 f"{R.shape[0]} contexts")
        self.R, self.noise_std, self.noise, self.context_probs = R, std, noise, probs

    @property
    def n_contexts(self) -> int:
        return self.R.shape[0]

    @property
    def n_actions(self) -> int:
        return self.R.shape[1]

    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[int]:
        """n context indices drawn i.i.d. from ``context_probs`` (the split is irrelevant)."""
        n = check_int(n, "n", minimum=1)
        if self.n_contexts == 1:
            return [0] * n
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        return [int(x) for x in rng.choice(self.n_contexts, size=n, p=self.context_probs)]

    def expected_rewards(self) -> np.ndarray:
        """R[x, a], the table exact updates use."""
        return self.R.copy()

    def rewards(self, rollouts: Rollouts, rng: np.random.Generator | None = None) -> Tensor:
        """[B] rewards; expected values when ``rng`` is None, else sampled."""
        rng = _check_rng(rng)
        ctx, act = _rows(rollouts, self.n_contexts, self.n_actions)
        mean = self.R[ctx, act]
        if rng is None:
            return _tensor_like(mean, rollouts)
        if self.noise == "bernoulli":
            return _tensor_like((rng.random(mean.shape) < mean).astype(np.float64), rollouts)
        std = self.noise_std[ctx, act]
        if not np.any(std > 0):
            return _tensor_like(mean, rollouts)
        return _tensor_like(mean + std * rng.standard_normal(mean.shape), rollouts)


class BanditTask(ContextualBanditTask):
    """A K-armed bandit as a task: one context (every prompt is 0), rewards from a ``tb.Bandit``.

    Args:
        bandit: an unbatched ``tabular.Bandit`` (its ``noise_std`` is the Gaussian noise), or
            an array of expected rewards.
        noise: "gaussian" (the bandit's ``noise_std``) or "bernoulli" (0/1 rewards).
    """

    def __init__(self, bandit, noise: str = "gaussian"):
        if not isinstance(bandit, tb.Bandit):
            bandit = tb.Bandit(np.asarray(bandit, dtype=np.float64))
        if bandit.batch_shape:
            raise ValueError(f"bandit must be unbatched (rewards [n_actions]), got batch shape "
                             f"{bandit.batch_shape}")
        self.bandit = bandit
        super().__init__(bandit.rewards[None, :],
                         np.broadcast_to(bandit.noise_std, bandit.rewards.shape)[None, :],
                         noise=noise)


class PreferenceTask:
    """Pairwise preferences from a ``tb.PreferenceGame``: y ≻ y′ with probability P[y, y′].

    ``preference(first, second, rng)`` compares rows of two rollouts (row i against row i):
    the probability P[y_i, y′_i] (rng None) or a Bernoulli outcome in {0, 1} (rng given).
    ``rewards(rollouts, rng)`` is the within-group win rate r_i = mean_{j≠i} 1[y_i ≻ y_j]
    (one outcome drawn per unordered pair, so r_i + r_j … stay antisymmetric), or with rng
    None its expectation mean_{j≠i} P[y_i, y_j] — the Pref-GRPO reward.
    """

    def __init__(self, game):
        if not isinstance(game, tb.PreferenceGame):
            game = tb.PreferenceGame(np.asarray(game, dtype=np.float64))
        if game.batch_shape:
            raise ValueError(f"game must be unbatched (P of shape [n, n]), got batch shape "
                             f"{game.batch_shape}")
        self.game = game

    @property
    def n_actions(self) -> int:
        return self.game.n_actions

    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[int]:
        return [0] * check_int(n, "n", minimum=1)

    def preference(self, first: Rollouts, second: Rollouts,
                   rng: np.random.Generator | None = None) -> Tensor:
        rng = _check_rng(rng)
        _, a = _rows(first, 1, self.n_actions)
        _, b = _rows(second, 1, self.n_actions)
        if a.shape != b.shape:
            raise ValueError(f"first and second must have the same number of rows, got "
                             f"{a.shape[0]} and {b.shape[0]}")
        p = self.game.P[a, b]
        if rng is not None:
            p = (rng.random(p.shape) < p).astype(np.float64)
        return _tensor_like(p, first)

    def rewards(self, rollouts: Rollouts, rng: np.random.Generator | None = None) -> Tensor:
        rng = _check_rng(rng)
        _, act = _rows(rollouts, 1, self.n_actions)
        G = rollouts.group_size
        if G < 2:
            raise ValueError("group_size must be >= 2: a preference task's reward is the win "
                             "rate against the rest of the group")
        y = act.reshape(-1, G)
        P = self.game.P[y[:, :, None], y[:, None, :]]                   # [n, G, G]
        if rng is not None:
            upper = rng.random(P.shape) < P
            iu = np.triu(np.ones((G, G), dtype=bool), k=1)
            wins = np.where(iu, upper, ~np.swapaxes(upper, 1, 2)).astype(np.float64)
            P = wins
        off = ~np.eye(G, dtype=bool)
        r = np.where(off, P, 0.0).sum(axis=2) / (G - 1)
        return _tensor_like(r.reshape(-1), rollouts)


class PreferencePairs:
    """A fixed offline preference dataset of (prompt, chosen, rejected) rows, for DPO.

    ``pairs(n, rng)`` draws n rows with replacement; ``pairs(None, None)`` returns every row
    (exact mode: the full-batch loss). Prompts are context indices (0 for a single game).
    """

    def __init__(self, chosen, rejected, prompts=None):
        chosen = [int(c) for c in chosen]
        rejected = [int(r) for r in rejected]
        if len(chosen) != len(rejected) or not chosen:
            raise ValueError(f"chosen and rejected must be non-empty and of equal length, got "
                             f"{len(chosen)} and {len(rejected)}")
        prompts = [0] * len(chosen) if prompts is None else [int(p) for p in prompts]
        if len(prompts) != len(chosen):
            raise ValueError(f"prompts has {len(prompts)} rows, chosen has {len(chosen)}")
        self.chosen, self.rejected, self.prompt_list = chosen, rejected, prompts

    def __len__(self) -> int:
        return len(self.chosen)

    @classmethod
    def from_game(cls, game, n_pairs: int, seed: int = 0, support=None) -> PreferencePairs:
        """Pairs (a, b), a ≠ b uniform over ``support`` (default all actions), labelled by
        one Bernoulli(P[a, b]) draw each: the offline dataset of the DPO coverage experiment."""
        if not isinstance(game, tb.PreferenceGame):
            game = tb.PreferenceGame(np.asarray(game, dtype=np.float64))
        n_pairs = check_int(n_pairs, "n_pairs", minimum=1)
        support = np.arange(game.n_actions) if support is None else np.asarray(support)
        if support.ndim != 1 or len(support) < 2 or len(np.unique(support)) != len(support):
            raise ValueError("support must list at least two distinct actions")
        if np.any(support < 0) or np.any(support >= game.n_actions):
            raise ValueError(f"support must hold actions in [0, {game.n_actions})")
        rng = np.random.default_rng(seed)
        chosen, rejected = [], []
        for _ in range(n_pairs):
            a, b = rng.choice(support, size=2, replace=False)
            if rng.random() < game.P[a, b]:
                chosen.append(int(a)), rejected.append(int(b))
            else:
                chosen.append(int(b)), rejected.append(int(a))
        return cls(chosen, rejected)

    def prompts(self, n: int, rng: np.random.Generator, split: str = "train") -> list[int]:
        n = check_int(n, "n", minimum=1)
        idx = rng.integers(0, len(self), size=n)
        return [self.prompt_list[i] for i in idx]

    def pairs(self, n: int | None, rng: np.random.Generator | None):
        """(prompts, chosen, rejected) lists: n rows with replacement, or all rows if n None."""
        if n is None:
            idx = np.arange(len(self))
        else:
            n = check_int(n, "n", minimum=1)
            if not isinstance(rng, np.random.Generator):
                raise TypeError("pairs(n, rng) needs a numpy Generator to draw rows")
            idx = rng.integers(0, len(self), size=n)
        return ([self.prompt_list[i] for i in idx], [self.chosen[i] for i in idx],
                [self.rejected[i] for i in idx])

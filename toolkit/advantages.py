"""Baselines, advantage estimators and reward normalisations, one pure function each.

Rewards and advantages are per sequence ``[B]`` unless a function says otherwise; the G
sequences of one prompt are consecutive (B = n_prompts·G). Token-level quantities are
``[B, T]`` with a mask that is 1 on completion tokens. Every output is detached: advantages are
constants of the loss. Non-finite rewards raise ValueError instead of silently turning a whole
group's advantages into NaN.

The only import besides torch is ``kl_estimate`` from the sibling ``toolkit.objectives`` (itself
pure torch), so the KL estimators are written once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .objectives import KL_KINDS, kl_estimate

__all__ = [
    "asymre_advantages",
    "batch_normalized",
    "bnpo",
    "gae",
    "group_relative",
    "group_stats",
    "kl_in_reward",
    "opmd_baseline",
    "remax",
    "returns_to_go",
    "rloo",
    "win_rate",
]

SCALES = ("group", "batch", "none")


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------


def _check_tensor(name: str, x: object, ndim: int | None = None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype, got {x.dtype}")
    if ndim is not None and x.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(x.shape)}")
    return x


def _check_rewards(rewards: object, name: str = "rewards") -> Tensor:
    rewards = _check_tensor(name, rewards, ndim=1)
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return rewards.detach()


def _check_group_size(group_size: object, batch: int, minimum: int = 2) -> int:
    if isinstance(group_size, bool) or not isinstance(group_size, int):
        raise TypeError(f"group_size must be an int, got {type(group_size).__name__}")
    if group_size < minimum:
        raise ValueError(
            f"group_size must be >= {minimum} for a group baseline, got {group_size}"
        )
    if batch % group_size != 0:
        raise ValueError(
            f"group_size={group_size} must divide the batch size B={batch} "
            "(B = n_prompts · group_size, groups consecutive)"
        )
    return group_size


def _check_number(name: str, value: object, *, min_value: float | None = None,
                  strict: bool = False, max_value: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if min_value is not None:
        if strict and not value > min_value:
            raise ValueError(f"{name} must be > {min_value}, got {value}")
        if not strict and not value >= min_value:
            raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and not value <= max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def _check_mask(mask: object, like: Tensor, name: str = "mask") -> Tensor:
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.shape != like.shape:
        raise ValueError(f"{name} must have shape {tuple(like.shape)}, got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        return mask
    if not mask.is_floating_point():
        raise TypeError(f"{name} must be bool or floating, got {mask.dtype}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must contain only 0 and 1")
    return mask != 0


def _check_contiguous(valid: Tensor, name: str = "mask") -> None:
    """Time recursions need each row's valid tokens to form one unbroken run."""
    v = valid.to(torch.int8)
    starts = (v[:, :1] == 1).to(torch.int64).sum(1) + (v[:, 1:] - v[:, :-1] == 1).sum(1)
    if bool((starts > 1).any()):
        raise ValueError(f"{name}: each row's valid tokens must be one contiguous run")


def _groups(rewards: Tensor, group_size: int) -> Tensor:
    return rewards.reshape(-1, group_size)


# ---------------------------------------------------------------------------------------------
# group baselines
# ---------------------------------------------------------------------------------------------


def group_relative(rewards: Tensor, group_size: int, scale: str = "group", eps: float = 1e-6,
                   unbiased: bool = True) -> Tensor:
    """GRPO advantage: reward minus its group mean, optionally divided by a std.

        A_i = (r_i − mean_g r) / (σ + eps)      σ = std of group g    (scale="group")
        A_i = (r_i − mean_g r) / (σ_B + eps)    σ_B = std of all B rewards  (scale="batch")
        A_i =  r_i − mean_g r                                          (scale="none")

    From "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models"
    (Shao et al., 2024). "none" is the Dr. GRPO fix ("Understanding R1-Zero-Like Training: A
    Critical Perspective"): dividing by σ over-weights nearly-solved and nearly-failed prompts.
    "batch" divides by the std of the raw rewards over the whole batch (TRL's
    ``scale_rewards="batch"``).

    Std: the *sample* std (divide by G − 1, ``unbiased=True``, the default) as in TRL and verl
    (``torch.std``). Pass ``unbiased=False`` for the population std (divide by G). TRL adds
    1e-4 to σ, verl 1e-6; eps is added to σ, not under the root, as both do. A group whose
    rewards are all equal gets exactly A = 0 (also for eps = 0).

    Args:
      rewards: [B] sequence rewards, groups of ``group_size`` consecutive.
      group_size: G ≥ 2, dividing B.
      scale: "group", "batch" or "none".
      eps: ≥ 0, added to the std.
      unbiased: sample (True) or population (False) std.

    Returns:
      [B] advantages (detached); each group sums to 0.
    """
    r = _check_rewards(rewards)
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    g = _check_group_size(group_size, r.shape[0])
    eps = _check_number("eps", eps, min_value=0.0)
    if not isinstance(unbiased, bool):
        raise TypeError(f"unbiased must be a bool, got {type(unbiased).__name__}")
    correction = 1 if unbiased else 0
    grouped = _groups(r, g)
    adv = grouped - grouped.mean(dim=1, keepdim=True)
    if scale == "group":
        std = grouped.std(dim=1, correction=correction, keepdim=True)
        # An all-equal group has std 0; with eps = 0 that would be 0/0.
        adv = adv / torch.where(std + eps > 0, std + eps, torch.ones_like(std))
    elif scale == "batch":
        std = r.std(correction=correction)
        adv = adv / torch.where(std + eps > 0, std + eps, torch.ones_like(std))
    # The mean of equal floats can differ from them by an ulp (3·0.1/3 ≠ 0.1); without this a
    # tiny eps would blow that rounding error up into a ±1 advantage.
    equal = grouped.amax(dim=1, keepdim=True) == grouped.amin(dim=1, keepdim=True)
    return torch.where(equal, torch.zeros_like(adv), adv).reshape(-1)


def rloo(rewards: Tensor, group_size: int) -> Tensor:
    """RLOO: leave-one-out baseline, A_i = r_i − (1/(G−1))·Σ_{j≠i} r_j.

    From "Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human
    Feedback in LLMs" (Ahmadian et al., 2024). The baseline does not depend on r_i, so the
    gradient estimate stays unbiased; A_i = G/(G−1)·(r_i − mean_g r).

    Args:
      rewards: [B]. group_size: G ≥ 2 dividing B.

    Returns:
      [B] advantages (detached).
    """
    r = _check_rewards(rewards)
    g = _check_group_size(group_size, r.shape[0])
    grouped = _groups(r, g)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (g - 1)
    return (grouped - others).reshape(-1)


def remax(rewards: Tensor, greedy_rewards: Tensor) -> Tensor:
    """ReMax: the greedy completion's reward as baseline, A = r(y) − r(ŷ_greedy).

    From "ReMax: A Simple, Effective, and Efficient Reinforcement Learning Method for Aligning
    Large Language Models" (Li et al., 2023).

    Args:
      rewards: [B]. greedy_rewards: [B], the reward of the greedy answer to each sequence's
        prompt (already repeated over the prompt's samples).

    Returns:
      [B] advantages (detached).
    """
    r = _check_rewards(rewards)
    b = _check_rewards(greedy_rewards, "greedy_rewards")
    if b.shape != r.shape:
        raise ValueError(f"greedy_rewards must have shape {tuple(r.shape)}, "
                         f"got {tuple(b.shape)}")
    return r - b


def opmd_baseline(rewards: Tensor, group_size: int, tau: float) -> Tensor:
    """Soft (log-mean-exp) group baseline of OPMD: b_g = τ·log( (1/G)·Σ_j exp(r_j/τ) ).

    From "Kimi k1.5: Scaling Reinforcement Learning with LLMs" (2025): τ·log Z of the
    KL-regularised target π* ∝ π·exp(r/τ), estimated from the group. Computed with logsumexp,
    so it stays finite for tiny τ, where it tends to max_j r_j; as τ → ∞ it tends to the mean.
    Use ``rewards − opmd_baseline(...)`` as the advantage of ``objectives.opmd``.

    Args:
      rewards: [B]. group_size: G ≥ 2 dividing B. tau: τ > 0.

    Returns:
      [B] baseline, each group's value repeated over its G members (detached).
    """
    r = _check_rewards(rewards)
    g = _check_group_size(group_size, r.shape[0])
    tau = _check_number("tau", tau, min_value=0.0, strict=True)
    grouped = _groups(r, g)
    soft = tau * (torch.logsumexp(grouped / tau, dim=1) - math.log(g))
    return soft.repeat_interleave(g)


def asymre_advantages(rewards: Tensor, group_size: int, shift: float = 0.1) -> Tensor:
    """AsymRE advantage: baseline = group mean − δ, so A_i = r_i − mean_g r + δ.

    From "Asymmetric REINFORCE for off-Policy Reinforcement Learning: Balancing positive and
    negative rewards" (Arnal et al., 2025). δ = ``shift`` > 0 lowers the baseline (more weight
    on positive samples); feeding this to ``objectives.reinforce`` equals
    ``objectives.asymre(logp, r − mean, mask, shift=δ)`` (don't apply the shift twice).

    Args:
      rewards: [B]. group_size: G ≥ 2 dividing B. shift: δ (finite real).

    Returns:
      [B] advantages (detached); each group sums to G·δ.
    """
    shift = _check_number("shift", shift)
    return group_relative(rewards, group_size, scale="none") + shift


def bnpo(rewards: Tensor, group_size: int, min_value: float = 0.0, max_value: float = 1.0,
         max_weight: float = 1e6) -> Tensor:
    """BNPO: advantages normalised by a Beta density adapted to the batch.

        R̃ = (r − min_value)/(max_value − min_value) ∈ [0, 1],   p_g = mean of R̃ over group g
        m, v = mean and sample variance of {p_g} over the groups of the batch
        a = m·(m(1−m)/v − 1),   b = (1−m)·(m(1−m)/v − 1)          (method of moments)
        α = max(1 + a/3, 1),    β = max(1 + b/3, 1)
        A_i = (R̃_i − p_g) / f(p_g; α, β),   f = Beta(α, β) density, 1/f clamped to max_weight

    From "BNPO: Beta Normalization Policy Optimization" (Xiao et al., 2025), checked against
    the authors' code (changyi7231/BNPO). It is an advantage normalisation, not a loss
    aggregation: ``objectives.aggregate(..., "bnpo")`` raises. α = β = 1 gives REINFORCE with a
    mean baseline; α = β = 3/2 gives f ∝ √(p(1−p)), GRPO's std normalisation for 0/1 rewards.

    Fallback (the authors' code has no guard): with a single group, or when the p_g are all
    equal (v = 0), α = β = 1.

    Args:
      rewards: [B] in [min_value, max_value] (the paper's theory is for 0/1 rewards).
      group_size: G ≥ 2 dividing B.
      min_value, max_value: reward range used for the affine map to [0, 1].
      max_weight: > 0, clamp on 1/f (the authors' 1e6).

    Returns:
      [B] advantages (detached).
    """
    r = _check_rewards(rewards)
    g = _check_group_size(group_size, r.shape[0])
    lo = _check_number("min_value", min_value)
    hi = _check_number("max_value", max_value)
    if not hi > lo:
        raise ValueError(f"max_value must be > min_value, got {hi} <= {lo}")
    max_weight = _check_number("max_weight", max_weight, min_value=0.0, strict=True)
    if bool((r < lo).any()) or bool((r > hi).any()):
        raise ValueError(f"rewards must lie in [min_value, max_value] = [{lo}, {hi}]")
    scaled = (r - lo) / (hi - lo)
    grouped = _groups(scaled, g)
    p = grouped.mean(dim=1)
    one = torch.ones((), dtype=r.dtype, device=r.device)
    alpha, beta = one, one
    if p.shape[0] > 1:
        m, v = p.mean(), p.var(correction=1)
        if bool(v > 0):
            k = m * (1 - m) / v - 1
            alpha = torch.clamp(1 + m * k / 3, min=1.0)
            beta = torch.clamp(1 + (1 - m) * k / 3, min=1.0)
    # xlogy keeps (α−1)·log p = 0 at p = 0 when α = 1, where a plain product gives 0·(−inf).
    log_beta_fn = torch.lgamma(alpha) + torch.lgamma(beta) - torch.lgamma(alpha + beta)
    log_pdf = torch.xlogy(alpha - 1, p) + torch.xlogy(beta - 1, 1 - p) - log_beta_fn
    weight = torch.exp(-log_pdf).clamp(max=max_weight)
    return ((grouped - p[:, None]) * weight[:, None]).reshape(-1)


def win_rate(preferences: Tensor) -> Tensor:
    """Pref-GRPO reward: each sample's mean win probability against the rest of its group.

        r_i = (1/(G−1))·Σ_{j≠i} P(y_i ≻ y_j)

    From "Pref-GRPO: Pairwise Preference Reward-based GRPO for Stable Text-to-Image
    Reinforcement Learning" (2025): std-normalising nearly-equal pointwise scores inflates tiny
    differences ("illusory advantages"); within-group win rates do not. Feed the result to
    ``group_relative``.

    Args:
      preferences: [n_prompts, G, G] with P[i, j] = P(y_i ≻ y_j) in [0, 1] and
        P[i, j] + P[j, i] = 1 off the diagonal (the diagonal is ignored).

    Returns:
      [n_prompts·G] rewards in [0, 1] (detached), groups consecutive.
    """
    p = _check_tensor("preferences", preferences, ndim=3)
    n, g, g2 = p.shape
    if g != g2 or g < 2:
        raise ValueError(f"preferences must have shape [n_prompts, G, G] with G >= 2, "
                         f"got {tuple(p.shape)}")
    p = p.detach()
    off = ~torch.eye(g, dtype=torch.bool, device=p.device).expand(n, g, g)
    vals = p[off]
    if not bool(torch.isfinite(vals).all()) or bool((vals < 0).any()) or bool((vals > 1).any()):
        raise ValueError("preferences must be probabilities in [0, 1] off the diagonal")
    sym = (p + p.transpose(1, 2))[off]
    if not bool(torch.allclose(sym, torch.ones_like(sym), atol=1e-6, rtol=0.0)):
        raise ValueError("preferences must satisfy P[i, j] + P[j, i] = 1 for i != j")
    return (torch.where(off, p, p.new_zeros(())).sum(dim=2) / (g - 1)).reshape(-1)


def group_stats(rewards: Tensor, group_size: int) -> dict[str, Tensor]:
    """Reward diagnostics with TRL's names.

        reward                mean reward over the batch
        reward_std            mean over groups of the within-group sample std (TRL's reward_std
                              under scale_rewards="group")
        frac_reward_zero_std  fraction of groups whose rewards are all equal: these groups give
                              zero advantage and no learning signal (1.0 = nothing is learned)

    TRL decides "zero std" with isclose(std, 0); here equality is exact (max = min).

    Args:
      rewards: [B]. group_size: G ≥ 2 dividing B.

    Returns:
      dict of detached 0-dim tensors.
    """
    r = _check_rewards(rewards)
    g = _check_group_size(group_size, r.shape[0])
    grouped = _groups(r, g)
    zero_std = grouped.amax(dim=1) == grouped.amin(dim=1)
    return {
        "reward": r.mean(),
        "reward_std": grouped.std(dim=1, correction=1).mean(),
        "frac_reward_zero_std": zero_std.to(r.dtype).mean(),
    }


# ---------------------------------------------------------------------------------------------
# token-level rewards, returns and normalisation (REINFORCE++ / PPO)
# ---------------------------------------------------------------------------------------------


def batch_normalized(adv: Tensor, mask: Tensor | None = None, eps: float = 1e-8,
                     weights: Tensor | None = None) -> Tensor:
    """REINFORCE++ global advantage normalisation over all valid tokens of the batch.

        Â_t = (A_t − μ) / (σ + eps),   μ, σ = mean and population std over valid tokens

    From "REINFORCE++: A Simple and Efficient Approach for Aligning Large Language Models"
    (Hu, 2025); OpenRLHF also uses the population (masked) variance.

    Args:
      adv: [B] (then mask must be None: the statistics are over sequences) or [B, T].
      mask: [B, T] or None (all tokens valid).
      eps: ≥ 0, added to σ.
      weights: [B] per-sequence weights or None. Exact mode: every valid token of row b counts
        with weight w_b, so μ and σ are the population statistics of the enumerated batch;
        None (or equal weights) is the plain masked mean and std above.

    Returns:
      Tensor shaped like ``adv`` (detached), 0 on padding.
    """
    a = _check_tensor("adv", adv)
    eps = _check_number("eps", eps, min_value=0.0)
    if a.dim() == 1 and mask is not None:
        raise ValueError("mask must be None when adv is per sequence [B]")
    if a.dim() not in (1, 2):
        raise ValueError(f"adv must be [B] or [B, T], got shape {tuple(a.shape)}")
    valid = torch.ones_like(a, dtype=torch.bool) if mask is None else _check_mask(mask, a)
    if not bool(valid.any()):
        raise ValueError("mask must have at least one valid token")
    if not bool(torch.isfinite(a[valid]).all()):
        raise ValueError("adv must be finite on valid tokens")
    a = a.detach()
    if weights is None:
        token_w = valid.to(a.dtype)
    else:
        w = _check_tensor("weights", weights)
        if w.shape != a.shape[:1]:
            raise ValueError(f"weights must have shape [B] = ({a.shape[0]},), "
                             f"got {tuple(w.shape)}")
        if bool((w < 0).any()):
            raise ValueError("weights must be >= 0")
        token_w = (w[:, None] if a.dim() == 2 else w).to(a.dtype) * valid
    total = token_w.sum()
    if not bool(total > 0):
        raise ValueError("weights must put positive mass on some valid token")
    centred = torch.where(valid, a, a.new_zeros(()))
    mean = (token_w * centred).sum() / total
    std = (token_w * (centred - mean).square()).sum().div(total).sqrt()
    out = (a - mean) / (std + eps)
    return torch.where(valid, out, a.new_zeros(()))


def _last_valid_index(valid: Tensor) -> Tensor:
    width = valid.shape[1]
    positions = torch.arange(width, device=valid.device).expand_as(valid)
    return torch.where(valid, positions, -1).amax(dim=1)


def kl_in_reward(rewards: Tensor, logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float,
                 kl: str = "k1") -> Tensor:
    """Token rewards with the KL penalty folded in (PPO-RLHF / REINFORCE++ style).

        r_t = −β·k(π‖π_ref)_t  on every valid token,  plus r(x, y) on the last valid token

    From "Training language models to follow instructions with human feedback" (Ouyang et al.,
    2022) and REINFORCE++. The KL estimate k is evaluated on the sampled tokens (logp is usually
    the behaviour policy's log-probability) and treated as a constant reward; k1 (the default,
    as in OpenRLHF/TRL PPO) is the unbiased log-ratio. See ``objectives.kl_estimate``.

    Args:
      rewards: [B] sequence rewards. logp, ref_logp: [B, T]. mask: [B, T], each row a single
        contiguous run with at least one valid token.
      beta: β ≥ 0. kl: "k1", "k2" or "k3".

    Returns:
      [B, T] token rewards (detached), 0 on padding.
    """
    if not isinstance(kl, str) or kl not in KL_KINDS:
        raise ValueError(f"kl must be one of {list(KL_KINDS)}, got {kl!r}")
    r = _check_rewards(rewards)
    lp = _check_tensor("logp", logp, ndim=2)
    ref = _check_tensor("ref_logp", ref_logp, ndim=2)
    if lp.shape[0] != r.shape[0]:
        raise ValueError(f"logp must have B={r.shape[0]} rows (one per reward), "
                         f"got shape {tuple(lp.shape)}")
    if ref.shape != lp.shape:
        raise ValueError(f"ref_logp must have shape {tuple(lp.shape)}, got {tuple(ref.shape)}")
    beta = _check_number("beta", beta, min_value=0.0)
    valid = _check_mask(mask, lp)
    _check_contiguous(valid)
    if not bool(valid.any(dim=1).all()):
        raise ValueError("mask: every sequence needs at least one valid token for its reward")
    if not bool(torch.isfinite(lp[valid]).all()) or not bool(torch.isfinite(ref[valid]).all()):
        raise ValueError("logp and ref_logp must be finite on valid tokens")
    k = kl_estimate(lp.detach(), ref.detach(), kl)
    token_rewards = torch.where(valid, -beta * k, lp.new_zeros(()))
    last = _last_valid_index(valid)
    rows = torch.arange(r.shape[0], device=r.device)
    token_rewards[rows, last] += r.to(lp.dtype)
    return token_rewards


def returns_to_go(token_rewards: Tensor, mask: Tensor, gamma: float = 1.0) -> Tensor:
    """Discounted return from each token: G_t = Σ_{k ≥ t} γ^{k−t}·r_k over valid tokens.

    The REINFORCE++ advantage (before ``batch_normalized``) when fed ``kl_in_reward`` output.

    Args:
      token_rewards: [B, T]. mask: [B, T], each row one contiguous run.
      gamma: discount in [0, 1].

    Returns:
      [B, T] returns (detached), 0 on padding.
    """
    rew = _check_tensor("token_rewards", token_rewards, ndim=2)
    valid = _check_mask(mask, rew)
    _check_contiguous(valid)
    gamma = _check_number("gamma", gamma, min_value=0.0, max_value=1.0)
    if not bool(torch.isfinite(rew[valid]).all()):
        raise ValueError("token_rewards must be finite on valid tokens")
    rew = torch.where(valid, rew.detach(), rew.new_zeros(()))
    out = torch.zeros_like(rew)
    running = rew.new_zeros(rew.shape[0])
    for t in range(rew.shape[1] - 1, -1, -1):
        running = rew[:, t] + gamma * running
        out[:, t] = running
    return torch.where(valid, out, rew.new_zeros(()))


def gae(token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation.

        δ_t = r_t + γ·V_{t+1} − V_t          (V after the last valid token = 0)
        A_t = δ_t + γλ·A_{t+1}               returns R_t = A_t + V_t

    From "High-Dimensional Continuous Control Using Generalized Advantage Estimation"
    (Schulman et al., 2015). λ = 1 gives Monte-Carlo returns minus V; λ = 0 the one-step TD
    error. The defaults γ = 1, λ = 0.95 are TRL's PPO defaults.

    Args:
      token_rewards: [B, T] (e.g. from ``kl_in_reward``).
      values: [B, T], V of the state before each token (detached here).
      mask: [B, T], each row one contiguous run. gamma, lam: in [0, 1].

    Returns:
      (advantages [B, T], returns [B, T]), detached, 0 on padding.
    """
    rew = _check_tensor("token_rewards", token_rewards, ndim=2)
    val = _check_tensor("values", values, ndim=2)
    if val.shape != rew.shape:
        raise ValueError(f"values must have shape {tuple(rew.shape)}, got {tuple(val.shape)}")
    valid = _check_mask(mask, rew)
    _check_contiguous(valid)
    gamma = _check_number("gamma", gamma, min_value=0.0, max_value=1.0)
    lam = _check_number("lam", lam, min_value=0.0, max_value=1.0)
    if not bool(torch.isfinite(rew[valid]).all()):
        raise ValueError("token_rewards must be finite on valid tokens")
    if not bool(torch.isfinite(val[valid]).all()):
        raise ValueError("values must be finite on valid tokens")
    zero = rew.new_zeros(())
    rew = torch.where(valid, rew.detach(), zero)
    val = torch.where(valid, val.detach(), zero)
    batch, width = rew.shape
    adv = torch.zeros_like(rew)
    next_adv = rew.new_zeros(batch)
    next_value = rew.new_zeros(batch)
    for t in range(width - 1, -1, -1):
        delta = rew[:, t] + gamma * next_value - val[:, t]
        current = torch.where(valid[:, t], delta + gamma * lam * next_adv, zero)
        adv[:, t] = current
        # Padding after the run holds V = 0 and A = 0, which is exactly the bootstrap-0 rule.
        next_adv, next_value = current, val[:, t]
    returns = torch.where(valid, adv + val, zero)
    return adv, returns

"""Policy-update losses for RL on language models, one pure function each.

Every function here is written once and used at both scales: a tabular policy (a bandit is a
language model whose responses are one token long) and a small transformer. Nothing here knows
about policies, trainers or models; the caller hands in log-probabilities.

Conventions (shared with the trainer):

- Per-token tensors are ``[B, T]``: ``logp`` = log π(y_t | x, y_<t) of the taken tokens (with
  grad), ``old_logp`` = log μ of the behaviour policy that sampled the data, ``ref_logp`` =
  log π_ref, ``mask`` = 1 on completion tokens and 0 on padding (float or bool).
- Per-sequence tensors are ``[B]``. The G sequences of one prompt are consecutive, B = n·G.
- An advantage may be per sequence ``[B]`` (broadcast over tokens) or per token ``[B, T]``.
- ``old_logp``, ``ref_logp``, advantages, rewards and preferences are constants: they are
  detached here, so a caller that forgets ``torch.no_grad()`` cannot leak gradient into them.
- Every loss returns ``(loss, diagnostics)``: a scalar tensor and a ``dict[str, Tensor]`` of
  detached 0-dim tensors. Metric names follow TRL where the quantity is the same.
- ``weights`` ([B], summing to 1) replaces the uniform 1/B average over sequences. It exists
  for the exact mode of tabular policies, where every possible group is enumerated with its
  probability p_g and each member gets weight p_g/G, so that one step equals the expected
  update. Every aggregation is defined so that weights = 1/B gives back the unweighted one.

Notation: ρ = π/μ = exp(logp − old_logp), A = advantage, m = mask, w = sequence weights,
sg(·) = stop-gradient, |y_b| = Σ_t m_bt.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "AGGREGATIONS",
    "KL_KINDS",
    "aggregate",
    "asymre",
    "bapo",
    "dpo",
    "grpo",
    "kl_estimate",
    "nash_md",
    "online_dpo",
    "opmd",
    "ppo",
    "rec",
    "reinforce",
    "simpo",
    "topr",
]

AGGREGATIONS = ("grpo", "dapo", "dr_grpo", "sum")
KL_KINDS = ("k1", "k2", "k3")
REC_CLIPS = ("one-side", "two-side", "ring", "none")
DPO_VARIANTS = ("sigmoid", "ipo", "hinge")

Diagnostics = dict[str, Tensor]

# Loose enough for float32 weights built by summing many probabilities, tight enough to catch
# weights that were never normalised.
_WEIGHT_SUM_TOL = 1e-5


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


def _check_same_shape(name: str, x: Tensor, ref_name: str, ref: Tensor) -> None:
    if x.shape != ref.shape:
        raise ValueError(
            f"{name} must have the same shape as {ref_name} {tuple(ref.shape)}, "
            f"got {tuple(x.shape)}"
        )


def _check_mask(mask: object, like: Tensor, name: str = "mask") -> Tensor:
    """Return the mask as a bool tensor after checking its type, shape and 0/1 values."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.shape != like.shape:
        raise ValueError(
            f"{name} must have shape {tuple(like.shape)} (one entry per token), "
            f"got {tuple(mask.shape)}"
        )
    if mask.dtype == torch.bool:
        return mask
    if not mask.is_floating_point():
        raise TypeError(f"{name} must be bool or floating, got {mask.dtype}")
    if not ((mask == 0) | (mask == 1)).all():
        raise ValueError(f"{name} must contain only 0 and 1")
    return mask != 0


def _check_finite_on(name: str, x: Tensor, valid: Tensor) -> None:
    if not bool(torch.isfinite(x[valid]).all()):
        raise ValueError(f"{name} must be finite on every valid (mask = 1) token")


def _check_finite(name: str, x: Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite everywhere")


def _check_number(name: str, value: object, *, min_value: float | None = None,
                  strict: bool = False) -> float:
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
    return value


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def _check_aggregation(aggregation: object) -> str:
    if aggregation == "bnpo":
        raise ValueError(
            "aggregation='bnpo' is not a loss aggregation: BNPO ('BNPO: Beta Normalization "
            "Policy Optimization') normalises advantages with a Beta density, see "
            "toolkit.advantages.bnpo. TRL's loss_type='bnpo' is a token mean over the local "
            "batch, which is aggregation='dapo' here."
        )
    return _check_choice("aggregation", aggregation, AGGREGATIONS)


def _check_max_tokens(max_tokens: object) -> int | None:
    if max_tokens is None:
        return None
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise TypeError(f"max_tokens must be an int or None, got {type(max_tokens).__name__}")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    return max_tokens


def _check_weights(weights: object, batch: int, like: Tensor) -> Tensor | None:
    if weights is None:
        return None
    if not isinstance(weights, Tensor):
        raise TypeError(f"weights must be a torch.Tensor or None, got {type(weights).__name__}")
    if not weights.is_floating_point():
        raise TypeError(f"weights must have a floating dtype, got {weights.dtype}")
    if weights.shape != (batch,):
        raise ValueError(
            f"weights must have shape ({batch},) (one per sequence), got {tuple(weights.shape)}"
        )
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("weights must be finite")
    if bool((weights < 0).any()):
        raise ValueError("weights must be non-negative")
    total = float(weights.sum())
    if abs(total - 1.0) > _WEIGHT_SUM_TOL:
        raise ValueError(f"weights must sum to 1, got sum {total}")
    return weights.detach().to(dtype=like.dtype, device=like.device)


def _token_advantages(name: str, adv: object, logp: Tensor, valid: Tensor) -> Tensor:
    """Broadcast a [B] advantage over tokens, or accept a [B, T] one; detached."""
    adv = _check_tensor(name, adv)
    batch, width = logp.shape
    if adv.shape == (batch,):
        adv = adv[:, None].expand(batch, width)
    elif adv.shape != (batch, width):
        raise ValueError(
            f"{name} must have shape ({batch},) or ({batch}, {width}), got {tuple(adv.shape)}"
        )
    _check_finite_on(name, adv, valid)
    return adv.detach().to(logp.dtype)


def _check_token_inputs(logp: object, mask: object, **others: object) -> tuple[Tensor, Tensor]:
    """Check logp [B, T], the mask and any other [B, T] tensors; return (logp, valid)."""
    logp = _check_tensor("logp", logp, ndim=2)
    valid = _check_mask(mask, logp)
    _check_finite_on("logp", logp, valid)
    for name, x in others.items():
        x = _check_tensor(name, x)
        _check_same_shape(name, x, "logp", logp)
        _check_finite_on(name, x, valid)
    return logp, valid


# ---------------------------------------------------------------------------------------------
# aggregation and shared diagnostics
# ---------------------------------------------------------------------------------------------


def _aggregate(per_token: Tensor, valid: Tensor, aggregation: str, weights: Tensor | None,
               max_tokens: int | None) -> Tensor:
    batch, width = per_token.shape
    if weights is None:
        weights = per_token.new_full((batch,), 1.0 / batch)
    # torch.where rather than a product: a padded position may hold inf/nan (e.g. log 0) and
    # 0·inf would poison the sum.
    masked = torch.where(valid, per_token, per_token.new_zeros(()))
    seq_sum = masked.sum(dim=1)
    if aggregation == "grpo":
        # An empty sequence contributes 0 rather than 0/0.
        lengths = valid.sum(dim=1).to(per_token.dtype).clamp_min(1.0)
        return (weights * seq_sum / lengths).sum()
    if aggregation == "dapo":
        tokens = (weights * valid.sum(dim=1).to(per_token.dtype)).sum()
        # clamp, not where: where would still back-propagate 0/0 = nan from the unused branch.
        return (weights * seq_sum).sum() / tokens.clamp_min(torch.finfo(per_token.dtype).tiny)
    if aggregation == "dr_grpo":
        return (weights * seq_sum).sum() / float(width if max_tokens is None else max_tokens)
    return (weights * seq_sum).sum()  # "sum"


def aggregate(per_token_loss: Tensor, mask: Tensor, aggregation: str = "grpo",
              weights: Tensor | None = None, max_tokens: int | None = None) -> Tensor:
    """Reduce a per-token loss ``[B, T]`` to a scalar, with optional sequence weights.

    With sequence weights w_b (uniform w_b = 1/B when ``weights`` is None) and mask m:

        grpo     Σ_b w_b · (Σ_t m_bt ℓ_bt / Σ_t m_bt)            each sequence averaged first
        dapo     Σ_b w_b Σ_t m_bt ℓ_bt / Σ_b w_b Σ_t m_bt        global token mean
        dr_grpo  Σ_b w_b Σ_t m_bt ℓ_bt / T_max                   T_max = max_tokens (default T)
        sum      Σ_b w_b Σ_t m_bt ℓ_bt                           sequence sum, batch mean

    "grpo" is the per-sequence mean of "DeepSeekMath: Pushing the Limits of Mathematical
    Reasoning in Open Language Models": long answers get less weight per token. "dapo" is the
    token-level loss of "DAPO: An Open-Source LLM Reinforcement Learning System at Scale":
    every token counts the same. "dr_grpo" divides by a constant, removing the length bias
    ("Understanding R1-Zero-Like Training: A Critical Perspective"); with weights = 1/B it is
    TRL's Σ/(B·T_max). "sum" (not in the brief's list; added because log π(y) = Σ_t log π(y_t)
    is what sequence-level objectives such as Nash-MD differentiate) equals TRL's NashMD
    reduction.

    "bnpo" raises ValueError on purpose: BNPO ("BNPO: Beta Normalization Policy Optimization")
    is an advantage normalisation, implemented as ``toolkit.advantages.bnpo``. TRL's
    ``loss_type="bnpo"`` is a token mean over the local batch, i.e. "dapo" here.

    A sequence with no valid token contributes 0 under "grpo"; an all-padding batch gives 0
    under "dapo".

    Args:
      per_token_loss: [B, T] loss per token; values at padding are ignored (may be inf/nan).
      mask: [B, T], 1/True on completion tokens.
      aggregation: "grpo", "dapo", "dr_grpo" or "sum".
      weights: optional [B] non-negative sequence weights summing to 1.
      max_tokens: T_max for "dr_grpo" (default: the tensor width T); ignored otherwise.

    Returns:
      A 0-dim tensor (differentiable in ``per_token_loss``).
    """
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    per_token_loss = _check_tensor("per_token_loss", per_token_loss, ndim=2)
    valid = _check_mask(mask, per_token_loss)
    w = _check_weights(weights, per_token_loss.shape[0], per_token_loss)
    return _aggregate(per_token_loss, valid, aggregation, w, max_tokens)


def _token_mean(x: Tensor, valid: Tensor, weights: Tensor | None) -> Tensor:
    """Weighted mean over valid tokens (TRL's masked batch mean when weights are uniform)."""
    return _aggregate(x.detach(), valid, "dapo", weights, None)


def _nan(like: Tensor) -> Tensor:
    return torch.full((), float("nan"), dtype=like.dtype, device=like.device)


def _pos_share(adv: Tensor, coef: Tensor, active: Tensor, valid: Tensor,
               aggregation: str, weights: Tensor | None, max_tokens: int | None) -> Tensor:
    """adv/pos_share: the share of the loss's gradient weight carried by positive advantages.

        pos_share = Σ_{A>0, active} κ·|A|·c / Σ_{active} κ·|A|·c

    c is the per-token coefficient multiplying ∇log π (ρ for ratio losses, 1 for REINFORCE),
    "active" marks tokens whose gradient is not clipped or dropped, and κ is the weight the
    aggregation gives the token (w_b/|y_b| for "grpo", ∝ w_b otherwise). Because aggregation is
    linear, the ratio of two aggregates is exactly this. NaN when no token carries gradient
    (e.g. every advantage is 0).
    """
    g = (adv.abs() * coef * active.to(adv.dtype)).detach()
    zero = g.new_zeros(())
    num = _aggregate(torch.where(adv > 0, g, zero), valid, aggregation, weights, max_tokens)
    den = _aggregate(g, valid, aggregation, weights, max_tokens)
    if not bool(den > 0):
        return _nan(adv)
    return num / den


def _ratio_stats(ratio: Tensor, valid: Tensor, weights: Tensor | None) -> Diagnostics:
    """ratio/min, ratio/mean, ratio/max over valid tokens (of sequences with weight > 0)."""
    ratio = ratio.detach()
    seen = valid if weights is None else valid & (weights > 0)[:, None]
    if not bool(seen.any()):
        nan = _nan(ratio)
        return {"ratio/min": nan, "ratio/mean": nan.clone(), "ratio/max": nan.clone()}
    return {
        "ratio/min": ratio[seen].min(),
        "ratio/mean": _token_mean(ratio, valid, weights),
        "ratio/max": ratio[seen].max(),
    }


def _clipped_surrogate(logp: Tensor, old_logp: Tensor, adv: Tensor, lower: float,
                       upper: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-token PPO-clip loss −min(ρA, clip(ρ, lower, upper)·A) and where it clips.

    Written with an explicit "clipped" set instead of torch.min so that the gradient is
    exactly −A·ρ on unclipped tokens and exactly 0 on clipped ones, with no tie-splitting at
    the bounds. A token is clipped when A < 0 and ρ < lower ("low") or A > 0 and ρ > upper
    ("high"); in the other two off-region cases the unclipped term is the minimum.

    Returns (per_token_loss, ratio, clipped_low, clipped_high).
    """
    ratio = torch.exp(logp - old_logp)
    r = ratio.detach()
    low = (adv < 0) & (r < lower)
    high = (adv > 0) & (r > upper)
    clipped_value = -adv * r.clamp(lower, upper)
    per_token = torch.where(low | high, clipped_value, -adv * ratio)
    return per_token, ratio, low, high


def _clip_diagnostics(low: Tensor, high: Tensor, valid: Tensor, weights: Tensor | None,
                      f: torch.dtype) -> Diagnostics:
    return {
        "clip_ratio/low_mean": _token_mean(low.to(f), valid, weights),
        "clip_ratio/high_mean": _token_mean(high.to(f), valid, weights),
        "clip_ratio/region_mean": _token_mean((low | high).to(f), valid, weights),
    }


def _finish(loss: Tensor, diagnostics: Diagnostics) -> tuple[Tensor, Diagnostics]:
    diagnostics["loss"] = loss.detach()
    return loss, {k: v.detach().reshape(()) for k, v in diagnostics.items()}


# ---------------------------------------------------------------------------------------------
# KL estimators
# ---------------------------------------------------------------------------------------------


def kl_estimate(logp: Tensor, ref_logp: Tensor, kind: str = "k3") -> Tensor:
    """Per-token sample estimate of KL(π‖π_ref) from tokens sampled from π.

    With log r = log π_ref(y_t) − log π(y_t), y_t ~ π:

        k1 = −log r                    unbiased, high variance, can be negative
        k2 = ½ (log r)²                biased (exact to second order as π_ref → π), ≥ 0
        k3 = (r − 1) − log r           unbiased, ≥ 0, lower variance than k1

    Source: J. Schulman, "Approximating KL Divergence" (2020); k3 is GRPO's KL term
    ("DeepSeekMath"), k1 is the usual KL-in-reward of PPO-RLHF.

    Unbiased *value* is not unbiased *gradient*. Used as a loss term and differentiated through
    log π with the samples held fixed (what every trainer does), on-policy:
    E[∇k1] = 0 (no regularisation at all), E[∇k2] = ∇KL(π‖π_ref), E[∇k3] = ∇KL(π_ref‖π).
    This is why k2 is the default for the Nash-MD loss below.

    No clamping: the estimate is exact in float64 for any finite inputs (k3 overflows only when
    log r > ~709 in float64, ~88 in float32).

    Args:
      logp: [...] log π of the sampled tokens (keeps its grad).
      ref_logp: same shape, log π_ref (detached).
      kind: "k1", "k2" or "k3".

    Returns:
      Tensor of the same shape: the per-token estimate (padding is not masked here).
    """
    kind = _check_choice("kind", kind, KL_KINDS)
    logp = _check_tensor("logp", logp)
    ref_logp = _check_tensor("ref_logp", ref_logp)
    _check_same_shape("ref_logp", ref_logp, "logp", logp)
    log_r = ref_logp.detach() - logp
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r.square()
    return torch.expm1(log_r) - log_r


# ---------------------------------------------------------------------------------------------
# REINFORCE family
# ---------------------------------------------------------------------------------------------


def reinforce(logp: Tensor, adv: Tensor, mask: Tensor, aggregation: str = "grpo",
              weights: Tensor | None = None,
              max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """REINFORCE with a baseline: ℓ_t = −A·log π(y_t).

        ∇loss = −Σ aggregation-weights · A · ∇log π(y_t)

    From "Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement
    Learning" (Williams, 1992). The baseline lives in ``adv`` (see toolkit.advantages). The loss
    value itself is meaningless; only its gradient is. With old_logp == logp it is the GRPO
    gradient; off-policy it is the uncorrected "group-relative REINFORCE" the REC paper studies.

    Args:
      logp: [B, T] log π of the taken tokens (with grad).
      adv: [B] or [B, T] advantages (detached).
      mask: [B, T] completion mask.
      aggregation, weights, max_tokens: see ``aggregate``.

    Returns:
      (loss, diagnostics) with ``loss`` and ``adv/pos_share`` (share of gradient weight on
      A > 0; c = 1 here).
    """
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)
    loss = _aggregate(-a * logp, valid, aggregation, w, max_tokens)
    ones = torch.ones_like(a)
    diag = {"adv/pos_share": _pos_share(a, ones, valid, valid, aggregation, w, max_tokens)}
    return _finish(loss, diag)


def _check_eps(eps_low: object, eps_high: object) -> tuple[float, float]:
    eps_low = _check_number("eps_low", eps_low, min_value=0.0)
    eps_high = _check_number("eps_high", eps_high, min_value=0.0)
    if eps_low > 1.0:
        raise ValueError(f"eps_low must be <= 1 (the lower ratio bound 1 − eps_low >= 0), "
                         f"got {eps_low}")
    return eps_low, eps_high


def grpo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor,
         ref_logp: Tensor | None = None, beta: float = 0.0, eps_low: float = 0.2,
         eps_high: float = 0.2, kl: str = "k3", aggregation: str = "grpo",
         weights: Tensor | None = None,
         max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """GRPO: PPO-clip surrogate on group-relative advantages, plus an optional KL penalty.

        ρ_t = exp(log π(y_t) − log μ(y_t))
        ℓ_t = −min(ρ_t·A, clip(ρ_t, 1 − ε_low, 1 + ε_high)·A) + β·k(π‖π_ref)_t

    From "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models"
    (Shao et al., 2024); ε_low ≠ ε_high is DAPO's "clip-higher". On-policy (old_logp =
    logp.detach()) ρ = 1, nothing clips and ∂loss/∂logp_bt = −A_bt·κ_bt with κ the aggregation
    weight (e.g. m_bt/|y_b|/B for "grpo"). A clipped token has zero gradient.

    Args:
      logp: [B, T] log π (with grad). old_logp: [B, T] log μ (behaviour policy).
      adv: [B] or [B, T]. mask: [B, T].
      ref_logp: [B, T] log π_ref; required when beta > 0; if given, ``kl`` is reported.
      beta: KL coefficient β ≥ 0. eps_low, eps_high: clip range (ε_low ≤ 1).
      kl: KL estimator for the penalty ("k1", "k2", "k3"; see ``kl_estimate``).
      aggregation, weights, max_tokens: see ``aggregate``.

    Diagnostics:
      clip_ratio/low_mean     weighted fraction of valid tokens with A < 0 and ρ < 1 − ε_low
      clip_ratio/high_mean    … with A > 0 and ρ > 1 + ε_high
      clip_ratio/region_mean  either of the two (tokens whose gradient is clipped to 0)
      kl                      weighted token mean of the chosen KL estimate (if ref_logp given)
      ratio/min|mean|max      range of ρ over valid tokens
      adv/pos_share           share of gradient weight on A > 0 (c = ρ, clipped tokens excluded)
      loss                    the loss value
    """
    kl = _check_choice("kl", kl, KL_KINDS)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    beta = _check_number("beta", beta, min_value=0.0)
    eps_low, eps_high = _check_eps(eps_low, eps_high)
    if beta > 0 and ref_logp is None:
        raise ValueError("ref_logp is required when beta > 0 (the KL penalty needs π_ref)")
    extra = {"old_logp": old_logp}
    if ref_logp is not None:
        extra["ref_logp"] = ref_logp
    logp, valid = _check_token_inputs(logp, mask, **extra)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)

    per_token, ratio, low, high = _clipped_surrogate(
        logp, old_logp.detach(), a, 1.0 - eps_low, 1.0 + eps_high
    )
    diag = _clip_diagnostics(low, high, valid, w, logp.dtype)
    if ref_logp is not None:
        k = kl_estimate(logp, ref_logp, kl)
        if beta > 0:
            per_token = per_token + beta * k
        diag["kl"] = _token_mean(k, valid, w)
    loss = _aggregate(per_token, valid, aggregation, w, max_tokens)
    diag.update(_ratio_stats(ratio, valid, w))
    diag["adv/pos_share"] = _pos_share(a, ratio, valid & ~(low | high), valid, aggregation, w,
                                       max_tokens)
    return _finish(loss, diag)


def ppo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, values: Tensor,
        old_values: Tensor, returns: Tensor, eps: float = 0.2, value_clip: float | None = 0.2,
        vf_coef: float = 0.5, aggregation: str = "grpo", weights: Tensor | None = None,
        max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """PPO with a value head: clipped policy surrogate + clipped value loss.

        ℓ^π_t = −min(ρ_t·A_t, clip(ρ_t, 1 − ε, 1 + ε)·A_t)
        V^clip_t = V_old,t + clip(V_t − V_old,t, −c, c)
        ℓ^V_t = ½·max((V_t − R_t)², (V^clip_t − R_t)²)
        loss = agg(ℓ^π) + vf_coef·agg(ℓ^V)

    From "Proximal Policy Optimization Algorithms" (Schulman et al., 2017), with the value
    clipping of the OpenAI baselines / TRL PPOTrainer. Pair with ``toolkit.advantages.gae``.
    TRL reduces both terms with a token mean: pass aggregation="dapo" to match it.

    Args:
      logp, old_logp: [B, T]. adv: [B] or [B, T] (usually GAE, [B, T]). mask: [B, T].
      values: [B, T] current value predictions (with grad). old_values: [B, T] the values
        at rollout time. returns: [B, T] value targets R_t (e.g. GAE returns).
      eps: policy clip ε ≥ 0 (≤ 1). value_clip: c ≥ 0, or None for an unclipped value loss.
      vf_coef: value-loss coefficient ≥ 0.

    Diagnostics:
      policy/approxkl_avg     weighted token mean of ½(log π − log μ)² (TRL's approxkl)
      policy/clipfrac_avg     fraction of valid tokens whose policy gradient is clipped
      clip_ratio/low_mean|high_mean|region_mean   as in ``grpo``
      val/loss                agg(ℓ^V) before vf_coef
      val/clipfrac            fraction of valid tokens where the clipped value loss is larger
      val/explained_variance  1 − Var(R − V)/Var(R) over valid tokens (NaN if Var(R) = 0)
      loss/policy_avg         agg(ℓ^π)
      ratio/min|mean|max, adv/pos_share, loss
    """
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    eps = _check_number("eps", eps, min_value=0.0)
    if eps > 1.0:
        raise ValueError(f"eps must be <= 1, got {eps}")
    if value_clip is not None:
        value_clip = _check_number("value_clip", value_clip, min_value=0.0)
    vf_coef = _check_number("vf_coef", vf_coef, min_value=0.0)
    logp, valid = _check_token_inputs(logp, mask, old_logp=old_logp, values=values,
                                      old_values=old_values, returns=returns)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)

    old_logp = old_logp.detach()
    pg, ratio, low, high = _clipped_surrogate(logp, old_logp, a, 1.0 - eps, 1.0 + eps)
    pg_loss = _aggregate(pg, valid, aggregation, w, max_tokens)

    returns = returns.detach()
    old_values = old_values.detach()
    vf_unclipped = (values - returns).square()
    if value_clip is None:
        vf = 0.5 * vf_unclipped
        vclipped = torch.zeros_like(valid)
    else:
        v_clip = old_values + (values - old_values).clamp(-value_clip, value_clip)
        vf_clipped = (v_clip - returns).square()
        vf = 0.5 * torch.maximum(vf_unclipped, vf_clipped)
        vclipped = vf_clipped.detach() > vf_unclipped.detach()
    vf_loss = _aggregate(vf, valid, aggregation, w, max_tokens)
    loss = pg_loss + vf_coef * vf_loss

    f = logp.dtype
    diag = _clip_diagnostics(low, high, valid, w, logp.dtype)
    diag["policy/clipfrac_avg"] = diag["clip_ratio/region_mean"].clone()
    diag["policy/approxkl_avg"] = _token_mean(0.5 * (logp - old_logp).square(), valid, w)
    diag["val/loss"] = vf_loss.detach()
    diag["val/clipfrac"] = _token_mean(vclipped.to(f), valid, w)
    diag["val/explained_variance"] = _explained_variance(values.detach(), returns, valid, w)
    diag["loss/policy_avg"] = pg_loss.detach()
    diag.update(_ratio_stats(ratio, valid, w))
    diag["adv/pos_share"] = _pos_share(a, ratio, valid & ~(low | high), valid, aggregation, w,
                                       max_tokens)
    return _finish(loss, diag)


def _explained_variance(pred: Tensor, target: Tensor, valid: Tensor,
                        weights: Tensor | None) -> Tensor:
    def var(x: Tensor) -> Tensor:
        mean = _token_mean(x, valid, weights)
        return _token_mean((x - mean).square(), valid, weights)

    var_y = var(target)
    if not bool(var_y > 0):
        return _nan(target)
    return 1.0 - var(target - pred) / var_y


def rec(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, clip: str = "one-side",
        eps_low: float = 0.2, eps_high: float = 0.2, ring: tuple[float, float] = (0.6, 2.0),
        importance_weight: bool = False, aggregation: str = "grpo",
        weights: Tensor | None = None,
        max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """REC: group-relative REINFORCE regularised by clipping.

        ρ̄_t = sg(exp(log π(y_t) − log μ(y_t)))
        ℓ_t = −A·c_t·log π(y_t)·𝟙[ρ̄_t ∈ region(sign A)],   c_t = ρ̄_t if importance_weight else 1

    From "Group-Relative REINFORCE Is Secretly an Off-Policy Algorithm: Demystifying Some Myths
    About GRPO and Its Friends" (Yao et al., 2025); checked against the authors' Trinity-RFT
    ``rec`` policy loss. Unlike PPO-clip, a token outside the region is dropped whatever the
    direction of the update. Regions (A ≥ 0 and A ≤ 0 both apply when A = 0):

        one-side  A ≥ 0: ρ̄ ≤ 1 + ε_high;   A ≤ 0: ρ̄ ≥ 1 − ε_low
                  (with importance_weight=True this has the same gradient as PPO-clip/GRPO)
        two-side  1 − ε_low ≤ ρ̄ ≤ 1 + ε_high for every sign
        ring      two-side region, or A ≥ 0 and ρ̄ ≤ 1 − ε′_low, or A ≤ 0 and ρ̄ ≥ 1 + ε′_high
                  (far-off tokens whose update pulls ρ back towards 1 are kept)
        none      every token (plain off-policy REINFORCE)

    ``ring = (ε′_low, ε′_high)`` are *epsilons*, as in Trinity-RFT (``epsilon_low_prime``,
    ``epsilon_high_prime``, defaults 0.6 and 2.0): the outer ratio bounds are 1 − 0.6 = 0.4 and
    1 + 2.0 = 3.0. They must satisfy ε_low ≤ ε′_low ≤ 1 and ε′_high ≥ ε_high.

    Args:
      logp, old_logp: [B, T]. adv: [B] or [B, T]. mask: [B, T].
      clip: "one-side", "two-side", "ring" or "none".
      eps_low, eps_high: inner region. ring: (ε′_low, ε′_high) for clip="ring".
      importance_weight: multiply each kept term by the detached ratio ρ̄ (REC-…-IS).
      aggregation, weights, max_tokens: see ``aggregate`` (Trinity uses a token mean, "dapo").

    Diagnostics:
      clip_ratio/low_mean     weighted fraction of valid tokens dropped with ρ̄ < 1
      clip_ratio/high_mean    … dropped with ρ̄ > 1
      clip_ratio/region_mean  all dropped tokens
      ratio/min|mean|max, adv/pos_share (c = ρ̄ or 1, dropped tokens excluded), loss
    """
    clip = _check_choice("clip", clip, REC_CLIPS)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    eps_low, eps_high = _check_eps(eps_low, eps_high)
    if not isinstance(importance_weight, bool):
        raise TypeError(f"importance_weight must be a bool, got {type(importance_weight).__name__}")
    if not isinstance(ring, (tuple, list)) or len(ring) != 2:
        raise ValueError(f"ring must be a pair (eps_low_prime, eps_high_prime), got {ring!r}")
    ring_low = _check_number("ring[0]", ring[0])
    ring_high = _check_number("ring[1]", ring[1])
    if clip == "ring":
        if not eps_low <= ring_low <= 1.0:
            raise ValueError(f"ring[0] (eps_low_prime) must satisfy eps_low <= ring[0] <= 1, "
                             f"got {ring_low} with eps_low={eps_low}")
        if not ring_high >= eps_high:
            raise ValueError(f"ring[1] (eps_high_prime) must be >= eps_high, "
                             f"got {ring_high} with eps_high={eps_high}")
    logp, valid = _check_token_inputs(logp, mask, old_logp=old_logp)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)

    r = torch.exp(logp - old_logp).detach()
    inner = (r >= 1.0 - eps_low) & (r <= 1.0 + eps_high)
    if clip == "one-side":
        keep = ((a >= 0) & (r <= 1.0 + eps_high)) | ((a <= 0) & (r >= 1.0 - eps_low))
    elif clip == "two-side":
        keep = inner
    elif clip == "ring":
        keep = inner | ((a >= 0) & (r <= 1.0 - ring_low)) | ((a <= 0) & (r >= 1.0 + ring_high))
    else:
        keep = torch.ones_like(valid)
    coef = r if importance_weight else torch.ones_like(r)
    per_token = torch.where(keep, -a * coef * logp, logp.new_zeros(()))
    loss = _aggregate(per_token, valid, aggregation, w, max_tokens)

    dropped = ~keep
    # A dropped token always has ρ̄ ≠ 1, so low | high is exactly the dropped set.
    diag = _clip_diagnostics(dropped & (r < 1.0), dropped & (r > 1.0), valid, w, logp.dtype)
    diag.update(_ratio_stats(r, valid, w))
    diag["adv/pos_share"] = _pos_share(a, coef, valid & keep, valid, aggregation, w, max_tokens)
    return _finish(loss, diag)


def opmd(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, tau: float,
         aggregation: str = "grpo", weights: Tensor | None = None,
         max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """OPMD: online policy mirror descent surrogate with a squared log-ratio regulariser.

        ℓ_t = −A·log π(y_t) + (τ/2)·(log π(y_t) − log μ(y_t))²

    From "Kimi k1.5: Scaling Reinforcement Learning with LLMs" (2025), whose gradient is
    (r − r̄)·∇log π − (τ/2)·∇(log π/μ)². The same τ sets the mirror-descent step 1/τ; the
    paper's baseline r̄ is the group mean, or τ·log mean_j exp(r_j/τ) (the soft value of the
    KL-regularised target; ``toolkit.advantages.opmd_baseline``). Pass ``adv = r − r̄``.

    Coefficient: Trinity-RFT writes this as ``regularizer="k2"`` with
    ``regularizer_coef·(log π − log μ)²``, absorbing the ½ ("we absorb the 1/2 in Kimi into
    τ"); their coef c equals τ/2 here. Trinity's separate ``opmd`` loss (−A·log π/(1 + τ)) is
    a different simplification and is not this function.

    Args:
      logp, old_logp: [B, T]. adv: [B] or [B, T]. mask: [B, T].
      tau: τ ≥ 0 (τ = 0 is REINFORCE).
      aggregation, weights, max_tokens: see ``aggregate``.

    Diagnostics:
      opmd/reg       weighted token mean of (τ/2)(log π − log μ)²
      ratio/min|mean|max, adv/pos_share (c = 1: the advantage part only), loss
    """
    tau = _check_number("tau", tau, min_value=0.0)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask, old_logp=old_logp)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)
    log_ratio = logp - old_logp.detach()
    reg = 0.5 * tau * log_ratio.square()
    loss = _aggregate(-a * logp + reg, valid, aggregation, w, max_tokens)
    diag = {"opmd/reg": _token_mean(reg, valid, w)}
    diag.update(_ratio_stats(torch.exp(log_ratio), valid, w))
    diag["adv/pos_share"] = _pos_share(a, torch.ones_like(a), valid, valid, aggregation, w,
                                       max_tokens)
    return _finish(loss, diag)


def asymre(logp: Tensor, adv: Tensor, mask: Tensor, shift: float = 0.1,
           aggregation: str = "grpo", weights: Tensor | None = None,
           max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """AsymRE: REINFORCE with the baseline lowered by δ = ``shift``.

        ℓ_t = −(A + δ)·log π(y_t)  =  −A·log π(y_t)  −  δ·log π(y_t)

    From "Asymmetric REINFORCE for off-Policy Reinforcement Learning: Balancing positive and
    negative rewards" (Arnal et al., 2025). With A = r − V (V the group mean), the baseline
    V − δ gives advantage r − (V − δ) = A + δ: δ > 0 tilts the update towards positive samples.
    The equivalent additive form −δ·log π is Trinity-RFT's ``regularizer="forward-kl"``:
    E_μ[−δ·log π] = δ·KL(μ‖π) + const, a pull towards the behaviour data. δ < 0 raises the
    baseline (the regime the paper shows can collapse).

    Pass plain group-mean advantages (``advantages.group_relative(r, G, scale="none")``), not
    ``advantages.asymre_advantages`` (that already contains the shift).

    Args:
      logp: [B, T]. adv: [B] or [B, T]. mask: [B, T]. shift: δ (any finite real).
      aggregation, weights, max_tokens: see ``aggregate``.

    Diagnostics:
      adv/pos_share  share of gradient weight on A + δ > 0 (c = 1), loss
    """
    shift = _check_number("shift", shift)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask)
    a = _token_advantages("adv", adv, logp, valid) + shift
    w = _check_weights(weights, logp.shape[0], logp)
    loss = _aggregate(-a * logp, valid, aggregation, w, max_tokens)
    diag = {"adv/pos_share": _pos_share(a, torch.ones_like(a), valid, valid, aggregation, w,
                                        max_tokens)}
    return _finish(loss, diag)


def topr(logp: Tensor, old_logp: Tensor, rewards_or_adv: Tensor, mask: Tensor,
         threshold: float = 0.0, aggregation: str = "grpo", weights: Tensor | None = None,
         max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """TOPR: Tapered Off-Policy REINFORCE.

        α_t = clamp(π(y_t)/μ(y_t), 0, 1)   if R ≤ threshold,   else 1
        ℓ_t = −sg(α_t)·R·log π(y_t)

    From "Tapered Off-Policy REINFORCE: Stable and efficient reinforcement learning for LLMs"
    (Le Roux et al., 2025); checked against Trinity-RFT's ``topr`` loss. Positive examples get
    plain SFT-like REINFORCE, negative ones a truncated importance weight, so stale negatives
    cannot push probabilities to 0 without bound. The paper uses raw rewards R; an advantage
    (baseline trick) is also accepted.

    Args:
      logp, old_logp: [B, T]. rewards_or_adv: [B] or [B, T]. mask: [B, T].
      threshold: R ≤ threshold counts as negative (default 0).
      aggregation, weights, max_tokens: see ``aggregate``.

    Diagnostics:
      topr/alpha_mean   weighted token mean of α
      ratio/min|mean|max, adv/pos_share (c = α), loss
    """
    threshold = _check_number("threshold", threshold)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask, old_logp=old_logp)
    rew = _token_advantages("rewards_or_adv", rewards_or_adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)
    r = torch.exp(logp - old_logp).detach()
    alpha = torch.where(rew <= threshold, r.clamp(0.0, 1.0), torch.ones_like(r))
    loss = _aggregate(-alpha * rew * logp, valid, aggregation, w, max_tokens)
    diag = {"topr/alpha_mean": _token_mean(alpha, valid, w)}
    diag.update(_ratio_stats(r, valid, w))
    diag["adv/pos_share"] = _pos_share(rew, alpha, valid, valid, aggregation, w, max_tokens)
    return _finish(loss, diag)


def _check_range(name: str, value: object, lo: float, hi: float) -> tuple[float, float]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a pair (start, end), got {value!r}")
    start = _check_number(f"{name}[0]", value[0])
    end = _check_number(f"{name}[1]", value[1])
    if not lo <= start <= end <= hi:
        raise ValueError(f"{name} must satisfy {lo} <= start <= end <= {hi}, got {value!r}")
    return start, end


def bapo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor,
         target_pos_share: float = 0.5, low_range: tuple[float, float] = (0.6, 0.9),
         high_range: tuple[float, float] = (1.2, 3.0), step_low: float = 0.05,
         step_high: float = 0.05, aggregation: str = "grpo", weights: Tensor | None = None,
         max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """BAPO: PPO-clip with clip bounds chosen per batch to balance positive and negative tokens.

    From "BAPO: Stabilizing Off-Policy Reinforcement Learning for LLMs via Balanced Policy
    Optimization with Adaptive Clipping" (Xi et al., 2025). Negative-advantage tokens dominate
    off-policy gradients, and a fixed upper bound drops low-probability positive tokens (the
    ones that raise entropy). Each call:

        c_low ← a⁻, c_high ← a⁺                       (low_range = [a⁻, b⁻], high_range = [a⁺, b⁺])
        while s(c_low, c_high) < ρ₀ and (c_low < b⁻ or c_high < b⁺):
            c_low ← min(c_low + δ_low, b⁻);  c_high ← min(c_high + δ_high, b⁺)
        ℓ_t = −min(ρ_t·A, clip(ρ_t, c_low, c_high)·A)

    s is ``adv/pos_share`` under bounds (c_low, c_high): Σ_{A>0, unclipped} κ·ρ·|A| /
    Σ_{unclipped} κ·ρ·|A|. Raising c_low drops more negative tokens (A < 0, ρ < c_low) and
    raising c_high admits more positive ones (A > 0, ρ > c_high), so s only grows. The bounds
    are ratio bounds (not epsilons); the defaults are the paper's ρ₀ = 0.5, [0.6, 0.9],
    [1.2, 3.0], and the step 0.05 of the authors' verl recipe.

    Deviation note: this follows the paper's description (both bounds stepped together, share
    measured over unclipped tokens). The authors' verl recipe instead raises c_low first and
    c_high only after c_low is exhausted, and measures pos:neg on the clipped surrogate values.

    Args:
      logp, old_logp: [B, T]. adv: [B] or [B, T]. mask: [B, T].
      target_pos_share: ρ₀ in [0, 1].
      low_range: (a⁻, b⁻) with 0 ≤ a⁻ ≤ b⁻ ≤ 1. high_range: (a⁺, b⁺) with 1 ≤ a⁺ ≤ b⁺.
      step_low, step_high: δ_low, δ_high > 0.
      aggregation, weights, max_tokens: see ``aggregate``.

    Diagnostics:
      bapo/clip_low, bapo/clip_high   the chosen ratio bounds
      bapo/steps                      how many widening steps were taken
      adv/pos_share                   s at the chosen bounds (NaN if no token carries gradient)
      clip_ratio/low_mean|high_mean|region_mean, ratio/min|mean|max, loss
    """
    target = _check_number("target_pos_share", target_pos_share)
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"target_pos_share must be in [0, 1], got {target}")
    a_low, b_low = _check_range("low_range", low_range, 0.0, 1.0)
    a_high, b_high = _check_range("high_range", high_range, 1.0, math.inf)
    step_low = _check_number("step_low", step_low, min_value=0.0, strict=True)
    step_high = _check_number("step_high", step_high, min_value=0.0, strict=True)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask, old_logp=old_logp)
    a = _token_advantages("adv", adv, logp, valid)
    w = _check_weights(weights, logp.shape[0], logp)

    r = torch.exp(logp - old_logp).detach()

    def share(c_low: float, c_high: float) -> Tensor:
        clipped = ((a < 0) & (r < c_low)) | ((a > 0) & (r > c_high))
        return _pos_share(a, r, valid & ~clipped, valid, aggregation, w, max_tokens)

    # Integer step counts instead of repeated addition keep the bounds free of float drift.
    k = 0
    c_low, c_high = a_low, a_high
    s = share(c_low, c_high)
    # With every advantage 0 there is nothing to balance; widening would only move the bounds.
    signal = bool((a[valid] != 0).any())
    while signal and not bool(s >= target) and (c_low < b_low or c_high < b_high):
        k += 1
        c_low = min(a_low + k * step_low, b_low)
        c_high = min(a_high + k * step_high, b_high)
        s = share(c_low, c_high)

    per_token, ratio, low, high = _clipped_surrogate(logp, old_logp.detach(), a, c_low, c_high)
    loss = _aggregate(per_token, valid, aggregation, w, max_tokens)
    diag = _clip_diagnostics(low, high, valid, w, logp.dtype)
    diag["bapo/clip_low"] = torch.tensor(c_low, dtype=logp.dtype, device=logp.device)
    diag["bapo/clip_high"] = torch.tensor(c_high, dtype=logp.dtype, device=logp.device)
    diag["bapo/steps"] = torch.tensor(float(k), dtype=logp.dtype, device=logp.device)
    diag.update(_ratio_stats(ratio, valid, w))
    diag["adv/pos_share"] = s
    return _finish(loss, diag)


# ---------------------------------------------------------------------------------------------
# pairwise preference losses (inputs are [B] summed log-probabilities)
# ---------------------------------------------------------------------------------------------


def _check_pair_inputs(**tensors: object) -> tuple[Tensor, ...]:
    first_name, first = next(iter(tensors.items()))
    first = _check_tensor(first_name, first, ndim=1)
    out = []
    for name, x in tensors.items():
        x = _check_tensor(name, x, ndim=1)
        _check_same_shape(name, x, first_name, first)
        _check_finite(name, x)
        out.append(x)
    return tuple(out)


def _weighted_mean(x: Tensor, weights: Tensor | None) -> Tensor:
    if weights is None:
        return x.mean()
    return (weights * x).sum()


def dpo(chosen_logp: Tensor, rejected_logp: Tensor, ref_chosen_logp: Tensor,
        ref_rejected_logp: Tensor, beta: float = 0.1, variant: str = "sigmoid",
        weights: Tensor | None = None) -> tuple[Tensor, Diagnostics]:
    """DPO and its IPO / SLiC siblings on summed sequence log-probabilities.

        h = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))

        sigmoid  ℓ = −log σ(β·h)         "Direct Preference Optimization: Your Language Model
                                          is Secretly a Reward Model" (Rafailov et al., 2023)
        ipo      ℓ = (h − 1/(2β))²        "A General Theoretical Paradigm to Understand
                                          Learning from Human Preferences" (Azar et al., 2023);
                                          the paper's τ is β here (TRL convention)
        hinge    ℓ = max(0, 1 − β·h)      "SLiC-HF: Sequence Likelihood Calibration with Human
                                          Feedback" (Zhao et al., 2023), without its SFT term

    loss = mean_b ℓ_b (or Σ_b w_b ℓ_b). TRL's IPO averages log-probabilities over tokens
    before this step; pass length-averaged log-probs to reproduce that.

    Args:
      chosen_logp, rejected_logp: [B] log π(y_w), log π(y_l) (with grad).
      ref_chosen_logp, ref_rejected_logp: [B] under π_ref (detached).
      beta: β > 0. variant: "sigmoid", "ipo" or "hinge". weights: optional [B].

    Diagnostics (TRL meaning; implicit reward = β·log(π/π_ref)):
      rewards/chosen      mean β·(log π(y_w) − log π_ref(y_w))
      rewards/rejected    mean β·(log π(y_l) − log π_ref(y_l))
      rewards/accuracies  fraction of pairs with chosen reward > rejected reward
      rewards/margins     mean (chosen − rejected) reward
      loss
    """
    beta = _check_number("beta", beta, min_value=0.0, strict=True)
    variant = _check_choice("variant", variant, DPO_VARIANTS)
    chosen_logp, rejected_logp, ref_c, ref_r = _check_pair_inputs(
        chosen_logp=chosen_logp, rejected_logp=rejected_logp,
        ref_chosen_logp=ref_chosen_logp, ref_rejected_logp=ref_rejected_logp,
    )
    w = _check_weights(weights, chosen_logp.shape[0], chosen_logp)
    chosen_ratio = chosen_logp - ref_c.detach()
    rejected_ratio = rejected_logp - ref_r.detach()
    h = chosen_ratio - rejected_ratio
    if variant == "sigmoid":
        losses = torch.nn.functional.softplus(-beta * h)  # = −log σ(βh), stable for large |h|
    elif variant == "ipo":
        losses = (h - 1.0 / (2.0 * beta)).square()
    else:
        losses = torch.relu(1.0 - beta * h)
    loss = _weighted_mean(losses, w)
    return _finish(loss, _preference_diagnostics(beta * chosen_ratio, beta * rejected_ratio, w))


def _preference_diagnostics(chosen_rewards: Tensor, rejected_rewards: Tensor,
                            weights: Tensor | None) -> Diagnostics:
    chosen_rewards = chosen_rewards.detach()
    rejected_rewards = rejected_rewards.detach()
    correct = (chosen_rewards > rejected_rewards).to(chosen_rewards.dtype)
    return {
        "rewards/chosen": _weighted_mean(chosen_rewards, weights),
        "rewards/rejected": _weighted_mean(rejected_rewards, weights),
        "rewards/accuracies": _weighted_mean(correct, weights),
        "rewards/margins": _weighted_mean(chosen_rewards - rejected_rewards, weights),
    }


def simpo(chosen_logp: Tensor, rejected_logp: Tensor, chosen_len: Tensor, rejected_len: Tensor,
          beta: float = 2.0, gamma: float = 0.5,
          weights: Tensor | None = None) -> tuple[Tensor, Diagnostics]:
    """SimPO: length-normalised, reference-free preference loss with a target margin.

        ℓ = −log σ(β/|y_w|·log π(y_w) − β/|y_l|·log π(y_l) − γ)

    From "SimPO: Simple Preference Optimization with a Reference-Free Reward" (Meng et al.,
    2024). γ is the reward margin itself (TRL's CPOTrainer writes it as γ/β inside β·(…)).

    Args:
      chosen_logp, rejected_logp: [B] summed log π (with grad).
      chosen_len, rejected_len: [B] token counts |y| > 0 (int or float tensors).
      beta: β > 0. gamma: γ (finite). weights: optional [B].

    Diagnostics: rewards/chosen = mean β·log π(y_w)/|y_w|, rewards/rejected, rewards/accuracies,
    rewards/margins (as in ``dpo`` with SimPO's implicit reward), loss.
    """
    beta = _check_number("beta", beta, min_value=0.0, strict=True)
    gamma = _check_number("gamma", gamma)
    chosen_logp, rejected_logp = _check_pair_inputs(chosen_logp=chosen_logp,
                                                    rejected_logp=rejected_logp)
    lengths = []
    for name, n in (("chosen_len", chosen_len), ("rejected_len", rejected_len)):
        if not isinstance(n, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(n).__name__}")
        _check_same_shape(name, n, "chosen_logp", chosen_logp)
        n = n.detach().to(chosen_logp.dtype)
        if not bool(torch.isfinite(n).all()) or not bool((n > 0).all()):
            raise ValueError(f"{name} must be finite and > 0 (a token count)")
        lengths.append(n)
    w = _check_weights(weights, chosen_logp.shape[0], chosen_logp)
    chosen_rewards = beta * chosen_logp / lengths[0]
    rejected_rewards = beta * rejected_logp / lengths[1]
    losses = torch.nn.functional.softplus(-(chosen_rewards - rejected_rewards - gamma))
    loss = _weighted_mean(losses, w)
    return _finish(loss, _preference_diagnostics(chosen_rewards, rejected_rewards, w))


def online_dpo(logp_a: Tensor, logp_b: Tensor, ref_logp_a: Tensor, ref_logp_b: Tensor,
               preferred_first: Tensor, beta: float = 0.1, variant: str = "sigmoid",
               weights: Tensor | None = None) -> tuple[Tensor, Diagnostics]:
    """Online DPO: ``dpo`` on two fresh samples per prompt ranked by a preference oracle.

        (y_w, y_l) = (a, b) if preferred_first else (b, a);   ℓ = dpo loss on (y_w, y_l)

    From "Direct Language Model Alignment from Online AI Feedback" (Guo et al., 2024). The
    swap is a tensor ``where``, so the trainer never branches on the oracle's answer.

    Args:
      logp_a, logp_b: [B] summed log π of the two completions (with grad).
      ref_logp_a, ref_logp_b: [B] under π_ref.
      preferred_first: [B] bool, True where completion a won.
      beta, variant, weights: as in ``dpo``.

    Diagnostics: as ``dpo`` (for the oracle's chosen/rejected).
    """
    if not isinstance(preferred_first, Tensor):
        raise TypeError(
            f"preferred_first must be a torch.Tensor, got {type(preferred_first).__name__}"
        )
    if preferred_first.dtype != torch.bool:
        raise TypeError(f"preferred_first must be a bool tensor, got {preferred_first.dtype}")
    logp_a, logp_b, ref_a, ref_b = _check_pair_inputs(
        logp_a=logp_a, logp_b=logp_b, ref_logp_a=ref_logp_a, ref_logp_b=ref_logp_b
    )
    _check_same_shape("preferred_first", preferred_first, "logp_a", logp_a)
    first = preferred_first
    return dpo(torch.where(first, logp_a, logp_b), torch.where(first, logp_b, logp_a),
               torch.where(first, ref_a, ref_b), torch.where(first, ref_b, ref_a),
               beta=beta, variant=variant, weights=weights)


def nash_md(logp: Tensor, ref_logp: Tensor, preference: Tensor, mask: Tensor, beta: float,
            kl: str = "k2", aggregation: str = "sum", weights: Tensor | None = None,
            max_tokens: int | None = None) -> tuple[Tensor, Diagnostics]:
    """Nash-MD for sampled policies: REINFORCE on the preference against the mixture + KL.

        y ~ π,  y′ ~ π^mix ∝ π^(1−λ)·π_ref^λ   (geometric mixture per token, λ = mixture coef)
        ℓ_t = −(P(y ≻ y′) − ½)·log π(y_t) + β·k(π‖π_ref)_t

    From "Nash Learning from Human Feedback" (Munos et al., 2023), in the sampled form of TRL's
    NashMDTrainer: ½ is a control variate (P(y ≻ y′) − ½ has mean ≈ 0 when π ≈ π^mix), and the
    KL term is TRL's "KL via REINFORCE", sg(log π/π_ref)·log π per token, whose gradient is that
    of k2 = ½(log π − log π_ref)²: on-policy E[∇] = ∇KL(π‖π_ref) token by token. Hence the
    default ``kl="k2"``; "k1" would add no KL gradient in expectation and "k3" regularises the
    forward KL(π_ref‖π) (see ``kl_estimate``). The mixture samples enter only through
    ``preference``; sampling y′ is the policy's job. With aggregation="sum" and k2 the loss
    has exactly TRL's gradient.

    Args:
      logp: [B, T] log π of the policy's completions y (with grad).
      ref_logp: [B, T] log π_ref of the same tokens.
      preference: [B] P(y ≻ y′) in [0, 1] from the preference oracle (detached).
      mask: [B, T]. beta: β ≥ 0. kl: estimator for the penalty.
      aggregation: default "sum" (sequence log-probability, batch mean), see ``aggregate``.

    Diagnostics:
      kl                      aggregate of the k1 estimate: with "sum", the mean sequence
                              log π(y)/π_ref(y), TRL's objective/kl
      nash_md/preference      weighted mean of P(y ≻ y′)
      nash_md/score           weighted mean of P(y ≻ y′) − ½
      adv/pos_share (A = P − ½, c = 1), loss
    """
    kl = _check_choice("kl", kl, KL_KINDS)
    beta = _check_number("beta", beta, min_value=0.0)
    aggregation = _check_aggregation(aggregation)
    max_tokens = _check_max_tokens(max_tokens)
    logp, valid = _check_token_inputs(logp, mask, ref_logp=ref_logp)
    pref = _check_tensor("preference", preference)
    if pref.shape != (logp.shape[0],):
        raise ValueError(f"preference must have shape ({logp.shape[0]},), "
                         f"got {tuple(pref.shape)}")
    if not bool(torch.isfinite(pref).all()) or not bool(((pref >= 0) & (pref <= 1)).all()):
        raise ValueError("preference must be a probability in [0, 1] for every sequence")
    w = _check_weights(weights, logp.shape[0], logp)
    score = pref.detach().to(logp.dtype) - 0.5
    a = _token_advantages("preference", score, logp, valid)
    per_token = -a * logp + beta * kl_estimate(logp, ref_logp, kl)
    loss = _aggregate(per_token, valid, aggregation, w, max_tokens)
    diag = {
        "kl": _aggregate(kl_estimate(logp, ref_logp, "k1").detach(), valid, aggregation, w,
                         max_tokens),
        "nash_md/preference": _weighted_mean(pref.detach().to(logp.dtype), w),
        "nash_md/score": _weighted_mean(score, w),
        "adv/pos_share": _pos_share(a, torch.ones_like(a), valid, valid, aggregation, w,
                                    max_tokens),
    }
    return _finish(loss, diag)

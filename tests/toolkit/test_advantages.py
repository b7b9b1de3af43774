"""Tests for toolkit.advantages: hand-computed values, errors and properties."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import advantages as A

F64 = torch.float64
LN2 = math.log(2.0)


def t(x):
    return torch.tensor(x, dtype=F64)


def close(actual, expected, tol=1e-12):
    actual = torch.as_tensor(actual, dtype=F64)
    expected = torch.as_tensor(expected, dtype=F64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, atol=tol, rtol=0.0), (actual, expected)


R = [1.0, 0.0, 0.0, 2.0, 2.0, 2.0]  # group 1 mean 1/3, group 2 all equal


# ---------------------------------------------------------------------------------------------
# group_relative
# ---------------------------------------------------------------------------------------------


def test_group_relative_group_scale_sample_std():
    # deviations (2/3, −1/3, −1/3); sample std √((4/9 + 2/9)/2) = √(1/3)
    s = math.sqrt(1 / 3)
    close(A.group_relative(t(R), 3, eps=0.0), [2 / 3 / s, -1 / 3 / s, -1 / 3 / s, 0, 0, 0])


def test_group_relative_population_std():
    s = math.sqrt(2 / 9)
    close(A.group_relative(t(R), 3, eps=0.0, unbiased=False),
          [2 / 3 / s, -1 / 3 / s, -1 / 3 / s, 0, 0, 0])


def test_group_relative_eps_is_added_to_std():
    s = math.sqrt(1 / 3) + 0.5
    close(A.group_relative(t(R), 3, eps=0.5), [2 / 3 / s, -1 / 3 / s, -1 / 3 / s, 0, 0, 0])


def test_group_relative_batch_and_none():
    # all six rewards: mean 7/6, Σ(r − 7/6)² = (1 + 98 + 75)/36, sample var = that / 5
    s = math.sqrt(174 / 36 / 5)
    close(A.group_relative(t(R), 3, scale="batch", eps=0.0),
          [2 / 3 / s, -1 / 3 / s, -1 / 3 / s, 0, 0, 0])
    close(A.group_relative(t(R), 3, scale="none"), [2 / 3, -1 / 3, -1 / 3, 0, 0, 0])


def test_group_relative_equal_group_is_exactly_zero():
    # 3·0.1/3 ≠ 0.1 in floating point; the advantage must still be exactly 0
    out = A.group_relative(t([0.1, 0.1, 0.1]), 3, eps=1e-12)
    assert torch.equal(out, torch.zeros(3, dtype=F64))


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 5), st.integers(1, 4), st.data())
def test_group_relative_has_zero_group_mean(group_size, n_prompts, data):
    vals = data.draw(st.lists(st.floats(-100, 100), min_size=group_size * n_prompts,
                              max_size=group_size * n_prompts))
    for scale in ("group", "batch", "none"):
        adv = A.group_relative(t(vals), group_size, scale=scale).reshape(n_prompts, group_size)
        assert torch.allclose(adv.mean(dim=1), torch.zeros(n_prompts, dtype=F64), atol=1e-9)


def test_group_relative_errors():
    with pytest.raises(ValueError, match="group_size"):
        A.group_relative(t(R), 1)
    with pytest.raises(ValueError, match="group_size"):
        A.group_relative(t(R), 4)
    with pytest.raises(TypeError, match="group_size"):
        A.group_relative(t(R), 3.0)
    with pytest.raises(ValueError, match="rewards"):
        A.group_relative(t([1.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="rewards"):
        A.group_relative(t([[1.0, 0.0]]), 2)
    with pytest.raises(TypeError, match="rewards"):
        A.group_relative(torch.tensor([1, 0]), 2)
    with pytest.raises(ValueError, match="scale"):
        A.group_relative(t(R), 3, scale="prompt")
    with pytest.raises(ValueError, match="eps"):
        A.group_relative(t(R), 3, eps=-1e-6)


# ---------------------------------------------------------------------------------------------
# rloo, remax, asymre, opmd baseline
# ---------------------------------------------------------------------------------------------


def test_rloo_by_hand():
    # group [1, 0, 0]: 1 − 0, 0 − ½, 0 − ½ ; group [3, 1]: 3 − 1, 1 − 3
    close(A.rloo(t([1.0, 0.0, 0.0]), 3), [1.0, -0.5, -0.5])
    close(A.rloo(t([3.0, 1.0, 5.0, 5.0]), 2), [2.0, -2.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="group_size"):
        A.rloo(t([1.0, 0.0, 0.0]), 1)


def test_remax_by_hand():
    close(A.remax(t([1.0, 0.5]), t([0.5, 0.5])), [0.5, 0.0])
    with pytest.raises(ValueError, match="greedy_rewards"):
        A.remax(t([1.0, 0.5]), t([0.5]))
    with pytest.raises(ValueError, match="greedy_rewards"):
        A.remax(t([1.0, 0.5]), t([0.5, float("inf")]))


def test_asymre_advantages_by_hand():
    close(A.asymre_advantages(t([1.0, 0.0, 0.0]), 3, shift=0.1),
          [2 / 3 + 0.1, -1 / 3 + 0.1, -1 / 3 + 0.1])
    with pytest.raises(ValueError, match="shift"):
        A.asymre_advantages(t([1.0, 0.0]), 2, shift=float("inf"))


def test_opmd_baseline_by_hand_and_limits():
    # τ = 1: log((e⁰ + e¹)/2)
    close(A.opmd_baseline(t([0.0, 1.0]), 2, tau=1.0), [math.log((1 + math.e) / 2)] * 2)
    # tiny τ stays finite and tends to the max: τ·(1/τ + log(1 + e^(−1/τ)) − log 2)
    tiny = A.opmd_baseline(t([0.0, 1.0, 3.0, 3.0]), 2, tau=1e-4)
    assert torch.isfinite(tiny).all()
    close(tiny, [1.0 - 1e-4 * LN2] * 2 + [3.0] * 2, tol=1e-9)
    # large τ tends to the mean
    close(A.opmd_baseline(t([0.0, 1.0]), 2, tau=1e6), [0.5, 0.5], tol=1e-6)
    with pytest.raises(ValueError, match="tau"):
        A.opmd_baseline(t([0.0, 1.0]), 2, tau=0.0)


# ---------------------------------------------------------------------------------------------
# bnpo
# ---------------------------------------------------------------------------------------------


def test_bnpo_alpha_beta_three_halves():
    # p = (1/4, 1/2, 3/4): m = 1/2, sample v = 1/16, k = m(1−m)/v − 1 = 3, a = b = 3/2,
    # α = β = 1 + a/3 = 3/2; Beta(3/2, 3/2) density = √(p(1−p))·8/π
    rewards = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0]
    out = A.bnpo(t([float(x) for x in rewards]), 4)
    expected = []
    for g, p in enumerate((0.25, 0.5, 0.75)):
        f = math.sqrt(p * (1 - p)) * 8 / math.pi
        expected += [(r - p) / f for r in rewards[4 * g:4 * g + 4]]
    close(out, expected)


def test_bnpo_reduces_to_mean_baseline_when_alpha_beta_one():
    # p = (1, 1/2, 0): v = 1/4 = m(1−m), so k = 0 and α = β = 1 (density 1)
    close(A.bnpo(t([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 2), [0, 0, 0.5, -0.5, 0, 0])
    # a single group falls back to α = β = 1
    close(A.bnpo(t([1.0, 0.0, 0.0]), 3), [2 / 3, -1 / 3, -1 / 3])


def test_bnpo_affine_reward_range_and_errors():
    # rewards in [−1, 1] are mapped to [0, 1] first
    close(A.bnpo(t([1.0, -1.0, -1.0]), 3, min_value=-1.0, max_value=1.0),
          [2 / 3, -1 / 3, -1 / 3])
    with pytest.raises(ValueError, match="rewards"):
        A.bnpo(t([2.0, 0.0]), 2)
    with pytest.raises(ValueError, match="max_value"):
        A.bnpo(t([1.0, 0.0]), 2, min_value=1.0, max_value=1.0)


# ---------------------------------------------------------------------------------------------
# win rate, group stats
# ---------------------------------------------------------------------------------------------


def test_win_rate_by_hand():
    p = t([[[0.5, 0.8, 0.6], [0.2, 0.5, 0.1], [0.4, 0.9, 0.5]]])
    close(A.win_rate(p), [(0.8 + 0.6) / 2, (0.2 + 0.1) / 2, (0.4 + 0.9) / 2])
    with pytest.raises(ValueError, match="preferences"):
        A.win_rate(t([[[0.5, 0.8], [0.8, 0.5]]]))
    with pytest.raises(ValueError, match="preferences"):
        A.win_rate(t([[0.5, 0.5], [0.5, 0.5]]))


def test_group_stats_three_groups():
    stats = A.group_stats(t([1.0, 1.0, 0.0, 1.0, 0.5, 0.5]), 2)
    close(stats["frac_reward_zero_std"], 2 / 3)  # groups [1, 1] and [0.5, 0.5]
    close(stats["reward_std"], (0.0 + math.sqrt(0.5) + 0.0) / 3)


def test_group_stats_by_hand():
    stats = A.group_stats(t(R), 3)
    close(stats["reward"], 7 / 6)
    close(stats["reward_std"], (math.sqrt(1 / 3) + 0.0) / 2)
    close(stats["frac_reward_zero_std"], 0.5)
    for value in stats.values():
        assert value.dim() == 0 and not value.requires_grad


# ---------------------------------------------------------------------------------------------
# token-level: batch_normalized, kl_in_reward, returns_to_go, gae
# ---------------------------------------------------------------------------------------------


def test_batch_normalized_by_hand():
    adv = t([[1.0, 3.0, 99.0], [5.0, 99.0, 99.0]])
    mask = t([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    s = math.sqrt(8 / 3)  # valid tokens 1, 3, 5: mean 3, population var 8/3
    close(A.batch_normalized(adv, mask, eps=0.0), [[-2 / s, 0.0, 0.0], [2 / s, 0.0, 0.0]])
    close(A.batch_normalized(t([1.0, 3.0]), eps=0.0), [-1.0, 1.0])
    with pytest.raises(ValueError, match="mask"):
        A.batch_normalized(t([1.0, 3.0]), t([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="mask"):
        A.batch_normalized(adv, torch.zeros(2, 3, dtype=F64))


def test_batch_normalized_with_exact_mode_weights_by_hand():
    adv = t([[1.0, 3.0, 99.0], [5.0, 99.0, 99.0]])
    mask = t([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    # row weights 0.25, 0.75: token weights 0.25, 0.25, 0.75 (total 1.25) on values 1, 3, 5
    # mean = (0.25 + 0.75 + 3.75)/1.25 = 3.8; var = (0.25·7.84 + 0.25·0.64 + 0.75·1.44)/1.25 = 2.56
    out = A.batch_normalized(adv, mask, eps=0.0, weights=t([0.25, 0.75]))
    close(out, [[(1 - 3.8) / 1.6, (3 - 3.8) / 1.6, 0.0], [(5 - 3.8) / 1.6, 0.0, 0.0]])
    # equal weights reproduce the unweighted statistics
    close(A.batch_normalized(adv, mask, eps=0.0, weights=t([0.5, 0.5])),
          A.batch_normalized(adv, mask, eps=0.0))
    with pytest.raises(ValueError, match="weights"):
        A.batch_normalized(adv, mask, weights=t([0.5, 0.5, 0.0]))
    with pytest.raises(ValueError, match="weights"):
        A.batch_normalized(adv, mask, weights=t([-0.5, 1.5]))


def test_kl_in_reward_by_hand():
    logp = t([[math.log(0.5), math.log(0.5), 0.0], [math.log(0.25)] + [math.log(0.5)] * 2])
    ref = t([[math.log(0.25), math.log(0.5), 0.0], [math.log(0.5)] * 3])
    mask = t([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    out = A.kl_in_reward(t([1.0, 2.0]), logp, ref, mask, beta=0.1)
    # k1 = log π − log π_ref: row 0 (ln 2, 0), row 1 (−ln 2, 0, 0); reward on last valid token
    close(out, [[-0.1 * LN2, 1.0, 0.0], [0.1 * LN2, 0.0, 2.0]])
    out3 = A.kl_in_reward(t([1.0, 2.0]), logp, ref, mask, beta=0.1, kl="k3")
    close(out3[0, 0], -0.1 * ((0.5 - 1) + LN2))


def test_kl_in_reward_errors():
    lp = torch.zeros(2, 3, dtype=F64)
    with pytest.raises(ValueError, match="mask"):
        A.kl_in_reward(t([1.0, 2.0]), lp, lp, t([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="mask"):
        A.kl_in_reward(t([1.0, 2.0]), lp, lp, t([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="beta"):
        A.kl_in_reward(t([1.0, 2.0]), lp, lp, torch.ones(2, 3, dtype=F64), -0.1)
    with pytest.raises(ValueError, match="kl"):
        A.kl_in_reward(t([1.0, 2.0]), lp, lp, torch.ones(2, 3, dtype=F64), 0.1, kl="k9")
    with pytest.raises(ValueError, match="ref_logp"):
        A.kl_in_reward(t([1.0, 2.0]), lp, lp[:, :2], torch.ones(2, 3, dtype=F64), 0.1)
    with pytest.raises(ValueError, match="rewards"):
        A.kl_in_reward(t([1.0, float("nan")]), lp, lp, torch.ones(2, 3, dtype=F64), 0.1)


def test_returns_to_go_by_hand():
    rew = t([[1.0, 2.0, 3.0], [4.0, 5.0, 7.0]])
    mask = t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    # γ = ½: 1 + ½·2 + ¼·3 = 2.75, 2 + ½·3 = 3.5, 3 ; 4 + ½·5 = 6.5, 5 (7 is padding)
    close(A.returns_to_go(rew, mask, gamma=0.5), [[2.75, 3.5, 3.0], [6.5, 5.0, 0.0]])
    with pytest.raises(ValueError, match="gamma"):
        A.returns_to_go(rew, mask, gamma=1.5)


def test_gae_by_hand():
    rew = t([[0.0, 1.0, 5.0]])
    values = t([[0.5, 0.8, 99.0]])
    mask = t([[1.0, 1.0, 0.0]])
    adv, ret = A.gae(rew, values, mask, gamma=0.9, lam=0.8)
    # δ₁ = 1 + 0 − 0.8 = 0.2 ; δ₀ = 0 + 0.9·0.8 − 0.5 = 0.22 ; A₀ = 0.22 + 0.72·0.2
    close(adv, [[0.22 + 0.9 * 0.8 * 0.2, 0.2, 0.0]])
    close(ret, [[0.22 + 0.144 + 0.5, 1.0, 0.0]])


def test_gae_lambda_one_is_return_minus_value():
    rew = t([[0.1, -0.2, 1.0], [0.3, 0.4, 0.0]])
    values = t([[0.5, 0.1, -0.3], [0.2, 0.7, 0.0]])
    mask = t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv, ret = A.gae(rew, values, mask, gamma=0.9, lam=1.0)
    # G = Σ γ^k r: row 0 (0.1 − 0.18 + 0.81, −0.2 + 0.9, 1.0), row 1 (0.3 + 0.36, 0.4)
    g = [[0.1 - 0.18 + 0.81, -0.2 + 0.9, 1.0], [0.3 + 0.36, 0.4, 0.0]]
    close(ret, g)
    v = [[0.5, 0.1, -0.3], [0.2, 0.7, 0.0]]
    close(adv, [[g[0][k] - v[0][k] for k in range(3)], [g[1][0] - v[1][0], g[1][1] - v[1][1], 0]])


def test_gae_errors():
    rew = torch.zeros(1, 3, dtype=F64)
    mask = torch.ones(1, 3, dtype=F64)
    with pytest.raises(ValueError, match="values"):
        A.gae(rew, torch.zeros(1, 2, dtype=F64), mask, 1.0, 0.9)
    with pytest.raises(ValueError, match="lam"):
        A.gae(rew, rew, mask, 1.0, -0.1)
    with pytest.raises(ValueError, match="values"):
        A.gae(rew, t([[0.0, float("nan"), 0.0]]), mask, 1.0, 0.9)

"""Tests for toolkit.objectives: hand-computed values, gradients, errors and properties.

Expected numbers are written from the equations with the numbers in each test (math.log etc.),
never by calling the code under test a second way.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from toolkit import objectives as O

F64 = torch.float64
LN2 = math.log(2.0)


def t(x, grad=False):
    return torch.tensor(x, dtype=F64, requires_grad=grad)


def grad_of(loss, x):
    (g,) = torch.autograd.grad(loss, x)
    return g


def close(actual, expected, tol=1e-12):
    actual = torch.as_tensor(actual, dtype=F64)
    expected = torch.as_tensor(expected, dtype=F64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert torch.allclose(actual, expected, atol=tol, rtol=0.0), (actual, expected)


# ---------------------------------------------------------------------------------------------
# kl_estimate
# ---------------------------------------------------------------------------------------------


def test_kl_estimate_hand_values():
    # π = 0.5, π_ref = 0.25 -> log r = −ln 2 ; π = 0.25, π_ref = 0.5 -> log r = +ln 2
    logp = t([math.log(0.5), math.log(0.25)])
    ref = t([math.log(0.25), math.log(0.5)])
    close(O.kl_estimate(logp, ref, "k1"), [LN2, -LN2])
    close(O.kl_estimate(logp, ref, "k2"), [0.5 * LN2**2, 0.5 * LN2**2])
    close(O.kl_estimate(logp, ref, "k3"), [(0.5 - 1) + LN2, (2 - 1) - LN2])


def test_kl_estimate_k1_k3_are_unbiased_k2_is_not():
    pi = [0.6, 0.3, 0.1]
    ref = [0.2, 0.5, 0.3]
    kl = sum(p * math.log(p / q) for p, q in zip(pi, ref))
    logp, lref = t([math.log(p) for p in pi]), t([math.log(q) for q in ref])
    w = t(pi)
    for kind in ("k1", "k3"):
        assert abs(float((w * O.kl_estimate(logp, lref, kind)).sum()) - kl) < 1e-12
    expected_k2 = sum(p * 0.5 * math.log(q / p) ** 2 for p, q in zip(pi, ref))
    e_k2 = float((w * O.kl_estimate(logp, lref, "k2")).sum())
    assert abs(e_k2 - expected_k2) < 1e-12
    assert abs(e_k2 - kl) > 1e-3


def test_kl_estimate_expected_gradients_match_docstring():
    # Samples held fixed, on-policy: E[∇k1] = 0, E[∇k2] = ∇KL(π‖ref), E[∇k3] = ∇KL(ref‖π).
    theta = t([0.3, -0.2, 0.5], grad=True)
    ref = torch.softmax(t([0.0, 1.0, -1.0]), 0)
    logp = torch.log_softmax(theta, 0)
    pi = logp.exp().detach()

    def expected_grad(kind):
        k = O.kl_estimate(logp, ref.log(), kind)
        return torch.autograd.grad((pi * k).sum(), theta, retain_graph=True)[0]

    p = torch.softmax(theta, 0)
    rev = torch.autograd.grad((p * (p.log() - ref.log())).sum(), theta, retain_graph=True)[0]
    fwd = torch.autograd.grad((ref * (ref.log() - p.log())).sum(), theta, retain_graph=True)[0]
    close(expected_grad("k1"), [0.0, 0.0, 0.0])
    close(expected_grad("k2"), rev)
    close(expected_grad("k3"), fwd)


@settings(max_examples=60, deadline=None)
@given(st.floats(-20, 20), st.floats(-20, 20))
def test_kl_estimate_k2_k3_nonnegative(a, b):
    logp, ref = t([a]), t([b])
    assert float(O.kl_estimate(logp, ref, "k2")) >= 0.0
    assert float(O.kl_estimate(logp, ref, "k3")) >= 0.0


def test_kl_estimate_errors():
    with pytest.raises(ValueError, match="kind"):
        O.kl_estimate(t([0.0]), t([0.0]), "k4")
    with pytest.raises(ValueError, match="ref_logp"):
        O.kl_estimate(t([0.0]), t([0.0, 1.0]), "k1")
    with pytest.raises(TypeError, match="logp"):
        O.kl_estimate([0.0], t([0.0]), "k1")


# ---------------------------------------------------------------------------------------------
# aggregate
# ---------------------------------------------------------------------------------------------

LOSS = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
MASK = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]


@pytest.mark.parametrize(
    "aggregation, max_tokens, expected",
    [
        ("grpo", None, (1.5 + 5.0) / 2),  # per-sequence means 3/2 and 15/3
        ("dapo", None, 18.0 / 5),  # 18 over 5 valid tokens
        ("dr_grpo", None, 18.0 / (2 * 3)),  # Σ / (B·T)
        ("dr_grpo", 4, 18.0 / (2 * 4)),  # Σ / (B·T_max)
        ("sum", None, 18.0 / 2),
    ],
)
def test_aggregate_hand_values(aggregation, max_tokens, expected):
    out = O.aggregate(t(LOSS), t(MASK), aggregation, max_tokens=max_tokens)
    close(out, expected)
    # a bool mask means the same thing
    close(O.aggregate(t(LOSS), t(MASK).bool(), aggregation, max_tokens=max_tokens), expected)


@pytest.mark.parametrize(
    "aggregation, expected",
    [
        ("grpo", 0.25 * 1.5 + 0.75 * 5.0),
        ("dapo", (0.25 * 3 + 0.75 * 15) / (0.25 * 2 + 0.75 * 3)),
        ("dr_grpo", (0.25 * 3 + 0.75 * 15) / 3),
        ("sum", 0.25 * 3 + 0.75 * 15),
    ],
)
def test_aggregate_with_weights(aggregation, expected):
    close(O.aggregate(t(LOSS), t(MASK), aggregation, weights=t([0.25, 0.75])), expected)


def test_aggregate_ignores_non_finite_padding_and_gives_it_zero_gradient():
    x = t([[1.0, 2.0, float("inf")], [4.0, 5.0, float("nan")]], grad=True)
    mask = t([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    out = O.aggregate(x, mask, "grpo")
    close(out, (1.5 + 4.5) / 2)
    close(grad_of(out, x), [[0.25, 0.25, 0.0], [0.25, 0.25, 0.0]])


def test_aggregate_empty_sequence_contributes_zero():
    mask = t([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    close(O.aggregate(t(LOSS), mask, "grpo"), (0.0 + 5.0) / 2)
    close(O.aggregate(t(LOSS), torch.zeros(2, 3, dtype=F64), "dapo"), 0.0)


def test_aggregate_rejects_bnpo_and_unknown():
    with pytest.raises(ValueError, match="bnpo"):
        O.aggregate(t(LOSS), t(MASK), "bnpo")
    with pytest.raises(ValueError, match="aggregation"):
        O.aggregate(t(LOSS), t(MASK), "token_mean")


def test_aggregate_input_errors():
    with pytest.raises(ValueError, match="mask"):
        O.aggregate(t(LOSS), t([[1.0, 1.0], [1.0, 1.0]]), "grpo")
    with pytest.raises(ValueError, match="mask"):
        O.aggregate(t(LOSS), t([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]]), "grpo")
    with pytest.raises(ValueError, match="weights"):
        O.aggregate(t(LOSS), t(MASK), "grpo", weights=t([0.5, 0.6]))
    with pytest.raises(ValueError, match="weights"):
        O.aggregate(t(LOSS), t(MASK), "grpo", weights=t([1.5, -0.5]))
    with pytest.raises(ValueError, match="weights"):
        O.aggregate(t(LOSS), t(MASK), "grpo", weights=t([1.0]))
    with pytest.raises(ValueError, match="max_tokens"):
        O.aggregate(t(LOSS), t(MASK), "dr_grpo", max_tokens=0)
    with pytest.raises(ValueError, match="per_token_loss"):
        O.aggregate(t([1.0, 2.0]), t([1.0, 1.0]), "grpo")


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 5),
    st.data(),
)
def test_aggregate_uniform_weights_equal_unweighted_formula(batch, width, data):
    vals = data.draw(st.lists(st.floats(-10, 10), min_size=batch * width,
                              max_size=batch * width))
    bits = data.draw(st.lists(st.booleans(), min_size=batch * width, max_size=batch * width))
    rows = [vals[i * width:(i + 1) * width] for i in range(batch)]
    mrows = [[1.0 if b else 0.0 for b in bits[i * width:(i + 1) * width]] for i in range(batch)]
    seq_sums = [sum(v * m for v, m in zip(r, mr)) for r, mr in zip(rows, mrows)]
    lens = [sum(mr) for mr in mrows]
    total = sum(lens)
    expected = {
        "grpo": sum(s / max(n, 1.0) for s, n in zip(seq_sums, lens)) / batch,
        "dapo": sum(seq_sums) / total if total > 0 else 0.0,
        "dr_grpo": sum(seq_sums) / (batch * width),
        "sum": sum(seq_sums) / batch,
    }
    uniform = torch.full((batch,), 1.0 / batch, dtype=F64)
    for aggregation, value in expected.items():
        plain = O.aggregate(t(rows), t(mrows), aggregation)
        weighted = O.aggregate(t(rows), t(mrows), aggregation, weights=uniform)
        assert abs(float(plain) - value) < 1e-9
        assert abs(float(weighted) - value) < 1e-9


# ---------------------------------------------------------------------------------------------
# reinforce
# ---------------------------------------------------------------------------------------------


def test_reinforce_value_gradient_and_pos_share():
    logp = t([[math.log(0.5), math.log(0.25)], [math.log(0.8), 0.0]], grad=True)
    mask = t([[1.0, 1.0], [1.0, 0.0]])
    adv = t([1.0, -2.0])
    loss, diag = O.reinforce(logp, adv, mask)
    expected = 0.5 * (-(math.log(0.5) + math.log(0.25)) / 2 + 2.0 * math.log(0.8))
    close(loss, expected)
    # ∂/∂logp = −A·m/|y_b|/B
    close(grad_of(loss, logp), [[-0.25, -0.25], [1.0, 0.0]])
    # gradient weight: seq 0 carries 2 tokens × 1·(1/4) = 0.5, seq 1 carries 2·(1/2) = 1
    close(diag["adv/pos_share"], 0.5 / 1.5)
    close(diag["loss"], expected)


def test_reinforce_with_weights():
    logp = t([[math.log(0.5), math.log(0.25)], [math.log(0.8), 0.0]], grad=True)
    mask = t([[1.0, 1.0], [1.0, 0.0]])
    loss, _ = O.reinforce(logp, t([1.0, -2.0]), mask, weights=t([0.2, 0.8]))
    close(grad_of(loss, logp), [[-0.1, -0.1], [1.6, 0.0]])


def test_reinforce_exact_mode_equals_expected_gradient():
    # Two-armed bandit, π = softmax(θ), r(a) = 1, r(b) = 0, G = 2, mean baseline. Every group
    # is enumerated with probability p_g and each member weighted p_g/G. Only the mixed groups
    # have A ≠ 0 (A = ±½), so the expected ascent direction is
    # 2·π_a·π_b·(1/G)·½·(e_a − e_b) = (π_a π_b / 2)(e_a − e_b) = ((G−1)/G)·∇π_a.
    theta = t([math.log(0.7), math.log(0.3)], grad=True)
    logpi = torch.log_softmax(theta, 0)
    groups = [(0, 0), (0, 1), (1, 0), (1, 1)]
    probs = [0.49, 0.21, 0.21, 0.09]
    adv = {(0, 0): (0.0, 0.0), (0, 1): (0.5, -0.5), (1, 0): (-0.5, 0.5), (1, 1): (0.0, 0.0)}
    logp = torch.stack([logpi[a] for g in groups for a in g])[:, None]
    a = t([x for g in groups for x in adv[g]])
    w = t([p / 2 for p in probs for _ in range(2)])
    loss, _ = O.reinforce(logp, a, torch.ones(8, 1, dtype=F64), weights=w)
    close(grad_of(loss, theta), [-0.105, 0.105])


def test_reinforce_errors():
    logp = t([[0.0, 0.0]])
    with pytest.raises(ValueError, match="adv"):
        O.reinforce(logp, t([1.0, 2.0]), t([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="adv"):
        O.reinforce(logp, t([float("nan")]), t([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="logp"):
        O.reinforce(t([0.0, 0.0]), t([1.0]), t([1.0, 1.0]))
    with pytest.raises(ValueError, match="logp"):
        O.reinforce(t([[float("-inf"), 0.0]]), t([1.0]), t([[1.0, 1.0]]))
    with pytest.raises(TypeError, match="mask"):
        O.reinforce(logp, t([1.0]), torch.ones(1, 2, dtype=torch.int64))


# ---------------------------------------------------------------------------------------------
# grpo
# ---------------------------------------------------------------------------------------------


def test_grpo_on_policy_gradient_is_minus_adv_over_length_over_batch():
    logp = t([[-1.0, -2.0, -0.5], [-0.3, -0.7, -9.0]], grad=True)
    mask = t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv = t([0.7, -1.3])
    loss, diag = O.grpo(logp, logp.detach(), adv, mask)
    expected = [[-0.7 / 3 / 2] * 3, [1.3 / 2 / 2, 1.3 / 2 / 2, 0.0]]
    close(grad_of(loss, logp), expected)
    for key in ("clip_ratio/low_mean", "clip_ratio/high_mean", "clip_ratio/region_mean"):
        close(diag[key], 0.0)
    for key in ("ratio/min", "ratio/mean", "ratio/max"):
        close(diag[key], 1.0)
    assert "kl" not in diag


def test_grpo_on_policy_dr_grpo_and_weights():
    logp = t([[-1.0, -2.0, -0.5], [-0.3, -0.7, -9.0]], grad=True)
    mask = t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    loss, _ = O.grpo(logp, logp.detach(), t([0.7, -1.3]), mask, aggregation="dr_grpo",
                     weights=t([0.4, 0.6]), max_tokens=10)
    close(grad_of(loss, logp), [[-0.7 * 0.4 / 10] * 3, [1.3 * 0.6 / 10] * 2 + [0.0]])


def _four_case_batch():
    # one sequence, per-token advantages hitting the four PPO-clip cases with ε = 0.2
    rho = [1.5, 0.5, 0.5, 1.5]
    old = t([[-2.0, -2.0, -2.0, -2.0]])
    logp = (old + t([[math.log(r) for r in rho]])).detach().requires_grad_(True)
    adv = t([[1.0, 1.0, -1.0, -1.0]])
    return logp, old, adv, torch.ones(1, 4, dtype=F64)


def test_grpo_off_policy_clipping_by_hand():
    logp, old, adv, mask = _four_case_batch()
    loss, diag = O.grpo(logp, old, adv, mask)
    # t0: A>0, ρ=1.5 > 1.2 -> −1.2 (clipped)   t1: A>0, ρ=0.5 -> −0.5
    # t2: A<0, ρ=0.5 < 0.8 -> +0.8 (clipped)   t3: A<0, ρ=1.5 -> +1.5
    close(loss, (-1.2 - 0.5 + 0.8 + 1.5) / 4)
    # ∂/∂logp = −Aρ/4 on unclipped tokens, 0 on clipped ones
    close(grad_of(loss, logp), [[0.0, -0.5 / 4, 0.0, 1.5 / 4]])
    close(diag["clip_ratio/low_mean"], 0.25)
    close(diag["clip_ratio/high_mean"], 0.25)
    close(diag["clip_ratio/region_mean"], 0.5)
    close(diag["ratio/min"], 0.5)
    close(diag["ratio/max"], 1.5)
    close(diag["ratio/mean"], 1.0)
    # unclipped gradient weight: t1 carries 1·0.5 (A>0), t3 carries 1·1.5
    close(diag["adv/pos_share"], 0.5 / 2.0)


def test_grpo_clip_boundaries_and_zero_advantage():
    rho = [1.19, 1.21, 0.81, 0.79, 2.0]
    old = torch.full((1, 5), -2.0, dtype=F64)
    logp = (old + t([[math.log(r) for r in rho]])).detach().requires_grad_(True)
    adv = t([[1.0, 1.0, -1.0, -1.0, 0.0]])
    loss, diag = O.grpo(logp, old, adv, torch.ones(1, 5, dtype=F64))
    # just inside the bounds: gradient −Aρ/5 ; just outside: 0 ; A = 0 is never "clipped"
    close(grad_of(loss, logp), [[-1.19 / 5, 0.0, 0.81 / 5, 0.0, 0.0]])
    close(loss, (-1.19 - 1.2 + 0.81 + 0.8 + 0.0) / 5)
    close(diag["clip_ratio/low_mean"], 1 / 5)
    close(diag["clip_ratio/high_mean"], 1 / 5)


def test_grpo_ratio_stats_skip_zero_weight_sequences():
    old = t([[-1.0], [-1.0]])
    logp = old + t([[math.log(1.1)], [math.log(5.0)]])
    _, diag = O.grpo(logp, old, t([1.0, 1.0]), torch.ones(2, 1, dtype=F64),
                     weights=t([1.0, 0.0]))
    close(diag["ratio/max"], 1.1)
    close(diag["ratio/mean"], 1.1)
    close(diag["clip_ratio/high_mean"], 0.0)


def test_grpo_asymmetric_clip_higher():
    logp, old, adv, mask = _four_case_batch()
    loss, diag = O.grpo(logp, old, adv, mask, eps_high=0.6)
    close(loss, (-1.5 - 0.5 + 0.8 + 1.5) / 4)
    close(grad_of(loss, logp), [[-1.5 / 4, -0.5 / 4, 0.0, 1.5 / 4]])
    close(diag["clip_ratio/high_mean"], 0.0)
    close(diag["adv/pos_share"], 2.0 / 3.5)


def test_grpo_kl_penalty_k3_by_hand():
    logp = t([[math.log(0.5)]], grad=True)
    ref = t([[math.log(0.25)]])
    loss, diag = O.grpo(logp, logp.detach(), t([1.0]), t([[1.0]]), ref_logp=ref, beta=0.1)
    k3 = (0.5 - 1.0) + LN2
    close(loss, -1.0 + 0.1 * k3)
    close(diag["kl"], k3)
    # ∂k3/∂logp = 1 − π_ref/π = 1 − 0.5
    close(grad_of(loss, logp), [[-1.0 + 0.1 * 0.5]])


def test_grpo_reports_kl_without_penalty():
    logp = t([[math.log(0.5)]], grad=True)
    loss, diag = O.grpo(logp, logp.detach(), t([1.0]), t([[1.0]]),
                        ref_logp=t([[math.log(0.25)]]), kl="k1")
    close(loss, -1.0)
    close(diag["kl"], LN2)


def test_grpo_errors():
    logp, old, adv, mask = _four_case_batch()
    with pytest.raises(ValueError, match="ref_logp"):
        O.grpo(logp, old, adv, mask, beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        O.grpo(logp, old, adv, mask, ref_logp=old, beta=-0.1)
    with pytest.raises(ValueError, match="eps_low"):
        O.grpo(logp, old, adv, mask, eps_low=-0.1)
    with pytest.raises(ValueError, match="eps_high"):
        O.grpo(logp, old, adv, mask, eps_high=-0.1)
    with pytest.raises(ValueError, match="kl"):
        O.grpo(logp, old, adv, mask, kl="k5")
    with pytest.raises(ValueError, match="old_logp"):
        O.grpo(logp, old[:, :3], adv, mask)
    with pytest.raises(ValueError, match="mask"):
        O.grpo(logp, old, adv, mask[:, :3])
    with pytest.raises(ValueError, match="adv"):
        O.grpo(logp, old, adv[:, :3], mask)
    with pytest.raises(ValueError, match="aggregation"):
        O.grpo(logp, old, adv, mask, aggregation="mean")
    with pytest.raises(TypeError, match="beta"):
        O.grpo(logp, old, adv, mask, beta="0.1")


# ---------------------------------------------------------------------------------------------
# ppo
# ---------------------------------------------------------------------------------------------


def _ppo_batch():
    old = t([[-1.0, -1.0]])
    logp = (old + t([[math.log(1.5), 0.0]])).detach().requires_grad_(True)
    values = t([[0.5, 1.0]], grad=True)
    return logp, old, t([[1.0, -1.0]]), torch.ones(1, 2, dtype=F64), values


def test_ppo_by_hand():
    logp, old, adv, mask, values = _ppo_batch()
    loss, diag = O.ppo(logp, old, adv, mask, values, old_values=t([[0.0, 1.0]]),
                       returns=t([[1.0, 0.0]]))
    # policy: t0 clipped high -> −1.2, t1 (ρ = 1) -> +1 ; mean = −0.1
    # value: t0 V_clip = 0.2, max((0.5−1)², (0.2−1)²) = 0.64 -> 0.32 ; t1 ½·1 = 0.5 ; mean 0.41
    close(diag["loss/policy_avg"], -0.1)
    close(diag["val/loss"], 0.41)
    close(loss, -0.1 + 0.5 * 0.41)
    close(diag["val/clipfrac"], 0.5)
    close(diag["policy/clipfrac_avg"], 0.5)
    close(diag["clip_ratio/high_mean"], 0.5)
    close(diag["policy/approxkl_avg"], 0.5 * (math.log(1.5) ** 2) / 2)
    # R = [1, 0]: Var = 0.25; R − V = [0.5, −1]: Var = 0.5625 -> 1 − 2.25
    close(diag["val/explained_variance"], -1.25)
    gl, gv = torch.autograd.grad(loss, (logp, values))
    close(gl, [[0.0, 1.0 / 2]])
    # t0's value gradient is cut by the value clip; t1: vf_coef·(V − R)/2 = 0.5·1/2
    close(gv, [[0.0, 0.25]])


def test_ppo_without_value_clip_and_errors():
    logp, old, adv, mask, values = _ppo_batch()
    _, diag = O.ppo(logp, old, adv, mask, values, t([[0.0, 1.0]]), t([[1.0, 0.0]]),
                    value_clip=None)
    close(diag["val/loss"], (0.5 * 0.25 + 0.5 * 1.0) / 2)
    close(diag["val/clipfrac"], 0.0)
    with pytest.raises(ValueError, match="values"):
        O.ppo(logp, old, adv, mask, values[:, :1], t([[0.0, 1.0]]), t([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="value_clip"):
        O.ppo(logp, old, adv, mask, values, t([[0.0, 1.0]]), t([[1.0, 0.0]]), value_clip=-1)
    with pytest.raises(ValueError, match="eps"):
        O.ppo(logp, old, adv, mask, values, t([[0.0, 1.0]]), t([[1.0, 0.0]]), eps=1.5)
    with pytest.raises(ValueError, match="vf_coef"):
        O.ppo(logp, old, adv, mask, values, t([[0.0, 1.0]]), t([[1.0, 0.0]]), vf_coef=-1)


# ---------------------------------------------------------------------------------------------
# rec
# ---------------------------------------------------------------------------------------------

REC_RHO = [1.5, 0.5, 0.5, 1.5, 1.0, 0.3, 3.5]
REC_ADV = [1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0]


def _rec_batch():
    old = torch.full((1, 7), -3.0, dtype=F64)
    logp = (old + t([[math.log(r) for r in REC_RHO]])).detach().requires_grad_(True)
    return logp, old, t([REC_ADV]), torch.ones(1, 7, dtype=F64)


@pytest.mark.parametrize(
    "clip, keep",
    [
        # one-side: drop A>0 with ρ > 1.2 (t0) and A<0 with ρ < 0.8 (t2)
        ("one-side", [0, 1, 0, 1, 1, 1, 1]),
        # two-side: only ρ in [0.8, 1.2] (t4)
        ("two-side", [0, 0, 0, 0, 1, 0, 0]),
        # ring (ε′ = 0.6, 2.0): t4, plus A>0 with ρ ≤ 0.4 (t5), A<0 with ρ ≥ 3.0 (t6)
        ("ring", [0, 0, 0, 0, 1, 1, 1]),
        ("none", [1, 1, 1, 1, 1, 1, 1]),
    ],
)
@pytest.mark.parametrize("importance_weight", [False, True])
def test_rec_drops_exactly_the_right_tokens(clip, keep, importance_weight):
    logp, old, adv, mask = _rec_batch()
    loss, diag = O.rec(logp, old, adv, mask, clip=clip, importance_weight=importance_weight)
    c = REC_RHO if importance_weight else [1.0] * 7
    lp = [-3.0 + math.log(r) for r in REC_RHO]
    expected_loss = sum(-a * ci * li * k for a, ci, li, k in zip(REC_ADV, c, lp, keep)) / 7
    close(loss, expected_loss)
    close(grad_of(loss, logp), [[-a * ci * k / 7 for a, ci, k in zip(REC_ADV, c, keep)]])
    dropped = [1 - k for k in keep]
    close(diag["clip_ratio/region_mean"], sum(dropped) / 7)
    close(diag["clip_ratio/low_mean"], sum(d for d, r in zip(dropped, REC_RHO) if r < 1) / 7)
    close(diag["clip_ratio/high_mean"], sum(d for d, r in zip(dropped, REC_RHO) if r > 1) / 7)
    pos = sum(ci * k for a, ci, k in zip(REC_ADV, c, keep) if a > 0)
    tot = sum(ci * k for ci, k in zip(c, keep))
    close(diag["adv/pos_share"], pos / tot)


def test_rec_one_side_with_is_has_grpo_gradient():
    logp, old, adv, mask = _rec_batch()
    loss_rec, _ = O.rec(logp, old, adv, mask, clip="one-side", importance_weight=True)
    loss_grpo, _ = O.grpo(logp, old, adv, mask)
    close(grad_of(loss_rec, logp), grad_of(loss_grpo, logp))


def test_rec_errors():
    logp, old, adv, mask = _rec_batch()
    with pytest.raises(ValueError, match="clip"):
        O.rec(logp, old, adv, mask, clip="three-side")
    with pytest.raises(ValueError, match="ring"):
        O.rec(logp, old, adv, mask, clip="ring", ring=(0.1, 2.0))
    with pytest.raises(ValueError, match="ring"):
        O.rec(logp, old, adv, mask, clip="ring", ring=(0.6, 0.1))
    with pytest.raises(ValueError, match="ring"):
        O.rec(logp, old, adv, mask, clip="ring", ring=(0.6,))
    with pytest.raises(TypeError, match="importance_weight"):
        O.rec(logp, old, adv, mask, importance_weight=1)


# ---------------------------------------------------------------------------------------------
# opmd, asymre, topr
# ---------------------------------------------------------------------------------------------


def test_opmd_by_hand():
    logp = t([[math.log(0.5), math.log(0.2)]], grad=True)
    old = t([[math.log(0.25), math.log(0.2)]])
    loss, diag = O.opmd(logp, old, t([1.0]), torch.ones(1, 2, dtype=F64), tau=0.5)
    reg0 = 0.25 * LN2**2  # (τ/2)(ln 2)²
    close(loss, (-math.log(0.5) + reg0 - math.log(0.2)) / 2)
    close(diag["opmd/reg"], reg0 / 2)
    close(grad_of(loss, logp), [[(-1.0 + 0.5 * LN2) / 2, -1.0 / 2]])
    with pytest.raises(ValueError, match="tau"):
        O.opmd(logp, old, t([1.0]), torch.ones(1, 2, dtype=F64), tau=-1.0)


def test_asymre_by_hand_and_equivalence():
    logp = t([[math.log(0.5)], [math.log(0.25)]], grad=True)
    mask = torch.ones(2, 1, dtype=F64)
    loss, diag = O.asymre(logp, t([1.0, -0.05]), mask, shift=0.1)
    close(loss, (-1.1 * math.log(0.5) - 0.05 * math.log(0.25)) / 2)
    close(grad_of(loss, logp), [[-1.1 / 2], [-0.05 / 2]])
    close(diag["adv/pos_share"], 1.0)
    # −(A + δ)·log π  =  −A·log π − δ·log π
    plain, _ = O.reinforce(logp, t([1.0, -0.05]), mask)
    g_plain = grad_of(plain, logp)
    loss2, _ = O.asymre(logp, t([1.0, -0.05]), mask, shift=0.1)
    close(grad_of(loss2, logp), g_plain - 0.1 / 2)
    with pytest.raises(ValueError, match="shift"):
        O.asymre(logp, t([1.0, 0.0]), mask, shift=float("nan"))


def test_topr_by_hand():
    rho = [2.0, 0.5, 0.4]
    old = t([[-1.0], [-1.0], [-1.0]])
    logp = (old + t([[math.log(r)] for r in rho])).detach().requires_grad_(True)
    rewards = t([1.0, -1.0, 0.0])
    loss, diag = O.topr(logp, old, rewards, torch.ones(3, 1, dtype=F64))
    # α = 1 for R > 0; clamp(ρ, 0, 1) for R ≤ 0 (R = 0 included) -> [1, 0.5, 0.4]
    lp = [-1.0 + math.log(r) for r in rho]
    close(loss, (-1.0 * lp[0] + 0.5 * lp[1] - 0.0) / 3)
    close(grad_of(loss, logp), [[-1.0 / 3], [0.5 / 3], [0.0]])
    close(diag["topr/alpha_mean"], 1.9 / 3)
    close(diag["adv/pos_share"], 1.0 / 1.5)


# ---------------------------------------------------------------------------------------------
# bapo
# ---------------------------------------------------------------------------------------------


def _bapo_batch():
    rho = [1.42, 0.72, 1.0]
    old = t([[-2.0, -2.0, -2.0]])
    logp = (old + t([[math.log(r) for r in rho]])).detach().requires_grad_(True)
    return logp, old, t([[1.0, -1.0, -1.0]]), torch.ones(1, 3, dtype=F64)


def test_bapo_widens_until_target_share():
    logp, old, adv, mask = _bapo_batch()
    loss, diag = O.bapo(logp, old, adv, mask, target_pos_share=0.3)
    # k = 0..4: the positive token (ρ = 1.42) stays above c_high = 1.2 … 1.4, share 0.
    # k = 5: c_high = 1.45 admits it, c_low = 0.85 drops the ρ = 0.72 negative token:
    # share = 1.42 / (1.42 + 1.0).
    close(diag["bapo/steps"], 5.0)
    close(diag["bapo/clip_low"], 0.85)
    close(diag["bapo/clip_high"], 1.45)
    close(diag["adv/pos_share"], 1.42 / 2.42)
    close(loss, (-1.42 + 0.85 + 1.0) / 3)
    close(grad_of(loss, logp), [[-1.42 / 3, 0.0, 1.0 / 3]])
    close(diag["clip_ratio/low_mean"], 1 / 3)
    close(diag["clip_ratio/high_mean"], 0.0)


def test_bapo_stays_tight_when_target_met_and_stops_at_range_end():
    logp, old, adv, mask = _bapo_batch()
    _, diag = O.bapo(logp, old, adv, mask, target_pos_share=0.0)
    close(diag["bapo/clip_low"], 0.6)
    close(diag["bapo/clip_high"], 1.2)
    close(diag["bapo/steps"], 0.0)
    _, diag = O.bapo(logp, old, adv, mask, target_pos_share=0.9)
    close(diag["bapo/clip_low"], 0.9)
    close(diag["bapo/clip_high"], 3.0)
    close(diag["adv/pos_share"], 1.42 / 2.42)


def test_bapo_without_signal_keeps_tight_bounds():
    logp, old, _, mask = _bapo_batch()
    _, diag = O.bapo(logp, old, torch.zeros(1, 3, dtype=F64), mask)
    close(diag["bapo/steps"], 0.0)
    assert torch.isnan(diag["adv/pos_share"])


def test_bapo_errors():
    logp, old, adv, mask = _bapo_batch()
    with pytest.raises(ValueError, match="target_pos_share"):
        O.bapo(logp, old, adv, mask, target_pos_share=1.5)
    with pytest.raises(ValueError, match="low_range"):
        O.bapo(logp, old, adv, mask, low_range=(0.9, 0.6))
    with pytest.raises(ValueError, match="high_range"):
        O.bapo(logp, old, adv, mask, high_range=(0.8, 3.0))
    with pytest.raises(ValueError, match="step_low"):
        O.bapo(logp, old, adv, mask, step_low=0.0)


# ---------------------------------------------------------------------------------------------
# pairwise losses
# ---------------------------------------------------------------------------------------------


def _pairs():
    # pair 0: h = (−1 + 1.5) − (−2 + 1.5) = 1 ; pair 1: h = (−3 + 2) − (−1 + 2) = −2
    chosen = t([-1.0, -3.0], grad=True)
    rejected = t([-2.0, -1.0], grad=True)
    return chosen, rejected, t([-1.5, -2.0]), t([-1.5, -2.0])


@pytest.mark.parametrize(
    "variant, per_pair",
    [
        ("sigmoid", [math.log1p(math.exp(-0.1)), math.log1p(math.exp(0.2))]),
        ("ipo", [(1 - 5.0) ** 2, (-2 - 5.0) ** 2]),
        ("hinge", [1 - 0.1, 1 + 0.2]),
    ],
)
def test_dpo_variants_by_hand(variant, per_pair):
    chosen, rejected, ref_c, ref_r = _pairs()
    loss, diag = O.dpo(chosen, rejected, ref_c, ref_r, beta=0.1, variant=variant)
    close(loss, sum(per_pair) / 2)
    close(diag["rewards/chosen"], (0.1 * 0.5 + 0.1 * -1.0) / 2)
    close(diag["rewards/rejected"], (0.1 * -0.5 + 0.1 * 1.0) / 2)
    close(diag["rewards/accuracies"], 0.5)
    close(diag["rewards/margins"], (0.1 * 1 + 0.1 * -2) / 2)
    loss_w, _ = O.dpo(chosen, rejected, ref_c, ref_r, beta=0.1, variant=variant,
                      weights=t([0.25, 0.75]))
    close(loss_w, 0.25 * per_pair[0] + 0.75 * per_pair[1])


def test_dpo_sigmoid_gradient_and_hinge_zero_region():
    chosen, rejected, ref_c, ref_r = _pairs()
    loss, _ = O.dpo(chosen, rejected, ref_c, ref_r, beta=0.1)
    # ∂/∂log π(y_w) of −log σ(βh) = −β·σ(−βh), averaged over 2 pairs
    sig = [1 / (1 + math.exp(0.1)), 1 / (1 + math.exp(-0.2))]
    close(grad_of(loss, chosen), [-0.1 * sig[0] / 2, -0.1 * sig[1] / 2])
    big = t([20.0], grad=True)
    loss, _ = O.dpo(big, t([0.0]), t([0.0]), t([0.0]), beta=0.1, variant="hinge")
    close(loss, 0.0)
    close(grad_of(loss, big), [0.0])


def test_dpo_tie_is_not_counted_as_accurate():
    _, diag = O.dpo(t([-1.0, -1.0]), t([-1.0, -2.0]), t([-1.0, -1.0]), t([-1.0, -1.0]))
    close(diag["rewards/accuracies"], 0.5)


def test_dpo_errors():
    chosen, rejected, ref_c, ref_r = _pairs()
    with pytest.raises(ValueError, match="beta"):
        O.dpo(chosen, rejected, ref_c, ref_r, beta=0.0)
    with pytest.raises(ValueError, match="variant"):
        O.dpo(chosen, rejected, ref_c, ref_r, variant="kto")
    with pytest.raises(ValueError, match="rejected_logp"):
        O.dpo(chosen, rejected[:1], ref_c, ref_r)
    with pytest.raises(ValueError, match="ref_chosen_logp"):
        O.dpo(chosen, rejected, t([0.0, float("nan")]), ref_r)


def test_simpo_by_hand():
    chosen, rejected = t([-4.0], grad=True), t([-9.0], grad=True)
    loss, diag = O.simpo(chosen, rejected, torch.tensor([2]), torch.tensor([3]), beta=2.0,
                         gamma=0.5)
    # 2·(−4/2) − 2·(−9/3) − 0.5 = 1.5
    close(loss, math.log1p(math.exp(-1.5)))
    close(diag["rewards/chosen"], -4.0)
    close(diag["rewards/rejected"], -6.0)
    close(diag["rewards/margins"], 2.0)
    close(diag["rewards/accuracies"], 1.0)
    close(grad_of(loss, chosen), [-(2.0 / 2) / (1 + math.exp(1.5))])
    with pytest.raises(ValueError, match="chosen_len"):
        O.simpo(chosen, rejected, torch.tensor([0]), torch.tensor([3]))
    with pytest.raises(ValueError, match="beta"):
        O.simpo(chosen, rejected, torch.tensor([1]), torch.tensor([3]), beta=-1.0)


def test_online_dpo_swaps_by_oracle():
    a, b = t([-1.0, -1.0], grad=True), t([-2.0, -3.0], grad=True)
    ref_a, ref_b = t([-1.5, -2.5]), t([-1.5, -0.5])
    loss, diag = O.online_dpo(a, b, ref_a, ref_b, torch.tensor([True, False]), beta=0.1)
    # pair 0: chosen a, h = (−1 + 1.5) − (−2 + 1.5) = 1
    # pair 1: chosen b, h = (−3 + 0.5) − (−1 + 2.5) = −4
    close(loss, (math.log1p(math.exp(-0.1)) + math.log1p(math.exp(0.4))) / 2)
    close(diag["rewards/accuracies"], 0.5)
    close(diag["rewards/chosen"], 0.1 * (0.5 - 2.5) / 2)
    ga, gb = torch.autograd.grad(loss, (a, b))
    s0, s1 = 1 / (1 + math.exp(0.1)), 1 / (1 + math.exp(-0.4))
    close(ga, [-0.1 * s0 / 2, 0.1 * s1 / 2])
    close(gb, [0.1 * s0 / 2, -0.1 * s1 / 2])
    with pytest.raises(TypeError, match="preferred_first"):
        O.online_dpo(a, b, ref_a, ref_b, torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="preferred_first"):
        O.online_dpo(a, b, ref_a, ref_b, torch.tensor([True]))


# ---------------------------------------------------------------------------------------------
# nash_md
# ---------------------------------------------------------------------------------------------


def test_nash_md_by_hand_and_trl_gradient():
    logp = t([[-1.0, -2.0], [-0.5, -7.0]], grad=True)
    ref = t([[-1.5, -1.0], [-0.5, -7.0]])
    mask = t([[1.0, 1.0], [1.0, 0.0]])
    pref = t([0.9, 0.2])
    loss, diag = O.nash_md(logp, ref, pref, mask, beta=0.1)
    # sequence 0: −0.4·(−3) + 0.1·½(0.5² + 1²); sequence 1: 0.3·(−0.5) + 0; batch mean
    close(loss, (1.2 + 0.05 * 1.25 - 0.15) / 2)
    close(diag["kl"], ((0.5 - 1.0) + 0.0) / 2)
    close(diag["nash_md/preference"], 0.55)
    close(diag["nash_md/score"], 0.05)
    close(diag["adv/pos_share"], 0.4 * 2 / (0.4 * 2 + 0.3))
    # TRL: β·sg(log π − log π_ref)·log π − (P − ½)·log π, summed over tokens, batch mean
    expected = [[(-0.4 + 0.1 * 0.5) / 2, (-0.4 + 0.1 * -1.0) / 2], [0.3 / 2, 0.0]]
    close(grad_of(loss, logp), expected)


def test_nash_md_errors():
    logp, ref, mask = t([[-1.0]]), t([[-1.0]]), t([[1.0]])
    with pytest.raises(ValueError, match="preference"):
        O.nash_md(logp, ref, t([1.5]), mask, beta=0.1)
    with pytest.raises(ValueError, match="preference"):
        O.nash_md(logp, ref, t([0.5, 0.5]), mask, beta=0.1)
    with pytest.raises(ValueError, match="beta"):
        O.nash_md(logp, ref, t([0.5]), mask, beta=-0.1)
    with pytest.raises(ValueError, match="ref_logp"):
        O.nash_md(logp, t([[-1.0, 0.0]]), t([0.5]), mask, beta=0.1)


# ---------------------------------------------------------------------------------------------
# contract shared by every loss
# ---------------------------------------------------------------------------------------------


def _all_losses(dtype):
    old = torch.tensor([[-1.0, -2.0], [-0.5, -0.7]], dtype=dtype)
    logp = (old + 0.1).requires_grad_(True)
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=dtype)
    adv = torch.tensor([0.5, -0.5], dtype=dtype)
    vals = torch.zeros(2, 2, dtype=dtype, requires_grad=True)
    z = torch.zeros(2, 2, dtype=dtype)

    def pair():
        s = logp[:, 0]
        return s, s * 2, s.detach(), s.detach()

    return logp, {
        "reinforce": lambda: O.reinforce(logp, adv, mask),
        "grpo": lambda: O.grpo(logp, old, adv, mask, ref_logp=old, beta=0.1),
        "ppo": lambda: O.ppo(logp, old, adv, mask, vals, z, z + 1),
        "rec": lambda: O.rec(logp, old, adv, mask, clip="ring"),
        "opmd": lambda: O.opmd(logp, old, adv, mask, tau=0.3),
        "asymre": lambda: O.asymre(logp, adv, mask),
        "topr": lambda: O.topr(logp, old, adv, mask),
        "bapo": lambda: O.bapo(logp, old, adv, mask),
        "dpo": lambda: O.dpo(*pair()),
        "simpo": lambda: O.simpo(*pair()[:2], torch.tensor([1, 2]), torch.tensor([2, 2])),
        "online_dpo": lambda: O.online_dpo(*pair(), torch.tensor([True, False])),
        "nash_md": lambda: O.nash_md(logp, old, torch.tensor([0.7, 0.2], dtype=dtype), mask,
                                     beta=0.1),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_loss_returns_scalar_and_detached_0d_diagnostics(dtype):
    logp, losses = _all_losses(dtype)
    for name, fn in losses.items():
        loss, diag = fn()
        assert loss.dim() == 0 and loss.dtype == dtype, name
        assert loss.requires_grad, name
        assert "loss" in diag, name
        for key, value in diag.items():
            assert isinstance(value, torch.Tensor), (name, key)
            assert value.dim() == 0, (name, key)
            assert not value.requires_grad, (name, key)
        assert torch.isfinite(grad_of(loss, logp)).all(), name

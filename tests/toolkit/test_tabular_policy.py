"""TabularPolicy: the Policy interface on a logit table, and exact-mode enumeration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from toolkit.policies import TabularPolicy, TabularValueHead, ValueHead
from toolkit.rollouts import Policy


def test_implements_the_policy_protocol():
    assert isinstance(TabularPolicy(3), Policy)
    assert isinstance(TabularPolicy(3).make_value_head(), ValueHead)


def test_sample_shapes_logprobs_and_frequencies():
    theta = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]])
    policy = TabularPolicy(3, n_contexts=2, init_logits=theta)
    gen = torch.Generator().manual_seed(0)
    ro = policy.sample([0, 1], 20_000, generator=gen)
    assert ro.completion_ids.shape == (40_000, 1) and ro.group_size == 20_000
    assert ro.prompts[:2] == [0, 0] and ro.prompts[-1] == 1
    p = torch.softmax(torch.tensor(theta), -1)
    for ctx in (0, 1):
        acts = ro.completion_ids[ro.prompt_ids[:, 0] == ctx, 0]
        freq = torch.bincount(acts, minlength=3).double() / acts.numel()
        assert torch.allclose(freq, p[ctx], atol=0.015)
    # recorded log μ equals log π of the taken action, bit for bit (on-policy ratio = 1)
    assert torch.equal(ro.logprobs, policy.logprobs(ro).detach())
    assert ro.texts[0].startswith("a")


def test_sampling_is_reproducible_with_the_generator():
    policy = TabularPolicy(5, init_logits=np.arange(5.0))
    a = policy.sample([0], 50, generator=torch.Generator().manual_seed(3))
    b = policy.sample([0], 50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.completion_ids, b.completion_ids)


def test_logprobs_have_gradient_ref_is_frozen_entropy_exact():
    policy = TabularPolicy(3, init_logits=[0.0, 1.0, 2.0])
    ro = policy.sample([0], 4, generator=torch.Generator().manual_seed(0))
    logp = policy.logprobs(ro)
    assert logp.requires_grad and logp.shape == (4, 1)
    logp.sum().backward()
    assert policy.logits.grad is not None
    with torch.no_grad():
        policy.logits.add_(1.0 * torch.tensor([[1.0, -1.0, 0.0]], dtype=torch.float64))
    ref = policy.ref_logprobs(ro)          # the initial policy, not the moved one
    init = torch.log_softmax(torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), -1)
    assert torch.equal(ref[:, 0], init[ro.completion_ids[:, 0]])
    assert not ref.requires_grad
    p = policy.probs()[0]
    assert torch.allclose(policy.entropy(ro)[:, 0], -(p * p.log()).sum().expand(4))
    assert [name for name, _ in policy.named_parameters()] == ["logits"]


def test_greedy_and_mixture_sampling():
    policy = TabularPolicy(3, init_logits=[0.0, 3.0, 1.0], ref=[5.0, 0.0, 0.0])
    greedy = policy.sample([0, 0], 1, greedy=True)
    assert greedy.completion_ids[:, 0].tolist() == [1, 1]
    lam = 0.5
    mix = policy.sample([0], 30_000, mixture_coef=lam, generator=torch.Generator().manual_seed(1))
    log_pi = torch.log_softmax(policy.logits.detach()[0], -1)
    log_ref = torch.log_softmax(policy.ref_logits[0], -1)
    target = torch.softmax((1 - lam) * log_pi + lam * log_ref, -1)
    freq = torch.bincount(mix.completion_ids[:, 0], minlength=3).double() / 30_000
    assert torch.allclose(freq, target, atol=0.015)
    assert torch.allclose(mix.logprobs[:, 0].exp(), target[mix.completion_ids[:, 0]])
    with pytest.raises(ValueError, match="mixture_coef"):
        policy.sample([0], 2, mixture_coef=1.5)


@pytest.mark.parametrize(("A", "G", "n"), [(3, 2, 1), (4, 3, 2), (2, 4, 1)])
def test_enumerate_lists_every_ordered_group_with_its_probability(A, G, n):
    theta = np.random.default_rng(A * G).normal(size=(n, A))
    policy = TabularPolicy(A, n_contexts=n, init_logits=theta)
    ro = policy.enumerate(list(range(n)), G)
    assert ro.batch_size == n * A**G * G and ro.group_size == G
    assert torch.allclose(ro.weights.sum(), torch.tensor(1.0, dtype=torch.float64), atol=1e-14)
    p = torch.softmax(torch.tensor(theta), -1)
    groups = ro.completion_ids[:, 0].reshape(-1, G)
    expected = list(itertools.product(range(A), repeat=G))
    for x in range(n):
        block = groups[x * A**G:(x + 1) * A**G]
        assert [tuple(g) for g in block.tolist()] == expected
        w = ro.weights.reshape(-1, G)[x * A**G:(x + 1) * A**G, 0]
        prob = torch.stack([p[x, list(g)].prod() for g in expected])
        assert torch.allclose(w, prob / G / n, atol=1e-15)
    # marginal over rows: E[f(a)] = Σ w·f = mean over prompts of E_π[f]
    f = torch.arange(A, dtype=torch.float64)
    assert torch.allclose((ro.weights * f[ro.completion_ids[:, 0]]).sum(), (p @ f).mean())


def test_enumerate_refuses_huge_enumerations():
    with pytest.raises(ValueError, match=r"group_size.*n_actions|n_actions.*group_size"):
        TabularPolicy(10).enumerate([0], 8)
    with pytest.raises(ValueError, match="max_rows"):
        TabularPolicy(1000).enumerate([0], 2)


def test_state_dict_round_trip_and_encode():
    a = TabularPolicy(4, init_logits=[1.0, 2.0, 3.0, 4.0])
    b = TabularPolicy(4)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.logits, b.logits) and torch.equal(a.ref_logits, b.ref_logits)
    ro = a.encode([0, 0], [3, 1])
    assert ro.completion_ids[:, 0].tolist() == [3, 1]
    assert torch.equal(ro.logprobs, a.logprobs(ro).detach())


def test_value_head_reads_the_context():
    head = TabularValueHead(2)
    with torch.no_grad():
        head.table.copy_(torch.tensor([0.5, -1.0], dtype=torch.float64))
    ro = TabularPolicy(3, n_contexts=2).sample([1, 0], 2)
    assert head.values(ro)[:, 0].tolist() == [-1.0, -1.0, 0.5, 0.5]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_actions": 0}, ValueError, "n_actions"),
    ({"n_actions": 2.5}, TypeError, "n_actions"),
    ({"n_actions": 3, "n_contexts": 0}, ValueError, "n_contexts"),
    ({"n_actions": 3, "init_logits": [0.0, np.nan, 0.0]}, ValueError, "init_logits must be finite"),
    ({"n_actions": 3, "ref": np.zeros((2, 3))}, ValueError, "ref must have shape"),
    ({"n_actions": 3, "dtype": torch.int64}, TypeError, "dtype"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        TabularPolicy(**kwargs)


def test_bad_prompts_and_group_size():
    policy = TabularPolicy(3, n_contexts=2)
    with pytest.raises(ValueError, match="out of range"):
        policy.sample([2], 2)
    with pytest.raises(TypeError, match="context indices"):
        policy.sample(["hello"], 2)
    with pytest.raises(ValueError, match="group_size"):
        policy.sample([0], 0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        policy.sample([0], 2, temperature=0.7)

"""The sampled update agrees with the exact one in expectation (the one idea's bridge).

For each recipe: the mean over many seeded draws of the sampled loss's gradient must match the
gradient of the exact-mode loss (every group enumerated with its probability), coordinate by
coordinate, within |z| < 4.5. Off-policy versions draw the batch from a behaviour policy μ ≠ π,
as a stale batch from the trainer's queue would be. And exact-mode REINFORCE with the true
baseline is ``tabular.SoftmaxPG`` to 1e-10.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import tabular as tb
from toolkit import algorithms as al
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask
from toolkit.trainer import Trainer

N_ARMS, G, GROUPS_PER_DRAW, DRAWS = 4, 3, 32, 200
Z_MAX = 4.5
WORST_Z: dict[str, float] = {}


def _policies(stale: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=N_ARMS)
    pi = TabularPolicy(N_ARMS, init_logits=theta, ref=np.zeros(N_ARMS))
    if not stale:
        return pi, pi
    # μ: an older version of π; |log π/μ| up to ~0.6, so ratios leave [0.8, 1.2] and clip.
    mu = TabularPolicy(N_ARMS, init_logits=theta + rng.normal(scale=0.4, size=N_ARMS),
                       ref=np.zeros(N_ARMS))
    return pi, mu


def _ctx(policy, task, exact, seed, modules):
    return al.Context(policy=policy, task=task, group_size=G, prompts_per_step=GROUPS_PER_DRAW,
                      exact=exact, generator=torch.Generator().manual_seed(seed),
                      rng=np.random.default_rng(seed), modules=modules)


def _grad(recipe, pi, modules, batch, ctx) -> np.ndarray:
    params = [pi.logits, *[p for m in modules.values() for p in m.parameters()]]
    for p in params:
        p.grad = None
    loss, _ = recipe.loss(pi, batch, ctx)
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in params]).numpy().copy()


def sampled_and_exact(recipe, stale: bool, seed: int = 0, noise: float = 0.0):
    pi, mu = _policies(stale, seed)
    bandit = tb.Bandit.random(N_ARMS, seed=seed + 100, noise_std=noise)
    task = BanditTask(bandit)
    modules = recipe.make_modules(pi)
    if "value_head" in modules:  # a non-trivial critic: V(x) = 0.3
        with torch.no_grad():
            modules["value_head"].table.fill_(0.3)
    exact_ctx = _ctx(mu, task, True, seed, modules)
    exact = _grad(recipe, pi, modules, recipe.collect(exact_ctx), exact_ctx)
    ctx = _ctx(mu, task, False, seed, modules)
    draws = np.stack([_grad(recipe, pi, modules, recipe.collect(ctx), ctx)
                      for _ in range(DRAWS)])
    return draws, exact


def z_scores(draws: np.ndarray, exact: np.ndarray) -> np.ndarray:
    mean = draws.mean(axis=0)
    se = draws.std(axis=0, ddof=1) / np.sqrt(draws.shape[0])
    z = np.zeros_like(mean)
    random = se > 1e-12
    z[random] = (mean[random] - exact[random]) / se[random]
    # deterministic coordinates (zero variance) must agree exactly (to rounding)
    np.testing.assert_allclose(mean[~random], exact[~random], atol=1e-10)
    return z


RECIPES = {
    "GRPO": al.GRPO(),
    "GRPO-dapo-asym": al.GRPO(eps_low=0.1, eps_high=0.3, aggregation="dapo"),
    "RLOO": al.RLOO(),
    "REINFORCE": al.REINFORCE(baseline="mean"),
    "REINFORCE-IS": al.REINFORCE(baseline="mean", importance_weight=True),
    "PPO-clip": al.PPO(),
    "OPMD": al.OPMD(tau=1.0),
    "OPMD-soft": al.OPMD(tau=0.5, baseline="soft"),
    "AsymRE": al.AsymRE(shift=0.1),
    "BAPO": al.BAPO(),
    "REC-two-side": al.REC(clip="two-side"),
    "TOPR": al.TOPR(baseline="mean"),
}


# BAPO off-policy: its bounds are a batch statistic, see test_bapo_stale_bounds_* below.
CASES = [(name, stale) for name in RECIPES for stale in (False, True)
         if not (name == "BAPO" and stale)]


@pytest.mark.parametrize(("name", "stale"), CASES,
                         ids=[f"{n}-{'stale' if s else 'on-policy'}" for n, s in CASES])
def test_sampled_gradient_mean_matches_exact(name, stale):
    draws, exact = sampled_and_exact(RECIPES[name], stale)
    z = z_scores(draws, exact)
    WORST_Z[f"{name}/{'stale' if stale else 'on-policy'}"] = float(np.abs(z).max())
    assert np.abs(exact).max() > 1e-3, "the exact gradient must not be trivially zero"
    assert np.abs(z).max() < Z_MAX, f"{name}: z = {np.round(z, 2)}"


def test_z_test_can_fail():
    """The harness detects a wrong target: the group-mean baseline shrinks the expected
    gradient by (1 − 1/G), so comparing it with the true gradient must give a huge |z|."""
    draws, _ = sampled_and_exact(al.REINFORCE(baseline="mean"), stale=False)
    _, true_grad = sampled_and_exact(al.REINFORCE(baseline="none"), stale=False)
    np.testing.assert_allclose(
        sampled_and_exact(al.REINFORCE(baseline="mean"), stale=False)[1],
        (1 - 1 / G) * true_grad, atol=1e-12)
    z = (draws.mean(0) - true_grad) / (draws.std(0, ddof=1) / np.sqrt(DRAWS))
    assert np.abs(z).max() > 10


def test_noisy_rewards_linear_baselines():
    """With Gaussian reward noise, losses linear in r still match the exact (mean-reward)
    gradient in expectation. (A clipped loss is not linear in r off-policy: whether a token
    clips depends on the sign of its advantage, which the noise flips.)"""
    for recipe, stale in ((al.RLOO(), False),
                          (al.REINFORCE(baseline="mean", importance_weight=True), True)):
        draws, exact = sampled_and_exact(recipe, stale=stale, noise=0.5)
        assert np.abs(z_scores(draws, exact)).max() < Z_MAX


def test_bapo_stale_bounds_fixed():
    """Off-policy, BAPO's bounds are a batch statistic; exact mode computes them on the
    enumerated population (the large-batch limit). Where every sampled batch picks the same
    bounds as the population (seed 2: c = (0.8, 1.4) in all draws), the gradients agree."""
    draws, exact = sampled_and_exact(al.BAPO(), stale=True, seed=2)
    z = z_scores(draws, exact)
    WORST_Z["BAPO/stale (seed 2)"] = float(np.abs(z).max())
    assert np.abs(z).max() < Z_MAX, np.round(z, 2)


def test_bapo_stale_bounds_converge_with_batch_size():
    """Near a threshold (seed 0: population share 0.516 vs target 0.5 at bounds (0.8, 1.4))
    small batches often pick other bounds, so the mean sampled step differs from the exact one
    (measured |z| ≈ 10 at 64 groups); the share of batches that pick the population bounds
    grows with the batch size towards 1."""
    pi, mu = _policies(True, 0)
    task = BanditTask(tb.Bandit.random(N_ARMS, seed=100))
    recipe = al.BAPO()
    ctx = _ctx(mu, task, True, 0, {})
    _, diag = recipe.loss(pi, recipe.collect(ctx), ctx)
    population = (float(diag["bapo/clip_low"]), float(diag["bapo/clip_high"]))
    agree = {}
    for groups in (8, 1024):
        ctx = dataclasses.replace(_ctx(mu, task, False, 1, {}), prompts_per_step=groups)
        hits = 0
        for _ in range(30):
            _, d = recipe.loss(pi, recipe.collect(ctx), ctx)
            hits += (float(d["bapo/clip_low"]), float(d["bapo/clip_high"])) == population
        agree[groups] = hits / 30
    print(f"\nBAPO: share of batches picking the population bounds {agree}")
    # measured (100 draws): 4 groups 0.29, 16: 0.58, 64: 0.70, 256: 0.86, 1024: 0.98, 4096: 1.0
    assert agree[8] < 0.7, agree
    assert agree[1024] > 0.9, agree


@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_exact_reinforce_true_baseline_is_softmax_pg(beta):
    """Exact-mode REINFORCE with the true baseline + SGD(η) = tabular.SoftmaxPG(η), 20 steps."""
    eta, steps = 0.7, 20
    bandit = tb.Bandit.random(5, seed=3)
    theta0 = np.random.default_rng(3).normal(size=5)
    pi0 = np.exp(theta0 - theta0.max())
    pi0 /= pi0.sum()
    policy = TabularPolicy(5, init_logits=theta0, ref=np.zeros(5))
    trainer = Trainer(policy, BanditTask(bandit),
                      al.REINFORCE(baseline="true", beta=beta, kl="k1"),
                      optimizer="sgd", lr=eta, group_size=1, exact=True)
    hist = tb.run(tb.SoftmaxPG(eta=eta, beta=beta), bandit, steps=steps, init=pi0)
    one = policy.probs().numpy()[0]
    trainer.train(1, progress=False)
    np.testing.assert_allclose(policy.probs().numpy()[0], hist.policy[1, 0], rtol=0, atol=1e-12)
    assert np.abs(policy.probs().numpy()[0] - one).max() > 1e-3   # it did move
    trainer.train(steps - 1, progress=False)
    np.testing.assert_allclose(policy.probs().numpy()[0], hist.policy[-1, 0], rtol=0,
                               atol=1e-10)


def teardown_module(module):
    if WORST_Z:
        worst = max(WORST_Z.items(), key=lambda kv: kv[1])
        print(f"\nworst |z| per case: { {k: round(v, 2) for k, v in WORST_Z.items()} }")
        print(f"overall worst |z| = {worst[1]:.2f} ({worst[0]})")

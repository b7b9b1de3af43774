"""Stale batches (the trainer's ``staleness`` knob): measured demos with stated thresholds.

Setting of the staleness demo (measured first, thresholds set from the measurements with a
margin; figures in the comments are the measured values):
  10-arm bandit ``tb.Bandit.random(10, seed=s)`` (noise-free rewards in [0, 1]), uniform start,
  G = 8 × 4 prompts, SGD with lr = 50, 150 steps, staleness 8, seeds s = 0…14.
Plain importance-weighted REINFORCE (sg(π/μ)·A·∇log π, unclipped) degrades: it ends stuck on
a suboptimal arm (final regret > 0.02) on 5 of the 15 seeds (0 on-policy) and its mean final
regret is ~50× its on-policy value, while OPMD (τ = 0.02, so lr·τ = 1) and the clipped
variants (GRPO, REC one-side) stay at the on-policy level. It degrades, it does not diverge:
no run of any recipe here meets a non-finite value. Over seeds 0…29 (not run in CI): stuck on
8/30 seeds stale vs 1/30 on-policy; OPMD 1/30, GRPO 1/30, REC 0/30 (seed 25 is hard for all
but REC); mean regret 0.026 stale vs 0.008 on-policy, OPMD 0.008, GRPO 0.007, REC 0.0007.

BAPO demo: 50-arm bandit with Bernoulli rewards (p = ``tb.Bandit.random(50, seed=s)``), uniform
start, staleness 8, G = 8 × 4 prompts, SGD lr = 5, 150 steps, seeds 0…7. The adaptive bounds
stay within their ranges [0.6, 0.9] and [1.2, 3.0]. The paper's entropy claim does NOT
reproduce here: BAPO ends with *lower* entropy than fixed-clip GRPO on 7 of 8 seeds (it admits
more of the update and converges faster, with lower mean regret); the test pins what we
measured. Other regimes tried (Gaussian rewards, lr 20, Adam, a start peaked on a mediocre
arm) gave the same direction or a mixed picture, never BAPO's entropy clearly above GRPO's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import tabular as tb
from toolkit import algorithms as al
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask
from toolkit.trainer import Trainer

MEASURED: dict[str, object] = {}

STALE_SEEDS = range(15)
STUCK = 0.02     # final regret above this: the run settled on a suboptimal arm


def final_regret(recipe, seed: int, staleness: int) -> float:
    bandit = tb.Bandit.random(10, seed=seed)
    policy = TabularPolicy(10)
    trainer = Trainer(policy, BanditTask(bandit), recipe, optimizer="sgd", lr=50.0,
                      group_size=8, prompts_per_step=4, staleness=staleness, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a non-finite stop would warn: fail loudly instead
        trainer.train(150, progress=False)
    assert trainer.stop_reason is None
    assert trainer.history.series("staleness")[1][-1] == staleness
    p = policy.probs().numpy()[0]
    return float(bandit.rewards.max() - p @ bandit.rewards)


def regrets(recipe, staleness: int) -> np.ndarray:
    return np.array([final_regret(recipe, s, staleness) for s in STALE_SEEDS])


@pytest.fixture(scope="module")
def is_reinforce_regrets():
    recipe = al.REINFORCE(baseline="mean", importance_weight=True)
    out = {"on-policy": regrets(recipe, 0), "stale-8": regrets(recipe, 8)}
    MEASURED["IS-REINFORCE final regret (mean, stuck)"] = {
        k: (round(float(v.mean()), 4), int((v > STUCK).sum())) for k, v in out.items()}
    return out


def test_importance_weighted_reinforce_degrades_with_staleness(is_reinforce_regrets):
    stale, fresh = is_reinforce_regrets["stale-8"], is_reinforce_regrets["on-policy"]
    # measured: stale mean 0.0189, stuck on 5/15 seeds; on-policy mean 0.0004, stuck 0/15
    assert (stale > STUCK).sum() >= 3
    assert (fresh > STUCK).sum() <= 1
    assert stale.mean() > 0.008
    assert stale.mean() > 10 * fresh.mean()


@pytest.mark.parametrize("name", ["OPMD", "GRPO", "REC"])
def test_opmd_and_clipped_variants_stay_stable(name, is_reinforce_regrets):
    recipe = {"OPMD": al.OPMD(tau=0.02), "GRPO": al.GRPO(scale="none"),
              "REC": al.REC(scale="none")}[name]
    regret = regrets(recipe, 8)
    MEASURED[f"{name} stale-8 final regret (mean, stuck)"] = (round(float(regret.mean()), 4),
                                                              int((regret > STUCK).sum()))
    # measured: mean OPMD 0.0012, GRPO 0.0003, REC 0.0003; stuck on 0/15 seeds each
    assert (regret > STUCK).sum() <= 1
    assert regret.mean() < 0.004
    assert regret.mean() < 0.25 * is_reinforce_regrets["stale-8"].mean()


def bapo_run(recipe, seed: int) -> Trainer:
    bandit = tb.Bandit.random(50, seed=seed)
    trainer = Trainer(TabularPolicy(50), BanditTask(bandit, noise="bernoulli"), recipe,
                      optimizer="sgd", lr=5.0, group_size=8, prompts_per_step=4, staleness=8,
                      seed=seed)
    trainer.train(150, progress=False)
    assert trainer.stop_reason is None
    trainer.regret = float(bandit.rewards.max() - trainer.policy.probs().numpy()[0]
                           @ bandit.rewards)
    return trainer


def test_bapo_bounds_in_range_and_entropy_vs_grpo_on_stale_50_arm_bandit():
    bapo_entropy, grpo_entropy, bapo_regret, grpo_regret = [], [], [], []
    for seed in range(8):
        bapo = bapo_run(al.BAPO(), seed)
        grpo = bapo_run(al.GRPO(), seed)
        low = bapo.history.series("bapo/clip_low")[1]
        high = bapo.history.series("bapo/clip_high")[1]
        assert low.min() >= 0.6 and low.max() <= 0.9
        assert high.min() >= 1.2 and high.max() <= 3.0
        assert high.max() > 1.2 or low.max() > 0.6   # the bounds did adapt
        bapo_entropy.append(bapo.history.series("entropy")[1][-1])
        grpo_entropy.append(grpo.history.series("entropy")[1][-1])
        bapo_regret.append(bapo.regret)
        grpo_regret.append(grpo.regret)
    MEASURED["BAPO final entropy"] = np.round(bapo_entropy, 3).tolist()
    MEASURED["GRPO final entropy"] = np.round(grpo_entropy, 3).tolist()
    MEASURED["BAPO final regret"] = np.round(bapo_regret, 4).tolist()
    MEASURED["GRPO final regret"] = np.round(grpo_regret, 4).tolist()
    # measured (seeds 0-7): final entropy BAPO mean 0.55 (0.06-1.19) vs GRPO 1.02 (0.39-1.57),
    # lower on 7/8 seeds; regret BAPO mean 0.016 vs GRPO 0.021. The paper's claim (BAPO keeps
    # entropy above fixed-clip GRPO) does not show on this bandit; we pin what we observed.
    assert np.mean(bapo_entropy) < np.mean(grpo_entropy)
    assert np.mean(bapo_regret) < np.mean(grpo_regret)


def teardown_module(module):
    for k, v in MEASURED.items():
        print(f"\n{k}: {v}")

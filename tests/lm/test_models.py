"""Tiny model factory, and the lean decoder's equality with the transformers forward."""

import pytest
import torch

from toolkit.lm.decode import HFStepper, lean_logits, lean_supported, make_stepper
from toolkit.lm.models import ARCHS, SIZES, count_parameters, tiny_config, tiny_model
from toolkit.lm.tokenizer import char_tokenizer

# peft calls a transformers API that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated")

RANGES = {"0.5m": (0.4e6, 0.7e6), "1m": (0.75e6, 1.25e6), "2m": (1.6e6, 2.5e6),
          "5m": (4e6, 6e6), "10m": (8.5e6, 12e6)}


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("arch", ARCHS)
def test_named_sizes_have_the_advertised_parameter_count(size, arch):
    tok = char_tokenizer()
    config = tiny_config(size, arch, tokenizer=tok)
    with torch.device("meta"):
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_config(config)
    lo, hi = RANGES[size]
    assert lo <= count_parameters(model) <= hi
    assert config.pad_token_id == tok.pad_token_id and config.eos_token_id == tok.eos_token_id
    assert config.vocab_size == len(tok)


def test_seeded_and_deterministic():
    a, b, c = tiny_model("0.5m", seed=1), tiny_model("0.5m", seed=1), tiny_model("0.5m", seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert not a.training and a.dtype == torch.float32
    # seeding the model does not disturb the caller's global RNG stream
    torch.manual_seed(0)
    x = torch.rand(1)
    torch.manual_seed(0)
    tiny_model("0.5m", seed=5)
    assert torch.equal(torch.rand(1), x)


def test_bad_arguments():
    with pytest.raises(ValueError, match="size must be one of"):
        tiny_config("3m")
    with pytest.raises(ValueError, match="arch must be one of"):
        tiny_config("1m", arch="mamba")
    with pytest.raises(ValueError, match="max_positions"):
        tiny_config("1m", max_positions=2)


def _batch(B=5, P=7, S=16, vocab=87, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (B, S), generator=g)
    mask = torch.ones(B, S, dtype=torch.long)
    for b in range(B):  # left padding of different lengths inside the prompt
        mask[b, :b % 4] = 0
        ids[b, :b % 4] = 0
    return ids, mask, P


def _reference_logits(model, ids, mask, P):
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, P - 1:]


def _gqa_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(3)
    cfg = LlamaConfig(vocab_size=87, hidden_size=96, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=6, num_key_value_heads=2, attention_bias=True,
                      mlp_bias=True, max_position_embeddings=64, rope_theta=100000.0)
    return LlamaForCausalLM(cfg).eval()


@pytest.mark.parametrize("make", [lambda: tiny_model("1m", "llama", seed=1),
                                  lambda: tiny_model("1m", "gpt2", seed=1), _gqa_llama],
                         ids=["llama", "gpt2", "llama-gqa-bias"])
def test_lean_decoder_equals_transformers_forward(make):
    model = make()
    assert lean_supported(model) in ("llama", "gpt2")
    ids, mask, P = _batch()
    ref = _reference_logits(model, ids, mask, P)
    got = lean_logits(model, ids, mask, P)
    assert got.shape == ref.shape
    assert (got - ref).abs().max() <= 1e-5
    # the plain cached loop is exact too
    assert (lean_logits(model, ids, mask, P, lean=False) - ref).abs().max() <= 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_lean_decoder_reads_lora_weights(arch):
    from peft import LoraConfig, get_peft_model

    model = tiny_model("0.5m", arch, seed=2)
    base_ref = None
    ids, mask, P = _batch(seed=4)
    base_ref = _reference_logits(model, ids, mask, P)
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0,
                     fan_in_fan_out=arch == "gpt2", init_lora_weights=False)
    peft_model = get_peft_model(model, cfg).eval()
    ref = _reference_logits(peft_model, ids, mask, P)
    assert (ref - base_ref).abs().max() > 1e-3  # the adapter is not a no-op
    assert (lean_logits(peft_model, ids, mask, P) - ref).abs().max() <= 1e-5
    off = lean_logits(peft_model, ids, mask, P, adapters=False)
    assert (off - base_ref).abs().max() <= 1e-5


def test_other_architectures_fall_back_to_the_cached_loop():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=87, hidden_size=64, intermediate_size=128,
                                         num_hidden_layers=2, num_attention_heads=4,
                                         num_key_value_heads=2,
                                         max_position_embeddings=64)).eval()
    assert lean_supported(model) is None
    assert isinstance(make_stepper(model), HFStepper)
    ids, mask, P = _batch()
    ref = _reference_logits(model, ids, mask, P)
    assert (lean_logits(model, ids, mask, P) - ref).abs().max() <= 1e-5

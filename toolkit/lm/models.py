"""Tiny causal language models built from transformers configs: nothing is ever downloaded.

    model = tiny_model("1m", vocab_size=len(tokenizer), seed=0)             # Llama-style
    model = tiny_model("5m", arch="gpt2", tokenizer=tokenizer)              # GPT-2

Named sizes (parameter counts with the default 87-token character vocabulary, tied
input/output embeddings, Llama / GPT-2):

    name   d_model  layers  heads  d_ff   Llama    GPT-2
    0.5m     128      2       4    512    0.54M    0.44M
    1m       128      4       4    448    0.96M    0.84M
    2m       192      4       6    640    2.08M    1.85M
    5m       256      6       8    704    4.84M    4.83M
    10m      320      8      10    896    10.19M   9.97M

GPT-2 uses d_ff = 4·d_model (its usual ratio), so its counts differ a little. Every model is
float32 with dropout 0 (so a forward pass is deterministic and on-policy ratios are exactly 1),
and its ``config`` carries the tokenizer's pad / bos / eos ids.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ARCHS", "SIZES", "ModelSize", "count_parameters", "tiny_config", "tiny_model"]

ARCHS = ("llama", "gpt2")


@dataclass(frozen=True)
class ModelSize:
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int


SIZES: dict[str, ModelSize] = {
    "0.5m": ModelSize(128, 2, 4, 512),
    "1m": ModelSize(128, 4, 4, 448),
    "2m": ModelSize(192, 4, 6, 640),
    "5m": ModelSize(256, 6, 8, 704),
    "10m": ModelSize(320, 8, 10, 896),
}


def _special_ids(tokenizer, vocab_size):
    if tokenizer is None:
        from .tokenizer import char_tokenizer

        tokenizer = char_tokenizer()
    ids = {"pad_token_id": tokenizer.pad_token_id, "bos_token_id": tokenizer.bos_token_id,
           "eos_token_id": tokenizer.eos_token_id}
    return ids, (len(tokenizer) if vocab_size is None else vocab_size)


def tiny_config(size: str = "1m", arch: str = "llama", vocab_size: int | None = None,
                tokenizer=None, max_positions: int = 256):
    """The transformers config of a named tiny model (``LlamaConfig`` or ``GPT2Config``).

    Args:
      size: one of ``SIZES`` ("0.5m", "1m", "2m", "5m", "10m").
      arch: "llama" (RMSNorm, rotary positions, SwiGLU) or "gpt2" (LayerNorm, learned
        positions, GELU).
      vocab_size: default ``len(tokenizer)``.
      tokenizer: whose pad / bos / eos ids go into the config; default the character tokenizer.
      max_positions: the longest prompt + completion the model accepts.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {list(SIZES)}, got {size!r}")
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {list(ARCHS)}, got {arch!r}")
    if isinstance(max_positions, bool) or not isinstance(max_positions, int) or max_positions < 8:
        raise ValueError(f"max_positions must be an int >= 8, got {max_positions!r}")
    s = SIZES[size]
    ids, vocab_size = _special_ids(tokenizer, vocab_size)
    if arch == "llama":
        from transformers import LlamaConfig

        return LlamaConfig(
            vocab_size=vocab_size, hidden_size=s.d_model, intermediate_size=s.d_ff,
            num_hidden_layers=s.n_layers, num_attention_heads=s.n_heads,
            num_key_value_heads=s.n_heads, max_position_embeddings=max_positions,
            rms_norm_eps=1e-5, tie_word_embeddings=True, attention_dropout=0.0, **ids,
        )
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=vocab_size, n_embd=s.d_model, n_layer=s.n_layers, n_head=s.n_heads,
        n_inner=4 * s.d_model, n_positions=max_positions, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0, tie_word_embeddings=True, **ids,
    )


def tiny_model(size: str = "1m", arch: str = "llama", vocab_size: int | None = None,
               tokenizer=None, seed: int = 0, max_positions: int = 256):
    """A freshly initialised tiny causal LM (float32, eval mode), seeded.

    Same arguments as ``tiny_config``; ``seed`` fixes the initial weights.
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = tiny_config(size, arch, vocab_size, tokenizer, max_positions)
    devices = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


def count_parameters(model, trainable_only: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen, n = set(), 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        n += p.numel()
    return n

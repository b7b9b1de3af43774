"""Sampling throughput and GRPO step time of tiny LMs on CPU: lean decoder vs `generate`.

For the 1M and 5M Llama models (and GPT-2 of the same sizes), at batch 64 × 32 new tokens:

- tokens/s of ``model.generate(do_sample=True)`` (transformers, KV cache), forced to emit
  exactly 32 tokens (``min_new_tokens=32``);
- tokens/s of ``toolkit.lm.decode.generate`` — the path ``LMPolicy.sample`` uses — with an
  EOS that never occurs, so it also runs all 32 steps ("lean"), and of the same loop over
  ``model(...)`` with the transformers KV cache ("loop": the fallback for other architectures);
- the time of one GRPO-style training step: ``LMPolicy.logprobs`` (fresh forward with grad) →
  ``objectives.grpo`` → backward → AdamW step, on the 64 × 32 batch.

Each figure is the median of ``--repeats`` runs, the sampling paths interleaved so that
background load hits them alike. Prints a table; asserts nothing. ms/token is generate/lean.

    python benchmarks/bench_lm_sampling.py [--threads 2] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from toolkit import objectives
from toolkit.lm.decode import generate
from toolkit.lm.models import count_parameters, tiny_model
from toolkit.lm.tokenizer import char_tokenizer
from toolkit.policies.lm import LMPolicy

BATCH, NEW_TOKENS = 64, 32


def _hf(model, ids, mask):
    with torch.no_grad():
        model.generate(ids, attention_mask=mask.long(), max_new_tokens=NEW_TOKENS,
                       min_new_tokens=NEW_TOKENS, do_sample=True, top_k=0, pad_token_id=0)


def _lean(model, ids, mask):
    generate(model, ids, mask, NEW_TOKENS, eos_token_id=-1, pad_token_id=0)


def _loop(model, ids, mask):
    """The fallback every other architecture uses: a loop over model(...) with its KV cache."""
    generate(model, ids, mask, NEW_TOKENS, eos_token_id=-1, pad_token_id=0, lean=False)


def _grpo_step(policy, rollouts, opt):
    start = time.perf_counter()
    logp = policy.logprobs(rollouts)
    adv = torch.randn(rollouts.batch_size)
    loss, _ = objectives.grpo(logp, rollouts.logprobs, adv, rollouts.completion_mask)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def bench(size: str, arch: str, repeats: int) -> dict:
    tok = char_tokenizer()
    model = tiny_model(size, arch, tokenizer=tok, seed=0)
    prompts = [f"{100 + 7 * i}+{300 + 11 * i}=" for i in range(BATCH)]   # 9 tokens with BOS
    enc = tok(prompts)["input_ids"]
    ids = torch.tensor(enc)
    mask = torch.ones_like(ids, dtype=torch.float32)
    _hf(model, ids, mask)
    _lean(model, ids, mask)   # warm-up
    t_hf, t_lean, t_loop = [], [], []
    for _ in range(repeats):
        for fn, acc in ((_hf, t_hf), (_lean, t_lean), (_loop, t_loop)):
            start = time.perf_counter()
            fn(model, ids, mask)
            acc.append(time.perf_counter() - start)
    policy = LMPolicy(model, tok)
    g = torch.Generator().manual_seed(0)
    # sample real rollouts, then pad them to 32 tokens so the step sees 64 × 32 completions
    r = policy.sample(prompts, 1, max_new_tokens=NEW_TOKENS, generator=g)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    _grpo_step(policy, r, opt)
    steps = [_grpo_step(policy, r, opt) for _ in range(repeats)]
    hf, lean = statistics.median(t_hf), statistics.median(t_lean)
    return {"size": size, "arch": arch, "params": count_parameters(model),
            "hf_tok_s": BATCH * NEW_TOKENS / hf, "lean_tok_s": BATCH * NEW_TOKENS / lean,
            "loop_tok_s": BATCH * NEW_TOKENS / statistics.median(t_loop),
            "speedup": hf / lean, "hf_ms_tok": 1e3 * hf / NEW_TOKENS,
            "lean_ms_tok": 1e3 * lean / NEW_TOKENS, "step_s": statistics.median(steps),
            "step_tokens": int(r.completion_mask.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", default="1m,5m")
    parser.add_argument("--archs", default="llama,gpt2")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"batch {BATCH} x {NEW_TOKENS} new tokens, {args.threads} thread(s), "
          f"median of {args.repeats}")
    print(f"{'model':<12}{'params':>9}{'generate tok/s':>16}{'lean tok/s':>12}"
          f"{'speed-up':>10}{'ms/token':>16}{'loop tok/s':>12}{'GRPO step':>11}")
    for size in args.sizes.split(","):
        for arch in args.archs.split(","):
            r = bench(size, arch, args.repeats)
            print(f"{size + ' ' + arch:<12}{r['params'] / 1e6:>8.2f}M{r['hf_tok_s']:>16,.0f}"
                  f"{r['lean_tok_s']:>12,.0f}{r['speedup']:>9.2f}x"
                  f"{r['hf_ms_tok']:>8.2f}/{r['lean_ms_tok']:<7.2f}{r['loop_tok_s']:>12,.0f}"
                  f"{r['step_s'] * 1e3:>8.0f} ms", flush=True)


if __name__ == "__main__":
    main()

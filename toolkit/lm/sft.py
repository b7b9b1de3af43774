"""Supervised fine-tuning on a task's examples, held-out evaluation, and ``pretrain``.

    history = sft(model, tokenizer, task, steps=1500, seed=0)     # cross-entropy on answers
    acc = evaluate(LMPolicy(model, tokenizer), task, n=1000)      # greedy, held-out prompts
    facts = pretrain("addition", size="1m", steps=1500, seed=0, out="data/checkpoints/addition")

Loss: token cross-entropy on the completion and its EOS only (prompt tokens are context, not
targets), averaged over those tokens. Each step draws a fresh batch of ``task.sft_examples``
from the *train* split with a numpy Generator seeded by ``seed``. AdamW (β = 0.9, 0.95,
weight decay 0.01), linear warm-up over the first 5 % of steps then cosine decay to 10 % of
``lr``, gradient-norm clipping at 1.

**Determinism.** ``pretrain`` seeds torch and numpy, turns on
``torch.use_deterministic_algorithms(True)`` and runs with a fixed number of CPU threads
(``threads``, default 2): on the same machine and software the same arguments give the same
weights bit for bit, hence the same held-out accuracy. (Another CPU or BLAS build may round
differently; the card records what was used.)
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shlex
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["DEFAULT_EVAL_PROMPTS", "PRETRAIN_DEFAULTS", "evaluate", "pretrain", "sft",
           "sft_batch"]

#: Held-out prompts each checkpoint card's accuracy is measured on.
DEFAULT_EVAL_PROMPTS = 1000

#: The settings the shipped checkpoints were made with (``mirrorlab pretrain --task NAME``).
PRETRAIN_DEFAULTS = {
    "addition": {"size": "1m", "steps": 800, "lr": 3e-3},
    "reverse": {"size": "1m", "steps": 150, "lr": 3e-3},
    "sort": {"size": "1m", "steps": 80, "lr": 3e-3},
    "multiple": {"size": "0.5m", "steps": 80, "lr": 3e-3},
    "preference": {"size": "0.5m", "steps": 300, "lr": 3e-3},
}


def sft_batch(tokenizer, examples: list[tuple[str, str]]):
    """(input_ids, attention_mask, labels) for ``<bos> prompt completion <eos>`` rows,
    right-padded; labels are -100 except on completion and EOS tokens."""
    eos = tokenizer.eos_token_id
    prompts = tokenizer([p for p, _ in examples], add_special_tokens=True)["input_ids"]
    answers = tokenizer([c for _, c in examples], add_special_tokens=False)["input_ids"]
    rows = [p + a + [eos] for p, a in zip(prompts, answers)]
    S = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    ids = torch.full((len(rows), S), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), S, dtype=torch.long)
    labels = torch.full((len(rows), S), -100, dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, rows)):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
        labels[i, len(p):len(r)] = torch.tensor(r[len(p):])
    return ids, mask, labels


def _lr_at(step: int, steps: int, lr: float) -> float:
    warm = max(1, int(0.05 * steps))
    if step < warm:
        return lr * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * t)))


def sft(model, tokenizer, task, steps: int, batch_size: int = 64, lr: float = 3e-3,
        seed: int = 0, log_every: int = 0, callback=None) -> list[dict]:
    """Train ``model`` in place on ``task.sft_examples``; returns [{step, loss, lr}, …].

    ``callback(record)`` is called every ``log_every`` steps (0: never).
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    rng = np.random.default_rng(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    model.eval()  # no dropout in our models; keeps the forward deterministic
    history = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        ids, mask, labels = sft_batch(tokenizer, task.sft_examples(batch_size, rng, "train"))
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1),
            ignore_index=-100)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"SFT loss is not finite at step {step}: {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        record = {"step": step + 1, "loss": loss.item(), "lr": opt.param_groups[0]["lr"]}
        history.append(record)
        if callback is not None and log_every and (step + 1) % log_every == 0:
            callback(record)
    return history


def evaluate(policy, task, n: int = DEFAULT_EVAL_PROMPTS, batch_size: int = 500) -> dict:
    """Greedy held-out accuracy: mean ``task.score`` over ``task.heldout_prompts(n)``.

    ``policy`` is an ``LMPolicy`` (or a (model, tokenizer) pair). Deterministic: fixed
    prompts, argmax decoding, ``task.max_new_tokens`` new tokens.
    """
    from ..policies.lm import LMPolicy

    if isinstance(policy, tuple):
        policy = LMPolicy(*policy)
    prompts = task.heldout_prompts(n)
    correct = 0.0
    examples = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        r = policy.sample(chunk, 1, max_new_tokens=task.max_new_tokens, greedy=True)
        scores = [task.score(p, t) for p, t in zip(chunk, r.texts)]
        correct += sum(scores)
        if not examples:
            examples = list(zip(chunk[:5], r.texts[:5], scores[:5]))
    return {"accuracy": correct / len(prompts), "n": len(prompts), "examples": examples}


def _machine() -> str:
    """CPU model and core count, for the card (best effort)."""

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


@contextlib.contextmanager
def deterministic(threads: int):
    """Deterministic torch algorithms and a fixed thread count, restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det)
        torch.set_num_threads(old_threads)


def _card(task_name, facts: dict, task) -> str:
    import json

    ex = "\n".join(f"    {p!r} -> {t!r} ({'ok' if s else 'wrong'})"
                   for p, t, s in facts.pop("_examples"))
    return f"""# Base checkpoint: {task_name}

A tiny {facts['arch']} causal LM ({facts['parameters']:,} parameters, size "{facts['size']}"),
trained by supervised fine-tuning on `{task!r}` up to a mid-level held-out accuracy, so
that RL has visible room to improve. Made by `mirrorlab pretrain` with this repository's code;
nothing was downloaded. Load it with `LMPolicy.from_pretrained(this_directory)`.

- command: `{facts['command']}`
- seed: {facts['seed']}
- steps: {facts['steps']} (batch {facts['batch_size']}, lr {facts['lr']}, AdamW, warm-up + cosine)
- wall time: {facts['wall_time_s']:.1f} s (training {facts['train_time_s']:.1f} s) on
  {facts['threads']} CPU thread(s) of {facts['machine']}
- held-out accuracy: {facts['heldout_accuracy']:.3f} on {facts['eval_prompts']} held-out prompts
  (greedy decoding, `toolkit.lm.sft.evaluate`; held-out = crc32 split, see `toolkit.lm.tasks`)
- final training loss: {facts['final_loss']:.4f}
- software: torch {facts['torch']}, transformers {facts['transformers']}
- determinism: `torch.use_deterministic_algorithms(True)`, {facts['threads']} thread(s),
  seeded torch and numpy: the same command on the same machine reproduces these weights.

Greedy completions of the first held-out prompts:

{ex}

## Facts

```json
{json.dumps(facts, indent=2)}
```
"""


def pretrain(task: str, out, size: str | None = None, arch: str = "llama",
             steps: int | None = None, seed: int = 0, batch_size: int = 64,
             lr: float | None = None, eval_prompts: int = DEFAULT_EVAL_PROMPTS,
             threads: int = 2, command: str | None = None, log=print) -> dict:
    """Train a base model for ``task`` by SFT and write a checkpoint directory to ``out``.

    Defaults for size / steps / lr come from ``PRETRAIN_DEFAULTS[task]`` (the shipped
    checkpoints). Returns the card's facts (also in ``out/CARD.md``).
    """
    import transformers

    from ..policies.lm import LMPolicy
    from .checkpoint import save_checkpoint
    from .models import count_parameters, tiny_model
    from .tasks import make_task
    from .tokenizer import char_tokenizer

    task_obj = make_task(task)
    defaults = PRETRAIN_DEFAULTS[task]
    size = defaults["size"] if size is None else size
    steps = defaults["steps"] if steps is None else steps
    lr = defaults["lr"] if lr is None else lr
    if command is None:
        command = "mirrorlab pretrain " + shlex.join(
            ["--task", task, "--size", size, "--arch", arch, "--steps", str(steps),
             "--seed", str(seed), "--out", str(out)])
    t0 = time.perf_counter()
    with deterministic(threads):
        torch.manual_seed(seed)
        tokenizer = char_tokenizer()
        model = tiny_model(size, arch, tokenizer=tokenizer, seed=seed)
        log_every = max(1, steps // 10)
        history = sft(model, tokenizer, task_obj, steps, batch_size=batch_size, lr=lr,
                      seed=seed, log_every=log_every if log else 0,
                      callback=(lambda r: log(f"step {r['step']:>5}  loss {r['loss']:.4f}"))
                      if log else None)
        train_time = time.perf_counter() - t0
        result = evaluate(LMPolicy(model, tokenizer), task_obj, n=eval_prompts)
    wall = time.perf_counter() - t0
    facts = {
        "task": task, "task_repr": repr(task_obj), "size": size, "arch": arch,
        "parameters": count_parameters(model), "seed": seed, "steps": steps,
        "batch_size": batch_size, "lr": lr, "threads": threads, "command": command,
        "train_time_s": round(train_time, 1), "wall_time_s": round(wall, 1),
        "heldout_accuracy": result["accuracy"], "eval_prompts": result["n"],
        "final_loss": history[-1]["loss"], "torch": torch.__version__,
        "transformers": transformers.__version__,
        "machine": _machine(),
        "_examples": result["examples"],
    }
    card = _card(task, dict(facts), task_obj)
    facts.pop("_examples")
    save_checkpoint(Path(out), model, tokenizer, card=card)
    if log:
        log(f"held-out accuracy {result['accuracy']:.3f} on {result['n']} prompts; "
            f"wall time {wall:.1f} s; wrote {out}")
    return facts

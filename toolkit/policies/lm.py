"""``LMPolicy``: any transformers causal language model as a policy the trainer can drive.

It implements ``toolkit.rollouts.Policy`` exactly like ``TabularPolicy`` does, so the trainer
cannot tell the two apart:

    policy = LMPolicy.from_pretrained("data/checkpoints/addition")           # full fine-tuning
    policy = LMPolicy.from_pretrained(path, lora=8)                          # LoRA rank 8
    rollouts = policy.sample(prompts, group_size=8, max_new_tokens=8)        # no grad
    logp = policy.logprobs(rollouts)        # [B, T] log π(y_t | x, y_<t), with grad
    ref  = policy.ref_logprobs(rollouts)    # [B, T] log π_ref, no grad
    ent  = policy.entropy(rollouts)         # [B, T] H(π(· | x, y_<t)), with grad

**Which distribution.** With temperature T the policy is π_T(· | ctx) = softmax(z / T), z the
model's logits; ``logprobs``, ``ref_logprobs`` and ``entropy`` use the temperature the rollouts
were sampled with (``rollouts.extras["temperature"]``), the reference at the same T.
``sample`` records log μ of the distribution it actually sampled from: μ = π_T when
``top_p = 1`` — then ``rollouts.logprobs`` is computed by the same forward pass as
``logprobs(rollouts)`` (``exact_logprobs=True``, the default), so on-policy ratios are exactly 1;
the decoder's own log-probabilities agree with it to float32 rounding (tested to 1e-5).
With ``top_p < 1``, μ is π_T restricted to its top-p nucleus and renormalised: a different
behaviour policy, so the ratio π_T/μ (= the nucleus mass on sampled tokens) is what an
off-policy loss should correct for.
With ``mixture_coef = λ`` (Nash-MD) μ ∝ π_T^(1−λ)·π_ref,T^λ. Greedy rows record log π_T of the
argmax token.

**Reference.** With LoRA the reference is the same model with the adapter disabled (no second
copy in memory): ``ref_logprobs`` equals the base model's log-probabilities exactly. Without
LoRA it is a frozen copy made at construction.

**Layout.** Prompts are encoded with the tokenizer's special tokens (our character tokenizer
prepends ``<bos>``) and left-padded; completions are right-padded with the pad token;
``completion_mask`` is 1 up to and including each row's EOS (every position if a row hit
``max_new_tokens`` first). Positions count from each row's first real token, so padding changes
nothing. ``texts`` are the completions decoded up to (not including) EOS, special tokens kept
visible, so a stray ``<pad>`` can never make an answer look right.

**Speed.** Sampling uses ``toolkit.lm.decode``: a static-KV-cache decoder that reads the
model's current weights (Llama and GPT-2; other architectures use a cached loop over
``model(...)``); every row stops at its own EOS, no Python loop over the batch. Dropout is off
(the model stays in eval mode) so that log-probabilities are deterministic.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from tabular._checks import check_int

from ..lm import decode as _decode
from ..lm.tokenizer import check_text
from ..rollouts import Rollouts

__all__ = ["LMPolicy", "lora_config"]


def lora_config(rank: int, alpha: float | None = None, target_modules="all-linear"):
    """A ``peft.LoraConfig`` for a causal LM: rank r, α = 2r by default, no dropout (so
    log-probabilities stay deterministic), adapters on every linear layer but the LM head."""
    from peft import LoraConfig

    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral) or rank < 1:
        raise ValueError(f"lora rank must be an int >= 1, got {rank!r}")
    return LoraConfig(r=int(rank), lora_alpha=float(2 * rank if alpha is None else alpha),
                      lora_dropout=0.0, target_modules=target_modules, bias="none",
                      task_type="CAUSAL_LM")


def _check_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _max_positions(config) -> int | None:
    for key in ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class LMPolicy:
    """A causal LM (any transformers ``*ForCausalLM``) with its tokenizer, as a policy.

    Args:
        model: a transformers causal LM (float32 recommended; it is put in eval mode).
        tokenizer: its tokenizer; needs an EOS token (the pad token defaults to EOS).
        lora: None (train every weight; the reference is a frozen copy), an int rank, or a
            ``peft.LoraConfig`` (train only the adapter; the reference is the adapter
            disabled). A model that is already a peft model is used as it is.
        format_prompt: maps a task prompt (str) to the text the model sees, e.g. a chat
            template for an instruct model; default identity.
        lean: use the lean decoder when the architecture allows (default True).
        exact_logprobs: when sampling from π_T itself (top_p = 1, not greedy, no mixture),
            record log μ with the same forward pass ``logprobs`` uses, so that on-policy
            ratios are exactly 1 rather than 1 up to float32 rounding between the decoder and
            the training forward (≈ 1e-5). Costs one forward pass per ``sample``; False keeps
            the decoder's own log-probabilities (default True).
    """

    def __init__(self, model, tokenizer, lora=None, *,
                 format_prompt: Callable[[str], str] | None = None, lean: bool = True,
                 exact_logprobs: bool = True):
        if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
            raise TypeError(f"model must be a transformers causal LM, got {type(model).__name__}")
        if tokenizer is None or not callable(tokenizer):
            raise TypeError("tokenizer must be a transformers tokenizer")
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no eos_token: completions need an end marker")
        self.tokenizer = tokenizer
        self.eos_token_id = int(tokenizer.eos_token_id)
        pad = tokenizer.pad_token_id
        self.pad_token_id = int(self.eos_token_id if pad is None else pad)
        self.format_prompt = format_prompt
        self.lean = bool(lean)
        self.exact_logprobs = bool(exact_logprobs)
        is_peft = hasattr(model, "disable_adapter") and hasattr(model, "get_base_model")
        if lora is not None and is_peft:
            raise ValueError("model is already a peft model: pass lora=None to use its adapter")
        if lora is not None:
            from peft import LoraConfig, get_peft_model

            if isinstance(lora, numbers.Integral) and not isinstance(lora, bool):
                lora = lora_config(int(lora))
                # GPT-2's Conv1D stores weights as [in, out]
                lora.fan_in_fan_out = getattr(model.config, "model_type", "") == "gpt2"
            if not isinstance(lora, LoraConfig):
                raise TypeError(f"lora must be None, an int rank or a peft.LoraConfig, got "
                                f"{type(lora).__name__}")
            model = get_peft_model(model, lora)
            is_peft = True
        self.model = model.eval()
        self.uses_lora = is_peft
        if is_peft:
            self.ref_model = None
        else:
            self.ref_model = copy.deepcopy(model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.max_positions = _max_positions(self._base().config)
        self.version = 0

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, lora=None, **kwargs) -> LMPolicy:
        """Load any local transformers causal-LM directory (ours or a user's own download).

        The directory needs ``config.json``, safetensors weights and tokenizer files; a missing
        one raises ``FileNotFoundError`` naming it. Nothing is downloaded.
        """
        from ..lm.checkpoint import load_pretrained

        model, tokenizer = load_pretrained(path)
        return cls(model, tokenizer, lora=lora, **kwargs)

    def _base(self):
        """The transformers model under any peft wrapper."""
        get_base = getattr(self.model, "get_base_model", None)
        return get_base() if callable(get_base) else self.model

    # -- encoding ---------------------------------------------------------------------------
    def _check_prompts(self, prompts) -> list[str]:
        if isinstance(prompts, str) or not isinstance(prompts, Sequence):
            raise TypeError("prompts must be a list of strings")
        if len(prompts) == 0:
            raise ValueError("prompts must not be empty (got an empty list)")
        for p in prompts:
            if not isinstance(p, str):
                raise TypeError(f"prompts must be strings, got {type(p).__name__}")
        return list(prompts)

    def _encode_prompts(self, prompts: list[str]) -> list[list[int]]:
        texts = prompts if self.format_prompt is None else [self.format_prompt(p)
                                                            for p in prompts]
        encoded = self.tokenizer(texts, add_special_tokens=True)["input_ids"]
        for p, ids in zip(prompts, encoded):
            check_text(self.tokenizer, p, ids=ids if self.format_prompt is None else None,
                       what="prompt")
            if len(ids) == 0:
                raise ValueError(f"prompt {p!r} encodes to no tokens (the tokenizer adds no "
                                 f"BOS): give a non-empty prompt")
        return encoded

    def _left_pad(self, rows: list[list[int]]) -> tuple[Tensor, Tensor]:
        P = max(len(r) for r in rows)
        ids = torch.full((len(rows), P), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), P, dtype=torch.float32)
        for i, r in enumerate(rows):
            if r:
                ids[i, P - len(r):] = torch.tensor(r, dtype=torch.long)
                mask[i, P - len(r):] = 1.0
        return ids, mask

    def _check_length(self, prompt_len: int, max_new_tokens: int) -> None:
        if self.max_positions is not None and prompt_len + max_new_tokens > self.max_positions:
            raise ValueError(
                f"prompt length {prompt_len} + max_new_tokens {max_new_tokens} exceeds the "
                f"model's {self.max_positions} positions")

    def decode_completions(self, completion_ids: Tensor, completion_mask: Tensor) -> list[str]:
        """Texts up to (not including) EOS; other special tokens stay visible."""
        rows = []
        for ids, m in zip(completion_ids.tolist(), completion_mask.tolist()):
            n = int(sum(m))
            row = ids[:n]
            if row and row[-1] == self.eos_token_id:
                row = row[:-1]
            rows.append(row)
        return self.tokenizer.batch_decode(rows, skip_special_tokens=False,
                                           clean_up_tokenization_spaces=False)

    # -- the Policy interface ---------------------------------------------------------------
    @torch.no_grad()
    def sample(self, prompts, group_size: int = 1, max_new_tokens: int = 32,
               temperature: float = 1.0, top_p: float = 1.0, greedy: bool = False,
               generator: torch.Generator | None = None,
               mixture_coef: float | None = None) -> Rollouts:
        """Sample ``group_size`` completions per prompt (rows of a prompt are consecutive).

        Args:
            prompts: non-empty list of strings over the tokenizer's vocabulary.
            group_size: G ≥ 1.
            max_new_tokens: ≥ 1; a row that has not emitted EOS by then is cut there.
            temperature: T > 0: sample from softmax(z / T).
            top_p: nucleus mass in (0, 1]; < 1 makes the sampler a different behaviour
                policy μ (see the module docstring).
            greedy: argmax decoding (temperature and top_p do not change the choice).
            generator: a torch.Generator for reproducible draws.
            mixture_coef: λ in [0, 1]: sample from μ ∝ π^(1−λ)·π_ref^λ (Nash-MD's opponent).
        """
        prompts = self._check_prompts(prompts)
        group_size = check_int(group_size, "group_size", minimum=1)
        max_new_tokens = check_int(max_new_tokens, "max_new_tokens", minimum=1)
        temperature = _check_float(temperature, "temperature")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature} (use greedy=True for "
                             f"argmax decoding)")
        top_p = _check_float(top_p, "top_p")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got "
                            f"{type(generator).__name__}")
        ref = None
        if mixture_coef is not None:
            lam = _check_float(mixture_coef, "mixture_coef")
            if not 0.0 <= lam <= 1.0:
                raise ValueError(f"mixture_coef must be in [0, 1], got {lam}")
            if lam > 0.0:
                ref = ((self.model, False, lam) if self.uses_lora
                       else (self.ref_model, True, lam))
        encoded = self._encode_prompts(prompts)
        ids, mask = self._left_pad(encoded)
        self._check_length(ids.shape[1], max_new_tokens)
        ids = ids.repeat_interleave(group_size, 0)
        mask = mask.repeat_interleave(group_size, 0)
        comp, comp_mask, logp = _decode.generate(
            self.model, ids, mask, max_new_tokens, self.eos_token_id, self.pad_token_id,
            temperature=temperature, top_p=top_p, greedy=bool(greedy), generator=generator,
            lean=self.lean, ref=ref)
        rows = [p for p in prompts for _ in range(group_size)]
        extras = {"temperature": temperature, "top_p": top_p, "greedy": bool(greedy)}
        if ref is not None:
            extras["mixture_coef"] = ref[2]
        rollouts = Rollouts(prompts=rows, prompt_ids=ids, prompt_mask=mask, completion_ids=comp,
                            completion_mask=comp_mask, logprobs=logp, group_size=group_size,
                            version=self.version,
                            texts=self.decode_completions(comp, comp_mask), extras=extras)
        if self.exact_logprobs and top_p == 1.0 and not greedy and ref is None:
            # μ = π_T here: take its log-probs from the training forward itself, so a fresh
            # ``logprobs(rollouts)`` reproduces them bit for bit and on-policy ρ = 1 exactly.
            with torch.no_grad():
                rollouts.logprobs = self.logprobs(rollouts).detach()
        return rollouts

    def _check_rollouts(self, rollouts) -> None:
        if not isinstance(rollouts, Rollouts):
            raise TypeError(f"rollouts must be Rollouts, got {type(rollouts).__name__}")
        if rollouts.prompt_ids.dim() != 2 or rollouts.completion_ids.dim() != 2:
            raise ValueError("rollouts must hold [B, P] prompt_ids and [B, T] completion_ids")

    def _logits(self, model, rollouts: Rollouts) -> Tensor:
        """[B, T, V] float32 logits / T that predict each completion token."""
        P = rollouts.prompt_ids.shape[1]
        T = rollouts.completion_ids.shape[1]
        ids = torch.cat([rollouts.prompt_ids, rollouts.completion_ids], 1).long()
        attn = torch.cat([rollouts.prompt_mask, rollouts.completion_mask], 1).long()
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=False)
        logits = out.logits[:, P - 1:P - 1 + T].float()
        temperature = float(rollouts.extras.get("temperature", 1.0))
        return logits if temperature == 1.0 else logits / temperature

    @staticmethod
    def _gather(logits: Tensor, rollouts: Rollouts) -> Tensor:
        logp = torch.log_softmax(logits, -1)
        taken = logp.gather(-1, rollouts.completion_ids.long()[..., None])[..., 0]
        return taken * rollouts.completion_mask.to(taken.dtype)

    def logprobs(self, rollouts: Rollouts) -> Tensor:
        """[B, T] log π_T(y_t | x, y_<t) of the completion tokens, with grad (0 on padding)."""
        self._check_rollouts(rollouts)
        return self._gather(self._logits(self.model, rollouts), rollouts)

    @torch.no_grad()
    def ref_logprobs(self, rollouts: Rollouts) -> Tensor:
        """[B, T] log π_ref,T: the adapter disabled (LoRA) or the frozen copy; no grad."""
        self._check_rollouts(rollouts)
        if self.uses_lora:
            with self.model.disable_adapter():
                logits = self._logits(self.model, rollouts)
        else:
            logits = self._logits(self.ref_model, rollouts)
        return self._gather(logits, rollouts)

    def entropy(self, rollouts: Rollouts) -> Tensor:
        """[B, T] H(π_T(· | x, y_<t)) at each completion position, with grad (0 on padding)."""
        self._check_rollouts(rollouts)
        logp = torch.log_softmax(self._logits(self.model, rollouts), -1)
        ent = -(logp.exp() * logp).sum(-1)
        return ent * rollouts.completion_mask.to(ent.dtype)

    def logprobs_and_entropy(self, rollouts: Rollouts) -> tuple[Tensor, Tensor]:
        """``(logprobs(rollouts), entropy(rollouts))`` from one forward pass."""
        self._check_rollouts(rollouts)
        logp_all = torch.log_softmax(self._logits(self.model, rollouts), -1)
        mask = rollouts.completion_mask.to(logp_all.dtype)
        taken = logp_all.gather(-1, rollouts.completion_ids.long()[..., None])[..., 0] * mask
        ent = -(logp_all.exp() * logp_all).sum(-1) * mask
        return taken, ent

    def parameters(self):
        """The trainable parameters only (the adapter's under LoRA)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def named_parameters(self):
        return [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]

    def state_dict(self) -> dict[str, Tensor]:
        """Detached copies of the trainable parameters, by name."""
        return {n: p.detach().clone() for n, p in self.named_parameters()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Copy ``state`` (from ``state_dict``) into the trainable parameters; keys must match."""
        params = dict(self.named_parameters())
        missing, unexpected = set(params) - set(state), set(state) - set(params)
        if missing or unexpected:
            raise ValueError(f"state does not match the trainable parameters: missing "
                             f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        for name, p in params.items():
            if tuple(state[name].shape) != tuple(p.shape):
                raise ValueError(f"state[{name!r}] has shape {tuple(state[name].shape)}, "
                                 f"expected {tuple(p.shape)}")
            p.copy_(state[name])

    def train(self, mode: bool = True) -> LMPolicy:
        """Kept in eval mode on purpose (no dropout: deterministic log-probabilities)."""
        return self

    def eval(self) -> LMPolicy:
        return self

    # -- optional capabilities --------------------------------------------------------------
    @torch.no_grad()
    def encode(self, prompts, completions, group_size: int = 1) -> Rollouts:
        """Rollouts for given (prompt, completion text) rows, EOS appended; logprobs = log π
        now (offline pairs, e.g. DPO)."""
        prompts = self._check_prompts(prompts)
        if isinstance(completions, str) or len(completions) != len(prompts):
            raise ValueError(f"completions must be a list of {len(prompts)} strings")
        for c in completions:
            if not isinstance(c, str):
                raise TypeError(f"completions must be strings, got {type(c).__name__}")
            check_text(self.tokenizer, c, what="completion")
        ids, mask = self._left_pad(self._encode_prompts(prompts))
        rows = [[*r, self.eos_token_id] for r in
                self.tokenizer(list(completions), add_special_tokens=False)["input_ids"]]
        T = max(len(r) for r in rows)
        self._check_length(ids.shape[1], T)
        comp = torch.full((len(rows), T), self.pad_token_id, dtype=torch.long)
        cmask = torch.zeros(len(rows), T, dtype=torch.float32)
        for i, r in enumerate(rows):
            comp[i, :len(r)] = torch.tensor(r, dtype=torch.long)
            cmask[i, :len(r)] = 1.0
        r = Rollouts(prompts=prompts, prompt_ids=ids, prompt_mask=mask, completion_ids=comp,
                     completion_mask=cmask, logprobs=torch.zeros(len(rows), T),
                     group_size=check_int(group_size, "group_size", minimum=1),
                     version=self.version,
                     texts=list(completions), extras={"temperature": 1.0})
        r.logprobs = self.logprobs(r).detach()
        return r

    def merged_model(self):
        """A plain transformers model with the LoRA adapter merged in (a copy; the policy is
        unchanged). Without LoRA: a copy of the model."""
        model = copy.deepcopy(self.model)
        if self.uses_lora:
            model = model.merge_and_unload()
        return model.eval()

    def save_pretrained(self, path: str | os.PathLike, card: str | None = None) -> None:
        """Write a checkpoint directory (adapter merged): config.json, model.safetensors,
        tokenizer files and, if given, CARD.md. ``LMPolicy.from_pretrained(path)`` loads it."""
        from ..lm.checkpoint import save_checkpoint

        save_checkpoint(path, self.merged_model(), self.tokenizer, card=card)

    def __repr__(self) -> str:
        from ..lm.models import count_parameters

        base = self._base()
        n = count_parameters(base)
        return (f"LMPolicy({type(base).__name__}, {n / 1e6:.2f}M params, "
                f"trainable={sum(p.numel() for p in self.parameters()):,}, "
                f"lora={self.uses_lora})")

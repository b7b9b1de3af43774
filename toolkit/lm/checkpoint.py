"""Checkpoint directories: safetensors + JSON (never pickle), plus a CARD.md.

    save_checkpoint(path, model, tokenizer, card="...")   # config.json, model.safetensors,
                                                          # tokenizer files, CARD.md
    model, tokenizer, card = load_checkpoint(path)         # ours: CARD.md required
    model, tokenizer = load_pretrained(path)               # any local causal-LM directory

Nothing is downloaded: everything loads with ``local_files_only=True``. A directory missing a
file raises ``FileNotFoundError`` naming the file. A card may carry a fenced ```json block of
facts (command, seed, steps, wall time, held-out accuracy); ``read_card`` returns it as a dict.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

__all__ = ["CHECKPOINT_FILES", "load_checkpoint", "load_pretrained", "read_card",
           "save_checkpoint"]

#: What ``save_checkpoint`` writes and ``load_checkpoint`` requires.
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.json",
                    "tokenizer_config.json", "CARD.md")


def _dir(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(p)!r} does not exist")
    return p


def _require(p: Path, *alternatives: str) -> None:
    if not any((p / name).is_file() for name in alternatives):
        names = " or ".join(repr(a) for a in alternatives)
        raise FileNotFoundError(f"checkpoint directory {str(p)!r} is missing {names}")


def save_checkpoint(path, model, tokenizer, card: str | None = None) -> Path:
    """Write ``model`` (safetensors), ``tokenizer`` and ``card`` (CARD.md) into ``path``."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(p, safe_serialization=True)
    tokenizer.save_pretrained(p)
    if card is not None:
        (p / "CARD.md").write_text(card if card.endswith("\n") else card + "\n")
    return p


def load_pretrained(path):
    """(model, tokenizer) from any local transformers causal-LM directory, float32, eval mode.

    Requires ``config.json``, ``model.safetensors`` (or a sharded
    ``model.safetensors.index.json``) and ``tokenizer.json`` or ``tokenizer_config.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    p = _dir(path)
    _require(p, "config.json")
    _require(p, "model.safetensors", "model.safetensors.index.json")
    _require(p, "tokenizer.json", "tokenizer_config.json")
    tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True, use_safetensors=True,
                                                 dtype=torch.float32)
    return model.eval(), tokenizer


def read_card(path) -> dict:
    """The facts block (```json … ```) of ``path/CARD.md`` as a dict ({} if it has none)."""
    p = _dir(path)
    _require(p, "CARD.md")
    text = (p / "CARD.md").read_text()
    m = re.search(r"```json\s*\n(.*?)\n```", text, flags=re.S)
    return json.loads(m.group(1)) if m else {}


def load_checkpoint(path):
    """(model, tokenizer, card facts) of one of our checkpoint directories (every file of
    ``CHECKPOINT_FILES`` required)."""
    p = _dir(path)
    for name in CHECKPOINT_FILES:
        _require(p, name)
    model, tokenizer = load_pretrained(p)
    return model, tokenizer, read_card(p)

"""Run checkpoints: safetensors for tensors, JSON for everything else — never pickle.

    save_checkpoint(trainer, "runs/grpo-step100")
    fresh = Trainer(policy, task, GRPO(), ...same settings...)
    load_checkpoint(fresh, "runs/grpo-step100")
    fresh.train(100)                     # bit-identical to an uninterrupted run

A checkpoint directory holds:

    policy.safetensors      policy.state_dict() and every extra module (``value_head.…``)
    optimizer.safetensors   the optimizer's state tensors (``state.<param>.<name>``)
    queue.safetensors       the staleness queue's batches (``<i>.<field>``, ``<i>.extras.<k>``)
    rng.safetensors         the torch sampling generator's state (uint8)
    trainer.json            settings, step, optimizer hyperparameters and scalar state,
                            numpy bit-generator state, queue metadata, format version
    history.jsonl           every history record (``History.to_jsonl``)

Loading checks that the trainer was built with the same settings (algorithm and its
hyperparameters, group size, staleness, …) and raises ValueError naming any that differ.
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .history import History
from .rollouts import Rollouts

__all__ = ["FORMAT_VERSION", "load_checkpoint", "save_checkpoint"]

FORMAT_VERSION = 1
_ROLLOUT_TENSORS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "logprobs")


def _save_tensors(tensors: dict[str, torch.Tensor], path: str) -> None:
    # safetensors wants contiguous tensors that share no storage
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}, path)


def _json_value(value: Any, what: str):
    try:
        json.dumps(value, allow_nan=True)
    except TypeError:
        raise TypeError(f"cannot checkpoint {what}: {type(value).__name__} is neither a tensor "
                        f"nor JSON-serialisable") from None
    return value


def _optimizer_parts(optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{idx}.{name}"] = value
            else:
                scalars.setdefault(str(idx), {})[name] = _json_value(value, f"optimizer {name}")
    groups = [{k: _json_value(v, f"optimizer param_group {k}") for k, v in g.items()}
              for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, idx, name = key.split(".", 2)
        state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _queue_parts(queue) -> tuple[dict[str, torch.Tensor], list[dict]]:
    tensors, meta = {}, []
    for i, batch in enumerate(queue):
        for name in _ROLLOUT_TENSORS:
            tensors[f"{i}.{name}"] = getattr(batch, name)
        if batch.weights is not None:
            tensors[f"{i}.weights"] = batch.weights
        extras_json = {}
        for k, v in batch.extras.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{i}.extras.{k}"] = v
            else:
                extras_json[k] = _json_value(v, f"rollouts extras[{k!r}]")
        meta.append({"prompts": _json_value(list(batch.prompts), "rollouts prompts"),
                     "group_size": batch.group_size, "version": batch.version,
                     "texts": batch.texts, "extras": extras_json,
                     "has_weights": batch.weights is not None})
    return tensors, meta


def _queue(tensors: dict[str, torch.Tensor], meta: list[dict]) -> deque:
    out = deque()
    for i, m in enumerate(meta):
        extras = dict(m["extras"])
        prefix = f"{i}.extras."
        extras.update({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        out.append(Rollouts(
            prompts=list(m["prompts"]),
            **{name: tensors[f"{i}.{name}"] for name in _ROLLOUT_TENSORS},
            group_size=m["group_size"],
            weights=tensors[f"{i}.weights"] if m["has_weights"] else None,
            version=m["version"], texts=m["texts"], extras=extras,
        ))
    return out


def save_checkpoint(trainer, directory: str | os.PathLike) -> str:
    """Write ``trainer``'s full state to ``directory`` (created if needed); return its path."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    policy_tensors = dict(trainer.policy.state_dict())
    for name, module in trainer.modules.items():
        policy_tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    _save_tensors(policy_tensors, os.path.join(directory, "policy.safetensors"))
    opt_tensors, opt_meta = _optimizer_parts(trainer.optimizer)
    _save_tensors(opt_tensors, os.path.join(directory, "optimizer.safetensors"))
    queue_tensors, queue_meta = _queue_parts(trainer.queue)
    _save_tensors(queue_tensors, os.path.join(directory, "queue.safetensors"))
    _save_tensors({"torch_generator": trainer.generator.get_state()},
                  os.path.join(directory, "rng.safetensors"))
    trainer.history.to_jsonl(os.path.join(directory, "history.jsonl"))
    meta = {
        "format_version": FORMAT_VERSION,
        "config": trainer.config(),
        "step": trainer.step,
        "modules": sorted(trainer.modules),
        "optimizer": opt_meta,
        "numpy_rng": trainer.rng.bit_generator.state,
        "queue": queue_meta,
    }
    with open(os.path.join(directory, "trainer.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    return directory


def load_checkpoint(trainer, directory: str | os.PathLike) -> None:
    """Restore a checkpoint into ``trainer``, built with the same settings as the saved one."""
    directory = os.fspath(directory)
    path = os.path.join(directory, "trainer.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory!r} is not a checkpoint (no trainer.json)")
    with open(path, encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {meta.get('format_version')} is not supported "
                         f"(expected {FORMAT_VERSION})")
    saved, current = meta["config"], json.loads(json.dumps(trainer.config()))
    diff = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if diff:
        detail = "; ".join(f"{k}: saved {saved.get(k)!r}, trainer {current.get(k)!r}"
                           for k in diff)
        raise ValueError(f"checkpoint settings differ from this trainer's: {detail}")

    tensors = load_file(os.path.join(directory, "policy.safetensors"))
    module_state: dict[str, dict] = {name: {} for name in trainer.modules}
    policy_state = {}
    for key, value in tensors.items():
        head, _, rest = key.partition(".")
        if head in module_state and rest:
            module_state[head][rest] = value
        else:
            policy_state[key] = value
    trainer.policy.load_state_dict(policy_state)
    for name, state in module_state.items():
        trainer.modules[name].load_state_dict(state)
    opt_tensors = load_file(os.path.join(directory, "optimizer.safetensors"))
    trainer.optimizer.load_state_dict(_optimizer_state(opt_tensors, meta["optimizer"]))
    trainer.generator.set_state(load_file(os.path.join(directory, "rng.safetensors"))
                                ["torch_generator"])
    trainer.rng.bit_generator.state = meta["numpy_rng"]
    trainer.queue = _queue(load_file(os.path.join(directory, "queue.safetensors")),
                           meta["queue"])
    trainer.history._replace_records(
        History.from_jsonl(os.path.join(directory, "history.jsonl")).records)
    trainer.step = int(meta["step"])
    trainer.stop_reason = trainer.stop_message = None


"""mirrorlab's sampled half: one loss library and one trainer for tabular and LM policies,
plus everything a person sees (reports, widgets).

    from toolkit import Trainer, TabularPolicy, GRPO
    from toolkit.tasks import BanditTask

Submodules and names are imported on first use, so ``mirrorlab --help`` does not pay for
torch, and ``import toolkit`` stays cheap.
"""

from __future__ import annotations

import importlib

_SUBMODULES = (
    "advantages", "algorithms", "checkpoint", "cli", "demo", "history", "lm", "objectives",
    "policies", "rollouts", "tasks", "trainer", "widgets",
)

# flat names → the submodule that defines them
_NAMES = {
    "Trainer": "trainer",
    "History": "history",
    "JSONLWriter": "history",
    "Rollouts": "rollouts",
    "TabularPolicy": "policies",
    "LMPolicy": "policies",
    **{name: "algorithms" for name in (
        "REINFORCE", "GRPO", "RLOO", "ReinforcePP", "ReMax", "PPO", "OPMD", "AsymRE", "REC",
        "TOPR", "BAPO", "OnlineDPO", "NashMD", "DPO",
    )},
}

__all__ = [*_SUBMODULES, *_NAMES]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)

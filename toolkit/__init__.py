"""mirrorlab's sampled half: one loss library and one trainer for tabular and LM policies,
plus everything a person sees (reports, widgets).

Submodules are imported on first use, so ``mirrorlab --help`` does not pay for torch.
"""

from __future__ import annotations

import importlib

_SUBMODULES = ("advantages", "cli", "demo", "objectives")

__all__ = list(_SUBMODULES)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")

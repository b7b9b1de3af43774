"""Everything a person sees while a policy learns: live, readable, computed.

- ``Dashboard(trainer_or_history)``: live panels of reward, entropy, KL to reference, KL
  between iterates, clip fractions by advantage sign, positive-advantage share, importance-
  ratio range, gradient norm, advantage histogram, and the action distribution (tabular) or
  recent completions (LM); ▶ Start / ■ Stop / +1 Step drive the trainer in a background thread.
- ``SimplexView(problem, runs)``: 3-action trajectories on the probability simplex with the
  ground truth and the update's vector field.
- ``GameView(game, runs)``: preference-matrix heatmap, exploitability and duality gap of the
  last and the average iterate (log scale).
- ``GridView(run, mdp)``: values and policy arrows on FrozenLake / CliffWalking, step slider.
- ``Playground(algorithm, problem)``: a slider per hyperparameter; each change re-runs the
  exact trajectory.
- ``Compare(histories)``: overlay exact and sampled runs, legends from their configs.
- ``MirrorlabCallback``: a transformers ``TrainerCallback`` feeding a Dashboard from TRL.

Every widget is an ``ipywidgets`` box holding a plotly ``FigureWidget`` (``.figure``); the
trainer knows none of them (they subscribe to ``History``). Submodules load on first use, so
``import toolkit.widgets`` pulls in neither plotly nor transformers.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Dashboard": "dashboard",
    "SimplexView": "simplex",
    "GameView": "game",
    "GridView": "grid",
    "Playground": "playground",
    "Compare": "compare",
    "MirrorlabCallback": "callbacks",
    "map_trl_logs": "callbacks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])

"""mirrorlab's exact half: problems, ground truth, metrics and update rules in numpy.

    import tabular as tb
    bandit = tb.Bandit([1.0, 0.5, 0.2])
    hist = tb.run(tb.algorithms.MirrorDescent(eta=0.5, beta=0.1), bandit, steps=200)
    tb.solve.kl_regularized(bandit, beta=0.1)       # where it must end up

``tabular`` imports no torch and nothing from ``toolkit``.
"""

from . import algorithms, metrics, solve
from .algorithms import *  # noqa: F403  (the update rules are part of the flat API)
from .problems import Bandit, FiniteMDP, PreferenceGame
from .run import History, run

__all__ = [
    "Bandit",
    "FiniteMDP",
    "History",
    "PreferenceGame",
    "algorithms",
    "metrics",
    "run",
    "solve",
    *algorithms.__all__,
]

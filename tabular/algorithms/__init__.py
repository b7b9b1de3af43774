"""Exact update rules, one small frozen dataclass each (equation and paper in the docstring).

Bandits: ``SoftmaxPG``, ``MirrorDescent`` (= ``NaturalPG``; magnetic when β > 0),
``EntropyMirrorDescent``. MDPs: ``PolicyIteration``, ``SoftPolicyIteration``, ``MDPO``,
``SoftmaxPGMDP``.
"""

from .bandit import EntropyMirrorDescent, MirrorDescent, NaturalPG, SoftmaxPG
from .base import ExactAlgorithm
from .mdp import MDPO, PolicyIteration, SoftmaxPGMDP, SoftPolicyIteration

__all__ = [
    "MDPO",
    "EntropyMirrorDescent",
    "ExactAlgorithm",
    "MirrorDescent",
    "NaturalPG",
    "PolicyIteration",
    "SoftPolicyIteration",
    "SoftmaxPG",
    "SoftmaxPGMDP",
]

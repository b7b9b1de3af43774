"""Exact update rules, one small frozen dataclass each (equation and paper in the docstring).

Bandits: ``SoftmaxPG``, ``MirrorDescent`` (= ``NaturalPG``; magnetic when β > 0),
``EntropyMirrorDescent``. MDPs: ``PolicyIteration``, ``SoftPolicyIteration``, ``MDPO``,
``SoftmaxPGMDP``. Preference games: ``SelfPlayMWU``, ``NashMD``, ``OnlineIPO``, ``IPOMD``,
``NashMirrorProx``, ``EGPO``, ``OMWU``, ``INPO``, ``MagneticMD``; the Bradley–Terry RLHF
pipeline ``BradleyTerryRLHF``; direct preference losses ``OfflineDPO`` / ``OnlineDPO``.
"""

from .bandit import EntropyMirrorDescent, MirrorDescent, NaturalPG, SoftmaxPG
from .base import ExactAlgorithm
from .games import (
    EGPO,
    INPO,
    IPOMD,
    OMWU,
    MagneticMD,
    NashMD,
    NashMirrorProx,
    OnlineIPO,
    SelfPlayMWU,
)
from .mdp import MDPO, PolicyIteration, SoftmaxPGMDP, SoftPolicyIteration
from .preference import BradleyTerryRLHF, OfflineDPO, OnlineDPO, expected_pairs, fit_bradley_terry

__all__ = [
    "EGPO",
    "INPO",
    "IPOMD",
    "MDPO",
    "OMWU",
    "BradleyTerryRLHF",
    "EntropyMirrorDescent",
    "ExactAlgorithm",
    "MagneticMD",
    "MirrorDescent",
    "NashMD",
    "NashMirrorProx",
    "NaturalPG",
    "OfflineDPO",
    "OnlineDPO",
    "OnlineIPO",
    "PolicyIteration",
    "SelfPlayMWU",
    "SoftPolicyIteration",
    "SoftmaxPG",
    "SoftmaxPGMDP",
    "expected_pairs",
    "fit_bradley_terry",
]

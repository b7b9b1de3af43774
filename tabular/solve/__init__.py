"""Ground truth: the answers every exact and sampled update is checked against.

- bandits: the KL-regularised optimum π* ∝ ref·exp(r/β)            (``kl_regularized``)
- MDPs: (soft) value iteration and exact policy evaluation          (``value_iteration``,
  ``policy_evaluation``)
- preference games: the Nash equilibrium by linear programming and the unique
  τ-KL-regularised Nash equilibrium                     (``nash``, ``regularized_nash``)
"""

from .bandit import kl_regularized
from .games import nash, regularized_nash
from .mdp import MDPSolution, policy_evaluation, value_iteration

__all__ = [
    "MDPSolution",
    "kl_regularized",
    "nash",
    "policy_evaluation",
    "regularized_nash",
    "value_iteration",
]

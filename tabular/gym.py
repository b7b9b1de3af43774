"""Gymnasium toy-text environments ⇄ ``FiniteMDP``.

``mdp_from_gymnasium(env)`` reads the transition table every toy-text env carries,

    env.unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]

(FrozenLake-v1, CliffWalking-v1, Taxi-v4, slippery / rainy variants included) and builds the
exact MDP whose discounted values are those of the gym episode: a transition flagged
``terminated`` ends the episode, so it must lead to an absorbing, zero-reward state. The table
does not always say so — CliffWalking's goal 47 walks on (``P[47][0] = [(1.0, 35, -1, False)]``)
and Taxi's drop-off states are ordinary states — so such transitions are sent to an added
absorbing copy of their target, which emits the target's observation. ``MDPEnv``
(``FiniteMDP.to_gymnasium``) runs any FiniteMDP as a gymnasium env with the same
(observation, reward, terminated) distribution as the original.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from typing import ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import EnvSpec

from ._checks import check_int
from .problems import FiniteMDP

__all__ = ["MDPEnv", "mdp_from_gymnasium"]


def _table(env):
    """env.unwrapped.P as a list (states) of lists (actions) of lists of transitions."""
    base = getattr(env, "unwrapped", env)
    table = getattr(base, "P", None)
    if not isinstance(table, (dict, list, tuple)) or len(table) == 0:
        raise TypeError(
            f"env must carry a toy-text transition table env.unwrapped.P[s][a] = "
            f"[(prob, next_state, reward, terminated), ...]; {type(base).__name__} has none"
        )
    if getattr(base, "fickle_passenger", False):
        raise ValueError(
            "env: Taxi with fickle_passenger=True changes the destination outside its table P "
            "(the dynamics are not Markov in the table's states), so it has no exact FiniteMDP"
        )
    S = len(table)
    if isinstance(table, dict) and sorted(table) != list(range(S)):
        raise ValueError(f"env.P must have the states 0..{S - 1} as keys")
    rows = []
    for s in range(S):
        actions = table[s]
        n_actions = len(actions)
        if isinstance(actions, dict) and sorted(actions) != list(range(n_actions)):
            raise ValueError(f"env.P[{s}] must have the actions 0..{n_actions - 1} as keys")
        rows.append([list(actions[a]) for a in range(n_actions)])
    A = len(rows[0])
    if A == 0 or any(len(row) != A for row in rows):
        raise ValueError("env.P must give every state the same (non-zero) number of actions")
    return base, rows, S, A


def _parse(entry, s, a, S):
    where = f"env.P[{s}][{a}]"
    try:
        prob, nxt, reward, terminated = entry
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} entries must be (prob, next_state, reward, terminated)"
        ) from None
    prob, reward = float(prob), float(reward)
    if not (math.isfinite(prob) and 0.0 <= prob <= 1.0):
        raise ValueError(f"{where}: transition probability must be in [0, 1], got {prob}")
    if not math.isfinite(reward):
        raise ValueError(f"{where}: reward must be finite (found NaN or inf)")
    if isinstance(nxt, bool) or not isinstance(nxt, numbers.Integral) or not 0 <= nxt < S:
        raise ValueError(f"{where}: next_state must be an int in [0, {S}), got {nxt!r}")
    return prob, int(nxt), reward, bool(terminated)


def mdp_from_gymnasium(env, gamma: float = 0.99, init=None) -> FiniteMDP:
    """The exact FiniteMDP of a toy-text gymnasium env, from its table ``env.unwrapped.P``.

    For each table entry (p, s', r, terminated) of (s, a):

        terminated = False:  P(s'|s, a) += p,        R(s, a, s') = r
        terminated = True:   P(s̄'|s, a) += p,        R(s, a, s̄') = r

    where s̄' is s' itself when the table already makes s' absorbing with zero reward
    (P[s'][a] = [(1, s', 0, ·)] for every a, and every transition into s' is terminated —
    FrozenLake's holes and goal), and otherwise an added state that loops to itself with
    reward 0 (CliffWalking's goal, Taxi's drop-offs). Added states come after the original
    ones (which keep their numbers), emit the original state's number as ``observation``, and
    are marked in ``terminal``, so V(s) for every original s is the gym episode's expected
    discounted return from s.

    Entries with the same (s', terminated, reward) are merged by summing probabilities.
    Entries with the same (s', terminated) but different rewards (slippery CliffWalking from
    its start state: the -1 bump into the wall and the -100 fall off the cliff both land on
    36) cannot share R(s, a, s'): the largest reward stays on s' and each other one goes to an
    added copy of s' (one per (s', terminated, reward), shared by all (s, a)) with s'’s
    dynamics and observation, so the reward distribution stays exact and the values are
    unchanged (the copy is bisimilar to s').

    Args:
        env: a gymnasium env (wrappers are fine) whose ``unwrapped.P`` is a toy-text table.
        gamma: discount γ ∈ [0, 1).
        init: initial-state distribution over the original states; default
            ``env.unwrapped.initial_state_distrib``.

    Returns:
        FiniteMDP with per-transition rewards R[s, a, s'], ``terminal`` and ``observation``.
    """
    base, rows, S, A = _table(env)

    # 1. merge entries per (s, a) into {(s', terminated, reward): prob}
    merged = [[None] * A for _ in range(S)]
    for s in range(S):
        for a in range(A):
            outcome: dict = defaultdict(float)
            for entry in rows[s][a]:
                prob, nxt, reward, term = _parse(entry, s, a, S)
                if prob > 0:
                    outcome[(nxt, term, reward)] += prob
            merged[s][a] = dict(outcome)

    # 2. which original states are absorbing with zero reward, reached only by terminations
    arrivals = defaultdict(set)  # s' -> set of terminated flags of transitions into it
    for s in range(S):
        for a in range(A):
            for nxt, term, _ in merged[s][a]:
                arrivals[nxt].add(term)
    absorbing = [
        all(list(merged[s][a]) in ([(s, True, 0.0)], [(s, False, 0.0)]) for a in range(A))
        for s in range(S)
    ]
    own_terminal = [absorbing[s] and arrivals[s] == {True} for s in range(S)]

    # 3. number the states: originals, then added absorbing copies and reward-variant copies
    extra: dict = {}  # (s', terminated, reward or None) -> index
    extra_obs: list[int] = []
    extra_terminal: list[bool] = []
    extra_source: list[int | None] = []  # the original whose dynamics a non-terminal copy has

    def target(nxt: int, term: bool, variant: float | None) -> int:
        if variant is None and (not term or own_terminal[nxt]):
            return nxt
        key = (nxt, term, variant)
        if key not in extra:
            extra[key] = S + len(extra)
            extra_obs.append(nxt)
            extra_terminal.append(term)
            extra_source.append(None if term else nxt)
        return extra[key]

    transitions = [[None] * A for _ in range(S)]  # (s, a) -> [(index, prob, reward)]
    for s in range(S):
        for a in range(A):
            rewards: dict = defaultdict(list)  # (s', term) -> rewards seen from this (s, a)
            for nxt, term, reward in merged[s][a]:
                rewards[(nxt, term)].append(reward)
            out = []
            for (nxt, term, reward), prob in merged[s][a].items():
                # The largest reward keeps the plain target; any other reward of the same
                # (s', terminated) from this (s, a) goes to a copy keyed by that reward.
                variant = None if reward == max(rewards[(nxt, term)]) else reward
                out.append((target(nxt, term, variant), prob, reward))
            transitions[s][a] = out

    n = S + len(extra)
    P = np.zeros((n, A, n))
    R = np.zeros((n, A, n))
    for s in range(S):
        for a in range(A):
            for idx, prob, reward in transitions[s][a]:
                P[s, a, idx] += prob
                R[s, a, idx] = reward
    for k, src in enumerate(extra_source):
        i = S + k
        if src is None:  # absorbing: loops to itself with reward 0 under every action
            P[i, :, i] = 1.0
        else:  # a reward-variant copy behaves exactly like its original
            P[i], R[i] = P[src], R[src]

    if init is None:
        init = getattr(base, "initial_state_distrib", None)
        if init is None:
            raise ValueError(
                f"init: {type(base).__name__} has no initial_state_distrib; pass "
                f"init=[probabilities over its {S} states]"
            )
    init = np.asarray(init, dtype=np.float64)
    if init.shape != (S,):
        raise ValueError(f"init must have shape [S] = ({S},) (the env's states), got {init.shape}")
    terminal = np.array([own_terminal[s] for s in range(S)] + extra_terminal, dtype=bool)
    observation = np.array(list(range(S)) + extra_obs, dtype=np.int64)
    spec = getattr(env, "spec", None)
    names = {"env_id": spec.id} if spec is not None else {}
    return FiniteMDP(
        P=P,
        R=R,
        gamma=gamma,
        init=np.concatenate([init, np.zeros(n - S)]),
        terminal=terminal,
        observation=observation,
        names=names,
    )


class MDPEnv(gymnasium.Env):
    """A FiniteMDP as a gymnasium env (``FiniteMDP.to_gymnasium``).

        reset:  s₀ ~ init
        step a: s' ~ P(·|s, a);  returns (observation[s'], R(s, a, s'), terminal[s'],
                truncated, {"prob": P(s'|s, a)})

    ``truncated`` is True from step ``max_episode_steps`` on (like gymnasium's TimeLimit).
    The observation space is Discrete(max observation + 1), the action space Discrete(A).
    ``transition_distribution(s, a)`` gives the exact law ``step`` samples from.
    """

    metadata: ClassVar[dict] = {"render_modes": []}

    def __init__(self, mdp: FiniteMDP, max_episode_steps: int | None = None, render_mode=None):
        if not isinstance(mdp, FiniteMDP):
            raise TypeError(f"mdp must be a tabular FiniteMDP, got {type(mdp).__name__}")
        if max_episode_steps is not None:
            max_episode_steps = check_int(max_episode_steps, "max_episode_steps", minimum=1)
        if render_mode is not None:
            raise ValueError(f"render_mode: MDPEnv does not render, got {render_mode!r}")
        self.mdp = mdp
        self.max_episode_steps = max_episode_steps
        self.render_mode = None
        self.observation_space = spaces.Discrete(int(mdp.observation.max()) + 1)
        self.action_space = spaces.Discrete(mdp.n_actions)
        # A spec lets ``env.spec.make()`` rebuild the env (gymnasium's checker uses it).
        self.spec = EnvSpec(
            id="mirrorlab/FiniteMDP-v0",
            entry_point=MDPEnv,
            kwargs={"mdp": mdp, "max_episode_steps": max_episode_steps},
        )
        self._cum_P = np.cumsum(mdp.P, axis=-1)
        self._cum_init = np.cumsum(mdp.init)
        self._R = mdp.reward_sas
        self.s: int | None = None
        self._elapsed = 0

    @staticmethod
    def _sample(cum: np.ndarray, u: float) -> int:
        return int(min(np.searchsorted(cum, u * cum[-1], side="right"), cum.size - 1))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.s = self._sample(self._cum_init, self.np_random.random())
        self._elapsed = 0
        return int(self.mdp.observation[self.s]), {"prob": float(self.mdp.init[self.s])}

    def step(self, action):
        if self.s is None:
            raise RuntimeError("MDPEnv: call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in {self.action_space}, got {action!r}")
        a = int(action)
        s = self.s
        nxt = self._sample(self._cum_P[s, a], self.np_random.random())
        self.s = nxt
        self._elapsed += 1
        truncated = self.max_episode_steps is not None and self._elapsed >= self.max_episode_steps
        return (
            int(self.mdp.observation[nxt]),
            float(self._R[s, a, nxt]),
            bool(self.mdp.terminal[nxt]),
            bool(truncated),
            {"prob": float(self.mdp.P[s, a, nxt])},
        )

    def transition_distribution(self, s: int, a: int) -> dict:
        """{(observation, reward, terminated): probability} of ``step(a)`` from state s."""
        s = check_int(s, "s", minimum=0)
        a = check_int(a, "a", minimum=0)
        if s >= self.mdp.n_states or a >= self.mdp.n_actions:
            raise ValueError(
                f"(s, a) must be in [0, {self.mdp.n_states}) × [0, {self.mdp.n_actions}), "
                f"got ({s}, {a})"
            )
        law: dict = defaultdict(float)
        for nxt in np.flatnonzero(self.mdp.P[s, a]):
            key = (
                int(self.mdp.observation[nxt]),
                float(self._R[s, a, nxt]),
                bool(self.mdp.terminal[nxt]),
            )
            law[key] += float(self.mdp.P[s, a, nxt])
        return dict(law)

"""Gymnasium toy-text ⇄ FiniteMDP (tabular.gym), checked against the raw tables ``env.P``.

Every expected answer here is read or computed from ``env.unwrapped.P`` directly (value
iteration with (1 − terminated) bootstrapping, outcome distributions), never from the
converted MDP.
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scipy.stats import chisquare

from tabular.gym import MDPEnv, mdp_from_gymnasium
from tabular.problems import FiniteMDP
from tabular.solve.mdp import value_iteration

ENVS = {
    "frozenlake4": ("FrozenLake-v1", {"is_slippery": True}),
    "frozenlake4-det": ("FrozenLake-v1", {"is_slippery": False}),
    "frozenlake8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}),
    "cliff": ("CliffWalking-v1", {}),
    "cliff-slippery": ("CliffWalking-v1", {"is_slippery": True}),
    "taxi": ("Taxi-v4", {}),
    "taxi-rainy": ("Taxi-v4", {"is_rainy": True}),
}
_ENV_CACHE: dict = {}
_MDP_CACHE: dict = {}


def make(key: str):
    if key not in _ENV_CACHE:
        name, kwargs = ENVS[key]
        _ENV_CACHE[key] = gym.make(name, **kwargs)
    return _ENV_CACHE[key]


def converted(key: str, gamma: float = 0.95) -> FiniteMDP:
    if (key, gamma) not in _MDP_CACHE:
        _MDP_CACHE[key, gamma] = FiniteMDP.from_gymnasium(make(key), gamma=gamma)
    return _MDP_CACHE[key, gamma]


def raw_outcomes(env, s: int, a: int) -> dict:
    """{(next_state, reward, terminated): prob} straight from the toy-text table."""
    law: dict = defaultdict(float)
    for prob, nxt, reward, term in env.unwrapped.P[s][a]:
        if prob > 0:
            law[int(nxt), float(reward), bool(term)] += prob
    return dict(law)


def raw_value_iteration(env, gamma: float) -> np.ndarray:
    """V(s) = max_a Σ p·(r + γ·(1 − terminated)·V(s')) over the raw table, to 1e-12."""
    table = env.unwrapped.P
    S, A = len(table), len(table[0])
    rows, probs, nexts, rewards, conts = [], [], [], [], []
    for s in range(S):
        for a in range(A):
            for prob, nxt, reward, term in table[s][a]:
                rows.append(s * A + a)
                probs.append(prob)
                nexts.append(nxt)
                rewards.append(reward)
                conts.append(0.0 if term else 1.0)
    rows, probs, nexts = np.array(rows), np.array(probs), np.array(nexts)
    rewards, conts = np.array(rewards, dtype=float), np.array(conts)
    V = np.zeros(S)
    for _ in range(100_000):
        Q = np.bincount(rows, probs * (rewards + gamma * conts * V[nexts]), minlength=S * A)
        new = Q.reshape(S, A).max(axis=1)
        if np.max(np.abs(new - V)) < 1e-13 * (1 - gamma):
            return new
        V = new
    raise AssertionError("raw value iteration did not converge")


def is_absorbing_zero_reward(mdp: FiniteMDP, j: int) -> bool:
    return bool(np.all(mdp.P[j, :, j] == 1.0) and np.all(mdp.reward_sas[j, :, j] == 0.0))


# --------------------------------------------------------------------------------------
# from_gymnasium
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(ENVS))
def test_terminating_transitions_lead_to_absorbing_zero_reward_states(key):
    env, mdp = make(key), converted(key)
    S_raw = len(env.unwrapped.P)
    assert mdp.n_states >= S_raw
    np.testing.assert_array_equal(mdp.observation[:S_raw], np.arange(S_raw))
    n_terminating = 0
    for s in range(S_raw):
        for a in range(mdp.n_actions):
            for _, nxt, _, term in env.unwrapped.P[s][a]:
                # the MDP states this entry can land in emit its observation
                targets = np.flatnonzero((mdp.P[s, a] > 0) & (mdp.observation == nxt))
                assert targets.size >= 1
                if term:
                    n_terminating += 1
                    hits = [j for j in targets if mdp.terminal[j]]
                    assert hits and all(is_absorbing_zero_reward(mdp, j) for j in hits)
    assert n_terminating > 0
    # every terminal state of the MDP is absorbing with zero reward
    assert all(is_absorbing_zero_reward(mdp, j) for j in np.flatnonzero(mdp.terminal))
    np.testing.assert_allclose(mdp.init[:S_raw], env.unwrapped.initial_state_distrib)
    assert np.all(mdp.init[S_raw:] == 0)


def test_frozenlake_uses_its_own_absorbing_states():
    env, mdp = make("frozenlake4"), converted("frozenlake4")
    assert mdp.n_states == 16
    desc = env.unwrapped.desc.reshape(-1)
    np.testing.assert_array_equal(mdp.terminal, np.isin(desc, [b"H", b"G"]))
    # reaching the goal pays 1 on the transition into it
    assert mdp.reward_sas[14, 2, 15] == 1.0 and mdp.P[14, 2, 15] == pytest.approx(1 / 3)


def test_cliffwalking_goal_gets_an_absorbing_copy():
    env, mdp = make("cliff"), converted("cliff")
    assert env.unwrapped.P[47][0] == [(1.0, 35, -1, False)]  # the table's goal walks on
    assert mdp.n_states == 49
    assert mdp.terminal[48] and mdp.observation[48] == 47 and not mdp.terminal[47]
    assert is_absorbing_zero_reward(mdp, 48)
    assert mdp.P[47, 0, 35] == 1.0  # the original goal state keeps its table row
    assert mdp.P[35, 2, 48] == 1.0 and mdp.reward_sas[35, 2, 48] == -1.0
    # optimal return from the start: 13 steps of −1 (γ → 1 limit is −13)
    for gamma in (0.999, 1 - 1e-7):
        V = value_iteration(converted("cliff", gamma)).V
        np.testing.assert_allclose(V[36], -sum(gamma**k for k in range(13)), atol=1e-8)
    assert V[36] == pytest.approx(-13.0, abs=1e-4)


def test_taxi_dropoffs_get_absorbing_copies():
    env, mdp = make("taxi"), converted("taxi")
    dropped = sorted(
        {nxt for s in range(500) for a in range(6) for _, nxt, _, t in env.unwrapped.P[s][a] if t}
    )
    assert mdp.n_states == 500 + len(dropped) == 504
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), np.arange(500, 504))
    np.testing.assert_array_equal(np.sort(mdp.observation[500:]), dropped)


def test_slippery_cliff_keeps_both_rewards_into_the_start_state():
    env, mdp = make("cliff-slippery"), converted("cliff-slippery")
    law = raw_outcomes(env, 36, 1)  # from the start, "right": wall bump or cliff fall → 36
    assert {k for k in law if k[0] == 36} == {(36, -1.0, False), (36, -100.0, False)}
    copies = np.flatnonzero((mdp.observation == 36) & ~mdp.terminal)
    assert copies.size == 2  # state 36 and one copy reached with reward −100
    np.testing.assert_array_equal(mdp.P[copies[0]], mdp.P[copies[1]])


@pytest.mark.parametrize("key", list(ENVS))
def test_values_equal_value_iteration_on_the_raw_table(key):
    gamma = 0.95
    env = make(key)
    V_raw = raw_value_iteration(env, gamma)
    V = value_iteration(converted(key, gamma)).V
    np.testing.assert_allclose(V[: len(V_raw)], V_raw, rtol=0, atol=1e-8)


# --------------------------------------------------------------------------------------
# to_gymnasium
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(ENVS))
def test_mdp_env_reproduces_every_outcome_distribution(key):
    env, mdp = make(key), converted(key)
    menv = mdp.to_gymnasium()
    assert isinstance(menv, MDPEnv)
    S_raw = len(env.unwrapped.P)
    assert menv.observation_space == gym.spaces.Discrete(S_raw) == env.observation_space
    assert menv.action_space == env.action_space
    for s in range(S_raw):
        for a in range(mdp.n_actions):
            want = raw_outcomes(env, s, a)
            got = menv.transition_distribution(s, a)
            assert got.keys() == want.keys(), (s, a)
            for k, p in want.items():
                assert got[k] == pytest.approx(p, abs=1e-12), (s, a, k)
    for j in range(S_raw, mdp.n_states):  # added states
        for a in range(mdp.n_actions):
            law = menv.transition_distribution(j, a)
            if mdp.terminal[j]:
                assert law == {(int(mdp.observation[j]), 0.0, True): 1.0}
            else:  # a reward-variant copy acts like its original
                assert law == menv.transition_distribution(int(mdp.observation[j]), a)


@pytest.mark.parametrize(
    "key, s, a", [("frozenlake4", 6, 1), ("cliff-slippery", 36, 1), ("taxi-rainy", 224, 0)]
)
def test_mdp_env_samples_match_the_table(key, s, a):
    env, mdp = make(key), converted(key)
    menv = mdp.to_gymnasium()
    menv.reset(seed=12345)
    n = 4000
    counts: Counter = Counter()
    for _ in range(n):
        menv.s = s
        obs, reward, terminated, truncated, info = menv.step(a)
        counts[obs, reward, terminated] += 1
        assert info["prob"] > 0 and not truncated
        assert isinstance(obs, int) and isinstance(reward, float)
    want = raw_outcomes(env, s, a)
    assert set(counts) <= set(want)
    keys = sorted(want)
    observed = np.array([counts[k] for k in keys])
    expected = n * np.array([want[k] for k in keys])
    assert len(keys) >= 2
    assert chisquare(observed, expected).pvalue > 1e-3


def test_reset_samples_init_and_is_seeded():
    env = make("cliff")
    init = np.zeros(48)
    init[[0, 12, 36]] = [0.2, 0.3, 0.5]
    mdp = mdp_from_gymnasium(env, gamma=0.9, init=init)
    menv = mdp.to_gymnasium()
    runs = [[menv.reset(seed=7)[0]] + [menv.reset()[0] for _ in range(30)] for _ in range(2)]
    assert runs[0] == runs[1] and len(set(runs[0])) == 3
    menv.reset(seed=0)
    obs = [menv.reset()[0] for _ in range(3000)]
    counts = Counter(obs)
    assert set(counts) == {0, 12, 36}
    observed = np.array([counts[k] for k in (0, 12, 36)])
    assert chisquare(observed, 3000 * np.array([0.2, 0.3, 0.5])).pvalue > 1e-3


def test_episode_flags_and_truncation():
    mdp = converted("cliff")
    menv = mdp.to_gymnasium(max_episode_steps=20)
    obs, info = menv.reset(seed=0)
    assert obs == 36 and info == {"prob": 1.0}
    # up, then right ×11, then down: reaches the goal on step 13 with −1 per step
    total, flags = 0.0, []
    for a in [0] + [1] * 11 + [2]:
        obs, reward, terminated, truncated, info = menv.step(a)
        total += reward
        flags.append((terminated, truncated))
    assert obs == 47 and total == -13.0 and flags[-1] == (True, False)
    assert not any(t for t, _ in flags[:-1])
    # walking into the cliff costs −100 and returns to the start without ending
    menv.reset(seed=1)
    assert menv.step(1)[:3] == (36, -100.0, False)
    # truncation after max_episode_steps steps
    menv.reset(seed=2)
    results = [menv.step(3) for _ in range(20)]  # bump into the left wall
    assert [r[4] for r in results][:1] == [{"prob": 1.0}]
    assert [r[3] for r in results] == [False] * 19 + [True]
    assert not any(r[2] for r in results)


def test_check_env_passes_without_warnings():
    for key in ("frozenlake8", "cliff-slippery", "taxi"):
        menv = converted(key).to_gymnasium(max_episode_steps=100)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(menv)
            check_env(menv.unwrapped)
        rebuilt = menv.spec.make()
        assert rebuilt.unwrapped.max_episode_steps == 100


def test_mdp_env_rejects_misuse():
    menv = converted("frozenlake4").to_gymnasium()
    with pytest.raises(RuntimeError, match="reset"):
        menv.step(0)
    menv.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        menv.step(4)
    with pytest.raises(ValueError, match="s, a"):
        menv.transition_distribution(16, 0)
    with pytest.raises(ValueError, match="max_episode_steps"):
        MDPEnv(converted("frozenlake4"), max_episode_steps=0)
    with pytest.raises(TypeError, match="mdp"):
        MDPEnv(make("frozenlake4"))
    with pytest.raises(ValueError, match="render_mode"):
        MDPEnv(converted("frozenlake4"), render_mode="human")


def test_plain_finite_mdp_runs_as_an_env():
    P = np.zeros((3, 2, 3))
    P[0, 0] = [0.0, 0.5, 0.5]
    P[0, 1] = [1.0, 0.0, 0.0]
    P[1, :, 2] = 1.0
    P[2, :, 2] = 1.0  # absorbing with zero reward: terminal by default
    R = np.zeros((3, 2))
    R[0, 0] = 1.0
    R[1] = 2.0
    menv = FiniteMDP(P, R, gamma=0.9, init=[1.0, 0.0, 0.0]).to_gymnasium()
    assert menv.observation_space == gym.spaces.Discrete(3)
    assert menv.transition_distribution(0, 0) == {(1, 1.0, False): 0.5, (2, 1.0, True): 0.5}
    assert menv.transition_distribution(1, 1) == {(2, 2.0, True): 1.0}


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


class FakeToyText:
    """A stand-in with a hand-written table (not a gymnasium env)."""

    def __init__(self, P, init=(1.0, 0.0)):
        self.P = P
        if init is not None:
            self.initial_state_distrib = np.array(init)


GOOD = {0: {0: [(1.0, 1, 1.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}


def test_handwritten_table_converts():
    mdp = mdp_from_gymnasium(FakeToyText(GOOD), gamma=0.5)
    assert mdp.n_states == 2 and mdp.terminal.tolist() == [False, True]
    np.testing.assert_allclose(value_iteration(mdp).V, [1.0, 0.0])


def test_bad_envs_are_rejected():
    with pytest.raises(TypeError, match="transition table"):
        mdp_from_gymnasium(gym.make("CartPole-v1"))
    with pytest.raises(TypeError, match="transition table"):
        mdp_from_gymnasium(object())
    with pytest.raises(ValueError, match="init"):
        mdp_from_gymnasium(FakeToyText(GOOD, init=None))
    with pytest.raises(ValueError, match="init must sum to 1"):
        mdp_from_gymnasium(FakeToyText(GOOD, init=(0.5, 0.2)))
    with pytest.raises(ValueError, match="gamma"):
        mdp_from_gymnasium(make("frozenlake4"), gamma=1.0)
    with pytest.raises(ValueError, match="fickle"):
        mdp_from_gymnasium(gym.make("Taxi-v4", fickle_passenger=True))


@pytest.mark.parametrize(
    "table, match",
    [
        ({0: {0: [(1.0, 1, float("nan"), True)]}, 1: GOOD[1]}, r"reward must be finite"),
        ({0: {0: [(1.0, 5, 0.0, True)]}, 1: GOOD[1]}, r"next_state must be an int"),
        ({0: {0: [(1.5, 1, 0.0, True)]}, 1: GOOD[1]}, r"probability must be in \[0, 1\]"),
        ({0: {0: [(0.5, 1, 0.0, True)]}, 1: GOOD[1]}, r"P must sum to 1"),
        ({0: {0: [(1.0, 1, 0.0)]}, 1: GOOD[1]}, r"entries must be \(prob, next_state"),
        ({0: {0: GOOD[0][0], 1: GOOD[0][0]}, 1: GOOD[1]}, r"same \(non-zero\) number of actions"),
        ({0: GOOD[0], 2: GOOD[1]}, r"states 0\.\.1 as keys"),
    ],
)
def test_bad_tables_are_rejected(table, match):
    with pytest.raises(ValueError, match=match):
        mdp_from_gymnasium(FakeToyText(table))

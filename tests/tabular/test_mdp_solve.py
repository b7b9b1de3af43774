"""Ground truth on finite MDPs (tabular.solve.mdp) against answers computed independently here.

Independent answers: the linear program for V*, policy iteration and the Bellman expectation
operator written from their definitions, scipy.optimize.root on the soft Bellman equation,
and the power series of the discounted occupancy. None of them calls the module under test.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, root
from scipy.special import logsumexp

from tabular.problems import FiniteMDP
from tabular.solve import mdp as mdp_solve
from tabular.solve.mdp import (
    MDPSolution,
    policy_evaluation,
    policy_value,
    soft_bellman_residual,
    state_occupancy,
    value_gap,
    value_iteration,
)

ENVS = {
    "frozenlake4": ("FrozenLake-v1", {"is_slippery": True}, 0.99),
    "frozenlake8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}, 0.99),
    "cliff": ("CliffWalking-v1", {}, 0.99),
    "taxi": ("Taxi-v4", {}, 0.95),
}
_CACHE: dict = {}


def env_mdp(key: str) -> FiniteMDP:
    if key not in _CACHE:
        name, kwargs, gamma = ENVS[key]
        _CACHE[key] = FiniteMDP.from_gymnasium(gym.make(name, **kwargs), gamma=gamma)
    return _CACHE[key]


# --------------------------------------------------------------------------------------
# independent solvers (from the definitions; nothing from tabular.solve)
# --------------------------------------------------------------------------------------


def reward_table(mdp: FiniteMDP) -> np.ndarray:
    R = mdp.R if mdp.R.ndim == 3 else mdp.R[:, :, None]
    return np.sum(mdp.P * R, axis=-1)


def lp_optimal_values(mdp: FiniteMDP) -> np.ndarray:
    """min Σ_s V(s) s.t. V(s) ≥ r(s, a) + γ Σ_s' P(s'|s, a) V(s') for all (s, a)."""
    S, A = mdp.n_states, mdp.n_actions
    r = reward_table(mdp)
    A_ub = (mdp.gamma * mdp.P - np.eye(S)[:, None, :]).reshape(S * A, S)
    res = linprog(
        np.ones(S),
        A_ub=A_ub,
        b_ub=-r.reshape(-1),
        bounds=[(None, None)] * S,
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0, res.message
    return res.x


def howard_policy_iteration(mdp: FiniteMDP) -> np.ndarray:
    """Deterministic policy iteration; keeps the current action unless another is better."""
    S = mdp.n_states
    r = reward_table(mdp)
    act = np.zeros(S, dtype=int)
    for _ in range(1000):
        P_pi = mdp.P[np.arange(S), act]
        V = np.linalg.solve(np.eye(S) - mdp.gamma * P_pi, r[np.arange(S), act])
        Q = r + mdp.gamma * mdp.P @ V
        better = Q.max(axis=1) > Q[np.arange(S), act] + 1e-12 * (1 + np.abs(V))
        if not better.any():
            return V
        act = np.where(better, Q.argmax(axis=1), act)
    raise AssertionError("policy iteration did not stop")


def soft_values_by_root(mdp: FiniteMDP, beta: float, ref: np.ndarray) -> np.ndarray:
    """Solve V(s) = β log Σ_a ref(a|s) exp((r(s,a) + γ Σ P V)/β) with scipy.optimize.root."""
    S = mdp.n_states
    r = reward_table(mdp)
    log_ref = np.log(ref)

    def F(V):
        logits = log_ref + (r + mdp.gamma * mdp.P @ V) / beta
        soft = beta * logsumexp(logits, axis=1)
        pi = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        jac = np.eye(S) - mdp.gamma * np.einsum("sa,sat->st", pi, mdp.P)
        return V - soft, jac

    V = root(F, np.zeros(S), jac=True, method="hybr", options={"xtol": 1e-13}).x
    for _ in range(3):  # polish with Newton steps: quadratic convergence to rounding
        f, J = F(V)
        V = V - np.linalg.solve(J, f)
    assert np.max(np.abs(F(V)[0])) < 1e-11
    return V


def iterate_expectation_operator(mdp: FiniteMDP, policy, beta: float, ref) -> np.ndarray:
    """V ← Σ_a π(a|s)[r(s,a) − β log(π/ref) + γ Σ P V] until the change is < 1e-14."""
    r = reward_table(mdp)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(policy > 0, np.log(policy) - np.log(ref), 0.0)
    V = np.zeros(policy.shape[:-1])
    for _ in range(100_000):
        Q = r + mdp.gamma * np.einsum("sat,...t->...sa", mdp.P, V)
        new = np.sum(policy * (Q - beta * log_ratio), axis=-1)
        if np.max(np.abs(new - V)) < 1e-14:
            return new
        V = new
    raise AssertionError("expectation operator did not converge")


def uniform(mdp: FiniteMDP) -> np.ndarray:
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def random_policies(rng, shape, mdp: FiniteMDP, zeros: bool = False) -> np.ndarray:
    p = rng.dirichlet(np.ones(mdp.n_actions), size=(*shape, mdp.n_states))
    if zeros:
        p = np.where(rng.random(p.shape) < 0.3, 0.0, p)
        p[..., 0] += 1e-3
        p /= p.sum(axis=-1, keepdims=True)
    return p


def random_mdp(seed: int, S: int, A: int, gamma: float, sparse: bool = True) -> FiniteMDP:
    rng = np.random.default_rng(seed)
    P = rng.exponential(size=(S, A, S))
    if sparse:
        P *= rng.random((S, A, S)) < 0.5
        P[np.arange(S), :, rng.integers(S, size=S)] += 0.1
    P /= P.sum(axis=-1, keepdims=True)
    R = rng.normal(size=(S, A, S)) * rng.choice([0.1, 1.0, 10.0])
    return FiniteMDP(P, R, gamma=gamma, init=rng.dirichlet(np.ones(S)))


# --------------------------------------------------------------------------------------
# value iteration, β = 0
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(ENVS))
def test_value_iteration_matches_lp_and_policy_iteration(key):
    mdp = env_mdp(key)
    sol = value_iteration(mdp)
    assert isinstance(sol, MDPSolution)
    assert sol.V.shape == (mdp.n_states,) and sol.Q.shape == sol.policy.shape
    np.testing.assert_allclose(sol.V, lp_optimal_values(mdp), rtol=0, atol=1e-8)
    np.testing.assert_allclose(sol.V, howard_policy_iteration(mdp), rtol=0, atol=1e-8)
    # the returned policy is greedy: all its mass on actions within 1e-8 of max_a Q
    gap = sol.Q.max(axis=1, keepdims=True) - sol.Q
    assert np.all(sol.policy[gap > 1e-8] == 0)
    np.testing.assert_allclose(sol.policy.sum(axis=1), 1.0, atol=1e-12)


def test_value_iteration_sweeps_agree_with_newton():
    mdp = env_mdp("frozenlake4")
    tol = 1e-9
    a = value_iteration(mdp, tol=tol, method="sweeps").V
    b = value_iteration(mdp, tol=tol, method="newton").V
    v_star = lp_optimal_values(mdp)
    assert np.max(np.abs(a - v_star)) <= tol
    assert np.max(np.abs(b - v_star)) <= tol
    # a loose tol stops early yet still meets its own bound
    loose = value_iteration(mdp, tol=1e-3, method="sweeps").V
    assert 0 < np.max(np.abs(loose - v_star)) <= 1e-3


def test_ties_split_uniformly():
    # two identical actions in state 0, a worse third; state 1 absorbing
    P = np.zeros((2, 3, 2))
    P[0, :, 1] = 1.0
    P[1, :, 1] = 1.0
    R = np.array([[1.0, 1.0, 0.5], [0.0, 0.0, 0.0]])
    sol = value_iteration(FiniteMDP(P, R, gamma=0.9))
    np.testing.assert_allclose(sol.policy[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(sol.policy[1], [1 / 3] * 3)
    np.testing.assert_allclose(sol.V, [1.0, 0.0])


def test_gamma_zero_is_the_greedy_bandit():
    rng = np.random.default_rng(3)
    mdp = FiniteMDP(rng.dirichlet(np.ones(4), size=(4, 3)), rng.normal(size=(4, 3)), gamma=0.0)
    sol = value_iteration(mdp)
    np.testing.assert_allclose(sol.V, mdp.R.max(axis=1), atol=1e-15)
    sol = value_iteration(mdp, beta=0.5)
    np.testing.assert_allclose(sol.V, 0.5 * logsumexp(mdp.R / 0.5, b=1 / 3, axis=1), atol=1e-13)


# --------------------------------------------------------------------------------------
# soft value iteration, β > 0
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["frozenlake4", "frozenlake8", "cliff"])
@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_soft_value_iteration_matches_root_solve(key, beta):
    mdp = env_mdp(key)
    sol = value_iteration(mdp, beta=beta)
    V_root = soft_values_by_root(mdp, beta, uniform(mdp))
    np.testing.assert_allclose(sol.V, V_root, rtol=0, atol=1e-8)
    # π ∝ ref·exp(Q/β), from the independently solved values
    Q_root = reward_table(mdp) + mdp.gamma * mdp.P @ V_root
    pi_root = np.exp(Q_root / beta - logsumexp(Q_root / beta, axis=1, keepdims=True))
    np.testing.assert_allclose(sol.policy, pi_root, rtol=0, atol=1e-8)
    # consistency: the soft-optimal policy's regularised value is the soft optimum
    ev = policy_evaluation(mdp, sol.policy, beta=beta)
    np.testing.assert_allclose(ev.V, sol.V, rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev.Q, sol.Q, rtol=0, atol=1e-8)
    assert value_gap(mdp, sol.policy, beta=beta) < 1e-8
    gap_uniform = value_gap(mdp, uniform(mdp), beta=beta)
    J_uniform = iterate_expectation_operator(mdp, uniform(mdp), 0.0, uniform(mdp)) @ mdp.init
    assert gap_uniform > 1e-6
    np.testing.assert_allclose(gap_uniform, V_root @ mdp.init - J_uniform, atol=1e-8)


def test_soft_value_iteration_with_a_non_uniform_reference():
    mdp = env_mdp("frozenlake4")
    rng = np.random.default_rng(0)
    ref = rng.dirichlet(np.ones(mdp.n_actions), size=mdp.n_states)
    sol = value_iteration(mdp, beta=0.3, ref=ref)
    np.testing.assert_allclose(sol.V, soft_values_by_root(mdp, 0.3, ref), atol=1e-8)
    assert value_gap(mdp, sol.policy, beta=0.3, ref=ref) < 1e-8
    # a ref of shape [A] is shared by every state
    shared = value_iteration(mdp, beta=0.3, ref=ref[0])
    np.testing.assert_allclose(
        shared.V, soft_values_by_root(mdp, 0.3, np.tile(ref[0], (mdp.n_states, 1))), atol=1e-8
    )


def test_reference_with_zeros_restricts_the_optimum():
    mdp = env_mdp("frozenlake4")
    ref = np.tile([0.5, 0.5, 0.0, 0.0], (mdp.n_states, 1))
    # the restricted MDP (actions 0, 1 only), solved by the LP
    restricted = FiniteMDP(mdp.P[:, :2], mdp.R[:, :2], gamma=mdp.gamma, init=mdp.init)
    v_restricted = lp_optimal_values(restricted)
    hard = value_iteration(mdp, ref=ref)
    np.testing.assert_allclose(hard.V, v_restricted, atol=1e-8)
    assert np.all(hard.policy[:, 2:] == 0)
    soft = value_iteration(mdp, beta=0.2, ref=ref)
    assert np.all(soft.policy[:, 2:] == 0)
    np.testing.assert_allclose(
        soft.V, soft_values_by_root(restricted, 0.2, np.full((mdp.n_states, 2), 0.5)), atol=1e-8
    )
    # tiny β approaches the restricted hard optimum from below, without overflow
    tiny = value_iteration(mdp, beta=1e-9, ref=ref)
    assert np.all(np.isfinite(tiny.V))
    assert np.all(tiny.V <= v_restricted + 1e-8)
    assert np.all(tiny.V >= v_restricted - 1e-9 * np.log(2) / (1 - mdp.gamma) - 1e-8)


@pytest.mark.parametrize("beta", [1e-12, 1e-6])
def test_tiny_beta_is_finite_and_close_to_hard(beta):
    mdp = env_mdp("cliff")
    hard = value_iteration(mdp).V
    soft = value_iteration(mdp, beta=beta).V
    assert np.all(np.isfinite(soft))
    slack = beta * np.log(mdp.n_actions) / (1 - mdp.gamma)
    assert np.all(soft <= hard + 1e-8) and np.all(soft >= hard - slack - 1e-8)


def test_beta_sweep_is_batched():
    mdp = env_mdp("frozenlake4")
    betas = np.array([[0.0, 0.1], [1.0, 3.0]])
    sol = value_iteration(mdp, beta=betas)
    assert sol.V.shape == (2, 2, mdp.n_states) and sol.policy.shape == (2, 2, 16, 4)
    for idx in np.ndindex(2, 2):
        one = value_iteration(mdp, beta=float(betas[idx]))
        np.testing.assert_allclose(sol.V[idx], one.V, atol=1e-9)
        np.testing.assert_allclose(sol.policy[idx], one.policy, atol=1e-8)


def test_sparse_and_dense_solves_agree(monkeypatch):
    mdp = env_mdp("frozenlake8")
    rng = np.random.default_rng(1)
    pi = random_policies(rng, (2,), mdp)
    dense = policy_evaluation(mdp, pi, beta=0.3).V
    dense_d = state_occupancy(mdp, pi)
    dense_star = value_iteration(mdp, beta=0.3).V
    monkeypatch.setattr(mdp_solve, "_SPARSE_MIN_STATES", 1)
    monkeypatch.setattr(mdp_solve, "_SPARSE_MAX_DENSITY", 1.0)
    assert mdp_solve._Model(mdp).sparse
    np.testing.assert_allclose(policy_evaluation(mdp, pi, beta=0.3).V, dense, atol=1e-10)
    np.testing.assert_allclose(state_occupancy(mdp, pi), dense_d, atol=1e-12)
    np.testing.assert_allclose(value_iteration(mdp, beta=0.3).V, dense_star, atol=1e-9)


# --------------------------------------------------------------------------------------
# policy evaluation, value, occupancy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_policy_evaluation_matches_the_expectation_operator(beta):
    mdp = FiniteMDP(env_mdp("frozenlake8").P, env_mdp("frozenlake8").R, gamma=0.9)
    rng = np.random.default_rng(2)
    pi = random_policies(rng, (3, 2), mdp, zeros=True)
    ref = rng.dirichlet(np.ones(4), size=mdp.n_states)
    sol = policy_evaluation(mdp, pi, beta=beta, ref=ref)
    V_iter = iterate_expectation_operator(mdp, pi, beta, ref)
    assert sol.V.shape == (3, 2, mdp.n_states)
    np.testing.assert_allclose(sol.V, V_iter, rtol=0, atol=1e-10)
    Q_iter = reward_table(mdp) + mdp.gamma * np.einsum("sat,...t->...sa", mdp.P, V_iter)
    np.testing.assert_allclose(sol.Q, Q_iter, rtol=0, atol=1e-10)
    np.testing.assert_allclose(policy_value(mdp, pi, beta=beta, ref=ref), V_iter @ mdp.init)
    if beta > 0:  # the KL penalty lowers every value
        plain = policy_evaluation(mdp, pi).V
        assert np.all(sol.V <= plain + 1e-12) and np.any(sol.V < plain - 1e-6)


def test_batched_calls_equal_the_loop():
    mdp = env_mdp("cliff")
    rng = np.random.default_rng(4)
    pi = random_policies(rng, (2, 3), mdp)
    values = policy_value(mdp, pi, beta=0.2)
    gaps = value_gap(mdp, pi, beta=0.2)
    occ = state_occupancy(mdp, pi)
    assert values.shape == gaps.shape == (2, 3) and occ.shape == (2, 3, mdp.n_states)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(values[idx], policy_value(mdp, pi[idx], beta=0.2))
        np.testing.assert_allclose(gaps[idx], value_gap(mdp, pi[idx], beta=0.2))
        np.testing.assert_allclose(occ[idx], state_occupancy(mdp, pi[idx]))
    # β broadcast against the policy batch: [2, 3] policies × β of shape [2, 1]
    both = policy_value(mdp, pi, beta=np.array([[0.0], [0.2]]))
    np.testing.assert_allclose(both[0], policy_value(mdp, pi[0]))
    np.testing.assert_allclose(both[1], values[1])


def test_value_gap_is_zero_at_the_optimum_and_positive_elsewhere():
    mdp = env_mdp("taxi")
    opt = value_iteration(mdp)
    gaps = value_gap(mdp, np.stack([opt.policy, uniform(mdp)]))
    assert gaps[0] < 1e-8
    J_star = howard_policy_iteration(mdp) @ mdp.init
    J_unif = iterate_expectation_operator(mdp, uniform(mdp), 0.0, uniform(mdp)) @ mdp.init
    np.testing.assert_allclose(gaps[1], J_star - J_unif, atol=1e-8)
    assert gaps[1] > 1.0


def test_state_occupancy_matches_the_power_series():
    mdp = env_mdp("frozenlake4")
    rng = np.random.default_rng(5)
    pi = random_policies(rng, (2,), mdp)
    d = state_occupancy(mdp, pi)
    for b in range(2):
        P_pi = np.einsum("sa,sat->st", pi[b], mdp.P)
        term, series = mdp.init.copy(), np.zeros(mdp.n_states)
        for t in range(6000):
            series += (1 - mdp.gamma) * mdp.gamma**t * term
            term = term @ P_pi
        np.testing.assert_allclose(d[b], series, atol=1e-12)
    np.testing.assert_allclose(d.sum(axis=-1), 1.0, atol=1e-12)
    # the occupancy weighs the values: Σ_s d(s) r_π(s) = (1−γ) J(π)
    r_pi = np.sum(pi * reward_table(mdp), axis=-1)
    np.testing.assert_allclose(
        np.sum(d * r_pi, axis=-1), (1 - mdp.gamma) * policy_value(mdp, pi), atol=1e-12
    )


def test_soft_bellman_residual():
    mdp = env_mdp("frozenlake4")
    V = soft_values_by_root(mdp, 0.5, uniform(mdp))
    assert soft_bellman_residual(mdp, V, beta=0.5) < 1e-12
    V_hard = lp_optimal_values(mdp)
    assert soft_bellman_residual(mdp, V_hard) < 1e-12
    shifted = V_hard + 1.0  # T(V + c) = TV + γc, so the residual is (1 − γ)·c
    np.testing.assert_allclose(soft_bellman_residual(mdp, shifted), 1 - mdp.gamma, atol=1e-12)
    batch = soft_bellman_residual(mdp, np.stack([V, V_hard]), beta=np.array([0.5, 0.0]))
    assert batch.shape == (2,) and np.all(batch < 1e-12)


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def small_mdp(**kw) -> FiniteMDP:
    return random_mdp(0, 3, 2, 0.9, **kw)


def test_problem_validation():
    P = np.full((2, 2, 2), 0.5)
    R = np.zeros((2, 2))
    with pytest.raises(ValueError, match="P must sum to 1"):
        FiniteMDP(P * 0.9, R)
    with pytest.raises(ValueError, match="P must be non-negative"):
        FiniteMDP(np.concatenate([P[..., :1] * 3, -P[..., :1]], axis=-1), R)
    with pytest.raises(ValueError, match="P must have shape"):
        FiniteMDP(P[:, :, :1], R)
    with pytest.raises(ValueError, match="R must have shape"):
        FiniteMDP(P, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="R must be finite"):
        FiniteMDP(P, np.array([[0.0, np.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="gamma"):
        FiniteMDP(P, R, gamma=1.0)
    with pytest.raises(ValueError, match="gamma"):
        FiniteMDP(P, R, gamma=-0.1)
    with pytest.raises(ValueError, match="init"):
        FiniteMDP(P, R, init=[0.7, 0.7])


def test_solver_argument_checks():
    mdp = small_mdp()
    pi = np.full((3, 2), 0.5)
    with pytest.raises(TypeError, match="mdp"):
        value_iteration({"P": mdp.P})
    with pytest.raises(ValueError, match="beta must be >= 0"):
        value_iteration(mdp, beta=-0.1)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        policy_evaluation(mdp, pi, beta=[0.1, -1.0])
    with pytest.raises(ValueError, match="beta must be finite"):
        value_iteration(mdp, beta=np.nan)
    with pytest.raises(ValueError, match="tol must be > 0"):
        value_iteration(mdp, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        value_iteration(mdp, max_iter=0)
    with pytest.raises(ValueError, match="method"):
        value_iteration(mdp, method="magic")
    with pytest.raises(RuntimeError, match="did not converge"):
        value_iteration(mdp, max_iter=3, method="sweeps")
    with pytest.raises(ValueError, match="ref must sum to 1"):
        value_iteration(mdp, beta=0.1, ref=np.full((3, 2), 0.6))
    with pytest.raises(ValueError, match="ref must have shape"):
        value_iteration(mdp, beta=0.1, ref=np.full((2, 2), 0.5))
    for fn in (policy_evaluation, policy_value, value_gap, state_occupancy):
        with pytest.raises(ValueError, match="policy must sum to 1"):
            fn(mdp, np.full((3, 2), 0.4))
        with pytest.raises(ValueError, match="policy must be non-negative"):
            fn(mdp, np.tile([1.5, -0.5], (3, 1)))
        with pytest.raises(ValueError, match="policy must have shape"):
            fn(mdp, np.full((2, 2), 0.5))
        with pytest.raises(ValueError, match="policy must be finite"):
            fn(mdp, np.full((3, 2), np.nan))
    ref = np.tile([1.0, 0.0], (3, 1))
    with pytest.raises(ValueError, match="ref has zeros where policy puts mass"):
        policy_evaluation(mdp, pi, beta=0.1, ref=ref)
    with pytest.raises(ValueError, match="ref has zeros where policy puts mass"):
        value_gap(mdp, pi, beta=0.0, ref=ref)
    # at β = 0 the value of a policy does not involve ref
    np.testing.assert_allclose(policy_evaluation(mdp, pi, ref=ref).V, policy_evaluation(mdp, pi).V)
    with pytest.raises(ValueError, match="V must have shape"):
        soft_bellman_residual(mdp, np.zeros(4))


def test_no_warnings_on_policies_with_zeros():
    mdp = small_mdp()
    pi = np.tile([1.0, 0.0], (3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = policy_evaluation(mdp, pi, beta=0.5)
        value_gap(mdp, pi, beta=0.5)
    # deterministic policy vs uniform ref: KL = log 2 in every state
    np.testing.assert_allclose(sol.V, policy_evaluation(mdp, pi).V - 0.5 * np.log(2) / 0.1)


# --------------------------------------------------------------------------------------
# properties on random small MDPs
# --------------------------------------------------------------------------------------

mdp_args = st.tuples(
    st.integers(0, 2**31),
    st.integers(1, 6),
    st.integers(1, 4),
    st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    st.booleans(),
)


@settings(max_examples=40, deadline=None)
@given(mdp_args, st.sampled_from([0.01, 0.3, 2.0]))
def test_random_mdps_fixed_point_and_bounds(args, beta):
    seed, S, A, gamma, sparse = args
    mdp = random_mdp(seed, S, A, gamma, sparse)
    r = reward_table(mdp)
    hard = value_iteration(mdp)
    # a fixed point of the Bellman optimality operator (written here) to 1e-8
    Q = r + gamma * mdp.P @ hard.V
    assert np.max(np.abs(Q.max(axis=1) - hard.V)) < 1e-8
    assert np.all(hard.policy >= 0)
    np.testing.assert_allclose(hard.policy.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(hard.policy[Q < Q.max(axis=1, keepdims=True) - 1e-8] == 0)

    soft = value_iteration(mdp, beta=beta)
    Qs = r + gamma * mdp.P @ soft.V
    assert np.max(np.abs(beta * logsumexp(Qs / beta, b=1 / A, axis=1) - soft.V)) < 1e-8
    np.testing.assert_allclose(soft.policy.sum(axis=1), 1.0, atol=1e-12)
    # β·log Σ_a (1/A) e^{Q/β} ∈ [max Q − β log A, max Q]; by induction through the
    # contraction: V*_0 − β log A/(1−γ) ≤ V*_β ≤ V*_0. And π = uniform has KL = 0, so
    # V*_β ≥ V^uniform.
    assert np.all(soft.V <= hard.V + 1e-8)
    assert np.all(soft.V >= hard.V - beta * np.log(A) / (1 - gamma) - 1e-8)
    V_unif = iterate_expectation_operator(mdp, uniform(mdp), 0.0, uniform(mdp))
    assert np.all(soft.V >= V_unif - 1e-8)
    # gap of the soft optimum under the hard objective is ≤ β log A / (1 − γ) (init-weighted)
    assert value_gap(mdp, soft.policy) <= beta * np.log(A) / (1 - gamma) + 1e-8
    assert value_gap(mdp, soft.policy, beta=beta) < 1e-8

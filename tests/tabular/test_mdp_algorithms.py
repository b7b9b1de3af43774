"""Exact MDP updates reach the optimum computed independently (LP / soft Bellman iteration)."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from scipy.special import logsumexp

import tabular as tb


def lp_optimal_values(mdp):
    """min Σ_s V(s) s.t. V(s) ≥ r(s, a) + γ Σ_s' P(s'|s, a) V(s') — the optimal values."""
    S, A = mdp.n_states, mdp.n_actions
    r = np.sum(mdp.P * mdp.reward_sas, axis=-1)
    rows = np.eye(S)[:, None, :] - mdp.gamma * mdp.P  # [S, A, S]
    res = linprog(np.ones(S), A_ub=-rows.reshape(S * A, S), b_ub=-r.reshape(S * A),
                  bounds=[(None, None)] * S, method="highs")
    assert res.status == 0
    return res.x


def soft_values_by_iteration(mdp, beta, iters=20000):
    """Soft Bellman iteration with a uniform reference, written here from the definition."""
    r = np.sum(mdp.P * mdp.reward_sas, axis=-1)
    V = np.zeros(mdp.n_states)
    for _ in range(iters):
        Q = r + mdp.gamma * mdp.P @ V
        V_new = beta * logsumexp(Q / beta, axis=-1) - beta * np.log(mdp.n_actions)
        if np.max(np.abs(V_new - V)) < 1e-14:
            break
        V = V_new
    Q = r + mdp.gamma * mdp.P @ V
    return V, np.exp(Q / beta - logsumexp(Q / beta, axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def mdps():
    out = {}
    for name, kwargs in [("FrozenLake-v1", {"is_slippery": True}), ("CliffWalking-v1", {})]:
        env = gym.make(name, **kwargs)
        out[name] = tb.FiniteMDP.from_gymnasium(env, gamma=0.95)
        env.close()
    return out


@pytest.mark.parametrize("name", ["FrozenLake-v1", "CliffWalking-v1"])
@pytest.mark.parametrize(
    "algorithm",
    [tb.PolicyIteration(), tb.MDPO(eta=10.0), tb.MDPO(eta=1.0, schedule="geometric")],
    ids=["policy-iteration", "mdpo-constant", "mdpo-geometric"],
)
def test_reaches_the_optimal_value(mdps, name, algorithm):
    mdp = mdps[name]
    v_star = lp_optimal_values(mdp)
    hist = tb.run(algorithm, mdp, steps=300, record_every=50)
    j_star = v_star @ mdp.init
    assert abs(hist.metrics["value"][-1, 0] - j_star) < 1e-6
    assert hist.metrics["gap"][-1, 0] < 1e-6
    # the policy's own exact values match the LP values in every reachable-or-not state
    V = tb.solve.policy_evaluation(mdp, hist.final_policy[0]).V
    assert np.max(np.abs(V - v_star)) < 1e-5


def test_policy_iteration_terminates_in_few_iterations(mdps):
    hist = tb.run(tb.PolicyIteration(), mdps["FrozenLake-v1"], steps=20)
    gap = hist.metrics["gap"][:, 0]
    first_zero = int(np.argmax(gap < 1e-12))
    assert gap[first_zero] < 1e-12 and first_zero <= 10
    # monotone improvement: policy iteration never loses value
    assert np.all(np.diff(hist.metrics["value"][:, 0]) >= -1e-12)


@pytest.mark.parametrize("algorithm", [tb.SoftPolicyIteration(beta=0.05),
                                       tb.MDPO(eta=50.0, beta=0.05)], ids=["soft-pi", "soft-mdpo"])
def test_regularised_updates_reach_the_soft_optimum(mdps, algorithm):
    mdp = mdps["FrozenLake-v1"]
    V_soft, pi_soft = soft_values_by_iteration(mdp, 0.05)
    hist = tb.run(algorithm, mdp, steps=400, record_every=100)
    np.testing.assert_allclose(hist.final_policy[0], pi_soft, atol=1e-8)
    assert abs(hist.metrics["value"][-1, 0] - V_soft @ mdp.init) < 1e-8
    assert hist.metrics["kl_to_solution"][-1, 0] < 1e-10


def test_softmax_pg_improves_monotonically_and_its_gradient_is_right(mdps):
    mdp = mdps["FrozenLake-v1"]
    # FrozenLake's rewards are tiny (≤ 1, discounted), so softmax PG needs a large step; with
    # it the exact gradient ascent improves monotonically towards the optimum.
    hist = tb.run(tb.SoftmaxPGMDP(eta=50.0), mdp, steps=300)
    values = hist.metrics["value"][:, 0]
    assert np.all(np.diff(values) > 0)
    assert hist.metrics["gap"][-1, 0] < 1e-2 < hist.metrics["gap"][0, 0]
    # finite-difference check of the exact occupancy gradient at a random softmax policy
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(mdp.n_states, mdp.n_actions))

    def J(th):
        p = np.exp(th - logsumexp(th, axis=-1, keepdims=True))
        r = np.sum(mdp.P * mdp.reward_sas, axis=-1)
        P_pi = np.einsum("sa,sat->st", p, mdp.P)
        V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, np.sum(p * r, axis=-1))
        return V @ mdp.init

    eps, eta = 1e-6, 1e-4
    fd = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[idx] = eps
        fd[idx] = (J(theta + e) - J(theta - e)) / (2 * eps)
    p0 = np.exp(theta - logsumexp(theta, axis=-1, keepdims=True))
    one = tb.run(tb.SoftmaxPGMDP(eta=eta), mdp, steps=1, init=p0)
    delta = np.log(one.final_policy[0]) - np.log(p0)
    np.testing.assert_allclose(delta - delta.mean(-1, keepdims=True),
                               eta * (fd - fd.mean(-1, keepdims=True)), atol=1e-10)


def test_eta_sweep_on_an_mdp(mdps):
    hist = tb.run(tb.MDPO(eta=np.array([0.5, 5.0, 50.0])), mdps["FrozenLake-v1"], steps=30,
                  seeds=2, init="random")
    assert hist.policy.shape == (31, 3, 2, 16, 4)
    # bigger steps get closer to the optimum after 30 iterations
    final_gap = hist.metrics["gap"][-1].mean(-1)
    assert final_gap[0] > final_gap[1] > final_gap[2]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), S=st.integers(1, 5), A=st.integers(1, 4),
       log_eta=st.floats(-2, 3), beta=st.sampled_from([0.0, 0.01, 1.0]),
       which=st.integers(0, 2))
def test_mdp_updates_stay_on_the_simplex(seed, S, A, log_eta, beta, which):
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    R = rng.normal(scale=10.0, size=(S, A))
    mdp = tb.FiniteMDP(P, R, gamma=0.9)
    eta = 10.0 ** log_eta
    alg = [tb.MDPO(eta=eta, beta=beta), tb.SoftmaxPGMDP(eta=eta, beta=beta),
           tb.PolicyIteration()][which]
    hist = tb.run(alg, mdp, steps=15, seeds=2, init="random", seed=seed)
    p = hist.policy
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.max(np.abs(p.sum(-1) - 1.0)) < 1e-9
    assert np.all(hist.metrics["gap"] >= 0)
    assert np.all(hist.metrics["kl_step"] >= 0)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: tb.MDPO(eta=-1.0), "eta"),
        (lambda: tb.MDPO(eta=1.0, beta=np.array([0.1, 0.2])), "beta"),
        (lambda: tb.MDPO(eta=1.0, schedule="cosine"), "schedule"),
        (lambda: tb.SoftPolicyIteration(beta=0.0), "beta"),
        (lambda: tb.SoftmaxPGMDP(eta=1.0, beta=-1.0), "beta"),
        (lambda: tb.FiniteMDP(np.ones((2, 2, 2)), np.zeros((2, 2))), "P"),
        (lambda: tb.FiniteMDP(np.full((2, 2, 2), 0.5), np.zeros((2, 3))), "R"),
        (lambda: tb.FiniteMDP(np.full((2, 2, 2), 0.5), np.zeros((2, 2)), gamma=1.0), "gamma"),
        (lambda: tb.FiniteMDP(np.full((2, 2, 2), 0.5), [[0, np.nan], [0, 0]]), "R"),
        (lambda: tb.FiniteMDP(np.full((2, 2, 2), 0.5), np.zeros((2, 2)), init=[1.0]), "init"),
    ],
)
def test_bad_input(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()

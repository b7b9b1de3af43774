"""Exact bandit updates against closed forms and finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tabular as tb


def closed_form_optimum(rewards, ref, beta):
    """π* ∝ ref·exp(r/β), written out here independently of tabular.solve."""
    logits = np.log(ref) + rewards / beta
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def test_kl_regularized_matches_closed_form():
    rng = np.random.default_rng(0)
    bandit = tb.Bandit(rng.normal(size=(7, 5)))
    ref = rng.dirichlet(np.ones(5))
    np.testing.assert_allclose(
        tb.solve.kl_regularized(bandit, ref, 0.3), closed_form_optimum(bandit.rewards, ref, 0.3),
        rtol=1e-12,
    )
    # β → 0 is the greedy arm
    greedy = tb.solve.kl_regularized(bandit, beta=0.0)
    np.testing.assert_array_equal(greedy.argmax(-1), bandit.rewards.argmax(-1))
    np.testing.assert_allclose(greedy.max(-1), 1.0)


def test_magnetic_mirror_descent_converges_on_50_random_bandits():
    rng = np.random.default_rng(1)
    bandit = tb.Bandit(rng.uniform(size=(50, 8)))
    ref = rng.dirichlet(np.ones(8) * 2)
    beta = 0.2
    hist = tb.run(tb.MirrorDescent(eta=1.0, beta=beta, ref=ref), bandit, steps=400, seeds=3,
                  init="random", record_every=100)
    target = closed_form_optimum(bandit.rewards, ref, beta)[:, None, :]
    final_kl = kl(target, hist.final_policy)
    assert final_kl.shape == (50, 3)
    assert final_kl.max() < 1e-8
    # the runner's own metric agrees with the independent KL
    np.testing.assert_allclose(hist.metrics["kl_to_solution"][-1], final_kl, atol=1e-12)
    # J(π*) − J(π) = β·KL(π‖π*) ≥ 0 and vanishes at the end
    assert np.all(hist.metrics["gap"] >= 0)
    assert hist.metrics["gap"][-1].max() < 1e-8


@pytest.mark.parametrize("eta", [0.01, 0.5, 3.0, 1e3])
def test_closed_form_is_a_fixed_point_of_one_update(eta):
    rng = np.random.default_rng(2)
    bandit = tb.Bandit(rng.normal(size=(20, 6)))
    ref = rng.dirichlet(np.ones(6))
    beta = 0.7
    target = closed_form_optimum(bandit.rewards, ref, beta)
    hist = tb.run(tb.MirrorDescent(eta=eta, beta=beta, ref=ref), bandit, steps=1,
                  init=target[:, None, :])
    np.testing.assert_allclose(hist.final_policy[:, 0], target, rtol=1e-9)


def test_entropy_mirror_descent_fixed_point_is_softmax():
    rewards = np.array([1.0, 0.3, -0.2, 0.9])
    tau = 0.25
    target = closed_form_optimum(rewards, np.full(4, 0.25), tau)
    hist = tb.run(tb.EntropyMirrorDescent(eta=2.0, tau=tau), tb.Bandit(rewards), steps=200)
    np.testing.assert_allclose(hist.final_policy[0], target, rtol=1e-10)
    # entropy-regularised objective: H rises towards the softmax's entropy from a peaked start
    np.testing.assert_allclose(hist.metrics["entropy"][-1, 0],
                               -np.sum(target * np.log(target)), rtol=1e-10)


def test_natural_pg_is_multiplicative_weights_on_the_advantage():
    rewards = np.array([0.2, 0.5, 0.1])
    p0 = np.array([0.5, 0.3, 0.2])
    eta = 0.8
    hist = tb.run(tb.NaturalPG(eta=eta), tb.Bandit(rewards), steps=1, init=p0)
    adv = rewards - p0 @ rewards
    expected = p0 * np.exp(eta * adv)
    np.testing.assert_allclose(hist.final_policy[0], expected / expected.sum(), rtol=1e-12)
    # unregularised: converges to the best arm, regret → 0
    hist = tb.run(tb.NaturalPG(eta=eta), tb.Bandit(rewards), steps=400)
    assert hist.metrics["regret"][-1, 0] < 1e-6


def test_softmax_pg_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=5)
    ref = rng.dirichlet(np.ones(5))
    beta = 0.4
    theta = rng.normal(size=5)

    def objective(th):
        p = np.exp(th - th.max())
        p /= p.sum()
        return p @ rewards - beta * np.sum(p * (np.log(p) - np.log(ref)))

    eps = 1e-6
    fd = np.array([(objective(theta + eps * e) - objective(theta - eps * e)) / (2 * eps)
                   for e in np.eye(5)])
    p0 = np.exp(theta - theta.max())
    p0 /= p0.sum()
    eta = 1e-3
    hist = tb.run(tb.SoftmaxPG(eta=eta, beta=beta, ref=ref), tb.Bandit(rewards), steps=1, init=p0)
    # one step moves log π by η·(∇ − mean-shift); compare the logit change up to a constant
    delta = np.log(hist.final_policy[0]) - np.log(p0)
    np.testing.assert_allclose(delta - delta.mean(), eta * (fd - fd.mean()), atol=1e-9)


def test_sweep_axes_broadcast_and_match_single_runs():
    bandit = tb.Bandit([1.0, 0.0, 0.5])
    etas = np.array([0.1, 1.0, 5.0])
    betas = np.array([[0.0], [0.3]])
    hist = tb.run(tb.MirrorDescent(eta=etas, beta=betas), bandit, steps=30, seeds=2,
                  init="random", seed=4)
    assert hist.sweep_shape == (2, 3)
    assert hist.policy.shape == (31, 2, 3, 2, 3)
    assert hist.metrics["entropy"].shape == (31, 2, 3, 2)
    np.testing.assert_array_equal(hist.sweep["eta"][1], etas)
    single = tb.run(tb.MirrorDescent(eta=5.0, beta=0.3), bandit, steps=30, seeds=2,
                    init="random", seed=4)
    np.testing.assert_allclose(hist.policy[:, 1, 2], single.policy, rtol=1e-13)


def test_batched_problem_and_average_policy():
    bandit = tb.Bandit.random(4, batch=(6,), seed=3)
    hist = tb.run(tb.MirrorDescent(eta=0.5), bandit, steps=50, record_every=20)
    np.testing.assert_array_equal(hist.steps, [0, 20, 40, 50])
    assert hist.policy.shape == (4, 6, 1, 4)
    # the average iterate is the mean of π_1 … π_T, recomputed here step by step
    step_by_step = tb.run(tb.MirrorDescent(eta=0.5), bandit, steps=50)
    np.testing.assert_allclose(hist.average_policy, step_by_step.policy[1:].mean(axis=0),
                               rtol=1e-12)


def test_to_frame_has_one_row_per_record_sweep_point_and_seed():
    hist = tb.run(tb.MirrorDescent(eta=np.array([0.1, 1.0])), tb.Bandit([1.0, 0.0]), steps=4,
                  seeds=3, record_every=2)
    frame = hist.to_frame()
    rows = frame.to_dict("records") if hasattr(frame, "to_dict") else frame
    assert len(rows) == 3 * 2 * 3
    assert {"step", "eta", "seed", "entropy", "gap"} <= set(rows[0])


ALGORITHMS = [
    lambda eta, beta, ref: tb.SoftmaxPG(eta=eta, beta=beta, ref=ref),
    lambda eta, beta, ref: tb.MirrorDescent(eta=eta, beta=beta, ref=ref),
    lambda eta, beta, ref: tb.EntropyMirrorDescent(eta=eta, tau=beta),
]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 12),
    seed=st.integers(0, 2**31 - 1),
    log_eta=st.floats(-3, 3),
    beta=st.floats(0.0, 10.0),
    scale=st.floats(1e-3, 1e3),
    which=st.integers(0, len(ALGORITHMS) - 1),
)
def test_updates_stay_on_the_simplex_for_extreme_steps(n, seed, log_eta, beta, scale, which):
    rng = np.random.default_rng(seed)
    bandit = tb.Bandit(scale * rng.normal(size=n))
    ref = rng.dirichlet(np.ones(n))
    alg = ALGORITHMS[which](10.0 ** log_eta, beta, ref)
    hist = tb.run(alg, bandit, steps=25, seeds=2, init="random", seed=seed)
    p = hist.policy
    assert np.all(np.isfinite(p))
    assert np.all(p >= 0)
    assert np.max(np.abs(p.sum(-1) - 1.0)) < 1e-9
    for name in ("kl_step", "entropy", "gap"):
        values = hist.metrics[name]
        assert np.all(values >= 0), name
    assert np.all(np.isfinite(hist.metrics["entropy"]))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: tb.Bandit([1.0, np.nan]), "rewards"),
        (lambda: tb.Bandit(np.float64(1.0)), "rewards"),
        (lambda: tb.Bandit([1.0, 2.0], noise_std=[-1.0, 0.0]), "noise_std"),
        (lambda: tb.Bandit([1.0, 2.0], noise_std=[1.0, 0.0, 2.0]), "noise_std"),
        (lambda: tb.Bandit("abc"), "rewards"),
        (lambda: tb.MirrorDescent(eta=0.0), "eta"),
        (lambda: tb.MirrorDescent(eta=np.array([0.1, -1.0])), "eta"),
        (lambda: tb.MirrorDescent(eta=1.0, beta=-0.1), "beta"),
        (lambda: tb.SoftmaxPG(eta=1.0, beta=np.nan), "beta"),
        (lambda: tb.EntropyMirrorDescent(eta=1.0, tau=-1.0), "tau"),
        (lambda: tb.solve.kl_regularized(tb.Bandit([1.0, 0.0]), beta=-1.0), "beta"),
        (lambda: tb.solve.kl_regularized(tb.Bandit([1.0, 0.0]), ref=[0.5, 0.6]), "ref"),
        (lambda: tb.solve.kl_regularized(tb.Bandit([1.0, 0.0]), ref=[0.2, 0.3, 0.5]), "ref"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=-1), "steps"),
        (dict(steps=1.5), "steps"),
        (dict(steps=3, seeds=0), "seeds"),
        (dict(steps=3, record_every=0), "record_every"),
        (dict(steps=3, init="sideways"), "init"),
        (dict(steps=3, init=[0.5, 0.6]), "init"),
        (dict(steps=3, init=[0.5, 0.25, 0.25]), "init"),
    ],
)
def test_runner_rejects_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tb.run(tb.MirrorDescent(eta=1.0), tb.Bandit([1.0, 0.0]), **kwargs)


def test_runner_rejects_sweeps_that_do_not_broadcast_and_wrong_problems():
    with pytest.raises(ValueError, match="broadcast"):
        tb.run(tb.MirrorDescent(eta=np.ones(3)), tb.Bandit.random(2, batch=(4,)), steps=1)
    with pytest.raises(TypeError, match="problem"):
        tb.run(tb.MirrorDescent(eta=1.0), tb.PreferenceGame.cyclic(3), steps=1)
    with pytest.raises(ValueError, match="ref"):
        tb.run(tb.MirrorDescent(eta=1.0, beta=0.1, ref=[0.5, 0.5, 0.0]), tb.Bandit([1, 0, 0.5]),
               steps=1)


def test_regularised_value_matches_the_closed_form_and_survives_subnormal_beta():
    rng = np.random.default_rng(5)
    bandit = tb.Bandit(rng.normal(size=(4, 6)))
    ref = rng.dirichlet(np.ones(6))
    beta = 0.3
    pi = closed_form_optimum(bandit.rewards, ref, beta)
    by_hand = np.sum(pi * bandit.rewards, -1) - beta * kl(pi, ref)   # J(π*) from its definition
    np.testing.assert_allclose(tb.solve.bandit.kl_regularized_value(bandit, ref, beta), by_hand,
                               rtol=1e-12)
    # β = 5e-324 (found by hypothesis): r/β overflows; π* must still be the greedy arm and the
    # gap of the uniform policy must be its regret, not NaN
    tiny = 5e-324
    greedy = tb.solve.kl_regularized(tb.Bandit([1.0, 0.0]), beta=tiny)
    np.testing.assert_array_equal(greedy, [1.0, 0.0])
    hist = tb.run(tb.MirrorDescent(eta=1.0, beta=tiny), tb.Bandit([1.0, 0.0]), steps=1)
    np.testing.assert_allclose(hist.metrics["gap"][0, 0], 0.5, rtol=1e-12)

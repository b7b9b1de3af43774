"""Exact Nash-learning updates on preference games, held against independent answers:
the equilibrium solvers (``tabular.solve.nash`` / ``regularized_nash``), fixed-point
equations written out here, and the rate statements of the papers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tabular as tb
from tabular.algorithms.games import (
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

GAME_METRICS = ("exploitability", "duality_gap", "kl_to_solution", "kl_ref", "kl_step", "entropy")


def kl(p, q):
    return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def perturbed_rps():
    A = np.array([[0.0, -1.0, 3.0], [1.0, 0.0, -3.0], [-3.0, 3.0, 0.0]])
    return tb.PreferenceGame(0.5 + A / 6.0)


def game_families(n=6, batch=30, seed=0):
    """30 random games, cyclic games (3, 5 and 7 responses, two margins), 30 BT games."""
    rng = np.random.default_rng(seed)
    cyc = [tb.PreferenceGame.cyclic(k, m).P for k in (3, 5, 7) for m in (0.2, 0.45)]
    return {
        "random": tb.PreferenceGame.random(n, seed=seed, batch=(batch,)),
        "cyclic": cyc,
        "bradley_terry": tb.PreferenceGame.bradley_terry(rng.normal(size=(batch, n))),
    }


def each_game(families):
    for name, game in families.items():
        if isinstance(game, list):
            for P in game:
                yield name, tb.PreferenceGame(P)
        else:
            yield name, game


# ----------------------------------------------------------------------------- fixed points


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_regularized_nash_is_a_fixed_point_of_mirror_prox_and_mmd(tau):
    """π* (from the independent Newton solver) is unchanged by one step, rtol 1e-9."""
    rng = np.random.default_rng(1)
    for name, game in each_game(game_families()):
        n = game.n_actions
        ref = rng.dirichlet(np.full(n, 2.0))
        star = tb.solve.regularized_nash(game, ref=ref, tau=tau)
        init = star[..., None, :]
        for alg in (NashMirrorProx(eta=2.0, tau=tau, ref=ref),
                    NashMirrorProx(eta=0.3, tau=tau, ref=ref),
                    MagneticMD(eta=0.5, tau=tau, ref=ref),
                    MagneticMD(eta=50.0, tau=tau, ref=ref),
                    # the other rules whose opponent is the iterate share the fixed point
                    EGPO(eta=1.0, tau=tau, ref=ref), INPO(eta=1.0, tau=tau, ref=ref),
                    OMWU(eta=0.5, tau=tau, ref=ref)):
            hist = tb.run(alg, game, steps=1, init=init)
            np.testing.assert_allclose(hist.final_policy[..., 0, :], star, rtol=1e-9,
                                       err_msg=f"{type(alg).__name__} on {name}")
            # and the records say so: no exploitable regularised gap at π*
            assert hist.metrics["duality_gap"].max() < 1e-12


def test_nash_md_with_constant_step_moves_away_from_the_regularized_equilibrium():
    """Teaching point: π* is *not* a fixed point of constant-η Nash-MD (mixture opponent)."""
    game = tb.PreferenceGame.random(5, seed=3, batch=(10,))
    tau, eta = 0.5, 0.4
    star = tb.solve.regularized_nash(game, tau=tau)
    hist = tb.run(NashMD(eta=eta, tau=tau), game, steps=1, init=star[:, None, :])
    moved = kl(star, hist.final_policy[:, 0])
    assert np.all(moved > 1e-9)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_mirror_prox_and_mmd_converge_in_the_last_iterate(tau):
    rng = np.random.default_rng(2)
    for name, game in each_game(game_families(seed=4)):
        ref = rng.dirichlet(np.full(game.n_actions, 2.0))
        star = tb.solve.regularized_nash(game, ref=ref, tau=tau)
        for alg, steps in ((NashMirrorProx(tau=tau, ref=ref), 400),
                           (MagneticMD(eta=0.5, tau=tau, ref=ref), 800)):
            hist = tb.run(alg, game, steps=steps, seeds=3, init="random", record_every=steps)
            final_kl = kl(star[..., None, :], hist.final_policy)
            assert final_kl.max() < 1e-10, (type(alg).__name__, name, final_kl.max())
            np.testing.assert_allclose(hist.metrics["kl_to_solution"][-1], final_kl, atol=1e-12)
            assert hist.metrics["duality_gap"][-1].max() < 1e-10


# ----------------------------------------------------------------------------- Nash-MD


def nash_md_fixed_point_residual(P, ref, p, eta, tau):
    """‖log p − log[ref·exp(P(·≻p^μ)/τ)]‖_∞ with p^μ ∝ p^{1−ητ}·ref^{ητ}, written out here."""
    mu = softmax((1 - eta * tau) * np.log(p) + eta * tau * np.log(ref))
    target = softmax(np.log(ref) + np.einsum("...ij,...j->...i", P, mu) / tau)
    r = np.log(p) - np.log(target)
    return np.max(np.abs(r - r.mean(axis=-1, keepdims=True)))


def test_nash_md_constant_step_bias_shrinks_like_eta_squared():
    rng = np.random.default_rng(5)
    game = tb.PreferenceGame.random(5, seed=3, batch=(20,))
    ref = rng.dirichlet(np.full(5, 3.0))
    slopes = {}
    for tau, etas in ((0.5, np.array([1.6, 0.8, 0.4, 0.2, 0.1])),
                      (0.1, np.array([0.8, 0.4, 0.2, 0.1]))):
        steps = int(40 / (etas.min() * tau))
        hist = tb.run(NashMD(eta=etas[:, None], tau=tau, ref=ref), game, steps=steps,
                      record_every=steps, record_policy=False)
        limit = hist.final_policy[:, :, 0]  # [η, game, n]
        # converged: the limit solves Nash-MD's own fixed-point equation (mixture opponent) …
        for i, eta in enumerate(etas):
            assert nash_md_fixed_point_residual(game.P, ref, limit[i], eta, tau) < 1e-9
        # … which is not the regularised equilibrium: the bias is there and measurable
        star = tb.solve.regularized_nash(game, ref=ref, tau=tau)
        bias = np.median(kl(star, limit), axis=-1)
        assert np.all(bias > 1e-8)
        assert np.all(np.diff(bias) < 0)  # shrinks as η shrinks
        slope = np.polyfit(np.log(etas), np.log(bias), 1)[0]
        slopes[tau] = slope
        assert 1.9 < slope < 2.1, slope  # observed order: bias ∝ η²
    print(f"Nash-MD constant-η bias: slope of log KL(π*‖π_∞) vs log η = {slopes}")


def test_nash_md_decreasing_schedule_meets_the_papers_bound():
    """KL(π*‖π_T) ≤ 8/(τ²(T+1)) for η_t = 2/(τ(t+2)) (Munos et al. 2024, Theorem 1), and the
    per-step inequality KL_{t+1} ≤ (1 − η_tτ)·KL_t + 2η_t² it comes from."""
    rng = np.random.default_rng(6)
    taus = np.array([[0.1], [0.5], [1.0]])  # sweep axis × game batch axis
    for name, game in (
        ("random", tb.PreferenceGame.random(6, seed=7, batch=(10,))),
        ("cyclic", tb.PreferenceGame(np.stack([perturbed_rps().P,
                                              tb.PreferenceGame.cyclic(3, 0.4).P]))),
        ("bradley_terry", tb.PreferenceGame.bradley_terry(rng.normal(size=(10, 6)))),
    ):
        ref = rng.dirichlet(np.full(game.n_actions, 2.0))  # non-uniform: no symmetric shortcut
        alg = NashMD(tau=taus, ref=ref, schedule="decreasing")
        # every step for the per-step inequality …
        hist = tb.run(alg, game, steps=200, seeds=3, init="random", record_policy=False)
        k = hist.metrics["kl_to_solution"]  # [t, τ, game, seed]
        t = hist.steps[:, None, None, None].astype(float)
        tau = taus[None, :, :, None]
        eta_t = 2.0 / (tau * (t[:-1] + 2.0))
        assert np.all(k[1:] <= (1.0 - eta_t * tau) * k[:-1] + 2.0 * eta_t**2 + 1e-15), name
        # … and the bound up to T = 4000
        hist = tb.run(alg, game, steps=4000, seeds=3, init="random", record_every=40,
                      record_policy=False)
        k = hist.metrics["kl_to_solution"]
        t = hist.steps[:, None, None, None].astype(float)
        bound = 8.0 / (tau**2 * (t + 1.0))
        assert np.all(k[1:] <= bound[1:]), name
        worst = float(np.max(k[1:] / bound[1:]))
        # the observed order is faster than the bound's 1/t (≈ 1/t²: the bias ∝ η_t²)
        tail = slice(len(t) // 10, None)
        med = np.median(k[tail].reshape(len(t[tail]), -1), axis=1)
        if med[-1] > 1e-14:
            slope = np.polyfit(np.log(t[tail, 0, 0, 0]), np.log(med), 1)[0]
            assert slope < -1.0, (name, slope)
            print(f"Nash-MD decreasing η on {name}: max KL/bound = {worst:.2e}, "
                  f"slope of log KL vs log t = {slope:.2f}")


# ----------------------------------------------------------------------------- self-play


def test_self_play_mwu_cycles_on_rps_while_its_average_converges():
    game = tb.PreferenceGame.cyclic(3, 0.4)
    uniform = np.full(3, 1 / 3)
    short = tb.run(SelfPlayMWU(eta=0.1), game, steps=2000, seeds=4, init="random", seed=1)
    hist = tb.run(SelfPlayMWU(eta=0.1), game, steps=20000, seeds=4, init="random", seed=1,
                  record_every=100)
    k = hist.metrics["kl_to_solution"]
    # last iterate: KL(π*‖π_t) never drops below its start (it is non-decreasing for MWU
    # on a game whose equilibrium is interior) — bounded away from 0
    assert np.all(k >= k[0] - 1e-12)
    assert k[0].min() > 0.02
    assert np.all(hist.metrics["exploitability"][-1] > 0.1)
    # average iterate: converges to the uniform Nash equilibrium
    avg_kl = kl(uniform, hist.average_policy)
    assert np.all(avg_kl < 1e-4)
    assert np.all(avg_kl < kl(uniform, short.average_policy))
    assert np.all(tb.metrics.exploitability(game, hist.average_policy) < 3e-3)


@pytest.mark.parametrize("alg", [OMWU(eta=0.5), EGPO(eta=0.5, tau=0.0)])
def test_optimistic_and_extragradient_converge_in_the_last_iterate_where_mwu_cycles(alg):
    game = tb.PreferenceGame.cyclic(3, 0.4)
    hist = tb.run(alg, game, steps=3000, seeds=4, init="random", record_every=1000)
    assert hist.metrics["exploitability"][-1].max() < 1e-8
    np.testing.assert_allclose(hist.final_policy, 1 / 3, atol=1e-7)


def test_mmd_is_inpo_with_a_rescaled_step_and_mwu_is_their_tau_zero_case():
    rng = np.random.default_rng(8)
    game = tb.PreferenceGame.random(7, seed=9, batch=(5,))
    ref = rng.dirichlet(np.ones(7))
    p0 = rng.dirichlet(np.ones(7), size=(5, 2))
    eta, tau = 0.7, 0.3
    mmd = tb.run(MagneticMD(eta=eta, tau=tau, ref=ref), game, steps=3, seeds=2, init=p0)
    inpo = tb.run(INPO(eta=eta / (1 + eta * tau), tau=tau, ref=ref), game, steps=3, seeds=2,
                  init=p0)
    np.testing.assert_allclose(mmd.policy, inpo.policy, rtol=1e-12)
    # one MWU step written out here: π ∝ π·exp(η·Pπ)
    mwu = tb.run(SelfPlayMWU(eta=eta), game, steps=1, seeds=2, init=p0)
    expected = p0 * np.exp(eta * np.einsum("bij,bsj->bsi", game.P, p0))
    np.testing.assert_allclose(mwu.final_policy, expected / expected.sum(-1, keepdims=True),
                               rtol=1e-12)


# ----------------------------------------------------------------------------- Mirror Prox


@pytest.mark.parametrize("tau", [0.05, 0.2, 1.0])
def test_mirror_prox_contracts_at_least_as_fast_as_the_papers_bound(tau):
    """KL(π*‖π_t) ≤ (1+ητ)^{−t}·KL(π*‖π_0) = (1+2τ)^{−N/2}·KL_0 with η = 2, N = 2t queries."""
    rng = np.random.default_rng(10)
    steps = 60
    cases = []
    for n in (3, 30):
        cases += [
            (n, "random", tb.PreferenceGame.random(n, seed=n, batch=(10,))),
            (n, "cyclic", tb.PreferenceGame.cyclic(n if n % 2 else n + 1, 0.4)),
            (n, "bradley_terry", tb.PreferenceGame.bradley_terry(rng.normal(size=(10, n)))),
        ]
    # 300 actions: one game each (the ground-truth solve dominates the cost there)
    cases += [(300, "random", tb.PreferenceGame.random(300, seed=300)),
              (301, "cyclic", tb.PreferenceGame.cyclic(301, 0.4))]
    for n, name, game in cases:
        hist = tb.run(NashMirrorProx(eta=2.0, tau=tau), game, steps=steps, seeds=3,
                      init="random", seed=n)
        k = hist.metrics["kl_to_solution"]
        queries = 2 * hist.steps.reshape((-1,) + (1,) * (k.ndim - 1))
        bound = (1 + 2 * tau) ** (-queries / 2) * k[0]
        assert np.all(k <= bound * (1 + 1e-9) + 1e-14), (n, name)


def test_mirror_prox_rate_does_not_depend_on_the_number_of_actions():
    """Per-step rate (KL_T/KL_0)^{1/T}, median over random games: 3, 30, 300 actions."""
    tau, steps = 0.2, 20
    rates = {}
    for n, batch in ((3, 16), (30, 16), (300, 2)):
        game = tb.PreferenceGame.random(n, seed=100 + n, batch=(batch,))
        hist = tb.run(NashMirrorProx(eta=2.0, tau=tau), game, steps=steps, seeds=2,
                      init="random", seed=n, record_every=steps)
        k = hist.metrics["kl_to_solution"]
        rates[n] = float(np.median((k[-1] / k[0]) ** (1.0 / steps)))
    values = np.array(list(rates.values()))
    assert values.max() <= 1.1 * values.min(), rates
    assert values.max() <= 1 / (1 + 2 * tau)  # and each beats the paper's per-step factor
    print(f"Nash-MP per-step KL rate at τ = {tau}, η = 2: {rates}; bound {1 / (1 + 2 * tau):.4f}")


# ----------------------------------------------------------------------------- online IPO


def online_ipo_gradient(P, ref, p, tau):
    """∇_θ Σ_{y,y′} p(y)p(y′)·E_label (h(y_w, y_l) − 1/(2τ))², summed pair by pair here."""
    n = len(p)
    u = np.log(p) - np.log(ref)
    grad = np.zeros(n)
    for y in range(n):
        for y2 in range(n):
            for w, lo, prob in ((y, y2, P[y, y2]), (y2, y, P[y2, y])):
                h = u[w] - u[lo]
                g = 2 * (h - 1 / (2 * tau)) * prob * p[y] * p[y2]
                grad[w] += g
                grad[lo] -= g
    # chain rule through log-softmax: ∂/∂θ_k = g_k − π_k·Σg
    return grad - p * grad.sum()


def test_online_ipo_gradient_matches_the_pairwise_loss_written_out():
    rng = np.random.default_rng(11)
    game = tb.PreferenceGame.random(5, seed=12)
    ref = rng.dirichlet(np.ones(5))
    p = rng.dirichlet(np.ones(5))
    alg = OnlineIPO(eta=0.1, tau=0.3, ref=ref)
    np.testing.assert_allclose(alg.gradient(game, np.log(p)),
                               online_ipo_gradient(game.P, ref, p, 0.3), rtol=1e-10, atol=1e-13)


def test_online_ipo_stationary_point_is_the_regularized_nash_equilibrium():
    rng = np.random.default_rng(13)
    game = tb.PreferenceGame.random(6, seed=14, batch=(30,))
    ref = rng.dirichlet(np.full(6, 2.0))
    tau = 0.5
    star = tb.solve.regularized_nash(game, ref=ref, tau=tau)
    # the expected gradient vanishes at π* (IPO target 1/(2τ) ↔ KL weight τ) …
    grad = OnlineIPO(eta=0.1, tau=tau, ref=ref).gradient(game, np.log(star))
    assert np.abs(grad).max() < 1e-12
    # … and the dynamics get there from anywhere
    hist = tb.run(OnlineIPO(eta=0.25, tau=tau, ref=ref), game, steps=2000, seeds=2,
                  init="random", record_every=500)
    np.testing.assert_allclose(hist.final_policy, np.broadcast_to(star[:, None, :], (30, 2, 6)),
                               rtol=0, atol=1e-8)
    # a different map (target 1/τ, i.e. IPO's τ = τ/2) lands on the τ/2 equilibrium instead
    half = tb.run(OnlineIPO(eta=0.1, tau=tau / 2, ref=ref), game, steps=4000,
                  record_every=4000)
    np.testing.assert_allclose(half.final_policy[:, 0],
                               tb.solve.regularized_nash(game, ref=ref, tau=tau / 2), atol=1e-8)
    assert np.abs(half.final_policy[:, 0] - star).max() > 1e-3


def test_online_ipo_trajectory_next_to_nash_md_and_ipo_md_is_nash_md():
    """The tutorial's overlay: online IPO → π* exactly; Nash-MD (constant η) and IPO-MD with
    mixture ητ → the same biased point, which solves the mixture fixed-point equation."""
    rng = np.random.default_rng(15)
    game = tb.PreferenceGame.random(5, seed=16, batch=(8,))
    ref = rng.dirichlet(np.full(5, 2.0))
    tau, eta, steps = 0.5, 0.8, 3000
    star = tb.solve.regularized_nash(game, ref=ref, tau=tau)
    runs = {
        "online_ipo": tb.run(OnlineIPO(eta=0.2, tau=tau, ref=ref), game, steps, seeds=2,
                             init="random", record_every=50),
        "nash_md": tb.run(NashMD(eta=eta, tau=tau, ref=ref), game, steps, seeds=2,
                          init="random", record_every=50),
        "ipo_md": tb.run(IPOMD(eta=0.2, tau=tau, ref=ref, mixture=eta * tau), game, steps,
                         seeds=2, init="random", record_every=50),
    }
    shapes = {name: h.policy.shape for name, h in runs.items()}
    assert len(set(shapes.values())) == 1  # recorded side by side, step for step
    for h in runs.values():
        assert set(GAME_METRICS) <= set(h.metrics)
        np.testing.assert_array_equal(h.steps, runs["nash_md"].steps)
    np.testing.assert_allclose(runs["online_ipo"].final_policy,
                               np.broadcast_to(star[:, None], (8, 2, 5)), atol=1e-10)
    np.testing.assert_allclose(runs["ipo_md"].final_policy, runs["nash_md"].final_policy,
                               atol=1e-10)
    limit = runs["nash_md"].final_policy[:, 0]
    assert nash_md_fixed_point_residual(game.P, ref, limit, eta, tau) < 1e-9
    assert kl(star, limit).min() > 1e-7


# ----------------------------------------------------------------------------- sweeps


def test_tau_sweep_with_batched_games_and_a_zero_tau():
    game = tb.PreferenceGame.random(4, seed=17, batch=(3,))
    taus = np.array([[0.0], [0.2], [1.0]])  # sweep [3 τ, 3 games]
    alg = OMWU(eta=0.5, tau=taus)
    hist = tb.run(alg, game, steps=2000, seeds=2, init="random", record_every=1000)
    assert hist.sweep_shape == (3, 3)
    sol = hist.solution[:, :, 0]
    np.testing.assert_allclose(sol[0], tb.solve.nash(game), atol=1e-9)
    for i, tau in enumerate((0.2, 1.0), start=1):
        np.testing.assert_allclose(sol[i], tb.solve.regularized_nash(game, tau=tau), rtol=1e-12)
        assert hist.metrics["kl_to_solution"][-1][i].max() < 1e-12
    # duality gap: regularised where τ > 0 (≈ 0 at the solution), 2·exploitability where τ = 0
    np.testing.assert_allclose(hist.metrics["duality_gap"][-1][0],
                               2 * hist.metrics["exploitability"][-1][0], rtol=1e-9, atol=1e-15)


def test_every_rule_records_the_game_metrics():
    game = tb.PreferenceGame.random(4, seed=18)
    for alg in (SelfPlayMWU(), NashMD(), OnlineIPO(), IPOMD(), NashMirrorProx(), EGPO(),
                OMWU(), INPO(), MagneticMD()):
        hist = tb.run(alg, game, steps=3, seeds=2, init="random")
        assert set(GAME_METRICS) <= set(hist.metrics), type(alg).__name__
        p = hist.policy
        # exploitability = max_y P(y ≻ π) − ½, written out
        expl = (np.einsum("ij,tsj->tsi", game.P, p)).max(-1) - 0.5
        np.testing.assert_allclose(hist.metrics["exploitability"], expl, atol=1e-14)


# ----------------------------------------------------------------------------- properties

RULES = {
    "mwu": lambda eta, tau, ref: SelfPlayMWU(eta=eta),
    "nash_md": lambda eta, tau, ref: NashMD(eta=eta, tau=min(tau, 1 / eta), ref=ref),
    "nash_md_decreasing": lambda eta, tau, ref: NashMD(tau=max(tau, 1e-2), ref=ref,
                                                       schedule="decreasing"),
    "online_ipo": lambda eta, tau, ref: OnlineIPO(eta=eta, tau=max(tau, 1e-2), ref=ref),
    "ipo_md": lambda eta, tau, ref: IPOMD(eta=eta, tau=max(tau, 1e-2), ref=ref, mixture=0.3),
    "mirror_prox": lambda eta, tau, ref: NashMirrorProx(eta=eta, tau=tau, ref=ref),
    "egpo": lambda eta, tau, ref: EGPO(eta=eta, tau=min(tau, 1 / eta), ref=ref),
    "omwu": lambda eta, tau, ref: OMWU(eta=eta, tau=min(tau, 1 / eta), ref=ref),
    "inpo": lambda eta, tau, ref: INPO(eta=eta, tau=min(tau, 1 / eta), ref=ref),
    "mmd": lambda eta, tau, ref: MagneticMD(eta=eta, tau=tau, ref=ref),
}


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 10),
    seed=st.integers(0, 2**31 - 1),
    log_eta=st.floats(-3, 3),
    tau=st.one_of(st.just(0.0), st.floats(1e-2, 10.0)),
    rule=st.sampled_from(sorted(RULES)),
)
def test_updates_stay_finite_and_on_the_simplex(n, seed, log_eta, tau, rule):
    rng = np.random.default_rng(seed)
    game = tb.PreferenceGame.random(n, seed=seed)
    ref = rng.dirichlet(np.ones(n))
    alg = RULES[rule](10.0**log_eta, tau, ref)
    hist = tb.run(alg, game, steps=6, seeds=2, init="random", seed=seed)
    p = hist.policy
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.max(np.abs(p.sum(-1) - 1.0)) < 1e-9
    for name in ("kl_step", "kl_ref", "kl_to_solution", "exploitability", "duality_gap"):
        values = hist.metrics[name]
        assert np.all(np.isfinite(values) | (name == "kl_to_solution")), name
        assert np.all(values >= 0), name


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: NashMD(eta=0.0), "eta"),
        (lambda: NashMD(eta=-1.0), "eta"),
        (lambda: NashMD(tau=-0.1), "tau"),
        (lambda: NashMD(eta=np.array([0.1, -0.1])), "eta"),
        (lambda: NashMD(eta=20.0, tau=0.1), "eta·tau"),
        (lambda: NashMD(tau=0.0, schedule="decreasing"), "tau"),
        (lambda: NashMD(schedule="sqrt"), "schedule"),
        (lambda: NashMD(ref=[0.5, 0.5, 0.0]), "ref"),
        (lambda: NashMD(ref=[0.5, 0.6]), "ref"),
        (lambda: SelfPlayMWU(eta=0.0), "eta"),
        (lambda: OnlineIPO(tau=0.0), "tau"),
        (lambda: OnlineIPO(eta=-1.0), "eta"),
        (lambda: OnlineIPO(mixture=1.0), "mixture"),
        (lambda: IPOMD(mixture=0.0), "mixture"),
        (lambda: NashMirrorProx(tau=-1.0), "tau"),
        (lambda: NashMirrorProx(eta=0.0), "eta"),
        (lambda: NashMirrorProx(ref=[1.0, 0.0]), "ref"),
        (lambda: EGPO(eta=2.0, tau=1.0), "eta·tau"),
        (lambda: EGPO(tau=-1.0), "tau"),
        (lambda: OMWU(eta=-0.5), "eta"),
        (lambda: INPO(tau=np.nan), "tau"),
        (lambda: MagneticMD(eta=0.0), "eta"),
        (lambda: MagneticMD(tau=-0.1), "tau"),
        (lambda: MagneticMD(ref=[0.2, 0.8, 0.0]), "ref"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("make", [
    lambda ref: NashMD(ref=ref), lambda ref: NashMirrorProx(ref=ref),
    lambda ref: MagneticMD(ref=ref), lambda ref: OnlineIPO(ref=ref),
    lambda ref: OMWU(tau=0.1, ref=ref),
])
def test_ref_of_the_wrong_size_is_rejected_against_the_game(make):
    game = tb.PreferenceGame.random(4, seed=0)
    with pytest.raises(ValueError, match="ref"):
        tb.run(make(np.full(3, 1 / 3)), game, steps=1)


def test_a_bandit_is_not_a_game():
    with pytest.raises(TypeError, match="PreferenceGame"):
        tb.run(NashMD(), tb.Bandit([1.0, 0.0]), steps=1)

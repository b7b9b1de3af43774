"""Ground truth on preference games: LP Nash, τ-regularised Nash, exploitability, duality gap.

Every expected answer here is computed independently of ``tabular.solve.games``: by hand
(closed forms on RPS, 2×2 games, the perturbed RPS), from the defining inequalities, or by an
independent solver written below (magnetic mirror descent followed by scipy.optimize.root on
the log-space fixed-point equation).
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import root
from scipy.special import expit, log_softmax, logsumexp, softmax

from tabular.problems import PreferenceGame
from tabular.solve.games import duality_gap, exploitability, nash, regularized_nash

PERTURBED_RPS = np.array([[0.0, -1.0, 3.0], [1.0, 0.0, -3.0], [-3.0, 3.0, 0.0]])


def perturbed_rps_game():
    A = PERTURBED_RPS
    return PreferenceGame(0.5 + A / (2.0 * np.abs(A).max()))


# ----------------------------------------------------------------------------- independent helpers


def win_rates(P, pi):
    """P(y ≻ π) = Σ_j P[y, j] π_j, by explicit einsum."""
    return np.einsum("...ij,...j->...i", P, pi)


def game_value_of(P, pi):
    """min_j Σ_i π_i P[i, j]: what π guarantees against every pure response."""
    return np.min(np.einsum("...ij,...i->...j", P, pi), axis=-1)


def best_response(P, pi, ref, tau):
    """BR_τ(π) ∝ ref·exp(P(·≻π)/τ), in log space."""
    return softmax(np.log(ref) + win_rates(P, pi) / np.asarray(tau)[..., None], axis=-1)


def independent_regularized_nash(P, ref, tau):
    """Magnetic mirror descent (Sokota et al.) for a rough answer, then a root solve.

    MMD in log space: x ← (x + ητ·log ref + η·P(·≻π)) / (1 + ητ), π = softmax(x); its fixed
    point is π ∝ ref·exp(P(·≻π)/τ). Then scipy.optimize.root (Powell hybrid) on the n − 1
    equations r_i − r_0 = 0, r = log π − log BR_τ(π), with π = softmax([0, v]).
    """
    n = P.shape[-1]
    eta = min(1.0, tau / 0.25)  # η ≤ τ / max|P − ½|²
    x = np.log(ref).copy()
    for _ in range(4000):
        pi = softmax(x)
        x = (x + eta * tau * np.log(ref) + eta * (P @ pi)) / (1.0 + eta * tau)
    v0 = (x - x[0])[1:]

    def equations(v):
        z = np.concatenate([[0.0], v])
        log_pi = z - logsumexp(z)
        logits = np.log(ref) + P @ np.exp(log_pi) / tau
        r = log_pi - (logits - logsumexp(logits))
        return r[1:] - r[0]

    sol = root(equations, v0, method="hybr", options={"xtol": 1e-14})
    # hybr may stop with "xtol too small" once at rounding level; judge it by its residual.
    assert np.max(np.abs(equations(sol.x))) < 1e-11, sol.message
    return softmax(np.concatenate([[0.0], sol.x])).reshape(n)


def regularized_gap_via_br(P, p, ref, tau):
    """2τ·KL(p‖BR_τ(p)): the closed form of the regularised gap when P + Pᵀ = 1."""
    # log BR directly (log-softmax): BR can underflow to 0 for tiny τ while p(y) > 0
    log_br = log_softmax(np.log(ref) + win_rates(P, p) / np.asarray(tau)[..., None], axis=-1)
    return 2.0 * tau * np.sum(np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - log_br),
                                       0.0), axis=-1)


# ----------------------------------------------------------------------------- nash


@pytest.mark.parametrize("margin", [0.1, 0.4, 0.5])
def test_nash_rock_paper_scissors_is_uniform(margin):
    np.testing.assert_allclose(nash(PreferenceGame.cyclic(3, margin)), np.full(3, 1 / 3),
                               atol=1e-12)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_nash_odd_cyclic_is_uniform(n):
    np.testing.assert_allclose(nash(PreferenceGame.cyclic(n, 0.3)), np.full(n, 1 / n), atol=1e-12)


def test_nash_even_cyclic_is_an_equilibrium():
    # Cyclic games with even n have many equilibria; whichever comes back must be one.
    g = PreferenceGame.cyclic(4, 0.5)
    pi = nash(g)
    assert np.max(win_rates(g.P, pi)) - 0.5 <= 1e-12


def test_nash_bradley_terry_is_the_top_response():
    scores = np.array([0.3, 2.0, -1.0, 1.5, 1.9])
    pi = nash(PreferenceGame.bradley_terry(scores))
    np.testing.assert_allclose(pi, np.eye(5)[1], atol=1e-12)


def test_nash_perturbed_rps_matches_hand_solution():
    # An interior equilibrium of the antisymmetric A has A·π = 0:
    #   −π₁ + 3π₂ = 0,  π₀ − 3π₂ = 0,  −3π₀ + 3π₁ = 0   ⇒   π = (3, 3, 1)/7.
    by_hand = np.array([3.0, 3.0, 1.0]) / 7.0
    np.testing.assert_allclose(PERTURBED_RPS @ by_hand, 0.0, atol=1e-15)
    np.testing.assert_allclose(nash(perturbed_rps_game()), by_hand, atol=1e-12)


def test_nash_random_games_exploitability_and_value(record_property):
    g = PreferenceGame.random(10, seed=3, batch=(60,))
    pi = nash(g)
    assert pi.shape == (60, 10)
    np.testing.assert_allclose(pi.sum(-1), 1.0, atol=1e-14)
    assert np.all(pi >= 0)
    raw_exploitability = np.max(win_rates(g.P, pi), axis=-1) - 0.5  # unclipped
    value = game_value_of(g.P, pi)
    worst = float(np.max(np.abs(raw_exploitability)))
    record_property("nash_max_exploitability", worst)
    print(f"nash on 60 random 10x10 games: max |exploitability| = {worst:.2e}, "
          f"max |value − ½| = {np.max(np.abs(value - 0.5)):.2e}")
    assert worst <= 1e-9
    np.testing.assert_allclose(value, 0.5, atol=1e-9)


def test_nash_batched_matches_loop():
    g = PreferenceGame.random(6, seed=11, batch=(2, 3))
    pi = nash(g)
    assert pi.shape == (2, 3, 6)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(pi[i, j], nash(PreferenceGame(g.P[i, j])), atol=1e-14)


# ----------------------------------------------------------------------------- regularized_nash


def _cases():
    rng = np.random.default_rng(2024)
    games = [("random", PreferenceGame.random(8, seed=s).P) for s in range(30)]
    games += [("cyclic3", PreferenceGame.cyclic(3, 0.4).P),
              ("cyclic4", PreferenceGame.cyclic(4, 0.25).P),
              ("cyclic5", PreferenceGame.cyclic(5, 0.5).P),
              ("bt", PreferenceGame.bradley_terry(rng.normal(0, 2, size=6)).P),
              ("bt_spread", PreferenceGame.bradley_terry(np.linspace(-4, 4, 7)).P)]
    return games, rng


@pytest.mark.parametrize("tau", [0.01, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("ref_kind", ["uniform", "dirichlet"])
def test_regularized_nash_gap_fixed_point_and_independent_solve(tau, ref_kind):
    games, rng = _cases()
    checked = 0
    for _name, P in games:
        n = P.shape[-1]
        ref = np.full(n, 1.0 / n) if ref_kind == "uniform" else rng.dirichlet(np.ones(n))
        game = PreferenceGame(P)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pi, gap = regularized_nash(game, None if ref_kind == "uniform" else ref, tau,
                                       return_gap=True)
        # (i) the certificate, and the regularised gap recomputed independently
        assert gap <= 1e-10
        assert regularized_gap_via_br(P, pi, ref, tau) <= 1e-10
        # (ii) π* ∝ ref·exp(P(·≻π*)/τ)
        np.testing.assert_allclose(pi, best_response(P, pi, ref, tau), rtol=1e-9, atol=1e-300)
        # (iii) an independent solver agrees
        if checked < 12 or _name != "random":
            np.testing.assert_allclose(pi, independent_regularized_nash(P, ref, tau),
                                       rtol=1e-9, atol=1e-15)
        checked += 1


def test_regularized_nash_batched_over_games_refs_and_tau():
    g = PreferenceGame.random(6, seed=5, batch=(30,))
    rng = np.random.default_rng(1)
    refs = rng.dirichlet(np.ones(6), size=30)
    taus = np.geomspace(0.01, 1.0, 30)
    pi, gap = regularized_nash(g, refs, taus, return_gap=True)
    assert pi.shape == (30, 6) and gap.shape == (30,)
    assert np.all(gap <= 1e-10)
    np.testing.assert_allclose(pi, best_response(g.P, pi, refs, taus), rtol=1e-9)
    # broadcasting: game [3, 1, n, n] × ref [4, n] × tau [3, 1] → [3, 4, n]
    g3 = PreferenceGame(g.P[:3, None])
    pi3 = regularized_nash(g3, refs[:4], taus[:3, None])
    assert pi3.shape == (3, 4, 6)
    for i in range(3):
        for j in range(4):
            one = regularized_nash(PreferenceGame(g.P[i]), refs[j], taus[i])
            np.testing.assert_allclose(pi3[i, j], one, rtol=1e-12)


@pytest.mark.parametrize("tau", [0.001, 0.1, 2.0])
def test_regularized_nash_two_actions_closed_form(tau):
    # P = [[½, ½+d], [½−d, ½]]: log π₀/π₁ = log ref₀/ref₁ + (d·π₁ + d·π₀)/τ = log(ref₀/ref₁) + d/τ.
    d = 0.3
    P = np.array([[0.5, 0.5 + d], [0.5 - d, 0.5]])
    ref = np.array([0.2, 0.8])
    logit = np.log(ref[0] / ref[1]) + d / tau
    expected = [expit(logit), expit(-logit)]
    np.testing.assert_allclose(regularized_nash(PreferenceGame(P), ref, tau), expected,
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("tau", [1e-4, 0.01, 1.0])
def test_regularized_nash_symmetric_game_uniform_ref_is_uniform(tau):
    # By symmetry the unique regularised equilibrium of an odd cyclic game with uniform ref
    # is uniform, for every τ.
    np.testing.assert_allclose(regularized_nash(PreferenceGame.cyclic(5, 0.4), tau=tau),
                               np.full(5, 0.2), atol=1e-13)


def test_regularized_nash_large_tau_gives_ref():
    g = PreferenceGame.random(7, seed=8)
    ref = np.random.default_rng(3).dirichlet(np.ones(7))
    dev = [np.max(np.abs(regularized_nash(g, ref, tau) - ref)) for tau in (1e2, 1e3, 1e4)]
    assert dev[-1] <= 1e-4
    # π* − ref = O(1/τ): each tenfold τ shrinks the deviation tenfold.
    np.testing.assert_allclose(dev[0] / dev[1], 10.0, rtol=0.05)
    np.testing.assert_allclose(dev[1] / dev[2], 10.0, rtol=0.05)


def test_regularized_nash_bradley_terry_small_tau_picks_the_best():
    scores = np.array([0.0, 1.0, 3.0, 2.0])
    pi = regularized_nash(PreferenceGame.bradley_terry(scores), tau=0.01)
    assert pi[2] > 0.99
    assert np.argmax(pi) == 2


def test_regularized_nash_small_tau_approaches_nash():
    # exploitability(π*_τ) ≤ τ·log n for uniform ref (the KL terms are at most log n).
    g = PreferenceGame.random(10, seed=4, batch=(10,))
    for tau in (1e-2, 1e-3, 1e-4):
        pi = regularized_nash(g, tau=tau)
        assert np.all(np.max(win_rates(g.P, pi), axis=-1) - 0.5 <= tau * np.log(10) + 1e-12)
    np.testing.assert_allclose(regularized_nash(g, tau=1e-5), nash(g), atol=1e-3)


def test_regularized_nash_tiny_tau_stays_finite():
    g = PreferenceGame.random(20, seed=6, batch=(5,))
    pi, gap = regularized_nash(g, tau=1e-4, return_gap=True)
    assert np.all(np.isfinite(pi)) and np.all(gap <= 1e-10)
    np.testing.assert_allclose(pi, best_response(g.P, pi, np.full(20, 0.05), 1e-4), atol=1e-9)


def test_regularized_nash_warns_when_not_certified():
    g = PreferenceGame.random(10, seed=1)
    with pytest.warns(RuntimeWarning, match="did not reach"):
        regularized_nash(g, tau=1e-3, max_iter=1)


# ----------------------------------------------------------------------------- exploitability / gap


@pytest.mark.parametrize("margin", [0.1, 0.35])
def test_pure_strategy_in_rps_closed_forms(margin):
    g = PreferenceGame.cyclic(3, margin)
    rock = np.array([1.0, 0.0, 0.0])
    # Paper beats rock by the margin: P(paper ≻ rock) − ½ = margin.
    np.testing.assert_allclose(exploitability(g, rock), margin, rtol=1e-14)
    np.testing.assert_allclose(duality_gap(g, rock), 2 * margin, rtol=1e-14)
    np.testing.assert_allclose(exploitability(g, np.full(3, 1 / 3)), 0.0, atol=1e-15)
    # Regularised, uniform ref, by hand: column 0 of P is (½, ½ − m, ½ + m) and row 0 is
    # (½, ½ + m, ½ − m); KL(rock‖uniform) = log 3.
    tau = 0.2
    col, row = np.array([0.5, 0.5 - margin, 0.5 + margin]), np.array([0.5, 0.5 + margin,
                                                                      0.5 - margin])
    best = tau * np.log(np.mean(np.exp(col / tau))) + tau * np.log(3)
    worst = -tau * np.log(3) - tau * np.log(np.mean(np.exp(-row / tau)))
    np.testing.assert_allclose(duality_gap(g, rock, tau=tau), best - worst, rtol=1e-13)


def test_gap_and_exploitability_vanish_at_equilibria():
    g = PreferenceGame.random(9, seed=12, batch=(20,))
    assert np.all(exploitability(g, nash(g)) <= 1e-12)
    assert np.all(duality_gap(g, nash(g)) <= 2e-12)
    ref = np.random.default_rng(0).dirichlet(np.ones(9))
    pi = regularized_nash(g, ref, 0.05)
    assert np.all(duality_gap(g, pi, ref, 0.05) <= 1e-12)
    # ... and the regularised equilibrium is not a zero of the other gaps
    assert np.all(duality_gap(g, pi, ref, 0.5) > 1e-6)
    assert np.all(exploitability(g, pi) > 1e-6)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 8),
       tau=st.floats(1e-3, 10.0), conc=st.sampled_from([0.1, 1.0, 10.0]))
def test_gap_properties_on_random_policies(seed, n, tau, conc):
    rng = np.random.default_rng(seed)
    g = PreferenceGame.random(n, seed=seed % 1000)
    p = rng.dirichlet(conc * np.ones(n), size=4)
    ref = rng.dirichlet(np.ones(n))
    e = exploitability(g, p)
    gap0 = duality_gap(g, p)
    gap = duality_gap(g, p, ref, tau)
    assert e.shape == gap.shape == (4,)
    assert np.all(e >= 0) and np.all(gap0 >= 0) and np.all(gap >= 0)
    # τ = 0: max_π P(π ≻ p) − min_π′ P(p ≻ π′) = 2·exploitability, since P + Pᵀ = 1.
    np.testing.assert_allclose(gap0, 2 * e, atol=1e-14)
    np.testing.assert_allclose(e, np.max(win_rates(g.P, p), -1) - 0.5, atol=1e-14)
    # τ > 0: 2τ·KL(p‖BR_τ(p)).
    np.testing.assert_allclose(gap, regularized_gap_via_br(g.P, p, ref, tau), rtol=1e-7,
                               atol=1e-12)


def test_gap_broadcasts_game_batch_against_policy_batch():
    # The runner's shapes: policies [sweep, seeds, n], game expanded to [sweep, 1, n, n].
    g = PreferenceGame.random(5, seed=2, batch=(3, 1))
    p = np.random.default_rng(4).dirichlet(np.ones(5), size=(3, 4))
    e = exploitability(g, p)
    gap = duality_gap(g, p, tau=0.1)
    assert e.shape == gap.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            gi = PreferenceGame(g.P[i, 0])
            np.testing.assert_allclose(e[i, j], exploitability(gi, p[i, j]), rtol=1e-14)
            np.testing.assert_allclose(gap[i, j], duality_gap(gi, p[i, j], tau=0.1), rtol=1e-14)


def test_policies_with_zeros_are_fine():
    g = PreferenceGame.cyclic(3, 0.4)
    p = np.array([0.5, 0.5, 0.0])
    assert np.isfinite(duality_gap(g, p, tau=0.1))
    np.testing.assert_allclose(duality_gap(g, p, tau=0.1),
                               regularized_gap_via_br(g.P, p, np.full(3, 1 / 3), 0.1), rtol=1e-12)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_raises_naming_the_argument():
    g = PreferenceGame.cyclic(3, 0.4)
    u = np.full(3, 1 / 3)
    with pytest.raises(ValueError, match="tau"):
        regularized_nash(g, tau=-0.1)
    with pytest.raises(ValueError, match=r"tau must be > 0.*nash\(game\)"):
        regularized_nash(g, tau=0.0)
    with pytest.raises(ValueError, match="tau"):
        duality_gap(g, u, tau=-1.0)
    with pytest.raises(ValueError, match="tau"):
        regularized_nash(g, tau=np.nan)
    with pytest.raises(ValueError, match="ref must be > 0"):
        regularized_nash(g, ref=[0.5, 0.5, 0.0], tau=0.1)
    with pytest.raises(ValueError, match="ref must be > 0"):
        duality_gap(g, u, ref=[0.5, 0.5, 0.0], tau=0.1)
    with pytest.raises(ValueError, match="ref"):
        regularized_nash(g, ref=[0.5, 0.6, 0.2], tau=0.1)
    with pytest.raises(ValueError, match="ref must have 3 actions"):
        regularized_nash(g, ref=[0.5, 0.5], tau=0.1)
    with pytest.raises(ValueError, match=r"^p must sum to 1"):
        exploitability(g, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=r"^p must be non-negative"):
        duality_gap(g, [1.5, -0.5, 0.0])
    with pytest.raises(ValueError, match=r"^p must have 3 actions"):
        exploitability(g, [0.25, 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match=r"^p must have 3 actions"):
        duality_gap(g, [0.5, 0.5], tau=0.1)
    with pytest.raises(ValueError, match="tol"):
        regularized_nash(g, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        regularized_nash(g, max_iter=0)
    with pytest.raises(TypeError, match=r"game must be a tabular\.PreferenceGame"):
        nash(np.full((3, 3), 0.5))
    batched = PreferenceGame.random(3, batch=(4,))
    with pytest.raises(ValueError, match=r"do not broadcast: game \(4,\), p \(2,\)"):
        exploitability(batched, np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"do not broadcast: .*tau \(3,\)"):
        regularized_nash(batched, tau=np.ones(3))
    # ref plays no part at τ = 0, so zeros there are fine.
    np.testing.assert_allclose(duality_gap(g, u, ref=[0.5, 0.5, 0.0], tau=0.0), 0.0, atol=1e-15)

"""The Bradley–Terry RLHF pipeline and direct preference losses (offline and online),
against closed forms, finite differences and the Nash solvers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tabular as tb
from tabular.algorithms.games import (
    EGPO,
    INPO,
    OMWU,
    MagneticMD,
    NashMD,
    NashMirrorProx,
    OnlineIPO,
    SelfPlayMWU,
)
from tabular.algorithms.preference import (
    BradleyTerryRLHF,
    OfflineDPO,
    OnlineDPO,
    expected_pairs,
    fit_bradley_terry,
)

VARIANTS = ("dpo", "ipo", "slic", "simpo")


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def perturbed_rps():
    """Rock-paper-scissors with unequal margins: Nash (3, 3, 1)/7, not uniform."""
    A = np.array([[0.0, -1.0, 3.0], [1.0, 0.0, -3.0], [-3.0, 3.0, 0.0]])
    return tb.PreferenceGame(0.5 + A / 6.0)


def pair_loss(variant, logp, log_ref, w, lo, beta, gamma=0.0):
    """One pair's loss, written out from the papers' formulas."""
    delta = (logp[w] - log_ref[w]) - (logp[lo] - log_ref[lo])
    if variant == "dpo":
        return -np.log(sigmoid(beta * delta))
    if variant == "ipo":
        return (delta - 1 / (2 * beta)) ** 2
    if variant == "slic":
        return max(0.0, 1 - beta * delta)
    return -np.log(sigmoid(beta * (logp[w] - logp[lo]) - gamma))


def fd_gradient(f, theta, eps=1e-6):
    return np.array([(f(theta + eps * e) - f(theta - eps * e)) / (2 * eps)
                     for e in np.eye(len(theta))])


# ----------------------------------------------------------------------------- BT fit


def test_bradley_terry_fit_recovers_the_scores_of_a_bradley_terry_game():
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=2.0, size=(12, 7))
    fit = fit_bradley_terry(tb.PreferenceGame.bradley_terry(scores))
    np.testing.assert_allclose(fit, scores - scores.mean(-1, keepdims=True), atol=1e-10)


def test_bradley_terry_fit_is_the_likelihood_maximum_on_a_non_transitive_game():
    game = perturbed_rps()
    s = fit_bradley_terry(game)

    def loglik(s):
        return np.sum(game.P * np.log(sigmoid(s[:, None] - s[None, :])))

    np.testing.assert_allclose(fd_gradient(loglik, s), 0.0, atol=1e-8)
    rng = np.random.default_rng(1)
    for _ in range(20):  # concave: every perturbation is worse
        assert loglik(s + 0.1 * rng.normal(size=3)) < loglik(s)


def test_bradley_terry_fit_without_a_maximum_asks_for_l2():
    ranking = np.triu(np.ones((4, 4)), 1) + 0.5 * np.eye(4)  # deterministic: 0 ≻ 1 ≻ 2 ≻ 3
    game = tb.PreferenceGame(ranking)
    with pytest.raises(ValueError, match="l2"):
        fit_bradley_terry(game)
    s = fit_bradley_terry(game, l2=0.1)
    assert np.all(np.diff(s) < 0)


# ----------------------------------------------------------------------------- BT vs Nash


def test_on_a_bradley_terry_game_every_method_agrees_with_the_bt_pipeline():
    scores = np.array([0.0, 1.0, 2.5, -0.5, 1.5])
    game = tb.PreferenceGame.bradley_terry(scores)
    rng = np.random.default_rng(2)
    ref = rng.dirichlet(np.full(5, 3.0))
    winner = int(np.argmax(scores))

    # direct preference optimisation reaches the BT pipeline's policy exactly (β = 0.5)
    beta = 0.5
    bt = tb.run(BradleyTerryRLHF(beta=beta, ref=ref), game, steps=1).final_policy[0]
    closed_form = softmax(np.log(ref) + scores / beta)
    np.testing.assert_allclose(bt, closed_form, rtol=1e-10)
    pairs, counts = expected_pairs(game, range(5), n_labels=4.0)
    offline = tb.run(OfflineDPO(beta=beta, eta=3.0, pairs=pairs, counts=counts, ref=ref), game,
                     steps=1000, init=ref, record_every=1000)
    np.testing.assert_allclose(offline.final_policy[0], bt, atol=1e-12)
    online = OnlineDPO(beta=beta, eta=10.0, ref=ref)
    at_bt = tb.run(online, game, steps=1, init=bt)  # stationary: one step stays put
    np.testing.assert_allclose(at_bt.final_policy[0], bt, atol=1e-13)
    moving = tb.run(online, game, steps=3000, seeds=2, init="random", record_every=3000)
    np.testing.assert_allclose(moving.final_policy, np.broadcast_to(bt, (2, 5)), atol=1e-3)

    # Nash methods: at small τ = β they all pick the BT winner, as the BT pipeline does
    tau = 0.02
    bt_small = tb.run(BradleyTerryRLHF(beta=tau), game, steps=1).final_policy[0]
    assert bt_small[winner] > 1 - 1e-12
    np.testing.assert_allclose(tb.solve.nash(game), np.eye(5)[winner], atol=1e-9)
    for alg in (SelfPlayMWU(eta=0.5), OMWU(eta=0.5), EGPO(eta=0.5, tau=0.0),
                NashMD(eta=0.5, tau=tau), NashMD(tau=tau, schedule="decreasing"),
                NashMirrorProx(tau=tau), MagneticMD(eta=0.5, tau=tau), EGPO(eta=1.0, tau=tau),
                INPO(eta=1.0, tau=tau), OnlineIPO(eta=0.01, tau=tau)):
        final = tb.run(alg, game, steps=3000, seeds=2, init="random",
                       record_every=3000).final_policy
        assert np.all(final.argmax(-1) == winner), type(alg).__name__
        tv = 0.5 * np.abs(final - bt_small).sum(-1)
        assert tv.max() < 2e-3, (type(alg).__name__, tv.max())


NASH_METHODS = [
    (lambda tau: OMWU(eta=0.5), "nash"),
    (lambda tau: EGPO(eta=0.5, tau=0.0), "nash"),
    (lambda tau: NashMD(eta=0.1, tau=tau), "regularized"),  # its bias ∝ η² is ~1e-4 here
    (lambda tau: NashMD(tau=tau, schedule="decreasing"), "regularized"),
    (lambda tau: NashMirrorProx(tau=tau), "regularized"),
    (lambda tau: MagneticMD(eta=0.5, tau=tau), "regularized"),
    (lambda tau: EGPO(eta=1.0, tau=tau), "regularized"),
    (lambda tau: INPO(eta=1.0, tau=tau), "regularized"),
    (lambda tau: OnlineIPO(eta=0.05, tau=tau), "regularized"),
]


def test_on_a_cyclic_game_the_bt_pipeline_picks_one_response_and_nash_methods_mix():
    game = perturbed_rps()
    nash = np.array([3.0, 3.0, 1.0]) / 7.0
    np.testing.assert_allclose(tb.solve.nash(game), nash, atol=1e-9)  # closed form
    tau = 0.05
    hist = tb.run(BradleyTerryRLHF(beta=tau), game, steps=1)
    bt = hist.final_policy[0]
    assert bt.max() > 0.99  # one response takes (almost) everything …
    assert hist.metrics["exploitability"][-1, 0] > 0.15  # … and is badly exploitable
    assert hist.metrics["bt_residual"][-1, 0] > 0.3  # the game is far from Bradley–Terry
    star = tb.solve.regularized_nash(game, tau=tau)
    for make, target in NASH_METHODS:
        alg = make(tau)
        final = tb.run(alg, game, steps=3000, seeds=2, init="random",
                       record_every=3000).final_policy
        expected = nash if target == "nash" else star
        np.testing.assert_allclose(final, np.broadcast_to(expected, final.shape), atol=2e-3,
                                   err_msg=type(alg).__name__)
        assert final.max() < 0.5 and final.min() > 0.1, type(alg).__name__
    # self-play MWU mixes only on average (its last iterate cycles)
    mwu = tb.run(SelfPlayMWU(eta=0.05), game, steps=20000, seeds=2, init="random",
                 record_every=20000)
    np.testing.assert_allclose(mwu.average_policy, np.broadcast_to(nash, (2, 3)), atol=2e-2)


def test_on_the_symmetric_cyclic_game_the_bt_fit_sees_no_winner():
    """PreferenceGame.cyclic(n) is rotation-symmetric: the BT scores tie and π_BT = ref."""
    game = tb.PreferenceGame.cyclic(5, 0.3)
    np.testing.assert_allclose(fit_bradley_terry(game), 0.0, atol=1e-12)
    np.testing.assert_allclose(tb.run(BradleyTerryRLHF(beta=0.01), game, steps=1).final_policy,
                               0.2, atol=1e-12)


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("variant", VARIANTS)
def test_offline_step_is_a_gradient_step_on_the_dataset_loss(variant):
    rng = np.random.default_rng(3)
    n = 6
    game = tb.PreferenceGame.random(n, seed=4)
    ref = rng.dirichlet(np.ones(n))
    pairs = np.array([[0, 1], [1, 2], [2, 0], [3, 1], [0, 3]])
    counts = np.array([3.0, 1.0, 2.0, 0.5, 1.5])
    beta, eta, gamma, sft = 0.7, 1e-3, 0.3, (0.4 if variant == "slic" else 0.0)
    theta = rng.normal(size=n)

    def loss(th):
        logp = th - np.log(np.sum(np.exp(th)))
        terms = [pair_loss(variant, logp, np.log(ref), w, lo, beta, gamma) - sft * logp[w]
                 for w, lo in pairs]
        return np.dot(counts, terms) / counts.sum()

    alg = OfflineDPO(beta=beta, eta=eta, variant=variant, pairs=pairs, counts=counts, ref=ref,
                     gamma=gamma, sft=sft)
    p0 = softmax(theta)
    hist = tb.run(alg, game, steps=1, init=p0)
    delta = np.log(hist.final_policy[0]) - np.log(p0)
    grad = fd_gradient(loss, theta)
    np.testing.assert_allclose(delta - delta.mean(), -eta * (grad - grad.mean()), atol=1e-10)
    np.testing.assert_allclose(hist.metrics["loss"][0, 0], loss(theta), rtol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_online_step_is_a_gradient_step_on_the_expected_loss_of_self_sampled_pairs(variant):
    rng = np.random.default_rng(5)
    n = 5
    game = tb.PreferenceGame.random(n, seed=6)
    ref = rng.dirichlet(np.ones(n))
    beta, eta, sft = 0.6, 1e-3, (0.3 if variant == "slic" else 0.0)
    theta = rng.normal(size=n)
    sample = softmax(theta)  # the sampling policy, held fixed (stop-gradient)

    def loss(th):
        logp = th - np.log(np.sum(np.exp(th)))
        total = 0.0
        for y in range(n):
            for y2 in range(n):
                for w, lo, prob in ((y, y2, game.P[y, y2]), (y2, y, game.P[y2, y])):
                    ell = pair_loss(variant, logp, np.log(ref), w, lo, beta) - sft * logp[w]
                    total += sample[y] * sample[y2] * prob * ell
        return total

    alg = OnlineDPO(beta=beta, eta=eta, variant=variant, ref=ref, sft=sft)
    hist = tb.run(alg, game, steps=1, init=sample)
    delta = np.log(hist.final_policy[0]) - np.log(sample)
    grad = fd_gradient(loss, theta)
    np.testing.assert_allclose(delta - delta.mean(), -eta * (grad - grad.mean()), atol=1e-10)
    np.testing.assert_allclose(hist.metrics["loss"][0, 0], loss(theta), rtol=1e-12)


def test_online_dpo_with_the_ipo_loss_is_online_ipo():
    rng = np.random.default_rng(7)
    game = tb.PreferenceGame.random(6, seed=8, batch=(4,))
    ref = rng.dirichlet(np.ones(6))
    p0 = rng.dirichlet(np.ones(6), size=(4, 2))
    a = tb.run(OnlineDPO(beta=0.3, eta=0.05, variant="ipo", ref=ref), game, 5, seeds=2, init=p0)
    b = tb.run(OnlineIPO(tau=0.3, eta=0.05, ref=ref), game, 5, seeds=2, init=p0)
    np.testing.assert_allclose(a.policy, b.policy, rtol=1e-12)


# ----------------------------------------------------------------------------- coverage


def coverage_setup():
    """10 responses; the data covers 0–3 (the best four), the start prefers the worst of them."""
    scores = np.array([2.0, 1.5, 1.0, 0.5, -1.0, -1.2, -1.4, -1.6, -1.8, -2.0])
    game = tb.PreferenceGame.bradley_terry(scores)
    ref = np.array([0.02, 0.03, 0.05, 0.5] + [0.4 / 6] * 6)
    pairs, counts = expected_pairs(game, [0, 1, 2, 3], n_labels=10.0)
    return game, ref, pairs, counts


def test_offline_dpo_moves_mass_onto_uncovered_responses_and_online_dpo_does_not():
    game, ref, pairs, counts = coverage_setup()
    uncovered = np.arange(4, 10)
    start = ref[uncovered].sum()
    grown = {}
    for variant in VARIANTS:
        for beta in (0.1, 0.5, 2.0):
            alg = OfflineDPO(beta=beta, eta=1.0, variant=variant, pairs=pairs, counts=counts,
                             ref=ref)
            hist = tb.run(alg, game, steps=1000, init=ref, record_every=10)
            mass = hist.metrics["mass_uncovered"][:, 0]
            np.testing.assert_allclose(mass, hist.policy[:, 0][:, uncovered].sum(-1), rtol=1e-12)
            assert mass[0] == pytest.approx(start)
            grown[variant, beta] = (mass.max(), mass[-1])
            # uncovered logits never move relative to each other
            logp = np.log(hist.final_policy[0][uncovered])
            np.testing.assert_allclose(logp - logp[0], np.log(ref[uncovered] / ref[4]),
                                       atol=1e-12)
    # some configurations end with much more mass on never-seen (and worse) responses
    assert max(final for _, final in grown.values()) > start + 0.15
    assert grown["dpo", 0.5][1] > start + 0.15
    print("offline uncovered mass (max, final) from", start, grown)

    for variant in ("dpo", "ipo", "simpo"):
        alg = OnlineDPO(beta=0.5, eta=1.0, variant=variant, ref=ref, covered=[0, 1, 2, 3])
        hist = tb.run(alg, game, steps=1000, init=ref, record_every=10)
        mass = hist.metrics["mass_uncovered"][:, 0]
        assert np.all(np.diff(mass) <= 1e-12), variant  # never grows …
        assert mass[-1] < start - 0.1, variant  # … and falls: online data covers everything


def test_from_a_start_uniform_on_the_covered_responses_offline_mass_cannot_grow():
    """The docstring's Jensen argument: Σ_covered e^θ at a fixed logit sum is smallest when
    the covered logits are equal, so pairwise losses can only pull mass *off* uncovered ones."""
    game, _, pairs, counts = coverage_setup()
    for variant in VARIANTS:
        hist = tb.run(OfflineDPO(beta=0.5, eta=1.0, variant=variant, pairs=pairs, counts=counts),
                      game, steps=500, record_every=5)
        mass = hist.metrics["mass_uncovered"][:, 0]
        assert np.all(mass <= mass[0] + 1e-12), variant


def test_offline_records_have_the_trl_names_and_sane_values():
    game, ref, pairs, counts = coverage_setup()
    hist = tb.run(OfflineDPO(beta=0.5, eta=1.0, pairs=pairs, counts=counts, ref=ref), game,
                  steps=50, init=ref)
    for name in ("loss", "mass_uncovered", "logp_chosen", "logp_rejected", "rewards/chosen",
                 "rewards/rejected", "rewards/margins", "rewards/accuracies", "exploitability",
                 "duality_gap", "kl_to_solution", "kl_ref", "kl_step", "entropy"):
        assert name in hist.metrics, name
    acc = hist.metrics["rewards/accuracies"]
    assert np.all((acc >= 0) & (acc <= 1))
    assert acc[0, 0] == 0.0 and acc[-1, 0] > 0.5  # from ref (all margins 0) to mostly right
    np.testing.assert_allclose(hist.metrics["rewards/margins"],
                               hist.metrics["rewards/chosen"] - hist.metrics["rewards/rejected"],
                               atol=1e-12)
    assert np.all(np.diff(hist.metrics["loss"][:, 0]) <= 1e-12)  # full-batch GD, small η


# ----------------------------------------------------------------------------- properties

BUILDERS = {
    "offline": lambda beta, eta, variant, ref: OfflineDPO(
        beta=beta, eta=eta, variant=variant, pairs=[[0, 1], [1, 0], [2, 0]], counts=[2, 1, 1],
        ref=ref),
    "online": lambda beta, eta, variant, ref: OnlineDPO(beta=beta, eta=eta, variant=variant,
                                                        ref=ref),
    "bt": lambda beta, eta, variant, ref: BradleyTerryRLHF(beta=beta, ref=ref, l2=1e-3),
}


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(3, 8),
    seed=st.integers(0, 2**31 - 1),
    log_eta=st.floats(-3, 3),
    beta=st.floats(1e-2, 10.0),
    variant=st.sampled_from(VARIANTS),
    kind=st.sampled_from(sorted(BUILDERS)),
)
def test_preference_updates_stay_finite_and_on_the_simplex(n, seed, log_eta, beta, variant, kind):
    rng = np.random.default_rng(seed)
    game = tb.PreferenceGame.random(n, seed=seed)
    ref = rng.dirichlet(np.ones(n))
    hist = tb.run(BUILDERS[kind](beta, 10.0**log_eta, variant, ref), game, steps=6, seeds=2,
                  init="random", seed=seed)
    p = hist.policy
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.max(np.abs(p.sum(-1) - 1.0)) < 1e-9
    for name in ("kl_step", "kl_ref", "kl_to_solution", "exploitability", "duality_gap"):
        assert np.all(hist.metrics[name] >= 0), name


# ----------------------------------------------------------------------------- bad input

PAIRS = [[0, 1], [2, 1]]


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: OfflineDPO(beta=0.0, pairs=PAIRS), "beta"),
        (lambda: OfflineDPO(eta=-1.0, pairs=PAIRS), "eta"),
        (lambda: OfflineDPO(variant="kto", pairs=PAIRS), "variant"),
        (lambda: OfflineDPO(pairs=None), "pairs"),
        (lambda: OfflineDPO(pairs=[0, 1]), "pairs"),
        (lambda: OfflineDPO(pairs=[[0, 0]]), "pairs"),
        (lambda: OfflineDPO(pairs=[[0, -1]]), "pairs"),
        (lambda: OfflineDPO(pairs=PAIRS, counts=[1.0]), "counts"),
        (lambda: OfflineDPO(pairs=PAIRS, counts=[1.0, -1.0]), "counts"),
        (lambda: OfflineDPO(pairs=PAIRS, ref=[0.5, 0.5, 0.0]), "ref"),
        (lambda: OfflineDPO(pairs=PAIRS, sft=0.1), "sft"),
        (lambda: OnlineDPO(beta=-0.1), "beta"),
        (lambda: OnlineDPO(eta=0.0), "eta"),
        (lambda: OnlineDPO(covered=[-1]), "covered"),
        (lambda: BradleyTerryRLHF(beta=0.0), "beta"),
        (lambda: BradleyTerryRLHF(ref=[1.0, 0.0]), "ref"),
        (lambda: fit_bradley_terry(perturbed_rps(), l2=-1.0), "l2"),
        (lambda: expected_pairs(tb.PreferenceGame.random(3, batch=(2,)), [0, 1]), "unbatched"),
        (lambda: expected_pairs(perturbed_rps(), [0, 5]), "responses"),
    ],
)
def test_bad_input_names_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("alg, match", [
    (OfflineDPO(pairs=[[0, 4]]), "pairs"),
    (OfflineDPO(pairs=PAIRS, ref=np.full(4, 0.25)), "ref"),
    (OnlineDPO(covered=[0, 7]), "covered"),
    (OnlineDPO(ref=np.full(2, 0.5)), "ref"),
    (BradleyTerryRLHF(ref=np.full(5, 0.2)), "ref"),
])
def test_sizes_are_checked_against_the_game(alg, match):
    with pytest.raises(ValueError, match=match):
        tb.run(alg, perturbed_rps(), steps=1)

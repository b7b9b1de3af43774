"""Problem constructors: valid games and bandits, and clear errors for bad ones."""

import numpy as np
import pytest

import tabular as tb


def test_cyclic_game_is_rock_paper_scissors():
    P = tb.PreferenceGame.cyclic(3, margin=0.4).P
    np.testing.assert_allclose(P, [[0.5, 0.9, 0.1], [0.1, 0.5, 0.9], [0.9, 0.1, 0.5]])


def test_bradley_terry_is_sigmoid_of_score_differences():
    scores = np.array([0.0, 1.0, -2.0])
    P = tb.PreferenceGame.bradley_terry(scores).P
    np.testing.assert_allclose(P[1, 0], 1 / (1 + np.exp(-1.0)), rtol=1e-14)
    np.testing.assert_allclose(P[0, 2], 1 / (1 + np.exp(-2.0)), rtol=1e-14)


def test_random_game_is_valid_and_batched():
    game = tb.PreferenceGame.random(6, seed=3, batch=(4,))
    assert game.P.shape == (4, 6, 6) and game.batch_shape == (4,)
    np.testing.assert_allclose(game.P + np.swapaxes(game.P, -1, -2), 1.0)
    p = np.full(6, 1 / 6)
    np.testing.assert_allclose(game.preference(p, p), 0.5)


def test_bandit_sampling_uses_noise():
    bandit = tb.Bandit([1.0, 0.0], noise_std=[0.0, 2.0])
    rng = np.random.default_rng(0)
    draws = bandit.sample_rewards(np.array([0] * 1000 + [1] * 1000), rng)
    assert np.all(draws[:1000] == 1.0)
    assert 1.8 < draws[1000:].std() < 2.2


@pytest.mark.parametrize(
    "P, match",
    [
        ([[0.5, 0.7], [0.7, 0.5]], r"P \+ Pᵀ = 1"),
        ([[0.5, 1.2], [-0.2, 0.5]], r"\[0, 1\]"),
        ([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], "shape"),
        ([0.5, 0.5], "shape"),
        ([[0.5, np.nan], [np.nan, 0.5]], "finite"),
    ],
)
def test_preference_game_rejects_bad_matrices(P, match):
    with pytest.raises(ValueError, match=match):
        tb.PreferenceGame(P)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: tb.PreferenceGame.cyclic(3, margin=0.7), "margin"),
        (lambda: tb.PreferenceGame.cyclic(1), "n"),
        (lambda: tb.PreferenceGame.bradley_terry([np.inf, 0.0]), "scores"),
        (lambda: tb.Bandit.random(0), "n_actions"),
        (lambda: tb.Bandit([[1.0, 2.0]]).sample_rewards([0], np.random.default_rng(0)),
         "unbatched"),
    ],
)
def test_constructors_reject_bad_arguments(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()

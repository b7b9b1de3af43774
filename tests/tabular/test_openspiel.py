"""Cross-check the preference-game ground truth against the peer, OpenSpiel.

A preference game P is the symmetric zero-sum matrix game with payoff A = P − ½ to the row
player and −A to the column player. We build it with ``pyspiel.create_matrix_game`` and ask
OpenSpiel for (a) the NashConv of our ``nash`` strategy played by both players, (b) the game
value from its own LP solver (``lp_solver.solve_zero_sum_matrix_game``, which needs cvxpy),
and (c) the α-QRE that its magnetic mirror descent (``mmd_dilated.MMDDilatedEnt``, Sokota et
al.) converges to, which for a matrix game is our τ-regularised Nash with uniform ref, τ = α.

Install: ``pip install open_spiel`` (2.0 is known to work; cvxpy + ecos for the LP solver).
"""

import numpy as np
import pytest

pyspiel = pytest.importorskip("pyspiel")

from open_spiel.python import policy as policy_lib  # noqa: E402
from open_spiel.python.algorithms import exploitability as os_exploitability  # noqa: E402

from tabular.problems import PreferenceGame  # noqa: E402
from tabular.solve.games import duality_gap, nash, regularized_nash  # noqa: E402


def _games():
    A = np.array([[0.0, -1.0, 3.0], [1.0, 0.0, -3.0], [-3.0, 3.0, 0.0]])
    return {
        "rps": PreferenceGame.cyclic(3, 0.5),
        "perturbed_rps": PreferenceGame(0.5 + A / (2.0 * np.abs(A).max())),
        "random10": PreferenceGame.random(10, seed=7),
    }


GAMES = _games()


def spiel_matrix_game(game: PreferenceGame):
    A = game.P - 0.5
    return pyspiel.create_matrix_game(A.tolist(), (-A).tolist())


def both_players_play(turn_based_game, pi):
    """A TabularPolicy in which each player's single information state plays ``pi``."""
    policy = policy_lib.TabularPolicy(turn_based_game)
    assert policy.action_probability_array.shape == (2, len(pi))
    policy.action_probability_array[:] = pi
    return policy


@pytest.mark.parametrize("name", list(GAMES))
def test_openspiel_nash_conv_of_our_nash(name):
    game = GAMES[name]
    matrix_game = spiel_matrix_game(game)
    assert matrix_game.get_type().utility == pyspiel.GameType.Utility.ZERO_SUM
    turn_based = pyspiel.convert_to_turn_based(matrix_game)
    pi = nash(game)
    conv = os_exploitability.nash_conv(turn_based, both_players_play(turn_based, pi))
    print(f"{name}: OpenSpiel NashConv of our nash = {conv:.2e}")
    assert conv <= 1e-8
    # ... and NashConv is sensitive: a perturbed strategy is clearly exploitable.
    off = 0.9 * pi + 0.1 * np.eye(game.n_actions)[np.argmin(pi)]
    assert os_exploitability.nash_conv(turn_based, both_players_play(turn_based, off)) > 1e-4


@pytest.mark.parametrize("name", list(GAMES))
def test_openspiel_lp_solver_agrees_on_value_and_strategy(name):
    pytest.importorskip("cvxpy")  # OpenSpiel's lp_solver is written on cvxpy (ECOS)
    from open_spiel.python.algorithms import lp_solver

    game = GAMES[name]
    p0, p1, v0, v1 = lp_solver.solve_zero_sum_matrix_game(spiel_matrix_game(game))
    ours = nash(game)
    our_value = np.min(ours @ (game.P - 0.5))  # min_j Σ_i π_i A[i, j]
    np.testing.assert_allclose([v0, v1], 0.0, atol=1e-6)  # ECOS works to ~1e-7
    np.testing.assert_allclose(our_value, v0, atol=1e-6)
    assert abs(our_value) <= 1e-9
    # These three games have a unique equilibrium, so the strategies agree too.
    np.testing.assert_allclose(np.asarray(p0), ours, atol=1e-5)
    np.testing.assert_allclose(np.asarray(p1), ours, atol=1e-5)


@pytest.mark.parametrize("name", ["perturbed_rps", "random10"])
@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_openspiel_mmd_converges_to_our_regularized_nash(name, alpha):
    from open_spiel.python.algorithms import mmd_dilated

    game = GAMES[name]
    turn_based = pyspiel.convert_to_turn_based(spiel_matrix_game(game))
    ours = regularized_nash(game, tau=alpha)
    mmd = mmd_dilated.MMDDilatedEnt(turn_based, alpha=alpha)
    for _ in range(600 if alpha == 0.5 else 1500):
        mmd.update_sequences()
    theirs = mmd.get_policies().action_probability_array
    np.testing.assert_allclose(theirs, np.stack([ours, ours]), atol=1e-8)
    # OpenSpiel's regularised gap at its iterate, against ours at the same point.
    np.testing.assert_allclose(mmd.get_gap(), duality_gap(game, theirs[0], tau=alpha),
                               atol=1e-10)

"""SimplexView, GameView and GridView driven through their Python API: every assertion reads
the figure's data and holds it against an answer computed here independently."""

import gymnasium as gym
import numpy as np
import pytest

import tabular as tb
from tabular.algorithms.games import NashMD, SelfPlayMWU
from toolkit.widgets import GameView, GridView, SimplexView
from toolkit.widgets._exact import running_average
from toolkit.widgets.simplex import NO_FIELD, simplex_grid

BANDIT = tb.Bandit([1.0, 0.5, 0.2])
RPS = tb.PreferenceGame.cyclic(3)


def traces(fig, name_prefix):
    return [t for t in fig.data if t.name and t.name.startswith(name_prefix)]


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------- SimplexView


def test_simplex_trajectories_truth_and_field():
    eta, beta = 0.5, 0.2
    view = SimplexView(BANDIT, {"magnetic MD": tb.MirrorDescent(eta=eta, beta=beta),
                                "softmax PG": tb.SoftmaxPG(eta=1.0)}, steps=200)
    fig = view.figure
    # trajectory = the run's policies; starts at the default start π₀ ∝ (9, 4, 1)
    (md_line,) = [t for t in fig.data if t.name == "magnetic MD" and t.mode == "lines"]
    expected = tb.run(tb.MirrorDescent(eta=eta, beta=beta), BANDIT, steps=200,
                      init=np.array([9, 4, 1]) / 14).policy[:, 0]
    np.testing.assert_allclose(np.c_[md_line.a, md_line.b, md_line.c], expected, atol=1e-12)
    np.testing.assert_allclose(view.trajectory("magnetic MD")[0], [9 / 14, 4 / 14, 1 / 14])
    # ground truth: π* ∝ exp(r/β) (uniform ref) as a star, the best arm for β = 0
    (star,) = traces(fig, "KL-regularised optimum")
    np.testing.assert_allclose([star.a[0], star.b[0], star.c[0]], softmax(BANDIT.rewards / beta))
    (best,) = traces(fig, "best arm")
    assert (best.a[0], best.b[0], best.c[0]) == (1.0, 0.0, 0.0)
    # the trajectory ends at the star
    np.testing.assert_allclose(expected[-1], softmax(BANDIT.rewards / beta), atol=1e-6)

    # vector field of magnetic MD: each arrow points along one exact step, in closed form
    field = fig.data[0]
    assert field.name.startswith("update direction of magnetic MD")
    seg = np.c_[[np.nan if v is None else v for v in field.a],
                [np.nan if v is None else v for v in field.b],
                [np.nan if v is None else v for v in field.c]]
    start, end = seg[0::3], seg[1::3]
    grid = simplex_grid(9)
    np.testing.assert_allclose(start, grid)
    step = softmax((np.log(grid) + eta * BANDIT.rewards) / (1 + eta * beta))  # ref uniform
    d_arrow, d_step = end - start, step - grid
    cos = np.sum(d_arrow * d_step, 1) / np.linalg.norm(d_arrow, axis=1) / np.linalg.norm(
        d_step, axis=1)
    np.testing.assert_allclose(cos, 1.0, atol=1e-9)
    assert np.all(end > 0) and np.allclose(end.sum(1), 1.0)  # arrows stay in the simplex

    # the dropdown switches the field to softmax PG, then off
    view.field_of = "softmax PG"
    assert fig.data[0].name.startswith("update direction of softmax PG")
    assert fig.data[0].visible is not False
    pg_end = np.array([[v for v in fig.data[0].a[1::3]]]).ravel()
    assert not np.allclose(pg_end, end[:, 0])
    view.field_dropdown.value = NO_FIELD
    assert fig.data[0].visible is False
    assert fig.layout.ternary.aaxis.title.text.startswith("π(a0")


def test_simplex_game_marks_nash_and_regularized_nash_and_overlays():
    view = SimplexView(RPS, {"self-play MWU": SelfPlayMWU(eta=0.3),
                             "Nash-MD": NashMD(eta=0.1, tau=0.2)},
                       init=[[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]], steps=80)
    fig = view.figure
    # RPS: the Nash and the (uniform-ref) regularised Nash coincide at uniform: one marker
    (nash,) = traces(fig, "Nash equilibrium (LP)")
    assert "regularised Nash" in nash.name
    np.testing.assert_allclose([nash.a[0], nash.b[0], nash.c[0]], [1 / 3] * 3, atol=1e-9)
    # two starts per algorithm, one legend entry per algorithm
    mwu = [t for t in fig.data if t.legendgroup == "self-play MWU" and t.mode == "lines"]
    assert len(mwu) == 2 and [t.showlegend for t in mwu] == [True, False]
    assert mwu[1].a[0] == pytest.approx(0.1)
    # self-play cycles around the Nash (stays away from it); Nash-MD converges to it
    md = view.trajectory("Nash-MD")
    assert np.abs(md[-1] - 1 / 3).max() < np.abs(md[0] - 1 / 3).max() / 5
    mw = view.trajectory("self-play MWU")
    assert np.abs(mw[-1] - 1 / 3).max() > 0.1


def test_simplex_rejects_wrong_problems():
    with pytest.raises(ValueError, match="3-action"):
        SimplexView(tb.Bandit([1.0, 0.5, 0.2, 0.1]), tb.MirrorDescent())
    with pytest.raises(TypeError, match="runs must be"):
        SimplexView(BANDIT, 3)
    with pytest.raises(ValueError, match="field_of"):
        SimplexView(BANDIT, {"a": tb.MirrorDescent()}, field_of="b")


# ----------------------------------------------------------------------------- GameView


def test_game_view_heatmap_and_last_vs_average_iterate():
    steps = 400
    view = GameView(RPS, {"self-play MWU": SelfPlayMWU(eta=0.3),
                          "Nash-MD": NashMD(eta=0.1, tau=0.1)}, steps=steps)
    fig = view.figure
    heat = fig.data[0]
    np.testing.assert_array_equal(np.asarray(heat.z), RPS.P)
    assert view.regularized  # Nash-MD has τ > 0: the duality-gap panel exists
    assert fig.layout.yaxis2.type == "log" and fig.layout.yaxis3.type == "log"

    # exploitability curves hold exactly the values of the run's policies
    hist = tb.run(SelfPlayMWU(eta=0.3), RPS, steps=steps, init=np.array([9, 4, 1]) / 14)
    pol = hist.policy[:, 0]
    (last,) = [t for t in fig.data if t.name == "self-play MWU — last iterate" and
               t.xaxis == "x2"]
    np.testing.assert_allclose(last.y, np.maximum(tb.metrics.exploitability(RPS, pol), 1e-16))
    # the average iterate's final point is the runner's own average policy
    avg = running_average(pol, hist.steps)
    np.testing.assert_allclose(avg[-1], hist.average_policy[0], atol=1e-12)
    final = view.final("self-play MWU")
    assert final["exploitability/last"] > 0.1  # self-play's last iterate cycles…
    assert final["exploitability/average"] < 0.25 * final["exploitability/last"]  # …its mean not
    md = view.final("Nash-MD")
    assert md["exploitability/last"] < 0.01
    assert md["duality_gap/last"] < md["duality_gap/average"]
    # the duality gap is drawn for the regularised run only
    assert {t.name for t in fig.data if t.xaxis == "x3"} == {
        "Nash-MD — last iterate", "Nash-MD — average iterate"}


def test_game_view_unregularised_has_two_panels_and_checks_input():
    view = GameView(tb.PreferenceGame.random(4, seed=1), SelfPlayMWU(eta=0.2), steps=50)
    assert not view.regularized
    assert all(t.xaxis in ("x", "x2") for t in view.figure.data)
    with pytest.raises(TypeError, match="PreferenceGame"):
        GameView(BANDIT, tb.MirrorDescent())


# ----------------------------------------------------------------------------- GridView


@pytest.fixture(scope="module")
def frozenlake():
    env = gym.make("FrozenLake-v1")
    mdp = tb.FiniteMDP.from_gymnasium(env)
    env.close()
    return mdp


def test_grid_view_slider_redraws_values_and_arrows(frozenlake):
    steps = 20
    view = GridView(tb.MDPO(eta=1.0), frozenlake, steps=steps)
    fig = view.figure
    heat, lines, heads = fig.data[0], fig.data[1], fig.data[2]
    hist = tb.run(tb.MDPO(eta=1.0), frozenlake, steps=steps)
    assert view.index == steps  # opens on the last iteration
    V = tb.solve.policy_evaluation(frozenlake, hist.policy[:, 0]).V[:, :16]
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float).ravel(), V[-1], atol=1e-12)

    view.slider.value = 0  # what dragging the slider does
    assert fig.layout.title.text.endswith(f"iteration t = 0 of {steps}")
    np.testing.assert_allclose(np.asarray(heat.z, dtype=float).ravel(), V[0], atol=1e-12)
    # uniform start: 4 arrows of equal length in every cell except holes and the goal
    assert len(heads.x) == 4 * 11
    seg = np.c_[lines.x, lines.y].reshape(-1, 3, 2)[:, :2]
    lengths = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    np.testing.assert_allclose(lengths, 0.12 + 0.30 * 0.25)
    # each head points along its arrow (angles: clockwise from up; rows grow downwards)
    d = seg[:, 1] - seg[:, 0]  # (dx = column, dy = row)
    expected = np.degrees(np.arctan2(d[:, 0], -d[:, 1])) % 360
    np.testing.assert_allclose(np.asarray(heads.marker.angle, dtype=float) % 360, expected)
    # the marker on the value-gap curve follows the slider
    marker = fig.data[-1]
    assert list(marker.x) == [0]
    view.slider.value = 10
    assert list(marker.x) == [10]
    assert marker.y[0] == pytest.approx(hist.metrics["gap"][10, 0])
    assert len(heads.x) < 44  # the policy has become more decisive
    assert fig.layout.yaxis2.type == "log"


def test_grid_view_cliffwalking_and_bad_input(frozenlake):
    env = gym.make("CliffWalking-v1")
    mdp = tb.FiniteMDP.from_gymnasium(env)
    view = GridView(tb.PolicyIteration(), mdp, steps=5, env=env)
    env.close()
    assert (view.rows, view.cols) == (4, 12)
    z = np.asarray(view.figure.data[0].z, dtype=float)
    assert np.isnan(z[3, 1:11]).all() and np.isfinite(z[:3]).all()  # the cliff is not a state
    assert view.gap[-1] == pytest.approx(0.0, abs=1e-8)  # policy iteration solves it
    with pytest.raises(ValueError, match="desc"):
        GridView(tb.MDPO(), frozenlake, steps=2, desc=["SFF", "FH"])
    with pytest.raises(ValueError, match="actions"):
        GridView(tb.MDPO(), frozenlake, steps=2, actions=("north", "south", "east", "west"))
    with pytest.raises(ValueError, match="i must be"):
        GridView(tb.MDPO(), frozenlake, steps=2).show(5)

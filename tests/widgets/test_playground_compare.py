"""Playground (sliders re-run the exact trajectory) and Compare (overlays with config legends),
driven through their Python API and checked against independent runs."""

import gymnasium as gym
import numpy as np
import pytest

import tabular as tb
from tabular.algorithms.games import NashMD
from toolkit.history import History
from toolkit.widgets import Compare, Playground
from toolkit.widgets.playground import LogOrZero

BANDIT = tb.Bandit([1.0, 0.6, 0.2])
START = np.array([9, 4, 1]) / 14


def policy_lines(pg):
    return np.stack([np.asarray(t.y) for t in pg._action_traces], axis=1)


def test_playground_slider_reruns_the_exact_trajectory():
    pg = Playground(tb.MirrorDescent(eta=0.5, beta=0.1), BANDIT, steps=100)
    assert set(pg.controls) == {"eta", "beta"}
    assert isinstance(pg.controls["beta"], LogOrZero)
    before = policy_lines(pg)
    ref = tb.run(tb.MirrorDescent(eta=0.5, beta=0.1), BANDIT, steps=100, init=START)
    np.testing.assert_allclose(before, ref.policy[:, 0], atol=1e-12)

    pg.controls["eta"].value = 2.0  # a slider move
    after = policy_lines(pg)
    ref = tb.run(tb.MirrorDescent(eta=2.0, beta=0.1), BANDIT, steps=100, init=START)
    np.testing.assert_allclose(after, ref.policy[:, 0], atol=1e-12)
    assert not np.allclose(after, before)
    assert len(pg.latencies_ms) == 2 and all(ms > 0 for ms in pg.latencies_ms)
    assert "η=2" in pg.figure.layout.title.text
    # ground truth lines sit at π* ∝ exp(r/β); the simplex panel ends at the same point
    truth = [t.y[0] for t in pg._truth_traces]
    np.testing.assert_allclose(truth, tb.solve.kl_regularized(BANDIT, beta=0.1))
    np.testing.assert_allclose(pg._simplex_truth.a[0], truth[0])
    # the log-scale convergence panel shows KL(π*‖π_t), floored for the log axis
    kl = np.asarray(pg._conv_traces["kl_to_solution"].y)
    np.testing.assert_allclose(kl, np.maximum(ref.metrics["kl_to_solution"][:, 0], 1e-16))
    assert pg.figure.layout.yaxis2.type == "log"

    # β = 0 through the "= 0" switch: the truth becomes the best arm, KL-to-solution vanishes
    pg.controls["beta"].zero.value = True
    assert pg.values["beta"] == 0.0
    assert [t.y[0] for t in pg._truth_traces] == [1.0, 0.0, 0.0]
    assert "best arm" in pg._truth_traces[0].name
    pg.set(beta=0.5, steps=40)
    assert pg.values == {"eta": 2.0, "beta": 0.5}
    assert pg.history.steps[-1] == 40 and len(pg._action_traces[0].x) == 41
    with pytest.raises(ValueError, match="no such slider"):
        pg.set(gamma=0.3)


def test_playground_invalid_combination_keeps_last_plot_and_says_why():
    pg = Playground(NashMD(eta=0.5, tau=0.5), tb.PreferenceGame.cyclic(3), steps=50)
    assert set(pg.controls) == {"eta", "tau", "schedule"}
    before = policy_lines(pg)
    n = len(pg.latencies_ms)
    pg.set(eta=10.0)  # ητ = 5 > 1: Nash-MD's constant step refuses it
    assert "⚠" in pg.status.value and "eta" in pg.status.value
    np.testing.assert_array_equal(policy_lines(pg), before)
    assert len(pg.latencies_ms) == n
    pg.set(schedule="decreasing")  # the paper's schedule ignores η: valid again
    assert "⚠" not in pg.status.value
    # a game's convergence panel has exploitability
    assert pg._conv_traces["exploitability"].visible is not False


def test_playground_on_an_mdp():
    env = gym.make("FrozenLake-v1")
    mdp = tb.FiniteMDP.from_gymnasium(env)
    env.close()
    pg = Playground(tb.MDPO(eta=1.0), mdp, steps=30)
    assert set(pg.controls) == {"eta", "beta", "schedule"}
    value, best = pg._action_traces[0], pg._truth_traces[0]
    hist = tb.run(tb.MDPO(eta=1.0), mdp, steps=30)
    np.testing.assert_allclose(value.y, hist.metrics["value"][:, 0])
    np.testing.assert_allclose(best.y, hist.metrics["value"][:, 0] + hist.metrics["gap"][:, 0])
    pg.set(schedule="geometric")
    assert pg.history.metrics["gap"][-1, 0] < hist.metrics["gap"][-1, 0]
    with pytest.raises(TypeError, match="algorithm"):
        Playground(tb.MDPO, mdp)


def test_compare_legends_sweeps_and_both_scales():
    runs = [tb.run(tb.MirrorDescent(eta=e, beta=0.1), BANDIT, steps=50) for e in (0.1, 1.0)]
    cmp = Compare(runs)
    assert cmp.labels() == ["MirrorDescent (η=0.1)", "MirrorDescent (η=1)"]
    assert cmp.metrics[:3] == ["reward", "gap", "kl_to_solution"]
    assert "kl" in cmp.metrics  # the exact kl_ref is shown under the sampled name
    reward = [t for t in cmp.figure.data if t.name == "MirrorDescent (η=1)" and
              t.xaxis == "x"]
    np.testing.assert_allclose(reward[0].y, runs[1].metrics["reward"][:, 0])
    assert next(t.showlegend for t in cmp.figure.data if t.name == "MirrorDescent (η=1)")
    assert cmp.figure.layout.yaxis2.type == "log"  # the gap

    # one History with a sweep and seeds: one line per sweep point, a min–max band
    swept = tb.run(tb.MirrorDescent(eta=np.array([0.1, 1.0]), beta=0.1), BANDIT, steps=30,
                   seeds=4, init="random")
    cmp = Compare({"sweep": swept}, metrics=["entropy"])
    names = [t.name for t in cmp.figure.data if t.showlegend]
    assert names == ["sweep [η=0.1]", "sweep [η=1]"]
    lines = [t for t in cmp.figure.data if t.name == "sweep [η=1]" and t.mode == "lines"
             and t.line.width == 2]
    np.testing.assert_allclose(lines[0].y, swept.metrics["entropy"][:, 1].mean(-1))
    bands = [t for t in cmp.figure.data if t.fill == "tonexty"]
    assert len(bands) == 2

    # a sampled History beside an exact run, on the metrics they share
    sampled = History()
    for s in range(5):
        sampled.append(s, {"reward": 0.5 + 0.1 * s, "entropy": 1.0, "kl": 0.01 * s})
    cmp = Compare({"exact": runs[0], "sampled": sampled})
    assert set(cmp.metrics) == {"reward", "entropy", "kl"}
    (kl,) = [t for t in cmp.figure.data if t.name == "sampled" and
             t.xaxis == f"x{cmp.metrics.index('kl') + 1}"]
    np.testing.assert_allclose(kl.y, [0.0, 0.01, 0.02, 0.03, 0.04])
    with pytest.raises(ValueError, match="no run has"):
        Compare(runs, metrics=["nope"])
    with pytest.raises(TypeError, match="each run"):
        Compare([1, 2])


def test_compare_trainers_legend_from_their_configs():
    from toolkit.algorithms import GRPO
    from toolkit.policies import TabularPolicy
    from toolkit.tasks import BanditTask
    from toolkit.trainer import Trainer

    trainers = [Trainer(TabularPolicy(3), BanditTask(BANDIT), GRPO(beta=0.05), lr=lr,
                        group_size=4, seed=0) for lr in (0.1, 0.5)]
    for t in trainers:
        t.train(5, progress=False)
    cmp = Compare(trainers, metrics=["reward", "kl"])
    assert cmp.labels() == ["GRPO (lr=0.1)", "GRPO (lr=0.5)"]
    (kl,) = [t for t in cmp.figure.data if t.name == "GRPO (lr=0.5)" and t.xaxis == "x2"]
    np.testing.assert_allclose(kl.y, trainers[1].history.series("kl")[1])

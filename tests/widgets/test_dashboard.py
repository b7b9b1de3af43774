"""Dashboard: records pushed into a History land in the figure (decimated, never losing a
spike); the Start / Stop / Step buttons drive a real Trainer in a background thread and Stop
loses nothing."""

import html
import threading
import time

import numpy as np
import pytest

import tabular as tb
from toolkit.algorithms import GRPO
from toolkit.history import History
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask
from toolkit.trainer import Trainer
from toolkit.widgets import Dashboard
from toolkit.widgets.dashboard import PANELS
from toolkit.widgets.style import decimate


def trace_for(dash, metric):
    for index, name in dash._line_traces:
        if name == metric:
            return dash.figure.data[index]
    raise KeyError(metric)


def make_trainer(**kw):
    bandit = tb.Bandit([0.9, 0.5, 0.4, 0.2, 0.1])
    return Trainer(TabularPolicy(5), BanditTask(bandit, noise="bernoulli"),
                   GRPO(beta=0.05), lr=0.5, group_size=8, seed=0, **kw)


def test_pushed_records_reach_the_figure_decimated_with_spikes_kept():
    hist = History()
    dash = Dashboard(hist, panels=["reward", "kl", "kl/iterates", "clip", "ratio",
                                   "adv_histogram", "samples"], interval=0.0)
    assert dash.trainer is None and dash.controls not in dash.children
    n = 10_000
    rng = np.random.default_rng(0)
    reward = rng.normal(0.5, 0.01, n)
    reward[7777] = 3.0  # one spike among 10,000 steps
    for s in range(n):
        hist.append(s, {"reward": reward[s], "kl": 1e-3 * s, "kl/iterates": 0.0,
                        "clip_ratio/low_mean": 0.1, "clip_ratio/high_mean": 0.2,
                        "ratio/min": 0.8, "ratio/max": 1.3, "ratio/mean": 1.0},
                    {"adv_histogram": {"counts": [1, 0, 3], "edges": [-1.5, -0.5, 0.5, 1.5]},
                     "samples": [{"prompt": "1+1=", "completion": "2", "reward": 1.0,
                                  "advantage": 0.5}]} if s == n - 1 else None)
    dash.redraw()
    r = trace_for(dash, "reward")
    assert len(r.x) <= dash.max_points
    assert max(r.y) == 3.0 and 7777 in set(np.asarray(r.x).astype(int))  # the spike survives
    assert r.x[0] == 0 and r.x[-1] == n - 1
    # the bold moving average over the last n/50 steps, beside the faint raw series
    smooth = trace_for(dash, "smooth:reward")
    w = Dashboard.smoothing_window(n)
    assert w == 200 and f"last {w} steps" in dash.figure.layout.title.text
    expected = np.convolve(reward, np.ones(w) / w, mode="valid")  # windows ending at w-1 …
    at = np.searchsorted(np.asarray(smooth.x), np.arange(w - 1, n, 997))
    np.testing.assert_allclose(np.asarray(smooth.y)[at],
                               expected[np.asarray(smooth.x)[at].astype(int) - (w - 1)],
                               rtol=1e-6)
    assert np.ptp(smooth.y) < np.ptp(r.y) / 5  # the average is the readable curve
    # series travel as float32 (half the bytes; ample for a plot)
    np.testing.assert_allclose(trace_for(dash, "kl").y[-1], 1e-3 * (n - 1), rtol=1e-6)
    # log panel: exact zeros are floored, not dropped
    assert np.all(np.asarray(trace_for(dash, "kl/iterates").y) == np.float32(1e-16))
    assert dash.figure.layout.yaxis3.type == "log"
    # clip fractions by advantage sign, and the ratio band min…max
    assert trace_for(dash, "clip_ratio/low_mean").name.startswith("A < 0")
    assert trace_for(dash, "clip_ratio/high_mean").y[-1] == 0.2
    assert trace_for(dash, "ratio/max").fill == "tonexty"
    # histogram of the latest step: shares sum to 1, coloured by the sign of A
    bar = dash.figure.data[dash._hist_trace]
    np.testing.assert_allclose(bar.y, [0.25, 0.0, 0.75])
    np.testing.assert_allclose(bar.x, [-1.0, 0.0, 1.0])
    assert list(bar.marker.color) == ["#D55E00", "#999999", "#009E73"]
    assert f"step {n - 1}" in dash.figure.layout.annotations[5].text
    assert "1+1=" in dash.samples.value and "+0.5" in dash.samples.value
    # the KL panel names its estimator
    assert "k3" in dash.figure.layout.annotations[1].text


def test_notes_answer_the_common_confusions():
    hist = History()
    dash = Dashboard(hist, panels=["reward", "kl", "clip"], interval=0.0)
    hist.append(0, {"ratio/min": 1.0, "ratio/max": 1.0, "clip_ratio/region_mean": 0.0,
                    "grad_norm": 0.3, "kl/iterates": 1e-4, "frac_reward_zero_std": 1.0,
                    "kl": 0.0})
    dash.redraw()
    assert "On-policy" in dash.notes.value and "gradient norm 0.3" in dash.notes.value
    assert "No learning signal" in dash.notes.value
    assert "k3" in dash.notes.value
    hist.append(1, {"ratio/min": 0.7, "ratio/max": 1.4, "frac_reward_zero_std": 0.0})
    dash.redraw()
    assert "On-policy" not in dash.notes.value and "No learning signal" not in dash.notes.value


def test_buttons_drive_the_trainer_without_blocking_and_stop_loses_nothing():
    trainer = make_trainer()
    dash = Dashboard(trainer, interval=0.05)
    assert dash.panels[-1] == "actions"
    probs0 = np.asarray(dash.figure.data[dash._actions_trace].y)
    np.testing.assert_allclose(probs0, 0.2)

    dash.step_button.click()  # +1 Step
    assert dash.wait(60)
    assert trainer.step == 1 and len(trainer.history) == 1
    assert len(trace_for(dash, "entropy").y) == 1

    dash.steps_input.value = 1_000_000
    dash.start_button.click()  # ▶ Start: returns at once, training runs in a thread
    assert dash.running and dash.start_button.disabled and not dash.stop_button.disabled
    deadline = time.time() + 60
    while trainer.step < 20 and time.time() < deadline:
        time.sleep(0.01)
    dash.stop_button.click()  # ■ Stop, processed while training runs
    assert dash.wait(60)
    assert trainer.stop_reason == "stopped"
    stopped_at = trainer.step
    assert 20 <= stopped_at < 1_000_000
    assert len(trainer.history) == stopped_at  # every step's record kept
    assert len(trace_for(dash, "reward").y) == stopped_at  # the final redraw shows them all
    assert not dash.start_button.disabled and dash.stop_button.disabled

    dash.start(7)  # Start continues from where Stop left off
    assert dash.wait(60)
    assert trainer.step == stopped_at + 7 and trainer.stop_reason is None
    steps = np.asarray(trace_for(dash, "entropy").x)
    np.testing.assert_array_equal(steps, np.arange(stopped_at + 7))
    # the action distribution panel shows the policy now, and it learned the best arm
    probs = np.asarray(dash.figure.data[dash._actions_trace].y)
    np.testing.assert_allclose(probs, trainer.policy.probs()[0].numpy())
    assert probs.argmax() == 0
    assert dash.cost is not None and np.isfinite(dash.cost)
    assert "step" in dash.status.value and "idle" in dash.status.value
    assert "β·KL penalty" in dash.notes.value  # GRPO(beta=0.05): why the loss is not ≈ 0
    assert not [t for t in threading.enumerate() if t.name == "mirrorlab-dashboard-train"]


def test_lm_policy_shows_recent_completions():
    from toolkit.lm.models import tiny_model
    from toolkit.lm.tasks import AdditionTask
    from toolkit.lm.tokenizer import char_tokenizer
    from toolkit.policies.lm import LMPolicy

    tok = char_tokenizer()
    trainer = Trainer(LMPolicy(tiny_model("0.5m", tokenizer=tok, seed=0), tok),
                      AdditionTask(digits=1), GRPO(beta=0.02), lr=1e-3, optimizer="adam",
                      group_size=4, prompts_per_step=2, max_new_tokens=4, seed=0)
    dash = Dashboard(trainer)
    assert "actions" not in dash.panels and "completions/mean_length" in dash.panels
    assert dash.samples in dash.children
    dash.step_button.click()
    assert dash.wait(120) and dash.error is None and trainer.step == 1
    samples = trainer.history.last.extras["samples"]
    table = dash.samples.value
    assert "Recent samples (step 0)" in table
    for s in samples:  # every shown completion is in the table, prompt and text (escaped)
        assert html.escape(s["prompt"]) in table and html.escape(s["completion"]) in table
    (length,) = [dash.figure.data[i] for i, m in dash._line_traces
                 if m == "completions/mean_length"]
    assert 1 <= length.y[0] <= 4


def test_a_training_error_is_shown_and_state_is_kept():
    trainer = make_trainer()
    dash = Dashboard(trainer)

    def boom(record):
        if record.step == 2:
            raise RuntimeError("subscriber failed")

    trainer.history.subscribe(boom)
    dash.start(10)
    assert dash.wait(60)
    assert isinstance(dash.error, RuntimeError)
    assert "subscriber failed" in dash.status.value
    assert len(trainer.history) == 3  # records before the failure are kept
    trainer.history.unsubscribe(boom)
    dash.start(2)
    assert dash.wait(60) and dash.error is None and len(trainer.history) == 5


def test_arguments_are_checked():
    with pytest.raises(TypeError, match="source"):
        Dashboard(object())
    with pytest.raises(ValueError, match="unknown"):
        Dashboard(History(), panels=["reward", "nonsense"])
    with pytest.raises(ValueError, match="tabular"):
        Dashboard(History(), panels=["actions"])
    with pytest.raises(ValueError, match="budget"):
        Dashboard(History(), budget=0)
    with pytest.raises(RuntimeError, match="no trainer"):
        Dashboard(History()).start()
    assert set(PANELS) >= {"reward", "entropy", "kl", "kl/iterates", "clip", "adv/pos_share",
                           "ratio", "grad_norm", "adv_histogram", "actions"}


def test_decimate_keeps_extremes_and_order():
    x = np.arange(50_001)
    y = np.sin(x / 500.0)
    y[12_345] = -7.0
    xd, yd = decimate(x, y, 1000)
    assert len(xd) <= 1000 and np.all(np.diff(xd) > 0)
    assert yd.min() == -7.0 and yd.max() == pytest.approx(1.0, abs=1e-4)
    assert xd[0] == 0 and xd[-1] == 50_000
    xs, _ = decimate(x[:10], y[:10], 1000)
    np.testing.assert_array_equal(xs, x[:10])

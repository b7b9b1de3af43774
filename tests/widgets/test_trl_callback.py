"""MirrorlabCallback: TRL's ``on_log`` names mapped to ours, and a real 3-step TRL GRPO run on
a tiny Llama (built from a config, character tokenizer, saved to and loaded from a local
directory: nothing is downloaded) feeding a Dashboard."""

import numpy as np
import pytest

pytest.importorskip("transformers")

from toolkit.history import History
from toolkit.widgets.callbacks import MirrorlabCallback, map_trl_logs


def test_trl_names_are_mapped_and_originals_kept():
    logs = {"objective/kl": 0.2, "objective/entropy": 1.5, "policy/approxkl_avg": 1e-3,
            "policy/clipfrac_avg": 0.1, "reward": 0.7, "learning_rate": 1e-5,
            "note": "text is dropped", "flag": True}
    out = map_trl_logs(logs)
    assert out["kl"] == 0.2 and out["objective/kl"] == 0.2
    assert out["entropy"] == 1.5 and out["kl/iterates"] == 1e-3
    assert out["clip_ratio/region_mean"] == 0.1 and out["reward"] == 0.7
    assert "note" not in out and "flag" not in out
    # a name TRL already logs under ours is not overwritten by a mapped one
    assert map_trl_logs({"kl": 1.0, "objective/kl": 2.0})["kl"] == 1.0


def test_on_log_appends_steps_and_skips_the_summary():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    hist = History()
    cb = MirrorlabCallback(history=hist)
    state, control = TrainerState(), TrainerControl()
    args = TrainingArguments(output_dir="unused", report_to="none")
    for step in (1, 2):
        state.global_step = step
        cb.on_log(args, state, control, logs={"loss": 0.1 * step, "objective/kl": 0.01})
    cb.on_log(args, state, control, logs={"train_runtime": 3.0, "train_loss": 0.1})
    assert [r.step for r in hist] == [1, 2]
    assert hist.series("kl")[1].tolist() == [0.01, 0.01]
    cb.stop()
    assert cb.on_step_end(args, state, control).should_training_stop


def test_trl_grpo_three_steps_feed_the_dashboard(tmp_path, monkeypatch):
    pytest.importorskip("trl")
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    try:
        from toolkit.lm.models import tiny_model
        from toolkit.lm.tokenizer import char_tokenizer
    except ImportError:  # pragma: no cover - toolkit.lm is part of the package
        pytest.skip("toolkit.lm is not available")

    tok = char_tokenizer()
    model = tiny_model("0.5m", tokenizer=tok, seed=0)
    path = tmp_path / "tiny-llama"
    model.save_pretrained(path)  # TRL loads the reference model (beta > 0) from this path
    tok.save_pretrained(path)
    data = Dataset.from_dict({"prompt": ["1+1=", "2+2=", "3+1=", "2+5="] * 2})

    def reward_twos(completions, **kwargs):
        return [float(c.count("2")) for c in completions]

    cb = MirrorlabCallback()
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=4,
        max_completion_length=6, max_steps=3, beta=0.1, logging_steps=1, report_to="none",
        use_cpu=True, save_strategy="no", learning_rate=1e-3, disable_tqdm=True, seed=0)
    trainer = GRPOTrainer(model=str(path), reward_funcs=reward_twos, args=args,
                          train_dataset=data, processing_class=tok, callbacks=[cb])
    dash = cb.dashboard
    trainer.train()

    assert [r.step for r in cb.history] == [1, 2, 3]
    for metric in ("entropy", "kl"):
        steps, values = dash.series(metric)
        assert steps.tolist() == [1, 2, 3], metric
        assert np.all(np.isfinite(values))
    dash.redraw()
    entropy = next(dash.figure.data[i] for i, m in dash._line_traces if m == "entropy")
    kl = next(dash.figure.data[i] for i, m in dash._line_traces if m == "kl")
    assert list(entropy.x) == [1, 2, 3] and list(kl.x) == [1, 2, 3]
    assert entropy.y[0] > 0  # a fresh model's token entropy is far from 0
    assert kl.y[0] == pytest.approx(0.0, abs=1e-6)  # step 1: the policy is the reference

"""Watch a TRL / transformers trainer live: a ``TrainerCallback`` that feeds a Dashboard.

    cb = MirrorlabCallback()
    trainer = GRPOTrainer(model=..., reward_funcs=..., args=..., callbacks=[cb])
    cb.dashboard              # display it, then
    trainer.train()           # the panels fill in as TRL logs (every ``logging_steps``)

Every ``on_log`` call becomes one record of a ``toolkit.history.History`` (step =
``state.global_step``), with TRL's metric names mapped to ours (``TRL_NAMES``): GRPO's names
already are ours (``reward``, ``kl``, ``entropy``, ``clip_ratio/low_mean`` …); PPO / RLOO's
``objective/kl``, ``objective/entropy``, ``policy/approxkl_avg``, ``policy/clipfrac_avg`` are
mapped to ``kl``, ``entropy``, ``kl/iterates``, ``clip_ratio/region_mean``. Original names are
kept as well, so nothing TRL logs is lost. The end-of-training summary
(``train_runtime`` …) is not a step and is skipped.

Stopping: ``cb.stop()`` sets ``control.should_training_stop`` at the next step end;
transformers then ends ``train()`` cleanly.
"""

from __future__ import annotations

import numbers

from transformers import TrainerCallback

from ..history import History

#: TRL / transformers log name → mirrorlab metric name (the original is kept too)
TRL_NAMES = {
    "objective/kl": "kl",
    "objective/entropy": "entropy",
    "policy/entropy_avg": "entropy",
    "policy/approxkl_avg": "kl/iterates",
    "policy/clipfrac_avg": "clip_ratio/region_mean",
    "objective/rlhf_reward": "reward",
    "objective/scores": "reward",
    "train/loss": "loss",
    "train_loss": "loss",
}
#: keys of the summary ``on_log`` call at the end of ``train()``
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second")


def map_trl_logs(logs: dict | None) -> dict[str, float]:
    """Numeric TRL logs with our names added (``TRL_NAMES``); non-numbers are dropped."""
    out: dict[str, float] = {}
    for name, value in (logs or {}).items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
                value = value.item()
            else:
                continue
        value = float(value)
        out[name] = value
        ours = TRL_NAMES.get(name)
        if ours is not None and ours not in logs:
            out[ours] = value
    return out


class MirrorlabCallback(TrainerCallback):
    """A transformers ``TrainerCallback`` that appends TRL's logs to a History (and Dashboard).

    Args:
        dashboard: a ``Dashboard`` to feed (its history is used); default: one is built on
            first access of ``.dashboard``.
        history: the History to append to (default: the dashboard's, or a new one).
        panels: panels of the dashboard built on demand.
    """

    def __init__(self, dashboard=None, history: History | None = None, panels=None):
        if dashboard is not None and history is not None and dashboard.history is not history:
            raise ValueError("dashboard and history: pass one, or the dashboard's own history")
        self._dashboard = dashboard
        if dashboard is not None:
            self.history = dashboard.history
        else:  # (an empty History is falsy: test for None, not truth)
            self.history = history if history is not None else History()
        if not isinstance(self.history, History):
            raise TypeError(f"history must be a toolkit History, got "
                            f"{type(self.history).__name__}")
        self.panels = panels
        self._stop = False
        self.logs_seen = 0

    @property
    def dashboard(self):
        if self._dashboard is None:
            from .dashboard import Dashboard

            self._dashboard = Dashboard(self.history, panels=self.panels,
                                        title="TRL training (via MirrorlabCallback)")
        return self._dashboard

    def stop(self) -> None:
        """Ask the transformers trainer to stop at the end of the current step."""
        self._stop = True

    # -- transformers hooks ------------------------------------------------------------------
    def on_train_begin(self, args, state, control, **kwargs):
        self._stop = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or any(k in logs for k in SUMMARY_KEYS):
            return
        metrics = map_trl_logs(logs)
        if metrics:
            self.history.append(int(state.global_step), metrics)
            self.logs_seen += 1

    def on_step_end(self, args, state, control, **kwargs):
        if self._stop:
            control.should_training_stop = True
        return control

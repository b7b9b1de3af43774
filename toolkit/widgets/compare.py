"""Compare: overlay several runs — exact (``tabular.History``) and sampled (a ``Trainer`` or a
``toolkit.history.History``) — metric by metric, with a legend built from their configs.

    Compare([tb.run(tb.MirrorDescent(eta=e), bandit, steps=200) for e in (0.1, 1.0)])
    Compare({"exact MD": exact_hist, "sampled GRPO": trainer})

Legends name the algorithm and only the hyperparameters that differ between runs
(``MirrorDescent (η=0.1)``, ``MirrorDescent (η=1)``). Exact metrics are renamed to the
sampled names where they are the same quantity (``kl_ref`` → ``kl``, ``kl_step`` →
``kl/iterates``), so the two scales share panels. A History with sweep axes draws one line per
sweep point; several seeds draw their mean with a min–max band.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import tabular as tb

from .style import (
    MAX_POINTS,
    base_layout,
    color,
    decimate,
    legend_labels,
    log_safe,
    metric_info,
    param_text,
)

#: exact-runner names → the sampled trainer's names for the same quantity
EXACT_TO_SAMPLED = {"kl_ref": "kl", "kl_step": "kl/iterates"}
#: panel order when several metrics are shown
PREFERRED = ("reward", "gap", "kl_to_solution", "exploitability", "duality_gap", "value",
             "entropy", "kl", "kl/iterates", "regret", "frac_reward_zero_std",
             "clip_ratio/low_mean", "clip_ratio/high_mean", "adv/pos_share", "grad_norm", "loss")
MAX_LINES_PER_RUN = 12


@dataclasses.dataclass
class Curve:
    label: str
    steps: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None = None  # min over seeds (band), or None
    high: np.ndarray | None = None


@dataclasses.dataclass
class RunData:
    label: str
    config: dict
    curves: dict[str, list[Curve]]  # metric → one curve per sweep point


def _trainer_config(trainer) -> dict:
    cfg = trainer.config() if callable(getattr(trainer, "config", None)) else {}
    alg = dict(cfg.get("algorithm", {}))
    name = alg.pop("name", type(getattr(trainer, "algorithm", trainer)).__name__)
    hyper = {**alg, "lr": getattr(trainer, "lr", None), "group_size": cfg.get("group_size"),
             "staleness": cfg.get("staleness")}
    return {"algorithm": name, "hyperparameters": {k: v for k, v in hyper.items()
                                                   if v is not None}}


def _exact_run(hist: tb.History) -> tuple[dict, dict[str, list[Curve]]]:
    sweep_shape = tuple(hist.sweep_shape)
    points = list(np.ndindex(*sweep_shape)) if sweep_shape else [()]
    if len(points) > MAX_LINES_PER_RUN:
        idx = np.linspace(0, len(points) - 1, MAX_LINES_PER_RUN).round().astype(int)
        points = [points[i] for i in idx]
    curves: dict[str, list[Curve]] = {}
    for name, values in hist.metrics.items():
        key = EXACT_TO_SAMPLED.get(name, name)
        out = []
        for p in points:
            v = values[(slice(None), *p)]  # [records, seeds]
            sub = ", ".join(filter(None, (param_text(k, np.asarray(s)[p].item())
                                          for k, s in hist.sweep.items())))
            band = v.shape[-1] > 1
            with np.errstate(all="ignore"):
                out.append(Curve(sub, np.asarray(hist.steps), np.nanmean(v, axis=-1),
                                 np.nanmin(v, axis=-1) if band else None,
                                 np.nanmax(v, axis=-1) if band else None))
        curves[key] = out
    return dict(hist.config), curves


def _sampled_run(history) -> dict[str, list[Curve]]:
    return {name: [Curve("", *history.series(name))] for name in history.names()}


def _as_run_data(runs, labels) -> list[RunData]:
    from ..history import History

    if isinstance(runs, Mapping):
        given, items = list(runs.keys()), list(runs.values())
    elif isinstance(runs, Sequence) and not isinstance(runs, str):
        given, items = None, list(runs)
    else:
        given, items = None, [runs]
    if not items:
        raise ValueError("histories must hold at least one run")
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"labels must have one entry per run ({len(items)}), "
                             f"got {len(labels)}")
        given = [str(s) for s in labels]
    data = []
    for k, item in enumerate(items):
        if isinstance(item, tb.History):
            config, curves = _exact_run(item)
        elif isinstance(item, History):
            config, curves = {"algorithm": f"run {k + 1}"}, _sampled_run(item)
        elif isinstance(getattr(item, "history", None), History):
            config, curves = _trainer_config(item), _sampled_run(item.history)
        else:
            raise TypeError("each run must be a tabular.History, a toolkit History or a "
                            f"Trainer, got {type(item).__name__}")
        data.append(RunData("", config, curves))
    names = given if given is not None else legend_labels([d.config for d in data])
    for d, name in zip(data, names):
        d.label = str(name)
    return data


class Compare(widgets.VBox):
    """Overlay runs metric by metric.

    Args:
        histories: runs as a list (legends from configs) or a dict label → run. A run is a
            ``tabular.History``, a ``toolkit.history.History`` or a ``Trainer``.
        metrics: metric names to draw (default: those every run has, up to ``max_panels``,
            in a sensible order).
        labels: legend labels overriding the configs.
        columns: panels per row.
    """

    def __init__(self, histories, metrics: Sequence[str] | None = None, labels=None,
                 columns: int = 3, max_panels: int = 6, title: str | None = None,
                 max_points: int = MAX_POINTS):
        self.runs = _as_run_data(histories, labels)
        available = [set(r.curves) for r in self.runs]
        if metrics is None:
            common = set.intersection(*available)
            ordered = [m for m in PREFERRED if m in common]
            ordered += sorted(m for m in common if m not in ordered and m not in
                              ("step_time", "staleness", "completions/mean_length"))
            metrics = ordered[:max_panels]
            if not metrics:
                raise ValueError("metrics: the runs share no metric; pass metrics=[...]")
        else:
            metrics = list(metrics)
            missing = [m for m in metrics if not any(m in a for a in available)]
            if missing:
                raise ValueError(f"metrics: no run has {missing}; known: "
                                 f"{sorted(set().union(*available))}")
        self.metrics = list(metrics)
        cols = max(1, min(int(columns), len(self.metrics)))
        rows = math.ceil(len(self.metrics) / cols)
        titles = [metric_info(m).title + (" (log)" if metric_info(m).log else "")
                  for m in self.metrics]
        fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles,
                            horizontal_spacing=0.08, vertical_spacing=0.18 if rows > 1 else 0.1)
        self.figure = go.FigureWidget(fig)
        n_runs = len(self.runs)
        self.figure.update_layout(**base_layout(
            title or f"Comparing {n_runs} run{'s' if n_runs > 1 else ''}",
            height=300 * rows + 130, width=1100 if cols > 2 else 400 * cols + 200))
        self.figure.update_layout(legend={"y": -0.08 if rows > 1 else -0.2, "yanchor": "top"},
                                  margin={"l": 60, "r": 20, "t": 80, "b": 120})
        shown: set[str] = set()
        line = 0
        for run in self.runs:
            for m_idx, metric in enumerate(self.metrics):
                row, col = m_idx // cols + 1, m_idx % cols + 1
                info = metric_info(metric)
                for j, curve in enumerate(run.curves.get(metric, [])):
                    name = run.label + (f" [{curve.label}]" if curve.label else "")
                    c = color(line + j)
                    self._add_curve(curve, name, c, info.log, row, col, name not in shown,
                                    max_points)
                    shown.add(name)
                self.figure.update_yaxes(title_text=info.axis, row=row, col=col)
                self.figure.update_xaxes(title_text="iteration / training step",
                                         row=row, col=col)
                if info.log:
                    self.figure.update_yaxes(type="log", exponentformat="power",
                                             row=row, col=col)
            line += max(len(c) for c in run.curves.values()) if run.curves else 1
        super().__init__([self.figure])
        self.add_class("mirrorlab-compare")

    def _add_curve(self, curve: Curve, name, c, log, row, col, legend, max_points):
        fix = log_safe if log else np.asarray
        if curve.low is not None:
            for y, fill in ((curve.low, None), (curve.high, "tonexty")):
                x, yy = decimate(curve.steps, fix(y), max_points)
                self.figure.add_trace(go.Scatter(
                    x=x, y=yy, mode="lines", line={"width": 0, "color": c}, fill=fill,
                    fillcolor=_alpha(c, 0.18), legendgroup=name, showlegend=False,
                    hoverinfo="skip"), row=row, col=col)
        x, y = decimate(curve.steps, fix(curve.mean), max_points)
        self.figure.add_trace(go.Scatter(
            x=x, y=y, mode="lines", name=name, legendgroup=name, showlegend=legend,
            line={"color": c, "width": 2},
            hovertemplate=f"{name}<br>step %{{x}}<br>%{{y:.4g}}<extra></extra>"),
            row=row, col=col)

    def labels(self) -> list[str]:
        return [r.label for r in self.runs]


def _alpha(hex_color: str, a: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{a})"

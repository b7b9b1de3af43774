"""What every widget shares: metric names a learner understands, colours, legends, decimation.

Each metric a widget may plot has one entry in ``METRICS``: its plot title, its y-axis label
with units, whether it belongs on a log axis (gaps and distances to a ground truth, which
shrink by orders of magnitude), and a one-line explanation used in hover text. Names follow
TRL where the quantity is the same (``kl``, ``entropy``, ``clip_ratio/low_mean`` …), and the
tabular runner's names otherwise (``kl_ref``, ``kl_step``, ``gap`` …).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping

import numpy as np

# ----------------------------------------------------------------------------- colours

#: one colour per run / action, colour-blind safe (Okabe–Ito), then plotly's defaults.
PALETTE = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
    "#636EFA", "#EF553B", "#00CC96", "#AB63FA", "#FFA15A", "#19D3F3", "#FF6692", "#B6E880",
)
TRUTH_COLOR = "#111111"
POSITIVE_COLOR = "#009E73"  # advantage > 0
NEGATIVE_COLOR = "#D55E00"  # advantage < 0
TEMPLATE = "plotly_white"
FONT = {"family": "Inter, Helvetica, Arial, sans-serif", "size": 12}

#: the smallest value drawn on a log axis (a gap of exactly 0 would vanish from the plot).
LOG_FLOOR = 1e-16
#: at most this many points per trace; longer series are min–max decimated.
MAX_POINTS = 2000


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


# ----------------------------------------------------------------------------- metrics


@dataclasses.dataclass(frozen=True)
class MetricInfo:
    title: str  # panel title
    axis: str  # y-axis label with units
    log: bool = False  # plot on a log axis
    help: str = ""  # one sentence for hover text / notes


_KL_HELP = ("KL(π‖π_ref) = E_π[log π − log π_ref] ≥ 0. TRL's default estimator is k3 "
            "= E_π[ρ − 1 − log ρ] with ρ = π_ref/π: unbiased and never negative.")

METRICS: dict[str, MetricInfo] = {
    # --- rewards
    "reward": MetricInfo("Reward", "mean reward per sample", help="E[r] over the batch."),
    "reward_std": MetricInfo("Reward spread", "std of reward within a group",
                             help="Group-relative methods divide by this; 0 means no signal."),
    "frac_reward_zero_std": MetricInfo(
        "Groups without signal", "fraction of groups with reward std = 0",
        help="When every sample in a group gets the same reward, all its advantages are 0: "
             "1.0 means the step has no learning signal at all."),
    "regret": MetricInfo("Regret", "max r − E_π[r] (reward units)", log=True,
                         help="How much reward the policy leaves on the table."),
    "value": MetricInfo("Value", "J(π) = expected discounted return",
                        help="Σ_s init(s)·V^π(s), computed exactly."),
    "gap": MetricInfo("Suboptimality", "J(π*) − J(π)  (log scale)", log=True,
                      help="Distance to the ground truth in the algorithm's own objective."),
    # --- entropy and KLs
    "entropy": MetricInfo("Entropy", "H(π) in nats (max = log #actions)",
                          help="H(π) = −Σ π log π. Collapsing to 0 = deterministic policy."),
    "kl": MetricInfo("KL to reference", "KL(π‖π_ref) in nats", help=_KL_HELP),
    "kl_ref": MetricInfo("KL to reference", "KL(π‖π_ref) in nats",
                         help="Exact KL(π‖π_ref) = Σ π·(log π − log π_ref)."),
    "kl_step": MetricInfo("KL between iterates", "KL(π_t‖π_{t−1}) in nats", log=True,
                          help="How far one update moved the policy."),
    "kl/iterates": MetricInfo("KL between iterates", "KL(π_t‖π_{t−1}) in nats", log=True,
                              help="How far one update moved the policy."),
    "kl_to_solution": MetricInfo("Distance to ground truth", "KL(π*‖π_t) in nats (log scale)",
                                 log=True, help="π* is the exact answer (tabular.solve)."),
    # --- games
    "exploitability": MetricInfo(
        "Exploitability", "max_y P(y ≻ π) − ½  (log scale)", log=True,
        help="How much the best single response beats π; 0 exactly at a Nash equilibrium."),
    "duality_gap": MetricInfo(
        "Duality gap", "τ-regularised duality gap (log scale)", log=True,
        help="0 exactly at the (regularised) Nash equilibrium."),
    # --- clipping and importance ratios
    "clip_ratio/low_mean": MetricInfo(
        "Clipped, A < 0", "fraction of tokens with ρ < 1 − ε (A < 0)",
        help="On-policy ρ = π/μ ≡ 1 exactly, so no token is clipped: 0 is expected."),
    "clip_ratio/high_mean": MetricInfo(
        "Clipped, A > 0", "fraction of tokens with ρ > 1 + ε (A > 0)",
        help="On-policy ρ = π/μ ≡ 1 exactly, so no token is clipped: 0 is expected."),
    "clip_ratio/region_mean": MetricInfo("Clipped, total", "fraction of tokens clipped"),
    "ratio/min": MetricInfo("Importance ratio", "ρ = π/μ (min … max over tokens)"),
    "ratio/max": MetricInfo("Importance ratio", "ρ = π/μ (min … max over tokens)"),
    "ratio/mean": MetricInfo("Importance ratio", "ρ = π/μ (min … max over tokens)"),
    # --- advantages and the loss
    "adv/pos_share": MetricInfo(
        "Positive-advantage share", "share of |loss| from A > 0 samples",
        help="0.5 = positive and negative samples pull equally; BAPO targets 0.5."),
    "loss": MetricInfo("Loss", "surrogate loss (arbitrary units)",
                       help="On-policy the surrogate's value is ≈ 0 with mean-zero advantages, "
                            "yet its gradient is not: a flat loss does not mean no learning."),
    "grad_norm": MetricInfo("Gradient norm", "‖∇θ loss‖₂ (log scale)", log=True),
    "step_time": MetricInfo("Step time", "seconds per step"),
    "learning_rate": MetricInfo("Learning rate", "optimizer learning rate"),
    "completions/mean_length": MetricInfo("Completion length", "tokens per completion"),
}


def metric_info(name: str) -> MetricInfo:
    """The entry for ``name``; an unknown name gets a readable default (never an error)."""
    if name in METRICS:
        return METRICS[name]
    pretty = name.replace("_", " ").replace("/", " · ")
    return MetricInfo(pretty[:1].upper() + pretty[1:], pretty)


# ----------------------------------------------------------------------------- legends

GREEK = {
    "eta": "η", "beta": "β", "tau": "τ", "alpha": "α", "epsilon": "ε", "eps": "ε",
    "gamma": "γ", "mu": "μ", "lam": "λ", "lambda_": "λ", "mixture": "μ", "kappa": "κ",
}


def _fmt_value(value) -> str | None:
    if value is None or (isinstance(value, (np.ndarray, list, tuple)) and np.size(value) > 4):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    if isinstance(value, str):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        return "[" + ", ".join(f"{float(v):.3g}" for v in np.ravel(value)) + "]"
    return None


def param_text(name: str, value) -> str | None:
    """"η=0.5" for (eta, 0.5); None for values that do not fit in a legend (arrays, None)."""
    text = _fmt_value(value)
    if text is None:
        return None
    return f"{GREEK.get(name, name)}={text}"


def config_label(config: Mapping, keys=None) -> str:
    """A legend entry from a run's config: algorithm name and (selected) hyperparameters."""
    name = str(config.get("algorithm", config.get("name", "run")))
    hyper = config.get("hyperparameters", {}) or {}
    parts = []
    for key, value in hyper.items():
        if keys is not None and key not in keys:
            continue
        text = param_text(key, value)
        if text is not None:
            parts.append(text)
    return f"{name} ({', '.join(parts)})" if parts else name


def legend_labels(configs: list[Mapping]) -> list[str]:
    """Legend entries for several runs: the algorithm plus only the hyperparameters that differ.

    Runs of different algorithms show every hyperparameter; identical configs get "#k".
    """
    if not configs:
        return []
    algorithms = {str(c.get("algorithm", c.get("name", "run"))) for c in configs}
    if len(algorithms) > 1 or len(configs) == 1:
        labels = [config_label(c) for c in configs]
    else:
        hypers = [c.get("hyperparameters", {}) or {} for c in configs]
        keys = set().union(*hypers)
        differing = {k for k in keys
                     if len({_fmt_value(h.get(k)) for h in hypers}) > 1}
        labels = [config_label(c, keys=differing) for c in configs]
    counts: dict[str, int] = {}
    out = []
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
        out.append(label if counts[label] == 1 else f"{label} #{counts[label]}")
    return out


# ----------------------------------------------------------------------------- decimation


def decimate(x, y, max_points: int = MAX_POINTS):
    """Min–max decimation: at most ``max_points`` points that keep every spike visible.

    The series is cut into ``max_points // 2`` buckets and each keeps its smallest and
    largest y (in x order); the first and last points are always kept. NaNs are ignored
    for the choice. Series already short enough are returned unchanged.
    """
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    if n <= max_points:
        return x, y
    buckets = max(1, (max_points - 2) // 2)
    k = math.ceil(n / buckets)
    pad = buckets * k - n
    yy = np.concatenate([y, np.full(pad, np.nan)]).reshape(buckets, k)
    finite = np.isfinite(yy)
    lo = np.argmin(np.where(finite, yy, np.inf), axis=1)
    hi = np.argmax(np.where(finite, yy, -np.inf), axis=1)
    base = np.arange(buckets) * k
    idx = np.concatenate([base + lo, base + hi, [0, n - 1]])
    idx = np.unique(idx[idx < n])
    return x[idx], y[idx]


def stride(n: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices 0, s, 2s, …, n−1 with at most ``max_points`` of them (for policies, images)."""
    if n <= max_points:
        return np.arange(n)
    s = math.ceil(n / max_points)
    idx = np.arange(0, n, s)
    return idx if idx[-1] == n - 1 else np.append(idx, n - 1)


def log_safe(y) -> np.ndarray:
    """y with values ≤ LOG_FLOOR raised to it, so exact zeros stay visible on a log axis."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isnan(y), np.nan, np.maximum(y, LOG_FLOOR))


def log_ticks(*arrays) -> dict:
    """Tick settings for a log axis showing ``arrays``: labels at 1-2-5 steps when the data span
    less than 3 decades (plotly's default then labels every digit 2…9, unreadable), else
    plotly's decade ticks."""
    values = np.concatenate([np.ravel(np.asarray(a, dtype=np.float64)) for a in arrays]) \
        if arrays else np.empty(0)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size and np.log10(values.max() / values.min()) < 3:
        return {"dtick": "D2"}
    return {}


# ----------------------------------------------------------------------------- throttling


class Throttle:
    """``due()`` is True at most once every ``interval`` seconds (the first call is due)."""

    def __init__(self, interval: float = 0.2):
        if not interval >= 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval}")
        self.interval = float(interval)
        self._last = -math.inf

    def due(self) -> bool:
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def reset(self) -> None:
        self._last = -math.inf


def restyle(fig, updates: dict[int, dict], layout: dict | None = None) -> None:
    """Update several traces (and the layout) of a FigureWidget in few messages.

    ``updates`` maps trace index → {property: value}; ``layout`` is a relayout dict. Traces
    that set exactly the same properties share one ``plotly_update`` message (one re-render
    in the browser); the layout rides with the first message.

    Never leave holes: a message that sets a property on some of its traces and leaves it
    "undefined" on others corrupted the others in the browser (tests/browser caught it):
    plotly.js reset their ``name`` to "trace N", and a bar trace lost its category ``x``.
    Callers that want one message give every trace the same property set.
    """
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, props in updates.items():
        groups.setdefault(tuple(sorted(props)), []).append(index)
    layout = dict(layout or {})
    if not groups and layout:
        fig.plotly_relayout(layout)
    for keys, indices in groups.items():
        data = {k: [contiguous(updates[i][k]) for i in indices] for k in keys}
        fig.plotly_update(restyle_data=data, relayout_data=layout, trace_indexes=indices)
        layout = {}


def contiguous(value):
    """Arrays for ``plotly_restyle`` must be C-contiguous: the widget sends 1-d float arrays
    as raw buffers, and a strided view (a column ``policy[:, a]``) fails to serialise."""
    if isinstance(value, np.ndarray):
        return np.ascontiguousarray(value)
    return value


def base_layout(title: str | None = None, height: int = 420, width: int | None = None,
                **extra) -> dict:
    """The layout every widget starts from: white template, readable font, legend on top.

    ``width``: the FigureWidget does not follow the notebook's width by itself (it opens at
    700 px), so multi-panel widgets pass the width their panels need."""
    layout = {
        "template": TEMPLATE,
        "font": FONT,
        "height": height,
        "width": width,
        "margin": {"l": 60, "r": 20, "t": 70 if title else 40, "b": 50},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left",
                   "x": 0.0, "font": {"size": 11}},
        "hoverlabel": {"namelength": -1},
    }
    if title:
        layout["title"] = {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 15}}
    layout.update(extra)
    return layout

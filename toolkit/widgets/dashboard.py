"""Dashboard: watch entropy, KL, clipping and advantages move while a trainer runs.

    trainer = Trainer(TabularPolicy(5), BanditTask(bandit), GRPO(beta=0.05), lr=0.5)
    dash = Dashboard(trainer)
    dash                       # in a notebook: ▶ Start / ■ Stop / +1 Step drive the trainer

The Dashboard is a ``History`` subscriber: the trainer knows nothing about it. Each record is
queued (about a µs) and moved into numpy buffers in bulk when the figure is redrawn, at most
every ``interval`` seconds (0.2 s), in two ``plotly_update`` messages, with every series
min–max decimated to at most ``max_points`` points (float32 on the wire), so 10,000 steps
stay smooth. The redraw interval also stretches so that redrawing never takes more than
``budget`` (1%) of the wall time; ``cost`` reports what the dashboard actually took as a
share of training time (benchmarks/bench_widgets.py measures it).

Buttons and the kernel: ▶ Start and +1 Step run ``trainer.train(n)`` in a background thread
(one at a time), so the kernel stays free to process the ■ Stop click, which calls
``trainer.stop()``: the trainer finishes its current step and returns with the policy and the
whole history intact; ▶ Start continues from there. (An asyncio task would have to yield
between steps from inside ``train``, which the trainer does not do; a thread needs no change
to it. Torch releases the GIL in its kernels, so the notebook stays responsive.) Calling
``trainer.train(n)`` in a cell yourself also updates the dashboard live; interrupt the kernel
(■ in the toolbar) to stop that one — the trainer rolls back the interrupted step cleanly.

Panels answer the questions TRL users ask most:
- clip fractions and the loss sit at 0 while the policy still learns: on-policy the ratio
  ρ = π/μ is exactly 1 (the ratio panel shows the whole min…max range and the clip band), so
  nothing can be clipped, and the surrogate's value is ≈ 0 while its gradient is not (the
  gradient-norm and KL-between-iterates panels show the movement);
- ``frac_reward_zero_std`` = 1 means every group had equal rewards, so every advantage is 0
  and the step has no learning signal (flagged in the notes line);
- which KL estimator ``kl`` is (k3 = E[ρ − 1 − log ρ], ρ = π_ref/π), in the panel's title.
"""

from __future__ import annotations

import dataclasses
import html
import math
import threading
import time

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .style import (
    NEGATIVE_COLOR,
    POSITIVE_COLOR,
    Throttle,
    base_layout,
    decimate,
    log_safe,
    restyle,
)

# ----------------------------------------------------------------------------- panels


@dataclasses.dataclass(frozen=True)
class Line:
    metric: str
    label: str
    color: str
    dash: str = "solid"
    width: float = 2.0


@dataclasses.dataclass(frozen=True)
class Panel:
    title: str
    axis: str
    lines: tuple[Line, ...] = ()
    log: bool = False
    kind: str = "lines"  # "lines", "band" (min…max + mean), "histogram", "actions"
    hlines: tuple[tuple[float, str], ...] = ()
    yrange: tuple[float, float] | None = None
    fraction: bool = False  # a share in [0, 1]: the axis starts at 0


C = {"blue": "#0072B2", "orange": "#E69F00", "grey": "#777777", "purple": "#CC79A7",
     "sky": "#56B4E9"}

PANELS: dict[str, Panel] = {
    "reward": Panel("Reward", "reward per sample", (
        Line("reward", "mean reward", C["blue"]),
        Line("reward_std", "std within a group", C["sky"], "dot"))),
    "entropy": Panel("Entropy H(π)", "nats", (Line("entropy", "entropy", C["purple"]),)),
    "kl": Panel("KL to reference ({est})", "KL(π‖π_ref), nats", (
        Line("kl", "KL(π‖π_ref)", C["orange"]),)),
    "kl/iterates": Panel("KL between iterates (log)", "KL(π_t‖π_t+1), nats", (
        Line("kl/iterates", "KL(π_t‖π_t+1)", C["grey"]),), log=True),
    "clip": Panel("Clipped tokens, by sign of A", "fraction of tokens", (
        Line("clip_ratio/low_mean", "A < 0: ρ < 1−ε (low)", NEGATIVE_COLOR),
        Line("clip_ratio/high_mean", "A > 0: ρ > 1+ε (high)", POSITIVE_COLOR),
        Line("clip_ratio/region_mean", "all clipped", C["grey"], "dot", 1.5)), fraction=True),
    "adv/pos_share": Panel("Share of the loss from A > 0", "share of |loss|", (
        Line("adv/pos_share", "A > 0 share", POSITIVE_COLOR),),
        hlines=((0.5, "balanced"),), yrange=(-0.02, 1.02)),
    "ratio": Panel("Importance ratio ρ = π/μ", "ρ = π/μ", (
        Line("ratio/mean", "mean ρ", C["blue"]),), kind="band"),
    "grad_norm": Panel("Gradient norm (log)", "‖∇ loss‖₂", (
        Line("grad_norm", "grad norm", C["grey"]),), log=True),
    "frac_reward_zero_std": Panel("Groups without signal", "fraction with std(r) = 0", (
        Line("frac_reward_zero_std", "zero-std groups", NEGATIVE_COLOR),),
        yrange=(-0.02, 1.05)),
    "loss": Panel("Surrogate loss", "loss value", (Line("loss", "loss", C["grey"]),),
                  hlines=((0.0, ""),)),
    "completions/mean_length": Panel("Completion length", "tokens", (
        Line("completions/mean_length", "mean length", C["blue"]),)),
    "adv_histogram": Panel("Advantage histogram (latest step)", "share of samples",
                           kind="histogram"),
    "actions": Panel("Policy now: π(a) per action", "probability", kind="actions",
                     yrange=(0, 1.02)),
}
TABULAR_PANELS = ("reward", "entropy", "kl", "kl/iterates", "clip", "adv/pos_share", "ratio",
                  "grad_norm", "frac_reward_zero_std", "loss", "adv_histogram", "actions")
LM_PANELS = ("reward", "entropy", "kl", "kl/iterates", "clip", "adv/pos_share", "ratio",
             "grad_norm", "frac_reward_zero_std", "loss", "adv_histogram",
             "completions/mean_length", "samples")
COLUMNS = 4
#: points per trace: a panel is ~250 px wide, so 600 min–max points is >2 per pixel, and a
#: redraw of ~30 traces stays ~150 kB on the wire (float32)
DASHBOARD_POINTS = 600
SMOOTH = "smooth:"  # prefix marking the moving-average trace of a metric


def _f32(a):
    """Series go to the browser as float32 buffers: half the bytes, exact for steps < 2²⁴,
    and more than enough digits for a plot."""
    return np.ascontiguousarray(a, dtype=np.float32) if isinstance(a, np.ndarray) else a


def moving_average(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` finite values (fewer at the start), O(n)."""
    if window <= 1:
        return y
    finite = np.isfinite(y)
    c = np.concatenate([[0.0], np.cumsum(np.where(finite, y, 0.0))])
    k = np.concatenate([[0], np.cumsum(finite)])
    hi = np.arange(1, len(y) + 1)
    lo = np.maximum(hi - window, 0)
    count = k[hi] - k[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (c[hi] - c[lo]) / count, np.nan)


# ----------------------------------------------------------------------------- buffers


class _Series:
    """A growable pair of numpy arrays (steps, values): amortised O(1) per value."""

    __slots__ = ("n", "steps", "values")

    def __init__(self, capacity: int = 1024):
        self.steps = np.empty(capacity, dtype=np.float64)
        self.values = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def extend(self, steps: np.ndarray, values: np.ndarray) -> None:
        need = self.n + len(steps)
        if need > len(self.steps):
            size = max(need, 2 * len(self.steps))
            self.steps = np.concatenate([self.steps[: self.n], np.empty(size - self.n)])
            self.values = np.concatenate([self.values[: self.n], np.empty(size - self.n)])
        self.steps[self.n : need] = steps
        self.values[self.n : need] = values
        self.n = need

    def view(self):
        return self.steps[: self.n], self.values[: self.n]


def _kl_estimator(algorithm) -> str:
    """Which estimator the ``kl`` metric is: GRPO reports its own (``kl=``), else the
    trainer's k3 estimate."""
    if algorithm is not None and getattr(algorithm, "name", "") == "GRPO":
        return str(getattr(algorithm, "kl", "k3"))
    return "k3"


_EST_TEXT = {"k1": "k1 = −log ρ", "k2": "k2 = ½(log ρ)²", "k3": "k3 = ρ − 1 − log ρ"}
_EST_SHORT = {"k1": "k1 estimate", "k2": "k2 estimate", "k3": "k3 estimate"}


class Dashboard(widgets.VBox):
    """Live training dashboard for a ``toolkit`` Trainer or any ``toolkit.history.History``.

    Args:
        source: a ``Trainer`` (buttons drive it) or a ``History`` (view only: e.g. fed by
            ``MirrorlabCallback`` from a TRL trainer).
        panels: panel names to show (see ``PANELS``; "samples" adds the table of recent
            completions). Default: every panel that fits the policy (the action
            distribution for tabular policies, completion length and samples for LMs).
        steps: the default number of steps of ▶ Start.
        interval: minimum seconds between redraws.
        max_points: points per trace after min–max decimation (default 600).
        budget: the largest share of wall time redraws may take (stretches ``interval``).
    """

    def __init__(self, source, panels=None, steps: int = 1000, interval: float = 0.2,
                 max_points: int = DASHBOARD_POINTS, budget: float = 0.01,
                 title: str | None = None):
        from ..history import History

        if isinstance(source, History):
            self.trainer, self.history = None, source
        elif isinstance(getattr(source, "history", None), History) and callable(
                getattr(source, "train", None)):
            self.trainer, self.history = source, source.history
        else:
            raise TypeError("source must be a toolkit Trainer or a toolkit.history.History, "
                            f"got {type(source).__name__}")
        if not max_points >= 10:
            raise ValueError(f"max_points must be >= 10, got {max_points}")
        if not 0 < budget <= 1:
            raise ValueError(f"budget must be in (0, 1], got {budget}")
        self.max_points = int(max_points)
        self.budget = float(budget)
        self.throttle = Throttle(interval)
        self.min_interval = float(interval)
        self.policy = getattr(self.trainer, "policy", None)
        self.tabular = self.policy is not None and callable(getattr(self.policy, "probs", None))
        algorithm = getattr(self.trainer, "algorithm", None)
        self.kl_estimator = _kl_estimator(algorithm)
        # β of a KL penalty added to the loss (GRPO's kl_in="loss"): the loss is then not ≈ 0
        beta = getattr(algorithm, "beta", 0.0)
        in_loss = getattr(algorithm, "kl_in", "loss") == "loss"
        self.kl_penalty = float(beta) if in_loss and isinstance(beta, (int, float)) else 0.0
        default = TABULAR_PANELS if self.tabular else LM_PANELS
        if self.trainer is None:
            default = tuple(p for p in LM_PANELS if p not in ("actions",))
        panels = tuple(default if panels is None else panels)
        unknown = [p for p in panels if p not in PANELS and p != "samples"]
        if unknown:
            raise ValueError(f"panels: unknown {unknown}; choose from "
                             f"{[*PANELS, 'samples']}")
        if "actions" in panels and not self.tabular:
            raise ValueError("panels: 'actions' needs a trainer with a tabular policy")
        self.show_samples = "samples" in panels
        self.panels = tuple(p for p in panels if p != "samples")

        self._lock = threading.RLock()
        self._pending: list = []  # records not yet in the numpy buffers
        self._series: dict[str, _Series] = {}
        self._last_extras: dict = {}
        self._last_step = -1
        self._dirty = False
        self.records_seen = 0
        self.redraws = 0
        self.update_seconds = 0.0  # time spent in the subscriber (buffering + redraws)
        self.redraw_seconds = 0.0
        self.train_seconds = 0.0  # wall time of trainer.train calls started by the buttons
        self._thread: threading.Thread | None = None
        self._stop_wanted = False
        self.error: BaseException | None = None

        self._build_figure(title, algorithm)
        self._build_controls(steps)
        self.samples = widgets.HTML(layout={"max_height": "260px", "overflow": "auto"})
        self.notes = widgets.HTML()
        for rec in self.history:  # what was recorded before the dashboard existed
            self._ingest(rec)
        self.history.subscribe(self._on_record)
        self.redraw()
        children = [self.controls] if self.trainer is not None else []
        children += [self.status, self.figure, self.notes]
        if self.show_samples:
            children.append(self.samples)
        super().__init__(children)
        self.add_class("mirrorlab-dashboard")

    # ------------------------------------------------------------------ figure
    def _build_figure(self, title, algorithm):
        n = len(self.panels)
        rows = max(1, math.ceil(n / COLUMNS))
        titles = []
        for key in self.panels:
            t = PANELS[key].title
            titles.append(t.format(est=_EST_SHORT.get(self.kl_estimator, self.kl_estimator)))
        fig = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=titles,
                            horizontal_spacing=0.075, vertical_spacing=0.15 if rows > 1 else 0.1)
        self.figure = go.FigureWidget(fig)
        name = getattr(algorithm, "name", None)
        policy = type(self.policy).__name__ if self.policy is not None else None
        self._head = title or "Training dashboard" + (f": {name}" if name else "") + (
            f" on a {policy}" if policy else "")
        self._shown_window = 1
        self.figure.update_layout(**base_layout(self._title_text(1), height=250 * rows + 130,
                                                width=1120))
        self.figure.update_layout(
            margin={"l": 55, "r": 15, "t": 110, "b": 40},
            legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0,
                    "yref": "container", "font": {"size": 10}}, bargap=0.05)
        self.figure.update_annotations(font_size=12)
        self._line_traces: list[tuple[int, str]] = []  # (trace index, metric)
        self._band: tuple[int, int] | None = None
        self._hist_trace = None
        self._actions_trace = None
        self._ref_trace = None
        eps = (getattr(algorithm, "eps_low", None), getattr(algorithm, "eps_high", None))
        for k, key in enumerate(self.panels):
            panel = PANELS[key]
            row, col = k // COLUMNS + 1, k % COLUMNS + 1
            if panel.kind == "band":
                self._add_band(row, col, eps)
            if panel.kind in ("lines", "band"):
                for line in panel.lines:
                    # every step, faint; then (line panels) its moving average, bold
                    smooth = panel.kind == "lines"
                    self.figure.add_trace(go.Scatter(
                        x=[], y=[], mode="lines", name=line.label, showlegend=False,
                        opacity=0.35 if smooth else 1.0,
                        line={"color": line.color, "dash": line.dash,
                              "width": 1.0 if smooth else line.width},
                        hovertemplate=f"{line.label}<br>step %{{x}}<br>%{{y:.4g}}<extra></extra>"),
                        row=row, col=col)
                    self._line_traces.append((len(self.figure.data) - 1, line.metric))
                    if smooth:
                        self.figure.add_trace(go.Scatter(
                            x=[], y=[], mode="lines", name=f"{line.label} (moving average)",
                            showlegend=False, line={"color": line.color, "dash": line.dash,
                                                    "width": line.width + 0.5},
                            hovertemplate=f"{line.label}, moving average<br>step %{{x}}<br>"
                                          "%{y:.4g}<extra></extra>"), row=row, col=col)
                        self._line_traces.append((len(self.figure.data) - 1,
                                                  SMOOTH + line.metric))
                self.figure.update_xaxes(title_text="training step", title_standoff=2,
                                         row=row, col=col)
            elif panel.kind == "histogram":
                self.figure.add_trace(go.Bar(x=[], y=[], name="advantage", showlegend=False,
                                             hovertemplate="A ≈ %{x:.3g}: %{y:.1%}"
                                                           "<extra></extra>"), row=row, col=col)
                self._hist_trace = len(self.figure.data) - 1
                self.figure.update_xaxes(title_text="advantage A (green > 0, red < 0)",
                                         title_standoff=2, row=row, col=col)
            elif panel.kind == "actions":
                self._add_actions(row, col)
            self.figure.update_yaxes(title_text=panel.axis, title_standoff=10 if panel.log else 4,
                                     row=row, col=col)
            if panel.log:
                self.figure.update_yaxes(type="log", exponentformat="power", row=row, col=col)
            if panel.yrange is not None:
                self.figure.update_yaxes(range=list(panel.yrange), row=row, col=col)
            if panel.fraction:
                self.figure.update_yaxes(rangemode="tozero", row=row, col=col)
            for y, label in panel.hlines:
                self.figure.add_hline(y=y, line={"color": "#999", "dash": "dot", "width": 1},
                                      annotation_text=label, annotation_font_size=10,
                                      row=row, col=col)
            # short in-panel legends: one text line under the title naming the curves
            if len(panel.lines) > 1 or panel.kind == "band":
                self._legend_note(k, panel)
        self._line_index = [i for i, _ in self._line_traces]

    @staticmethod
    def smoothing_window(n: int) -> int:
        """Steps in the moving average drawn over n steps: about 2% of the run (≥ 1)."""
        return max(1, n // 50)

    def _title_text(self, window: int) -> str:
        note = ("faint: every step · bold: moving average of the last "
                f"{window} steps" if window > 1 else "one point per training step")
        return f"{self._head}<br><sup>{note}</sup>"

    def _legend_note(self, k, panel):
        parts = [f"<span style='color:{ln.color}'>━</span> {ln.label}" for ln in panel.lines]
        if panel.kind == "band":
            parts = ["<span style='color:#9ecae1'>█</span> min…max",
                     *parts, "<span style='color:#999'>┄</span> clip band 1±ε"]
        ann = self.figure.layout.annotations[k]
        ann.yshift = 14  # lift the panel title to make room for its legend line
        self.figure.add_annotation(
            text="  ".join(parts), xref="paper", yref="paper", x=ann.x, y=ann.y,
            xanchor="center", yanchor="bottom", showarrow=False,
            font={"size": 9.5, "color": "#333"})

    def _add_band(self, row, col, eps):
        for metric, fill in (("ratio/min", None), ("ratio/max", "tonexty")):
            self.figure.add_trace(go.Scatter(
                x=[], y=[], mode="lines", line={"width": 0.5, "color": "#9ecae1"}, fill=fill,
                fillcolor="rgba(158,202,225,0.45)", showlegend=False, name=metric,
                hovertemplate=f"{metric}<br>step %{{x}}<br>%{{y:.4g}}<extra></extra>"),
                row=row, col=col)
            self._line_traces.append((len(self.figure.data) - 1, metric))
        lo, hi = eps
        for y in (1 - lo if lo is not None else None, 1 + hi if hi is not None else None):
            if y is not None:
                self.figure.add_hline(y=y, line={"color": "#999", "dash": "dot", "width": 1},
                                      row=row, col=col)

    def _add_actions(self, row, col):
        probs = self.policy.probs()[0].numpy()
        ref = self.policy.ref_probs()[0].numpy() if callable(
            getattr(self.policy, "ref_probs", None)) else None
        rewards = None
        task = getattr(self.trainer, "task", None)
        if callable(getattr(task, "expected_rewards", None)):
            rewards = np.asarray(task.expected_rewards())[0]
        labels = [f"a{i}" + (f"<br>r={rewards[i]:.2f}" if rewards is not None and
                             len(probs) <= 8 else "") for i in range(len(probs))]
        self._action_labels = labels
        self.figure.add_trace(go.Bar(x=labels, y=probs, name="π(a) now", showlegend=False,
                                     marker_color=C["blue"],
                                     hovertemplate="π(%{x}) = %{y:.3f}<extra></extra>"),
                              row=row, col=col)
        self._actions_trace = len(self.figure.data) - 1
        if ref is not None:
            self.figure.add_trace(go.Scatter(
                x=labels, y=ref, mode="markers", name="π_ref(a)", showlegend=False,
                marker={"symbol": "line-ew-open", "size": 18, "color": "#111",
                        "line": {"width": 2}},
                hovertemplate="π_ref(%{x}) = %{y:.3f}<extra></extra>"), row=row, col=col)
        self.figure.update_xaxes(title_text="action (bars: π now, — π_ref)", title_standoff=2,
                                 tickangle=0, row=row, col=col)

    # ------------------------------------------------------------------ controls
    def _build_controls(self, steps):
        self.start_button = widgets.Button(description="▶ Start", button_style="success",
                                           tooltip="train in the background until Stop",
                                           layout={"width": "110px"})
        self.stop_button = widgets.Button(description="■ Stop", button_style="danger",
                                          tooltip="stop after the current step (nothing lost)",
                                          disabled=True, layout={"width": "110px"})
        self.step_button = widgets.Button(description="+1 Step", tooltip="one training step",
                                          layout={"width": "110px"})
        self.steps_input = widgets.BoundedIntText(value=int(steps), min=1, max=10**9,
                                                  description="steps per ▶",
                                                  style={"description_width": "initial"},
                                                  layout={"width": "190px"})
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.step_button.on_click(lambda _: self.start(1))
        self.controls = widgets.HBox([self.start_button, self.stop_button, self.step_button,
                                      self.steps_input])
        self.status = widgets.HTML()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, steps: int | None = None) -> None:
        """Train ``steps`` (default: the steps box) more steps in a background thread."""
        if self.trainer is None:
            raise RuntimeError("this Dashboard watches a History; it has no trainer to start")
        if self.running:
            return
        n = int(self.steps_input.value if steps is None else steps)
        self._stop_wanted = False
        self.error = None
        self._set_buttons(running=True)
        self._thread = threading.Thread(target=self._worker, args=(n,), daemon=True,
                                        name="mirrorlab-dashboard-train")
        self._thread.start()

    def stop(self) -> None:
        """Ask the trainer to stop after its current step (history and policy are kept)."""
        self._stop_wanted = True
        if self.trainer is not None:
            self.trainer.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the background run ends; True if it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def _worker(self, n: int) -> None:
        t0 = time.perf_counter()
        try:
            self.trainer.train(n, progress=False)
        except BaseException as err:  # shown in the status line; the trainer keeps its state
            self.error = err
        finally:
            self.train_seconds += time.perf_counter() - t0
            self.redraw()
            self._set_buttons(running=False)

    def _set_buttons(self, running: bool) -> None:
        self.start_button.disabled = running
        self.step_button.disabled = running
        self.stop_button.disabled = not running
        self._update_status(running)

    def _update_status(self, running: bool | None = None) -> None:
        running = self.running if running is None else running
        parts = [f"<b>step {self._last_step + 1}</b>"]
        if self.trainer is not None:
            parts.append("running…" if running else "idle")
            reason = getattr(self.trainer, "stop_reason", None)
            if not running and reason:
                parts.append(f"last run ended: {html.escape(str(reason))}")
        if self.error is not None:
            parts.append(f"<span style='color:#b00'>error: "
                         f"{html.escape(type(self.error).__name__)}: "
                         f"{html.escape(str(self.error))}</span>")
        cost = self.cost
        if cost is not None:
            parts.append(f"dashboard cost {100 * cost:.1f}% of training time")
        self.status.value = " · ".join(parts)

    # ------------------------------------------------------------------ records
    def _ingest(self, record) -> None:
        """Queue a record (O(1)); ``_flush`` moves queued records into the numpy buffers in
        bulk, inside the budgeted redraw."""
        with self._lock:
            self._pending.append(record)
            self._last_step = int(record.step)
            self.records_seen += 1
            self._dirty = True

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            if not pending:
                return
            n = len(pending)
            steps = np.fromiter((r.step for r in pending), np.float64, n)
            names = dict.fromkeys(k for r in pending for k in r.metrics)
            for name in names:
                has = np.fromiter((name in r.metrics for r in pending), bool, n)
                values = np.fromiter((r.metrics.get(name, np.nan) for r in pending),
                                     np.float64, n)
                series = self._series.get(name)
                if series is None:
                    series = self._series[name] = _Series()
                series.extend(steps[has], values[has])
            extras = next((r.extras for r in reversed(pending) if r.extras), None)
            if extras:
                self._last_extras = extras

    def _on_record(self, record) -> None:
        t0 = time.perf_counter()
        self._ingest(record)
        if self._stop_wanted and self.trainer is not None:
            self.trainer.stop()  # a Stop that arrived while train() was starting
        if self.throttle.due():
            self.redraw()
        self.update_seconds += time.perf_counter() - t0

    @property
    def cost(self) -> float | None:
        """Dashboard time (buffering + redraws) as a share of training time, or None."""
        steps = self._series.get("step_time")
        train = float(steps.view()[1].sum()) if steps is not None and steps.n else 0.0
        train = max(train, self.train_seconds - self.update_seconds)
        return None if train <= 0 else self.update_seconds / train

    # ------------------------------------------------------------------ drawing
    def series(self, metric: str):
        """(steps, values) buffered so far for ``metric`` (copies)."""
        with self._lock:
            self._flush()
            s = self._series.get(metric)
            if s is None:
                return np.empty(0), np.empty(0)
            x, y = s.view()
            return x.copy(), y.copy()

    def redraw(self) -> None:
        """Push everything buffered to the figure (called by the throttle; safe to call from
        any thread: one redraw at a time)."""
        with self._lock:
            self._redraw()

    def _redraw(self) -> None:
        t0 = time.perf_counter()
        with self._lock:
            self._flush()
            if not self._dirty and self.redraws:
                return
            self._dirty = False
            xs, ys = [], []
            log_metrics = {ln.metric for p in self.panels for ln in PANELS[p].lines
                           if PANELS[p].log}
            longest = max((s.n for s in self._series.values()), default=0)
            window = self.smoothing_window(longest)
            for _, metric in self._line_traces:
                smooth = metric.startswith(SMOOTH)
                metric = metric.removeprefix(SMOOTH)
                s = self._series.get(metric)
                if s is None or s.n == 0:
                    xs.append([])
                    ys.append([])
                    continue
                x, y = s.view()
                if smooth:
                    y = moving_average(y, window)
                x, y = decimate(x, y, self.max_points)
                if metric in log_metrics:
                    y = log_safe(y)
                xs.append(x)
                ys.append(y)
            extras = self._last_extras
            step = self._last_step
        updates: dict[int, dict] = {i: {"x": _f32(x), "y": _f32(y)}
                                    for i, x, y in zip(self._line_index, xs, ys)}
        layout = {}
        hist = extras.get("adv_histogram") if extras else None
        if self._hist_trace is not None and hist:
            counts = np.asarray(hist["counts"], dtype=np.float64)
            edges = np.asarray(hist["edges"], dtype=np.float64)
            centres = 0.5 * (edges[1:] + edges[:-1])
            total = counts.sum()
            share = counts / total if total > 0 else counts
            tiny = 1e-9 * max(1.0, float(np.abs(edges).max()))  # a centre of ±1e-17 is 0
            colours = np.where(centres > tiny, POSITIVE_COLOR,
                               np.where(centres < -tiny, NEGATIVE_COLOR, "#999999"))
            updates[self._hist_trace] = {"x": centres, "y": share, "width": np.diff(edges),
                                         "marker.color": colours.tolist()}
            k = self.panels.index("adv_histogram")
            layout[f"annotations[{k}].text"] = f"Advantage histogram (step {step})"
        if self._actions_trace is not None:  # x and y, like the series: the same message
            updates[self._actions_trace] = {"x": list(self._action_labels),
                                            "y": self.policy.probs()[0].numpy()}
        # two messages (two renders): every series and the policy bars, then the histogram
        restyle(self.figure, updates, layout=layout)
        if self.show_samples:
            self.samples.value = _samples_table(extras.get("samples") if extras else None, step)
        self.notes.value = self._notes()
        if window != self._shown_window:
            self._shown_window = window
            self.figure.plotly_relayout({"title.text": self._title_text(window)})
        self.redraws += 1
        cost = time.perf_counter() - t0
        self.redraw_seconds += cost
        # keep redraws under `budget` of the wall time
        self.throttle.interval = max(self.min_interval, cost / self.budget)
        self._update_status()

    def _last(self, metric: str):
        self._flush()
        s = self._series.get(metric)
        return None if s is None or s.n == 0 else float(s.values[s.n - 1])

    def _notes(self) -> str:
        """One line of plain-language diagnosis of the latest step (the TRL confusions)."""
        notes = []
        rmin, rmax = self._last("ratio/min"), self._last("ratio/max")
        clip = self._last("clip_ratio/region_mean")
        if rmin is not None and rmax is not None and abs(rmin - 1) < 1e-9 and abs(
                rmax - 1) < 1e-9:
            moved = self._last("kl/iterates")
            gn = self._last("grad_norm")
            extra = []
            if gn is not None:
                extra.append(f"gradient norm {gn:.3g}")
            if moved is not None:
                extra.append(f"KL between iterates {moved:.2g}")
            penalty = (f" (the loss you see is mostly the β·KL penalty, β = {self.kl_penalty:g})"
                       if self.kl_penalty > 0 else "")
            notes.append(
                "<b>On-policy:</b> ρ = π/μ is exactly 1 on every token, so nothing can be "
                f"clipped{' (clip fraction 0)' if clip == 0 else ''}, and the policy-gradient "
                f"part of the loss averages to ≈ 0 (advantages have mean 0){penalty} — yet "
                "its gradient is not 0: the policy still moves"
                + (f" ({', '.join(extra)})." if extra else "."))
        zero = self._last("frac_reward_zero_std")
        if zero is not None and zero >= 1 - 1e-9:
            notes.append("<b style='color:#b00'>No learning signal:</b> every group got "
                         "identical rewards (frac_reward_zero_std = 1), so every advantage is "
                         "0 and the reward taught nothing this step (only a KL term, if any, "
                         "moved the policy). Larger groups or easier prompts help.")
        elif zero is not None and zero > 0.5:
            notes.append(f"<b>Weak signal:</b> {zero:.0%} of groups had identical rewards "
                         "(their advantages are all 0).")
        if "kl" in self._series:
            notes.append(f"<b>kl</b> is the {_EST_TEXT.get(self.kl_estimator, '')} estimate "
                         "of KL(π‖π_ref) with ρ = π_ref/π, averaged over sampled tokens "
                         "(k3: unbiased and never negative).")
        return "<div style='font-size:12px;line-height:1.45'>" + "<br>".join(notes) + "</div>"

    def close(self) -> None:
        """Unsubscribe from the history and close the widgets."""
        history = getattr(self, "history", None)  # absent if __init__ failed
        if history is not None and self._on_record in history.subscribers:
            history.unsubscribe(self._on_record)
        super().close()


def _samples_table(samples, step) -> str:
    if not samples:
        return ""
    rows = []
    for s in samples:
        adv = s.get("advantage")
        colour = "#e8f5ee" if adv is not None and adv > 0 else (
            "#fbeae3" if adv is not None and adv < 0 else "white")
        cells = [html.escape(str(s.get("prompt", ""))),
                 html.escape(str(s.get("completion", ""))),
                 "" if s.get("reward") is None else f"{s['reward']:.3g}",
                 "" if adv is None else f"{adv:+.3g}"]
        rows.append(f"<tr style='background:{colour}'>" + "".join(
            f"<td style='padding:2px 8px;font-family:monospace'>{c}</td>" for c in cells)
            + "</tr>")
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{h}</th>"
                   for h in ("prompt", "completion", "reward", "advantage"))
    return (f"<div style='font-size:12px'><b>Recent samples (step {step})</b>"
            f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}"
            "</table></div>")

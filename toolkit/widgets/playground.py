"""Playground: one slider per hyperparameter of an exact algorithm; every change re-runs the
whole trajectory (``tabular.run``) and redraws it.

    Playground(tb.MirrorDescent(eta=0.5, beta=0.1), tb.Bandit([1.0, 0.6, 0.2]))

Panels: π_t(a) per action over the iterations with the ground truth dashed (bandits, games;
on an MDP the value J(π_t) and J(π*)); the distance to the ground truth on a log scale
(KL(π*‖π_t), the suboptimality gap, exploitability); and for 3-action problems the
trajectory on the probability simplex. Sliders: η on a log scale; KL / entropy weights
(β, τ …) on a log scale with an "= 0" switch; probabilities on [0, 1]; integers as integers;
plus the number of iterations.

Latency: the trajectory is recomputed in numpy and pushed to the figure in one
``plotly_restyle`` message per group of traces; ``latencies_ms`` holds the time from each
slider change to the figure update being sent (measured on the bundled problems by
benchmarks/bench_widgets.py).
"""

from __future__ import annotations

import dataclasses
import math
import time

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import tabular as tb

from ._exact import action_names, check_problem, default_start, pick, truth_label
from .style import (
    GREEK,
    METRICS,
    TRUTH_COLOR,
    base_layout,
    color,
    config_label,
    log_safe,
    restyle,
)

#: slider kinds by hyperparameter name: (kind, low, high)
SLIDER_SPECS: dict[str, tuple[str, float, float]] = {
    "eta": ("log", 1e-3, 1e3),
    "lr": ("log", 1e-4, 1e1),
    "beta": ("log0", 1e-4, 1e2),
    "tau": ("log0", 1e-4, 1e2),
    "kl_coef": ("log0", 1e-4, 1e2),
    "lam": ("log0", 1e-4, 1e2),
    "mixture": ("linear", 0.0, 1.0),
    "mu": ("linear", 0.0, 1.0),
    "alpha": ("linear", 0.0, 1.0),
    "epsilon": ("linear", 0.0, 1.0),
    "eps": ("linear", 0.0, 1.0),
    "clip": ("linear", 0.0, 1.0),
    "gamma": ("linear", 0.0, 0.999),
}
#: choices for string-valued hyperparameters (others without a ``sliders`` entry get no control)
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("MDPO", "schedule"): ("constant", "geometric"),
    ("NashMD", "schedule"): ("constant", "decreasing"),
}
#: at most this many records per run: longer runs record every k-th step (keeps redraws fast)
MAX_RECORDS = 100
#: distance-to-ground-truth metrics, in the order they are drawn
CONVERGENCE = ("kl_to_solution", "gap", "exploitability", "duality_gap")
MAX_ACTION_LINES = 10


class LogOrZero(widgets.HBox):
    """A log-scale slider with an "= 0" switch, for weights that may be exactly 0 (β, τ)."""

    def __init__(self, name: str, value: float, low: float, high: float):
        self.name = name
        v = float(value)
        exp_lo, exp_hi = math.log10(low), math.log10(high)
        start = min(max(v if v > 0 else 10 ** ((exp_lo + exp_hi) / 2 - 1), low), high)
        self.slider = widgets.FloatLogSlider(
            value=start, base=10, min=exp_lo, max=exp_hi, step=0.05,
            description=GREEK.get(name, name), readout_format=".3g",
            continuous_update=True, layout={"width": "360px"})
        self.zero = widgets.Checkbox(value=v == 0, description="= 0", indent=False,
                                     layout={"width": "70px"})
        self.slider.disabled = self.zero.value
        self.zero.observe(lambda ch: setattr(self.slider, "disabled", ch["new"]), names="value")
        super().__init__([self.slider, self.zero])

    @property
    def value(self) -> float:
        return 0.0 if self.zero.value else float(self.slider.value)

    @value.setter
    def value(self, v: float) -> None:
        v = float(v)
        if v == 0:
            self.zero.value = True
        else:
            with self.hold_trait_notifications():
                self.zero.value = False
            self.slider.value = v

    def observe_value(self, callback) -> None:
        self.slider.observe(callback, names="value")
        self.zero.observe(callback, names="value")


def _slider_for(name: str, value, spec=None, owner: str = ""):
    """The control for one hyperparameter, or None when it is not a number (arrays, strings)."""
    if isinstance(spec, widgets.ValueWidget):
        return spec
    if isinstance(value, str):
        options = tuple(spec) if spec else CHOICES.get((owner, name))
        if not options or value not in options:
            return None
        return widgets.Dropdown(options=options, value=value, description=name,
                                layout={"width": "360px"})
    if isinstance(value, (bool, np.bool_)) or value is None or np.ndim(value) != 0:
        return None
    if name.endswith("tol"):
        return None  # numerical tolerances are not learning hyperparameters
    desc = GREEK.get(name, name)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        hi = spec[1] if spec else max(8, 4 * int(value))
        lo = spec[0] if spec else min(1, int(value))
        return widgets.IntSlider(value=int(value), min=lo, max=hi, description=desc,
                                 continuous_update=True, layout={"width": "360px"})
    value = float(value)
    kind, lo, hi = spec if spec else SLIDER_SPECS.get(
        name, ("log", value / 100, value * 100) if value > 0 else ("linear", -1.0, 1.0))
    if kind == "log0":
        return LogOrZero(name, value, lo, hi)
    if kind == "log":
        if value <= 0:
            raise ValueError(f"{name}: a log slider needs a value > 0, got {value}")
        return widgets.FloatLogSlider(
            value=min(max(value, lo), hi), base=10, min=math.log10(lo), max=math.log10(hi),
            step=0.05, description=desc, readout_format=".3g", continuous_update=True,
            layout={"width": "360px"})
    return widgets.FloatSlider(value=min(max(value, lo), hi), min=lo, max=hi,
                               step=(hi - lo) / 200, description=desc, readout_format=".3g",
                               continuous_update=True, layout={"width": "360px"})


class Playground(widgets.VBox):
    """Sliders for every hyperparameter of an exact algorithm; each change re-runs it.

    Args:
        algorithm: a ``tabular`` algorithm instance (its values are the sliders' start).
        problem: an unbatched Bandit, PreferenceGame or FiniteMDP.
        steps: iterations per run (also a slider, up to ``max_steps``).
        init: start policy (default π₀ ∝ (n, …, 1)² for bandits and games, uniform on MDPs).
        sliders: per-name overrides: a (kind, low, high) tuple with kind "log", "log0" or
            "linear", an (low, high) pair for integers, a tuple of choices for strings, or a
            ready ipywidget.
        action_names: legend names of the actions.
    """

    def __init__(self, algorithm, problem, steps: int | None = None, init=None,
                 sliders: dict | None = None, max_steps: int = 2000, action_names=None,
                 title: str | None = None, height: int = 430):
        if not isinstance(algorithm, tb.ExactAlgorithm) or not dataclasses.is_dataclass(
                algorithm):
            raise TypeError("algorithm must be a tabular algorithm instance (e.g. "
                            f"tb.MirrorDescent(eta=0.5)), got {type(algorithm).__name__}")
        self.problem = check_problem(problem)
        algorithm.check_problem(self.problem)
        self.algorithm = algorithm
        self.is_mdp = isinstance(self.problem, tb.FiniteMDP)
        if steps is None:
            steps = 100 if self.is_mdp else 200
        self.init = init if init is not None else (
            None if self.is_mdp else default_start(self.problem.n_actions))
        self.latencies_ms: list[float] = []
        self.history: tb.History | None = None
        self._title = title

        # ---- controls
        sliders = sliders or {}
        self.controls: dict[str, widgets.Widget] = {}
        for f in dataclasses.fields(algorithm):
            control = _slider_for(f.name, getattr(algorithm, f.name), sliders.get(f.name),
                                  type(algorithm).__name__)
            if control is not None:
                self.controls[f.name] = control
        self.steps_slider = widgets.IntSlider(
            value=int(steps), min=1, max=int(max(max_steps, steps)), description="iterations",
            continuous_update=False, layout={"width": "360px"})
        self.status = widgets.HTML()
        for control in self.controls.values():
            if isinstance(control, LogOrZero):
                control.observe_value(self._on_change)
            else:
                control.observe(self._on_change, names="value")
        self.steps_slider.observe(self._on_change, names="value")

        # ---- figure
        n = self.problem.n_actions
        self.names = action_names_for(self.problem, action_names)
        self.simplex = not self.is_mdp and n == 3
        specs = [[{"type": "xy"}, {"type": "xy"}] + ([{"type": "ternary"}] if self.simplex
                                                     else [])]
        left = "Value J(π_t) vs optimum" if self.is_mdp else "Policy π_t(a) per action"
        titles = [left, "Distance to the ground truth (log)"]
        if self.simplex:
            titles.append("Trajectory on the simplex")
        fig = make_subplots(rows=1, cols=len(specs[0]), specs=specs, subplot_titles=titles,
                            horizontal_spacing=0.09 if self.simplex else 0.1,
                            column_widths=[0.36, 0.36, 0.28] if self.simplex else None)
        self.figure = go.FigureWidget(fig)
        self.figure.update_layout(**base_layout(self._figure_title(), height=height,
                                                width=1150 if self.simplex else 950))
        self.figure.update_layout(legend={"y": -0.22, "yanchor": "top"},
                                  margin={"l": 65, "r": 45, "t": 95, "b": 100})
        self._build_traces()
        self.rerun()
        boxes = [*self.controls.values(), self.steps_slider]
        grid = widgets.GridBox(boxes, layout={"grid_template_columns": "repeat(2, 440px)"})
        super().__init__([grid, self.status, self.figure])
        self.add_class("mirrorlab-playground")

    # --------------------------------------------------------------------- API
    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def set(self, **values) -> None:
        """Set sliders by hyperparameter name (one re-run per change, like a person would)."""
        for name, value in values.items():
            if name == "steps":
                self.steps_slider.value = int(value)
            elif name in self.controls:
                self.controls[name].value = value
            else:
                raise ValueError(f"{name}: no such slider; sliders: {[*self.controls, 'steps']}")

    def current_algorithm(self):
        return dataclasses.replace(self.algorithm, **self.values)

    def rerun(self) -> float:
        """Re-run the trajectory with the current slider values and redraw; returns ms."""
        t0 = time.perf_counter()
        try:
            alg = self.current_algorithm()
            steps = int(self.steps_slider.value)
            hist = tb.run(alg, self.problem, steps=steps, init=self.init,
                          record_every=max(1, math.ceil(steps / MAX_RECORDS)))
        except (ValueError, TypeError) as err:
            self.status.value = f"<span style='color:#b00'>⚠ {err}</span>"
            return float("nan")
        self.history = hist
        self._draw(alg, hist)
        ms = (time.perf_counter() - t0) * 1e3
        self.latencies_ms.append(ms)
        self.status.value = self._summary(alg, hist, ms)
        return ms

    # --------------------------------------------------------------------- drawing
    def _figure_title(self, alg=None) -> str:
        if self._title:
            return self._title
        alg = alg or self.algorithm
        label = config_label({"algorithm": type(alg).__name__,
                              "hyperparameters": alg.hyperparameters()})
        return f"Playground: {label} on a {type(self.problem).__name__}"

    def _build_traces(self):
        fig = self.figure
        n = self.problem.n_actions
        self._action_traces = []
        self._truth_traces = []
        if self.is_mdp:
            fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="J(π_t)",
                                     line={"color": color(0), "width": 2.5}), row=1, col=1)
            self._action_traces.append(fig.data[-1])
            fig.add_trace(go.Scatter(x=[], y=[], mode="lines", name="J(π*) (value iteration)",
                                     line={"color": TRUTH_COLOR, "dash": "dash"}), row=1, col=1)
            self._truth_traces.append(fig.data[-1])
            fig.update_yaxes(title_text="expected discounted return", row=1, col=1)
        else:
            for a in range(min(n, MAX_ACTION_LINES)):
                fig.add_trace(go.Scatter(
                    x=[], y=[], mode="lines", name=f"π({self.names[a]})", legendgroup=f"a{a}",
                    line={"color": color(a), "width": 2.2}), row=1, col=1)
                self._action_traces.append(fig.data[-1])
                fig.add_trace(go.Scatter(
                    x=[], y=[], mode="lines", name="ground truth", legendgroup=f"a{a}",
                    showlegend=a == 0, line={"color": color(a), "dash": "dot", "width": 1.5},
                    hovertemplate=f"ground truth π*({self.names[a]}) = %{{y:.3f}}"
                                  "<extra></extra>"), row=1, col=1)
                self._truth_traces.append(fig.data[-1])
            fig.update_yaxes(title_text="probability π_t(a)", range=[0, 1.02], row=1, col=1)
        fig.update_xaxes(title_text="iteration t", row=1, col=1)
        self._conv_traces = {}
        for k, name in enumerate(CONVERGENCE):
            if self.is_mdp and name == "exploitability":
                continue
            info = METRICS[name]
            fig.add_trace(go.Scatter(
                x=[], y=[], mode="lines", name=info.axis.replace("  (log scale)", "")
                .replace(" (log scale)", ""), line={"color": color(4 + k), "width": 2.2},
                hovertemplate=f"{info.title}<br>t = %{{x}}<br>%{{y:.3g}}<extra></extra>"),
                row=1, col=2)
            self._conv_traces[name] = fig.data[-1]
        fig.update_yaxes(type="log", exponentformat="power", title_text="distance (log scale)",
                         row=1, col=2)
        fig.update_xaxes(title_text="iteration t", row=1, col=2)
        if self.simplex:
            fig.add_trace(go.Scatterternary(a=[], b=[], c=[], mode="lines", name="π_t",
                                            line={"color": "#444", "width": 2},
                                            showlegend=False), row=1, col=3)
            self._simplex_path = fig.data[-1]
            fig.add_trace(go.Scatterternary(
                a=[], b=[], c=[], mode="markers", name="ground truth ★", showlegend=False,
                marker={"symbol": "star", "size": 15, "color": "#FFD000",
                        "line": {"color": TRUTH_COLOR, "width": 1.5}}), row=1, col=3)
            self._simplex_truth = fig.data[-1]
            axis = {"min": 0, "tickformat": ".1f", "title": {"font": {"size": 12}},
                    "tickfont": {"size": 9}}
            short = [name.split(",")[0] for name in self.names]
            fig.update_layout(ternary={
                "sum": 1, "aaxis": {**axis, "title": {"text": f"π({short[0]})"}},
                "baxis": {**axis, "title": {"text": f"π({short[1]})"}},
                "caxis": {**axis, "title": {"text": f"π({short[2]})"}}})
            fig.layout.ternary.domain.y = [0.0, 0.84]  # room for the subplot title above
        self._index = {id(t): i for i, t in enumerate(fig.data)}

    def _draw(self, alg, hist: tb.History):
        steps = hist.steps
        policy = pick(hist.policy, hist, event_ndim=2 if self.is_mdp else 1)[:, 0]
        solution = None if hist.solution is None else np.asarray(hist.solution)
        curves = {name: pick(v, hist, event_ndim=0)[:, 0] for name, v in hist.metrics.items()}
        if isinstance(self.problem, tb.PreferenceGame) and "exploitability" not in curves:
            curves["exploitability"] = tb.metrics.exploitability(self.problem, policy)
        updates: dict[int, dict] = {}

        def put(trace, **props):
            # the same properties on every trace: one message per trace type (style.restyle)
            props.setdefault("name", trace.name)
            props.setdefault("visible", True)
            updates[self._index[id(trace)]] = props

        if self.is_mdp:
            value = curves.get("value")
            put(self._action_traces[0], x=steps, y=value)
            best = value + curves["gap"] if value is not None and "gap" in curves else None
            put(self._truth_traces[0], x=steps if best is not None else [],
                y=best if best is not None else [])
        else:
            sol = None if solution is None else solution.reshape(-1, policy.shape[-1])[0]
            label = f"ground truth: {truth_label(self.problem, hist)}"
            for a, trace in enumerate(self._action_traces):
                put(trace, x=steps, y=policy[:, a])
            for a, trace in enumerate(self._truth_traces):
                if sol is None:
                    put(trace, x=[], y=[], name="ground truth")
                else:
                    put(trace, x=[steps[0], steps[-1]], y=[sol[a], sol[a]], name=label)
        for name, trace in self._conv_traces.items():
            y = curves.get(name)
            put(trace, x=steps if y is not None else [],
                y=log_safe(y) if y is not None else [], visible=y is not None)
        if self.simplex:
            put(self._simplex_path, a=policy[:, 0], b=policy[:, 1], c=policy[:, 2])
            s = None if solution is None else solution.reshape(-1, 3)[0]
            put(self._simplex_truth, a=[] if s is None else [s[0]],
                b=[] if s is None else [s[1]], c=[] if s is None else [s[2]])
        restyle(self.figure, updates, layout={"title.text": self._figure_title(alg)})

    def _summary(self, alg, hist, ms: float) -> str:
        parts = [f"ran {int(hist.steps[-1])} iterations in {ms:.1f} ms"]
        for name in CONVERGENCE:
            if name in hist.metrics:
                final = float(pick(hist.metrics[name], hist, event_ndim=0)[-1, 0])
                parts.append(f"final {METRICS[name].title.lower()}: {final:.3g}")
        if "entropy" in hist.metrics:
            final = float(pick(hist.metrics["entropy"], hist, event_ndim=0)[-1, 0])
            parts.append(f"entropy {final:.3g} nats")
        return "<span style='color:#444'>" + " · ".join(parts) + "</span>"

    def _on_change(self, change):
        self.rerun()


def action_names_for(problem, names):
    if names is None and isinstance(problem, tb.Bandit):
        return [f"a{i}, r={problem.rewards[i]:.2f}" for i in range(problem.n_actions)]
    if names is None and isinstance(problem, tb.PreferenceGame):
        return [chr(65 + i) if problem.n_actions <= 26 else str(i)
                for i in range(problem.n_actions)]
    return action_names(problem, names)

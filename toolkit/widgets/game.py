"""GameView: a preference game, and how close each algorithm's iterates get to its equilibrium.

Left, the preference matrix P[y, y′] = Pr(y ≻ y′) as a heatmap. Middle, the exploitability
max_y P(y ≻ π) − ½ of the *last* iterate π_t (solid) and of the *average* iterate
π̄_t = (1/t)·Σ_{s≤t} π_s (dashed), on a log scale: no-regret self-play (MWU) cycles, so its
last iterate never converges while its average does; Nash-MD / Mirror Prox converge at the
last iterate. Right (when some run is regularised, τ > 0), the τ-regularised duality gap
2τ·KL(π‖BR_τ(π)), which is 0 exactly at the regularised Nash equilibrium.

    GameView(tb.PreferenceGame.cyclic(3), {"MWU": mwu, "Nash-MD": nash_md}, steps=1000)
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import tabular as tb

from ._exact import (
    ExactRun,
    action_names,
    as_runs,
    check_problem,
    default_start,
    pick,
    reference,
    regularizer,
    running_average,
)
from .style import MAX_POINTS, base_layout, color, decimate, log_safe, log_ticks


class GameView(widgets.VBox):
    """Preference-matrix heatmap plus exploitability / duality-gap curves (log scale),
    last iterate vs average iterate, for one or several runs on the same game.

    Args:
        game: an unbatched ``tabular.PreferenceGame``.
        runs: an algorithm or History, a list of them, or a dict label → algorithm/History.
        steps: iterations for algorithms given as objects (every step is recorded, so the
            average iterate is exact).
        init: start policy (default π₀ ∝ (n, n−1, …, 1)², away from the uniform Nash of
            cyclic games).
        action_names: names of the responses (rows / columns of the heatmap).
    """

    def __init__(self, game, runs, steps: int = 500, init=None, action_names=None,
                 title: str | None = None, height: int = 470):
        game = check_problem(game, "game")
        if not isinstance(game, tb.PreferenceGame):
            raise TypeError(f"game must be a tabular.PreferenceGame, got {type(game).__name__}")
        self.game = game
        init = default_start(game.n_actions) if init is None else init
        self.runs: list[ExactRun] = as_runs(runs, game, steps, init=init)
        self.names = _short_names(game, action_names)
        self.curves: dict[str, dict[str, np.ndarray]] = {
            run.label: self._curves(run) for run in self.runs}
        self.regularized = any("duality_gap" in c for c in self.curves.values())
        n_cols = 3 if self.regularized else 2
        titles = ["Preference matrix P(row ≻ column)", "Exploitability (log)"]
        if self.regularized:
            titles.append("Regularised duality gap (log)")
        fig = make_subplots(rows=1, cols=n_cols, subplot_titles=titles,
                            column_widths=[0.28] + [0.72 / (n_cols - 1)] * (n_cols - 1),
                            horizontal_spacing=0.13 if n_cols == 3 else 0.17)
        self.figure = go.FigureWidget(fig)
        self.figure.update_layout(**base_layout(
            title or "Preference game: does each algorithm reach the equilibrium?<br>"
                     "<sup>solid = last iterate π_t, dashed = average iterate "
                     "(π_1 + … + π_t)/t</sup>",
            height=height, width=1100 if n_cols == 3 else 950))
        self.figure.update_layout(legend={"y": -0.2, "yanchor": "top"},
                                  margin={"l": 70, "r": 20, "t": 100, "b": 110})
        self._draw_heatmap()
        for i, run in enumerate(self.runs):
            self._draw_run(i, run, n_cols)
        for col, metric in zip(range(2, n_cols + 1), ("exploitability", "duality_gap")):
            data = [log_safe(c[f"{metric}/{w}"]) for c in self.curves.values()
                    for w in ("last", "average") if f"{metric}/{w}" in c]
            self.figure.update_xaxes(title_text="iteration t", row=1, col=col)
            self.figure.update_yaxes(type="log", exponentformat="power", **log_ticks(*data),
                                     row=1, col=col)
        self.figure.update_yaxes(title_text="max_y P(y ≻ π) − ½  (log)", row=1, col=2)
        if self.regularized:
            self.figure.update_yaxes(title_text="2τ·KL(π ‖ BR_τ(π))  (log)", row=1, col=3)
        super().__init__([self.figure])
        self.add_class("mirrorlab-game")

    # ---------------------------------------------------------------------- data
    def _curves(self, run: ExactRun) -> dict[str, np.ndarray]:
        hist = run.history
        policy = pick(hist.policy, hist)[:, 0]  # [records, n]: first start
        average = running_average(policy, hist.steps)
        out = {
            "steps": np.asarray(hist.steps),
            "exploitability/last": tb.metrics.exploitability(self.game, policy),
            "exploitability/average": tb.metrics.exploitability(self.game, average),
        }
        name, tau = regularizer(hist)
        if name is not None and tau > 0:
            ref = reference(hist)
            out["duality_gap"] = True  # marker: this run is regularised
            out["duality_gap/last"] = tb.metrics.duality_gap(self.game, policy, ref=ref, tau=tau)
            out["duality_gap/average"] = tb.metrics.duality_gap(
                self.game, average, ref=ref, tau=tau)
        return out

    # ---------------------------------------------------------------------- drawing
    def _draw_heatmap(self):
        P = self.game.P
        self.figure.add_trace(go.Heatmap(
            z=P, x=self.names, y=self.names, zmin=0, zmax=1, zmid=0.5, colorscale="RdBu",
            texttemplate="%{z:.2f}", textfont={"size": 12}, showscale=True,
            colorbar={"title": {"text": "P", "side": "top"}, "len": 0.85,
                      "x": self.figure.layout.xaxis.domain[1] + 0.005, "xanchor": "left",
                      "thickness": 12},
            hovertemplate="P(%{y} ≻ %{x}) = %{z:.3f}<extra></extra>", name="P"),
            row=1, col=1)
        self.figure.update_xaxes(title_text="column response y′", side="bottom", row=1, col=1)
        self.figure.update_yaxes(title_text="row response y", autorange="reversed",
                                 row=1, col=1)

    def _draw_run(self, i: int, run: ExactRun, n_cols: int):
        curves = self.curves[run.label]
        steps = curves["steps"]
        panels = [("exploitability", 2)]
        if n_cols == 3 and "duality_gap" in curves:
            panels.append(("duality_gap", 3))
        for metric, col in panels:
            for which, dash in (("last", "solid"), ("average", "dash")):
                x, y = decimate(steps, log_safe(curves[f"{metric}/{which}"]), MAX_POINTS)
                self.figure.add_trace(go.Scatter(
                    x=x, y=y, mode="lines", name=f"{run.label} — {which} iterate",
                    legendgroup=f"{run.label}/{which}", showlegend=col == 2,
                    line={"color": color(i), "dash": dash, "width": 2},
                    hovertemplate=(f"{run.label}, {which} iterate<br>t = %{{x}}<br>"
                                   f"{metric.replace('_', ' ')} = %{{y:.3g}}<extra></extra>")),
                    row=1, col=col)

    def final(self, label: str) -> dict[str, float]:
        """Final exploitability (and duality gap) of run ``label``, last and average iterate."""
        c = self.curves[label]
        return {k: float(np.asarray(v)[-1]) for k, v in c.items()
                if isinstance(v, np.ndarray) and k != "steps"}


def _short_names(game, names):
    if names is not None:
        return action_names(game, names)
    return [chr(65 + i) if game.n_actions <= 26 else str(i) for i in range(game.n_actions)]


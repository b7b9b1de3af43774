"""SimplexView: policy trajectories of 3-action problems on the probability simplex.

Every policy π = (π(a₀), π(a₁), π(a₂)) is a point of the triangle (a ternary plot: each
corner is a deterministic policy, the centre is uniform). The view overlays

- each algorithm's trajectory π₀ → π₁ → … (one colour per algorithm; ○ start, ■ end),
- the ground truth it should reach: the KL-regularised optimum (bandits), the Nash and the
  regularised Nash equilibrium (preference games), as ★ / ◆ markers,
- the update's vector field: from every point of a grid, one exact step of the chosen
  algorithm (``tabular.run(..., steps=1)`` started at the grid), drawn as arrows.

    view = SimplexView(tb.PreferenceGame.cyclic(3),
                       {"self-play (MWU)": mwu, "Nash-MD": nash_md}, steps=300)
    view                      # in a notebook
    view.field_of = "Nash-MD" # or the dropdown above the plot
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

import tabular as tb

from ._exact import (
    ExactRun,
    action_names,
    as_runs,
    check_problem,
    default_start,
    pick,
    truth_label,
)
from .style import MAX_POINTS, TRUTH_COLOR, base_layout, color, stride

NO_FIELD = "(no vector field)"


def simplex_grid(resolution: int) -> np.ndarray:
    """Interior points (i, j, k)/n of the simplex with i, j, k ≥ 1 and i + j + k = n."""
    n = int(resolution)
    if n < 3:
        raise ValueError(f"grid must be >= 3 (points per side), got {resolution}")
    pts = [(i, j, n - i - j) for i in range(1, n - 1) for j in range(1, n - i)]
    return np.asarray(pts, dtype=np.float64) / n


def vector_field(algorithm, problem, points: np.ndarray) -> np.ndarray:
    """π after one exact update from each point: ``tabular.run`` with one seed per point."""
    hist = tb.run(algorithm, problem, steps=1, seeds=len(points), init=points)
    after = hist.policy[-1]
    after = after.reshape(-1, *after.shape[-2:])[0] if after.ndim > 2 else after
    return after


class SimplexView(widgets.VBox):
    """Trajectories of 3-action policies on the simplex, with ground truth and vector field.

    Args:
        problem: a 3-action ``tabular.Bandit`` or ``tabular.PreferenceGame``.
        runs: an algorithm or History, a list of them, or a dict label → algorithm/History
            (algorithms are run here for ``steps`` from ``init``).
        steps: iterations for algorithms given as objects.
        init: start policy, or a stack [k, 3] of starts (one trajectory each); default
            π₀ ∝ (9, 4, 1).
        field: draw the vector field (of ``field_of``, default the first run that has an
            algorithm); a dropdown switches it.
        grid: grid points per side for the vector field.
        action_names: names for the three corners.
        title: figure title.
    """

    def __init__(self, problem, runs, steps: int = 200, init=None, field: bool = True,
                 field_of: str | None = None, grid: int = 9, action_names=None,
                 title: str | None = None, height: int = 560):
        problem = check_problem(problem)
        if isinstance(problem, tb.FiniteMDP) or problem.n_actions != 3:
            raise ValueError("problem: SimplexView draws 3-action bandits or preference games, "
                             f"got {type(problem).__name__} with {problem.n_actions} actions")
        self.problem = problem
        init = default_start(3) if init is None else init
        self.runs: list[ExactRun] = as_runs(runs, problem, steps, init=init)
        self.names = _names(problem, action_names)
        self._grid = simplex_grid(grid)
        self._field_cache: dict[str, tuple] = {}

        self.figure = go.FigureWidget(layout=self._layout(title, height))
        self._field_trace = None
        if field:
            self.figure.add_trace(go.Scatterternary(
                a=[], b=[], c=[], mode="lines+markers", name="update direction",
                line={"color": "rgba(90,90,90,0.55)", "width": 1.2},
                marker={"symbol": "arrow", "angleref": "previous", "size": [],
                        "color": "rgba(90,90,90,0.8)"},
                hoverinfo="skip", legendrank=2000))
            self._field_trace = self.figure.data[-1]
        self._add_truth()
        for i, run in enumerate(self.runs):
            self._add_run(i, run)

        choices = [r.label for r in self.runs if r.algorithm is not None]
        self.field_dropdown = widgets.Dropdown(
            options=[*choices, NO_FIELD], description="vector field of",
            style={"description_width": "initial"}, layout={"width": "420px"})
        if not field or not choices:
            self.field_dropdown.value = NO_FIELD
            self.field_dropdown.disabled = not choices
        elif field_of is not None:
            if field_of not in choices:
                raise ValueError(f"field_of must be one of {choices}, got {field_of!r}")
            self.field_dropdown.value = field_of
        self.field_dropdown.observe(self._on_field, names="value")
        self._draw_field(self.field_dropdown.value)
        super().__init__([self.field_dropdown, self.figure])
        self.add_class("mirrorlab-simplex")

    # -------------------------------------------------------------------- public API
    @property
    def field_of(self) -> str:
        return self.field_dropdown.value

    @field_of.setter
    def field_of(self, label: str) -> None:
        self.field_dropdown.value = label

    def trajectory(self, label: str) -> np.ndarray:
        """The plotted trajectory of run ``label`` (first start), shape [records, 3]."""
        for run in self.runs:
            if run.label == label:
                return pick(run.history.policy, run.history)[:, 0]
        raise KeyError(label)

    # -------------------------------------------------------------------- drawing
    def _layout(self, title, height):
        axis = {"min": 0, "ticks": "outside", "tickformat": ".1f", "linewidth": 1.5,
                "gridcolor": "#e6e6e6", "title": {"font": {"size": 13}}}
        kind = "preference game" if isinstance(self.problem, tb.PreferenceGame) else "bandit"
        title = title or (f"Policy trajectories on the probability simplex ({kind}, 3 actions)"
                          "<br><sup>each corner = always that action, centre = uniform · "
                          "○ start · ■ end · arrows: direction of one exact update</sup>")
        lay = base_layout(title, height=height, width=1000)
        lay["ternary"] = {
            "sum": 1,
            "aaxis": {**axis, "title": {"text": f"π({self.names[0]})"}},
            "baxis": {**axis, "title": {"text": f"π({self.names[1]})"}},
            "caxis": {**axis, "title": {"text": f"π({self.names[2]})"}},
            "bgcolor": "#fbfbfb",
        }
        lay["legend"] = {"orientation": "v", "x": 1.02, "y": 1.0, "font": {"size": 11}}
        lay["margin"] = {"l": 70, "r": 30, "t": 110, "b": 60}
        return lay

    def _add_truth(self):
        points: dict[str, np.ndarray] = {}
        if isinstance(self.problem, tb.PreferenceGame):
            points["Nash equilibrium (LP)"] = tb.solve.nash(self.problem)
        for run in self.runs:
            sol = run.history.solution
            if sol is None:
                continue
            p = np.asarray(sol).reshape(-1, 3)[0]
            label = truth_label(self.problem, run.history)
            same = [k for k, q in points.items() if np.allclose(p, q, atol=1e-6)]
            if same:  # e.g. a cyclic game: the Nash and the regularised Nash coincide
                if label not in same[0]:
                    points[f"{same[0]} = {label}"] = points.pop(same[0])
            else:
                points.setdefault(label, p)
        for k, (label, p) in enumerate(points.items()):
            symbol = "diamond" if label.startswith("Nash") else "star"
            self.figure.add_trace(go.Scatterternary(
                a=[p[0]], b=[p[1]], c=[p[2]], mode="markers", name=label,
                marker={"symbol": symbol, "size": 17 if symbol == "star" else 13,
                        "color": "#FFD000" if symbol == "star" else "white",
                        "line": {"color": TRUTH_COLOR, "width": 1.8}},
                hovertemplate=f"{label}<br>π = ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f})"
                              "<extra></extra>",
                legendrank=1000 + k))
        self.truth = points

    def _add_run(self, i: int, run: ExactRun):
        policy = pick(run.history.policy, run.history)  # [records, seeds, 3]
        steps = run.history.steps
        c = color(i)
        for s in range(policy.shape[1]):
            idx = stride(len(steps), MAX_POINTS)
            p = policy[idx, s]
            first = s == 0
            self.figure.add_trace(go.Scatterternary(
                a=p[:, 0], b=p[:, 1], c=p[:, 2], mode="lines", name=run.label,
                legendgroup=run.label, showlegend=first, line={"color": c, "width": 2.2},
                customdata=steps[idx],
                hovertemplate=(f"{run.label}<br>step %{{customdata}}<br>"
                               "π = (%{a:.3f}, %{b:.3f}, %{c:.3f})<extra></extra>")))
            ends = policy[[0, -1], s]
            self.figure.add_trace(go.Scatterternary(
                a=ends[:, 0], b=ends[:, 1], c=ends[:, 2], mode="markers",
                name=f"{run.label}: start ○ / end ■", legendgroup=run.label, showlegend=False,
                marker={"symbol": ["circle-open", "square"], "size": [11, 10], "color": c,
                        "line": {"width": 2, "color": c}},
                customdata=[f"start (step {steps[0]})", f"end (step {steps[-1]})"],
                hovertemplate=(f"{run.label}: %{{customdata}}<br>"
                               "π = (%{a:.3f}, %{b:.3f}, %{c:.3f})<extra></extra>")))

    def _field_segments(self, label: str):
        if label in self._field_cache:
            return self._field_cache[label]
        run = next(r for r in self.runs if r.label == label)
        start = self._grid
        after = vector_field(run.algorithm, self.problem, start)
        d = after - start
        length = np.linalg.norm(d, axis=1)
        spacing = np.min(start)  # 1/n: the grid step
        biggest = float(length.max()) if len(length) else 0.0
        scale = 0.8 * spacing / biggest if biggest > 0 else 0.0
        end = start + scale * d
        k = len(start)
        seg = np.full((3 * k, 3), np.nan)
        seg[0::3], seg[1::3] = start, end
        sizes = np.zeros(3 * k)
        sizes[1::3] = np.where(length > 1e-12, 9, 0)
        out = (seg, sizes, scale)
        self._field_cache[label] = out
        return out

    def _draw_field(self, label: str):
        if self._field_trace is None:
            return
        with self.figure.batch_update():
            if label == NO_FIELD:
                self._field_trace.update(a=[], b=[], c=[], visible=False)
                return
            seg, sizes, scale = self._field_segments(label)
            a, b, c = (np.where(np.isnan(seg[:, j]), None, seg[:, j]) for j in range(3))
            self._field_trace.update(
                a=a, b=b, c=c, visible=True, marker={"size": sizes},
                name=f"update direction of {label} (one exact step, ×{scale:.3g})")

    def _on_field(self, change):
        self._draw_field(change["new"])


def _names(problem, names):
    out = action_names(problem, names)
    if names is None and isinstance(problem, tb.Bandit):
        out = [f"a{i}, r={problem.rewards[i]:.2f}" for i in range(3)]
    return out

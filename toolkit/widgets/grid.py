"""GridView: a policy on a grid-world MDP (FrozenLake, CliffWalking) iteration by iteration.

Each cell shows the state value V^π(s) (colour, computed exactly by a linear solve) and the
policy π(·|s) as arrows whose length is the probability of moving that way. A step slider
(and a ▶ play button) walks through the recorded iterations; the right panel shows the
value gap J(π*) − J(π_t) on a log scale with the current iteration marked.

    mdp = tb.FiniteMDP.from_gymnasium(gym.make("FrozenLake-v1"))
    GridView(tb.MDPO(eta=1.0), mdp, steps=30)          # or a tabular.History
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import tabular as tb

from ._exact import as_runs, check_problem, pick
from .style import base_layout, log_safe, log_ticks, restyle

#: screen direction (drow, dcol) and plotly marker angle (degrees clockwise from up)
_DIRECTIONS = {"up": ((-1, 0), 0), "right": ((0, 1), 90), "down": ((1, 0), 180),
               "left": ((0, -1), 270)}
#: action order of the gymnasium toy-text grid worlds
ACTIONS = {
    "FrozenLake": ("left", "down", "right", "up"),
    "CliffWalking": ("up", "right", "down", "left"),
}
#: cells drawn without arrows (episode over, or never occupied)
_NO_ARROWS = {"H", "G", "C"}
_CELL_NAMES = {"S": "start", "F": "frozen", "H": "hole", "G": "goal", "C": "cliff",
               ".": "", "W": "wall"}


def cliffwalking_layout(rows: int = 4, cols: int = 12) -> list[str]:
    """Gymnasium's CliffWalking map: start bottom-left, goal bottom-right, cliff between."""
    return ["." * cols] * (rows - 1) + ["S" + "C" * (cols - 2) + "G"]


def _from_env_id(env_id: str, n_states: int):
    """(layout, actions) for the bundled grid worlds, from the MDP's ``names['env_id']``."""
    if env_id.startswith("FrozenLake"):
        from gymnasium.envs.toy_text.frozen_lake import MAPS

        for desc in MAPS.values():
            if len(desc) * len(desc[0]) == n_states:
                return list(desc), ACTIONS["FrozenLake"]
        side = round(float(np.sqrt(n_states)))
        return ["." * side] * side, ACTIONS["FrozenLake"]
    if env_id.startswith("CliffWalking"):
        return cliffwalking_layout(), ACTIONS["CliffWalking"]
    return None, None


def _layout_from_env(env):
    base = env.unwrapped
    name = type(base).__name__
    desc = getattr(base, "desc", None)
    if desc is not None:
        layout = ["".join(c.decode() if isinstance(c, bytes) else str(c) for c in row)
                  for row in desc]
    elif hasattr(base, "shape"):
        rows, cols = base.shape
        layout = cliffwalking_layout(rows, cols) if "Cliff" in name else ["." * cols] * rows
    else:
        raise ValueError(f"env: cannot read a grid map from {name} (pass desc=)")
    actions = next((a for key, a in ACTIONS.items() if key.lower() in name.lower()), None)
    return layout, actions


class GridView(widgets.VBox):
    """Values and policy arrows on a grid MDP over iterations, with a step slider.

    Args:
        run: a ``tabular.History`` on ``mdp`` or an MDP algorithm (run here for ``steps``).
        mdp: the ``tabular.FiniteMDP`` (its first rows×cols states are the grid cells,
            numbered row by row, as in gymnasium's toy-text envs).
        desc: the map as strings (``"SFFF"``…: S start, F frozen, H hole, G goal, C cliff,
            ``.`` plain), or (rows, cols). Default: read from ``env`` or the MDP's env id.
        actions: screen direction of each action, e.g. ("left", "down", "right", "up").
        env: the gymnasium env the MDP came from (for layout and action order).
        index: sweep index of a batched History (default the first point); ``seed`` likewise.
    """

    def __init__(self, run, mdp, steps: int = 50, desc=None, actions=None, env=None,
                 index=None, seed: int = 0, title: str | None = None, height: int = 430):
        mdp = check_problem(mdp, "mdp")
        if not isinstance(mdp, tb.FiniteMDP):
            raise TypeError(f"mdp must be a tabular.FiniteMDP, got {type(mdp).__name__}")
        self.mdp = mdp
        (self.run,) = as_runs([run], mdp, steps)
        hist = self.run.history
        env_layout, env_actions = _layout_from_env(env) if env is not None else (None, None)
        id_layout, id_actions = _from_env_id(str(mdp.names.get("env_id", "")), _n_cells(mdp))
        desc = desc if desc is not None else env_layout or id_layout
        actions = actions if actions is not None else env_actions or id_actions
        if desc is None or actions is None:
            raise ValueError("desc and actions: cannot infer the grid of this MDP; pass "
                             "desc=['SFFF', ...] or (rows, cols), and actions=('left', "
                             "'down', 'right', 'up') in the MDP's action order")
        self.desc = _check_desc(desc, mdp)
        self.actions = _check_actions(actions, mdp)
        self.rows, self.cols = len(self.desc), len(self.desc[0])

        policy = pick(hist.policy, hist, index, event_ndim=2)[:, seed]  # [records, S, A]
        self.policy = policy
        self.steps = np.asarray(hist.steps)
        beta, ref = _regularisation(hist)
        values = tb.solve.policy_evaluation(mdp, policy, beta=beta, ref=ref).V
        self.values = values[:, : self.rows * self.cols]  # V_β^π of every grid cell
        gap = hist.metrics.get("gap")
        self.gap = None if gap is None else pick(gap, hist, index, event_ndim=0)[:, seed]

        env_name = str(mdp.names.get("env_id", "grid world"))
        fig = make_subplots(
            rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.2,
            subplot_titles=[f"{env_name}: colour = V^π(s), arrows = π(a|s)",
                            "Value gap J(π*) − J(π_t)"])
        self.figure = go.FigureWidget(fig)
        self.figure.update_layout(**base_layout(
            title or f"{self.run.label} on {env_name}", height=height, width=1050))
        self.figure.update_layout(showlegend=False, margin={"l": 50, "r": 25, "t": 90, "b": 55})
        self._build()

        options = [(f"{int(s)}", i) for i, s in enumerate(self.steps)]
        self.slider = widgets.SelectionSlider(
            options=options, value=len(options) - 1, description="iteration t",
            continuous_update=True, style={"description_width": "initial"},
            layout={"width": "520px"})
        self.play = widgets.Play(min=0, max=len(options) - 1, value=len(options) - 1,
                                 interval=250, description="play")
        widgets.jslink((self.play, "value"), (self.slider, "index"))
        self.slider.observe(self._on_slide, names="value")
        self.show(len(options) - 1)
        super().__init__([widgets.HBox([self.play, self.slider]), self.figure])
        self.add_class("mirrorlab-grid")

    # ------------------------------------------------------------------ API
    @property
    def index(self) -> int:
        return int(self.slider.value)

    def show(self, i: int) -> None:
        """Draw record ``i`` (what the slider does)."""
        i = int(i)
        if not 0 <= i < len(self.steps):
            raise ValueError(f"i must be in [0, {len(self.steps) - 1}], got {i}")
        z = self.values[i].reshape(self.rows, self.cols)
        # cells that are never occupied (the cliff) are gaps: None, since a 2-d z goes to the
        # browser as JSON, where NaN is not allowed
        z = np.where(self._unused, None, z).tolist()
        seg, head, angle, size, hover = self._arrows(self.policy[i])
        updates = {
            self._ix["heat"]: {"z": z},
            self._ix["lines"]: {"x": seg[:, 1], "y": seg[:, 0]},
            self._ix["heads"]: {"x": head[:, 1], "y": head[:, 0], "marker.angle": angle,
                                "marker.size": size, "hovertext": hover},
        }
        if self._marker is not None:
            updates[self._ix["marker"]] = {"x": [self.steps[i]],
                                           "y": [log_safe(self.gap[i : i + 1])[0]]}
        restyle(self.figure, updates, layout={"title.text": (
            f"{self.run.label} — iteration t = {int(self.steps[i])} of {int(self.steps[-1])}")})

    # ------------------------------------------------------------------ drawing
    def _build(self):
        letters = np.array([list(r) for r in self.desc])
        self._unused = letters == "C"
        text = np.vectorize(lambda c: c if c in "SHGC" else "")(letters)
        hover = np.vectorize(lambda c: _CELL_NAMES.get(c, c))(letters)
        self._heat = None
        self.figure.add_trace(go.Heatmap(
            z=np.zeros((self.rows, self.cols)), colorscale="Viridis", text=text,
            # one colour scale for every iteration, so colours compare along the slider
            zmin=float(self.values[:, ~self._unused.ravel()].min()),
            zmax=float(self.values[:, ~self._unused.ravel()].max()),
            texttemplate="<b>%{text}</b>", textfont={"size": 16, "color": "white"},
            customdata=hover, xgap=2, ygap=2,
            colorbar={"title": {"text": "V^π(s) =<br>expected<br>discounted<br>return"},
                      "x": self.figure.layout.xaxis.domain[1] + 0.01, "xanchor": "left",
                      "len": 0.9, "thickness": 12},
            hovertemplate="row %{y}, col %{x} (%{customdata})<br>V^π = %{z:.3f}<extra></extra>"),
            row=1, col=1)
        self._heat = self.figure.data[-1]
        self._ix = {"heat": len(self.figure.data) - 1}
        self.figure.add_trace(go.Scatter(x=[], y=[], mode="lines", hoverinfo="skip",
                                         line={"color": "white", "width": 2.2}), row=1, col=1)
        self._lines = self.figure.data[-1]
        self._ix["lines"] = len(self.figure.data) - 1
        self.figure.add_trace(go.Scatter(
            x=[], y=[], mode="markers", marker={"symbol": "triangle-up", "color": "white",
                                                "line": {"color": "#222", "width": 0.6}},
            hovertemplate="%{hovertext}<extra></extra>"), row=1, col=1)
        self._heads = self.figure.data[-1]
        self._ix["heads"] = len(self.figure.data) - 1
        self.figure.update_xaxes(title_text="column", showgrid=False, zeroline=False,
                                 range=[-0.5, self.cols - 0.5], dtick=1, constrain="domain",
                                 row=1, col=1)
        self.figure.update_yaxes(title_text="row", range=[self.rows - 0.5, -0.5],
                                 showgrid=False, zeroline=False, dtick=1, scaleanchor="x",
                                 constrain="domain", row=1, col=1)
        self._marker = None
        if self.gap is not None:
            self.figure.add_trace(go.Scatter(
                x=self.steps, y=log_safe(self.gap), mode="lines+markers",
                marker={"size": 4}, line={"color": "#0072B2", "width": 2}, name="value gap",
                hovertemplate="t = %{x}<br>J(π*) − J(π_t) = %{y:.3g}<extra></extra>"),
                row=1, col=2)
            self.figure.add_trace(go.Scatter(
                x=[], y=[], mode="markers", name="shown iteration",
                marker={"size": 13, "color": "#D55E00", "symbol": "circle-open",
                        "line": {"width": 3}}, hoverinfo="skip"), row=1, col=2)
            self._marker = self.figure.data[-1]
            self._ix["marker"] = len(self.figure.data) - 1
            self.figure.update_yaxes(type="log", exponentformat="power",
                                     title_text="J(π*) − J(π_t)  (log)",
                                     **log_ticks(log_safe(self.gap)), row=1, col=2)
            self.figure.update_xaxes(title_text="iteration t", row=1, col=2)

    def _arrows(self, pi: np.ndarray):
        """Arrow segments (row, col), head positions, angles, sizes and hover text."""
        seg, heads, angles, sizes, hover = [], [], [], [], []
        for r in range(self.rows):
            for c in range(self.cols):
                if self.desc[r][c] in _NO_ARROWS:
                    continue
                s = r * self.cols + c
                for a, name in enumerate(self.actions):
                    p = float(pi[s, a])
                    if p < 0.03:
                        continue
                    (dr, dc), angle = _DIRECTIONS[name]
                    length = 0.12 + 0.30 * p
                    end = (r + dr * length, c + dc * length)
                    seg += [(r, c), end, (np.nan, np.nan)]
                    heads.append(end)
                    angles.append(angle)
                    sizes.append(5 + 7 * p)
                    hover.append(f"π({name} | row {r}, col {c}) = {p:.3f}")
        seg = np.asarray(seg, dtype=np.float64).reshape(-1, 2)
        heads = np.asarray(heads, dtype=np.float64).reshape(-1, 2)
        return seg, heads, angles, sizes, hover

    def _on_slide(self, change):
        self.show(change["new"])


def _n_cells(mdp) -> int:
    """Original states of a gymnasium MDP (added absorbing copies emit an earlier number)."""
    obs = mdp.observation
    return int(np.sum(obs == np.arange(len(obs))))


def _regularisation(hist):
    """(β, π_ref) of an MDP run: the values shown are the ones its objective uses."""
    hyper = hist.config.get("hyperparameters", {}) or {}
    beta = hyper.get("beta", 0.0)
    beta = 0.0 if beta is None or np.ndim(beta) else float(beta)
    return beta, (hyper.get("ref") if beta > 0 else None)


def _check_desc(desc, mdp) -> list[str]:
    if isinstance(desc, tuple) and len(desc) == 2 and all(isinstance(v, int) for v in desc):
        desc = ["." * desc[1]] * desc[0]
    rows = ["".join(r.decode() if isinstance(r, bytes) else str(r) for r in row)
            if not isinstance(row, (str, bytes)) else
            (row.decode() if isinstance(row, bytes) else row) for row in desc]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("desc must be equal-length strings (one per grid row) or "
                         f"(rows, cols), got {desc!r}")
    if len(rows) * len(rows[0]) > mdp.n_states:
        raise ValueError(f"desc has {len(rows) * len(rows[0])} cells but the MDP only "
                         f"{mdp.n_states} states")
    return rows


def _check_actions(actions, mdp) -> tuple[str, ...]:
    actions = tuple(str(a).lower() for a in actions)
    if len(actions) != mdp.n_actions or any(a not in _DIRECTIONS for a in actions):
        raise ValueError(f"actions must name the {mdp.n_actions} actions' directions, each of "
                         f"{sorted(_DIRECTIONS)}, got {actions}")
    return actions

"""What the widgets send to the browser must survive Jupyter's wire format: every binary
buffer contiguous (jupyter_client refuses strided views) and every JSON part strict JSON
(no NaN). Outside a kernel ipywidgets talks through ``comm.DummyComm``; we record what it
would publish while each widget is built and driven."""

import json

import comm
import gymnasium as gym
import numpy as np
import pytest
from jupyter_client.jsonutil import json_default

import tabular as tb
from tabular.algorithms.games import NashMD, SelfPlayMWU
from toolkit.history import History
from toolkit.widgets import Compare, Dashboard, GameView, GridView, Playground, SimplexView


@pytest.fixture
def wire(monkeypatch):
    sent = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        # jupyter_client's packer: its json_default (numpy scalars are fine), no NaN
        json.dumps(data, default=json_default, allow_nan=False)
        for i, buf in enumerate(buffers or []):
            view = memoryview(buf)
            assert view.contiguous, f"buffer {i} of a {msg_type} message is not contiguous"
        sent.append((msg_type, data, len(buffers or [])))

    monkeypatch.setattr(comm.DummyComm, "publish_msg", publish_msg)
    return sent


def test_every_widget_sends_wire_safe_messages(wire):
    bandit = tb.Bandit([1.0, 0.6, 0.2])
    pg = Playground(tb.MirrorDescent(eta=0.5, beta=0.1), bandit)
    pg.set(eta=2.0)
    pg.controls["beta"].zero.value = True
    SimplexView(tb.PreferenceGame.cyclic(3), {"MWU": SelfPlayMWU(eta=0.3)}).field_of = "MWU"
    GameView(tb.PreferenceGame.cyclic(3), {"Nash-MD": NashMD(eta=0.1, tau=0.1)}, steps=30)
    env = gym.make("CliffWalking-v1")
    grid = GridView(tb.PolicyIteration(), tb.FiniteMDP.from_gymnasium(env), steps=3, env=env)
    env.close()
    grid.slider.value = 0
    Compare([tb.run(tb.MirrorDescent(eta=e), bandit, steps=20) for e in (0.1, 1.0)])
    hist = History()
    dash = Dashboard(hist, interval=0.0)
    for s in range(50):
        hist.append(s, {"reward": float(np.sin(s)), "entropy": np.nan, "kl": 0.0},
                    {"adv_histogram": {"counts": [1, 2], "edges": [-1, 0, 1]}})
    dash.redraw()
    updates = [d for kind, d, _ in wire if kind == "comm_msg"]
    assert len(updates) > 20  # the drives above did reach the (recorded) front end
    assert any(n > 0 for kind, _, n in wire)  # and arrays went as binary buffers

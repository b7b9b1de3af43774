"""What the widgets cost: Dashboard update time as a share of training time, and Playground
slider → redrawn-figure latency on the bundled problems. Prints figures; asserts nothing.

    python benchmarks/bench_widgets.py            # ~1–2 minutes on 2 CPU cores

1. Dashboard, in this process: GRPO on a 5-armed bandit with a TabularPolicy (a step is
   ~1.5 ms, the hardest case for a relative overhead: LM steps are 100× longer). Two
   identical trainers, one watched by a Dashboard, train in alternating chunks; the
   overhead is the median ratio of their chunk times, beside the Dashboard's own account
   (time in its subscriber ÷ training time). Up to 10,000 steps (redraws of 10,000-point
   series, decimated).
2. Dashboard in a real ipykernel (jupyter_client): the same run, where every redraw is
   serialised and sent over ZMQ as it would be to JupyterLab.
3. Playground: for each bundled problem, one slider change = re-run the whole exact
   trajectory + push it to the figure; median and max over 10 changes of η.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import tabular as tb  # noqa: E402
from tabular.algorithms.games import NashMD, NashMirrorProx  # noqa: E402
from toolkit.algorithms import GRPO  # noqa: E402
from toolkit.policies import TabularPolicy  # noqa: E402
from toolkit.tasks import BanditTask  # noqa: E402
from toolkit.trainer import Trainer  # noqa: E402
from toolkit.widgets import Dashboard, Playground  # noqa: E402


def make_trainer(seed: int = 0) -> Trainer:
    bandit = tb.Bandit([0.9, 0.6, 0.5, 0.3, 0.1])
    return Trainer(TabularPolicy(5), BanditTask(bandit, noise="bernoulli"), GRPO(beta=0.05),
                   lr=0.5, group_size=8, seed=seed)


def _interleaved(chunks: int, chunk: int, make, watch) -> dict:
    """Two identical trainers, one watched by a Dashboard, train in alternating chunks, so a
    change of machine load hits both alike. Overhead: the median over chunk pairs of
    (watched time / plain time) − 1; "own": the Dashboard's time in its subscriber ÷ the
    watched trainer's training time."""
    plain, watched = make(0), make(0)
    dash = watch(watched)
    ratios, t_plain, t_watched = [], 0.0, 0.0
    for c in range(chunks):
        times = {}
        for trainer in ((plain, watched) if c % 2 == 0 else (watched, plain)):
            t0 = time.perf_counter()
            trainer.train(chunk, progress=False)
            times[trainer is watched] = time.perf_counter() - t0
        ratios.append(times[True] / times[False])
        t_plain += times[False]
        t_watched += times[True]
    steps = chunks * chunk
    return {"steps": steps, "step_ms": 1e3 * t_plain / steps,
            "overhead": statistics.median(ratios) - 1,
            "own": dash.update_seconds / (t_watched - dash.update_seconds),
            "redraws": dash.redraws, "dash": dash}


def dashboard_in_process(chunks: int, chunk: int) -> dict:
    r = _interleaved(chunks, chunk, make_trainer, Dashboard)
    r.pop("dash").close()
    return r


KERNEL_CODE = textwrap.dedent("""
    import sys, json
    sys.path.insert(0, {root!r})
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_widgets", {path!r})
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    from toolkit.widgets import Dashboard
    def watch(trainer):
        d = Dashboard(trainer)
        display(d)  # the comm is open, as in JupyterLab: every redraw is sent
        return d
    r = bench._interleaved({chunks}, {chunk}, bench.make_trainer, watch)
    r.pop("dash").close()
    print("RESULT" + json.dumps(r))
""")


def dashboard_in_kernel(chunks: int, chunk: int) -> dict | None:
    try:
        from jupyter_client.manager import start_new_kernel
    except ImportError:
        return None
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        text = []

        def collect(msg):
            if msg["msg_type"] == "stream":
                text.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                text.append("\n".join(msg["content"]["traceback"]))

        code = KERNEL_CODE.format(root=str(ROOT), path=str(Path(__file__).resolve()),
                                  chunks=chunks, chunk=chunk)
        kc.execute_interactive(code, timeout=900, output_hook=collect)
        out = "".join(text)
        if "RESULT" not in out:
            print(out[-3000:])
            return None
        return json.loads(out.split("RESULT", 1)[1].strip().splitlines()[0])
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def bundled_problems():
    lake = tb.FiniteMDP.from_gymnasium(gym.make("FrozenLake-v1"))
    cliff = tb.FiniteMDP.from_gymnasium(gym.make("CliffWalking-v1"))
    return [
        ("3-armed bandit, magnetic MD", tb.MirrorDescent(eta=0.5, beta=0.1),
         tb.Bandit([1.0, 0.6, 0.2])),
        ("10-armed bandit, softmax PG", tb.SoftmaxPG(eta=1.0, beta=0.05), tb.Bandit.random(10)),
        ("rock-paper-scissors, Nash-MD", NashMD(eta=0.1, tau=0.1), tb.PreferenceGame.cyclic(3)),
        ("random 5-response game, Nash Mirror Prox", NashMirrorProx(eta=0.5, tau=0.1),
         tb.PreferenceGame.random(5, seed=0)),
        ("FrozenLake 4×4 (slippery), MDPO", tb.MDPO(eta=1.0), lake),
        ("CliffWalking 4×12, MDPO", tb.MDPO(eta=1.0), cliff),
    ]


def playground_latency(changes: int = 10) -> list[tuple[str, int, float, float]]:
    rows = []
    for name, alg, problem in bundled_problems():
        pg = Playground(alg, problem)
        pg.latencies_ms.clear()
        for eta in np.geomspace(0.05, 0.9, changes):
            pg.set(eta=float(eta))
        ms = pg.latencies_ms
        rows.append((name, int(pg.steps_slider.value), statistics.median(ms), max(ms)))
    return rows


def main():
    print(f"mirrorlab widget benchmarks (CPU cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f})\n")
    print("1. Dashboard update cost, in process (no front end attached)")
    for chunks, chunk in ((16, 125), (20, 500)):
        r = dashboard_in_process(chunks, chunk)
        print(f"   {r['steps']:>6} steps at {r['step_ms']:.2f} ms/step: wall-time overhead "
              f"{100 * r['overhead']:+.1f}%, dashboard's own account {100 * r['own']:.1f}% "
              f"({r['redraws']} redraws)")
    print("2. Dashboard update cost in a real ipykernel (redraws serialised and sent)")
    r = dashboard_in_kernel(16, 125)
    if r is None:
        print("   (skipped: no kernel)")
    else:
        print(f"   {r['steps']:>6} steps at {r['step_ms']:.2f} ms/step: wall-time overhead "
              f"{100 * r['overhead']:+.1f}%, dashboard's own account {100 * r['own']:.1f}% "
              f"({r['redraws']} redraws)")
    print("3. Playground: slider change → trajectory re-run + figure update sent (ms)")
    for name, steps, med, worst in playground_latency():
        print(f"   {name:<42} {steps:>4} iterations: median {med:6.1f} ms, max {worst:6.1f} ms")


if __name__ == "__main__":
    main()

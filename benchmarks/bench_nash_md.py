"""Benchmark: Nash-MD on 1,000 random 50-action preference games × 2,000 steps, as one
batched ``tabular.run`` call. Prints wall time and game-steps per second (one game-step =
one Nash-MD update of one game's policy), split into the ground-truth solve and the updates.

    python benchmarks/bench_nash_md.py
"""

import time

import numpy as np

import tabular as tb
from tabular.algorithms.games import NashMD

N_GAMES, N_ACTIONS, STEPS = 1000, 50, 2000
ETA, TAU = 0.1, 0.1


def main() -> None:
    game = tb.PreferenceGame.random(N_ACTIONS, seed=0, batch=(N_GAMES,))
    alg = NashMD(eta=ETA, tau=TAU)

    start = time.perf_counter()
    tb.solve.regularized_nash(game, tau=TAU)
    solve_wall = time.perf_counter() - start

    start = time.perf_counter()
    hist = tb.run(alg, game, steps=STEPS, record_every=STEPS, record_policy=False,
                  progress=False)
    wall = time.perf_counter() - start

    game_steps = N_GAMES * STEPS
    update_wall = wall - solve_wall
    kl = hist.metrics["kl_to_solution"][-1]
    print(f"Nash-MD, {N_GAMES} random games × {N_ACTIONS} actions × {STEPS} steps "
          f"(η = {ETA}, τ = {TAU}), one batched tabular.run call:")
    print(f"  wall time                 {wall:7.2f} s   ({game_steps / wall:,.0f} game-steps/s)")
    print(f"  of which ground truth    ~{solve_wall:7.2f} s   (regularized_nash on 1,000 games, "
          f"timed in a separate call)")
    print(f"  updates + metrics        ~{update_wall:7.2f} s   "
          f"({game_steps / update_wall:,.0f} game-steps/s)")
    print(f"  final KL(π*‖π_T): median {np.median(kl):.2e}, max {kl.max():.2e} "
          f"(the constant-η bias; exploitability max "
          f"{hist.metrics['exploitability'][-1].max():.2e})")


if __name__ == "__main__":
    main()

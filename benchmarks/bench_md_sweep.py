"""Benchmark: 32 step sizes × 64 seeds × 1,000 steps of mirror descent on a 100-arm bandit,
as one batched ``tabular.run`` call. Prints wall time and policy-updates per second."""

import time

import numpy as np

import tabular as tb


def main() -> None:
    bandit = tb.Bandit.random(100, seed=0)
    alg = tb.MirrorDescent(eta=np.logspace(-2, 1, 32), beta=0.05)
    for record_every, keep_policy in ((1000, False), (10, False), (1, False)):
        start = time.perf_counter()
        hist = tb.run(alg, bandit, steps=1000, seeds=64, init="random",
                      record_every=record_every, record_policy=keep_policy)
        wall = time.perf_counter() - start
        updates = 32 * 64 * 1000
        print(f"mirror descent sweep 32 η × 64 seeds × 1000 steps × 100 arms "
              f"(metrics every {record_every:>4} steps): {wall:6.2f} s, "
              f"{updates / wall:,.0f} policy updates/s; final mean KL(π*‖π) = "
              f"{hist.metrics['kl_to_solution'][-1].mean():.2e}")


if __name__ == "__main__":
    main()

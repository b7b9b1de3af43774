"""Benchmark: trainer steps per second on a 1,000-arm bandit, G = 16 × 64 prompts (B = 1,024),
GRPO on a TabularPolicy (float64, CPU), without and with History subscribers.

    python benchmarks/bench_trainer.py [--steps 200] [--threads N]

Prints steps/s for: no subscriber; a JSONLWriter subscriber (one strict-JSON line per step,
flushed); JSONLWriter + the tqdm progress bar. No asserts: numbers go in the README table.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

import tabular as tb
from toolkit.algorithms import GRPO
from toolkit.history import JSONLWriter
from toolkit.policies import TabularPolicy
from toolkit.tasks import BanditTask
from toolkit.trainer import Trainer


def run(steps: int, subscriber: str) -> float:
    bandit = tb.Bandit.random(1000, seed=0)
    trainer = Trainer(TabularPolicy(1000), BanditTask(bandit), GRPO(), optimizer="adam",
                      lr=0.05, group_size=16, prompts_per_step=64, seed=0)
    trainer.train(3, progress=False)                          # warm-up (allocations, Adam)
    writer = None
    with tempfile.TemporaryDirectory() as tmp:
        if subscriber != "none":
            writer = trainer.history.subscribe(JSONLWriter(os.path.join(tmp, "run.jsonl")))
        start = time.perf_counter()
        trainer.train(steps, progress=subscriber == "jsonl+tqdm")
        wall = time.perf_counter() - start
        if writer is not None:
            trainer.history.unsubscribe(writer)
            writer.close()
    return steps / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice). On a busy "
                             "machine 1 thread is much faster for these small tensors.")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    for subscriber in ("none", "jsonl", "jsonl+tqdm"):
        rate = run(args.steps, subscriber)
        print(f"trainer GRPO, 1000 arms, G=16 x 64 prompts, subscriber={subscriber:<10}: "
              f"{rate:7.1f} steps/s ({rate * 1024:,.0f} samples/s)")


if __name__ == "__main__":
    main()

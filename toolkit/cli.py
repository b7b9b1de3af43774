"""The ``mirrorlab`` command line."""

from __future__ import annotations

import argparse
import shlex
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mirrorlab",
        description="Exact and sampled policy updates for RL on language models: "
        "mirror descent, Nash-MD, GRPO and friends.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="run the headline experiment and write an HTML report",
        description="Exact KL mirror descent and policy gradient on a 10-arm bandit and on "
        "FrozenLake (slippery): prints entropy / KL / value gap and writes a self-contained "
        "plotly HTML report.",
    )
    demo.add_argument("--out", default="reports/mirrorlab-demo.html",
                      help="path of the HTML report (default: %(default)s)")
    demo.add_argument("--steps", type=int, default=300,
                      help="updates per algorithm (default: %(default)s)")
    pretrain = sub.add_parser(
        "pretrain",
        help="train a tiny base LM on a task by SFT and write a checkpoint directory",
        description="Supervised fine-tuning of a tiny transformer on a verifiable task to a "
        "mid-level held-out accuracy; writes config.json, model.safetensors, tokenizer files "
        "and CARD.md (command, seed, steps, wall time, held-out accuracy). Deterministic: the "
        "same command on the same machine gives the same weights.",
    )
    pretrain.add_argument("--task", required=True, choices=PRETRAIN_TASKS,
                          help="which task to train on")
    pretrain.add_argument("--out", required=True, help="checkpoint directory to write")
    pretrain.add_argument("--size", default=None, choices=PRETRAIN_SIZES,
                          help="model size (default: the task's shipped setting)")
    pretrain.add_argument("--arch", default="llama", choices=("llama", "gpt2"),
                          help="architecture (default: %(default)s)")
    pretrain.add_argument("--steps", type=int, default=None,
                          help="SFT steps (default: the task's shipped setting)")
    pretrain.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    pretrain.add_argument("--batch-size", type=int, default=64,
                          help="examples per step (default: %(default)s)")
    pretrain.add_argument("--lr", type=float, default=None,
                          help="peak learning rate (default: the task's shipped setting)")
    pretrain.add_argument("--eval-prompts", type=int, default=1000,
                          help="held-out prompts for the card's accuracy (default: %(default)s)")
    pretrain.add_argument("--threads", type=int, default=2,
                          help="torch CPU threads, fixed for determinism (default: %(default)s)")
    return parser


# Kept literal so that `mirrorlab --help` imports no torch (tests check they match toolkit.lm).
PRETRAIN_TASKS = ("addition", "reverse", "sort", "multiple", "preference")
PRETRAIN_SIZES = ("0.5m", "1m", "2m", "5m", "10m")


def _run_pretrain(parser, args, argv) -> int:
    for name in ("steps", "batch_size", "eval_prompts", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.lr is not None and not args.lr > 0:
        parser.error("--lr must be > 0")
    from .lm.sft import pretrain

    command = "mirrorlab " + shlex.join(sys.argv[1:] if argv is None else argv)
    pretrain(args.task, args.out, size=args.size, arch=args.arch, steps=args.steps,
             seed=args.seed, batch_size=args.batch_size, lr=args.lr,
             eval_prompts=args.eval_prompts, threads=args.threads, command=command)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        from .demo import run_demo

        if args.steps < 1:
            parser.error("--steps must be >= 1")
        run_demo(out=args.out, steps=args.steps)
        return 0
    if args.command == "pretrain":
        return _run_pretrain(parser, args, argv)
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

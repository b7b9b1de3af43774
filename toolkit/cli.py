"""The ``mirrorlab`` command line."""

from __future__ import annotations

import argparse
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
    return parser


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
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

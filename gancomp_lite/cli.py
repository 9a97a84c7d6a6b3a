"""The `gancomp-lite` command: one entry point, one sub-command per stage.

Each stage module owns its sub-command through a ``register(subparsers)`` function, so the
options live next to the code they drive.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (module that defines register(subparsers)); order = order in --help
COMMAND_MODULES = (
    "data_tools.commands",
    "gancomp_lite.cost",
    "gancomp_lite.evaluate",
    "gancomp_lite.teachers",
    "gancomp_lite.pipeline",
    "gancomp_lite.compress.distillation",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gancomp-lite", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

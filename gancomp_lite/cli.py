"""The `gancomp-lite` command: one entry point, one sub-command per stage.

Each stage module owns its sub-command through a ``register(subparsers)`` function, so the
options live next to the code they drive. Errors take one path for every command: a bad argument
or input (`gancomp_lite.errors.InputError` and the project's other input errors) prints one line
naming the argument or file and the rule it breaks, and exits 2; a loss, output or score that is NaN
or infinite stops the run with one line and exit 1; ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from gancomp_lite.errors import InputError, one_line

# (module that defines register(subparsers)); order = order in --help
COMMAND_MODULES = (
    "data_tools.commands",
    "gancomp_lite.cost",
    "gancomp_lite.evaluate",
    "gancomp_lite.teachers",
    "gancomp_lite.pipeline",
    "gancomp_lite.compress.distillation",
    "gancomp_lite.compress.pipeline",
    "gancomp_lite.bench",
)
BAD_INPUT, FAILED = 2, 1           # exit statuses: a bad argument or input; a run that failed on good input


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (sub-commands inherit the class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(BAD_INPUT, one_line(f"{self.prog}: error: {message} (see {self.prog} --help)") + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="gancomp-lite", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "the user's argument or file is wrong" (their messages name it)."""
    from data_tools.protocol import DataError
    from gancomp_lite.checkpoint import CheckpointError
    from gancomp_lite.nn.elastic import ChannelError
    from gancomp_lite.space import ConfigError

    return (InputError, ConfigError, ChannelError, DataError, CheckpointError,
            FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:          # accepted anywhere, also after the sub-command's options
        argv = ["--debug"] + [a for a in argv if a != "--debug"]
    args = build_parser().parse_args(argv)
    from gancomp_lite.evaluate import NonFiniteError
    from gancomp_lite.train import NonFiniteLossError

    non_finite = (NonFiniteLossError, NonFiniteError)      # a NaN or Inf loss, output or score: the run failed
    try:
        return int(args.func(args) or 0)
    except non_finite + input_errors() as err:
        if args.debug:
            raise
        status = FAILED if isinstance(err, non_finite) else BAD_INPUT
        print(one_line(f"gancomp-lite {args.command}: error: {err}"), file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print(f"gancomp-lite {args.command}: interrupted; its last checkpoint is kept, run it again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

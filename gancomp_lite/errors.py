"""One error path for the command line: a bad argument or input is one line and exit status 2.

Commands raise `InputError` (or one of the project's ValueError kinds: ConfigError, DataError,
ChannelError, and CheckpointError); `gancomp_lite.cli.main` prints it on one line, naming the
argument or file and the rule it breaks, and exits 2, with the traceback only under ``--debug``.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable


class InputError(ValueError):
    """A command-line argument or an input file breaks a rule; the message names both."""


def allowed(low: int | float | None, high: int | float | None) -> str:
    """The rule of a range in words: "in [1, 4096]", "at least 1", "at most 4096"."""
    if low is not None and high is not None:
        return f"in [{low}, {high}]"
    return f"at least {low}" if low is not None else f"at most {high}"


def check_range(name: str, value: int | float | None, low: int | float | None = None,
                high: int | float | None = None) -> None:
    """Raise `InputError` naming `name` and its allowed range unless ``low <= value <= high`` (None passes)."""
    if value is None:
        return
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{name} must be {allowed(low, high)}, got {value!r}")


def int_in(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type`: an integer within ``[low, high]``, else an error that states the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {allowed(low, high)}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def device_name(text: str) -> str:
    """An argparse `type`: "cpu", or a CUDA device this machine has ("cuda", "cuda:1"); else an error naming them."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        device = None
    count = torch.cuda.device_count()
    if device is None or device.type not in ("cpu", "cuda") or (device.type == "cuda" and (device.index or 0) >= count):
        raise argparse.ArgumentTypeError(f"must be cpu, or cuda[:N] with N below this machine's CUDA device "
                                         f"count ({count}), got {text!r}")
    return text


def printable(text: str) -> str:
    """`text` with undecodable file-name bytes (surrogate escapes) shown as ``\\udcxx``: printing never fails."""
    return str(text).encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(message: str) -> str:
    """`message` as one printable line: newlines folded, undecodable file-name bytes escaped."""
    return printable(" ".join(str(message).split()))

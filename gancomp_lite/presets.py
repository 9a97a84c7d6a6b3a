"""The two presets: `quick` (CPU, CI, nbval) and `full` (one GPU, the paper's sizes).

Only numbers differ between them; every code path is the same.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch


@dataclass(frozen=True)
class Preset:
    name: str
    image_size: int          # square face crops, pixels
    train_ids: int           # identities in the training split
    test_ids: int            # identities in the test split
    illuminations: int       # light set-ups rendered per view (Multi-PIE has 20)


PRESETS: dict[str, Preset] = {
    "quick": Preset("quick", image_size=64, train_ids=60, test_ids=20, illuminations=3),
    "full": Preset("full", image_size=128, train_ids=200, test_ids=137, illuminations=20),
}


def is_quick() -> bool:
    """True when `GANCOMP_QUICK` is set to a true value, or (if it is unset) when running under CI."""
    flag = os.environ.get("GANCOMP_QUICK")
    if flag is not None:
        return flag.strip().lower() not in ("", "0", "false", "no")
    return bool(os.environ.get("CI"))


def get_preset(name: str | None = None, **overrides) -> Preset:
    """The named preset (default: quick under GANCOMP_QUICK/CI, else full), with optional field overrides."""
    name = name or ("quick" if is_quick() else "full")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def notebook_config() -> Preset:
    """The preset a notebook should use: quick in CI/nbval, full otherwise."""
    return get_preset()


def notebook_device() -> torch.device:
    """The one device a notebook puts its models and tensors on: the GPU when there is one, else the CPU.

    Both presets use it: the quick preset runs on a CPU but takes a GPU when one is present (Colab).
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ------------------------------------------------------------------ shipped results (package data)
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def result_file(name: str, writer: str | None = None) -> Path:
    """A precomputed result shipped inside the package (``gancomp_lite/results/<name>``).

    Notebooks and library functions read results only from here, never from ``docs/`` (a wheel does
    not install ``docs/``); the benchmarks that produce them write here. `writer`: the command that
    writes the file, named in the FileNotFoundError when it is missing.
    """
    path = RESULTS_DIR / name
    if not path.is_file():
        hint = f"; write it with `{writer}`" if writer else ""
        raise FileNotFoundError(f"{path}: no such shipped result{hint}")
    return path

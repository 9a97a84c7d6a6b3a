"""One constructor for every generator family: ``build(arch, config, size, **knobs)``.

Each family module provides ``space(**knobs) -> ChannelSpace`` (its channel groups, teacher
widths and choices) and ``build(config, size, **knobs) -> nn.Module`` (the generator at those
widths; ``config=None`` means the teacher). Teacher, supernet and sub-network are the same class.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from types import ModuleType

from torch import nn

from gancomp_lite.space import ChannelSpace

FAMILIES: dict[str, str] = {
    "resnet9": "gancomp_lite.models.resnet",
    "mobile-resnet9": "gancomp_lite.models.mobile_resnet",
    "tpgan": "gancomp_lite.models.tpgan",
    "crgan": "gancomp_lite.models.crgan",
    "pim": "gancomp_lite.models.pim",
}


def _family(arch: str) -> ModuleType:
    if arch not in FAMILIES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(FAMILIES)}")
    return importlib.import_module(FAMILIES[arch])


def channel_space(arch: str, size: int | None = None, **knobs) -> ChannelSpace:
    """The family's channel space; `size` matters only to families whose depth follows the size (CR-GAN)."""
    space = _family(arch).space
    if size is not None and "size" in inspect.signature(space).parameters:
        knobs["size"] = size
    return space(**knobs)


def build(arch: str, config: Mapping[str, int] | str | None = None, size: int = 128, **knobs) -> nn.Module:
    """The `arch` generator at `config` (a dict or a config string; None = teacher widths)."""
    family = _family(arch)
    space = channel_space(arch, size, **knobs)
    if isinstance(config, str):
        config = space.decode(config)
    elif config is not None:
        config = space.validate(config)
    return family.build(config, size, **knobs)

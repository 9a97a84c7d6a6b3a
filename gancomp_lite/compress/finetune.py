"""Fine-tune the chosen sub-network with the supernet's objective (GAN Compression section 3.3, last step).

The student is the plain model extracted from the supernet at the chosen widths (no slicing left at
run time). It keeps training with the same eq. 5 objective: the family's losses, 1x1-adapter feature
distillation from the teacher (the adapters continue from the supernet's, whose first columns are
what this width used), and the supernet's discriminator, itself inherited from the teacher.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from gancomp_lite.compress.distillation import fit_logged, make_recipe
from gancomp_lite.compress.supernet import extract_subnet, recalibrate_bn, uses_batchnorm
from gancomp_lite.distill import FeatureAdapters
from gancomp_lite.models.registry import channel_space
from gancomp_lite.nn.elastic import set_active
from gancomp_lite.recipes.base import Recipe
from gancomp_lite.seeding import seed_everything
from gancomp_lite.train import TrainConfig


@torch.no_grad()
def subnet_from_supernet(supernet: nn.Module, arch: str, config: Mapping[str, int], size: int,
                         knobs: Mapping[str, Any], calibration: Iterable[Mapping[str, torch.Tensor]] = ()) -> nn.Module:
    """Extract `config` (stored widths) from `supernet`; BatchNorm statistics are re-estimated first.

    The supernet is left at full width; its BatchNorm statistics are overwritten when recalibrated.
    """
    if uses_batchnorm(supernet):
        set_active(supernet, channel_space(arch, size, **knobs).widths(config))
        try:
            recalibrate_bn(supernet, calibration)
        finally:
            set_active(supernet, None)
    return extract_subnet(supernet, arch, config, size, knobs)


@torch.no_grad()
def continue_adapters(source: FeatureAdapters, target: FeatureAdapters) -> None:
    """Start `target`'s adapters from `source`'s first input columns (what the chosen widths used)."""
    for name, adapter in target.items():
        adapter.weight.copy_(source[name].weight[:, :adapter.in_channels])
        adapter.bias.copy_(source[name].bias)


@dataclass
class FinetuneResult:
    student: nn.Module                 # eval mode
    recipe: Recipe
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def finetune(arch: str, student: nn.Module, teacher: nn.Module, train: Dataset, *, discriminator: nn.Module,
             adapters: FeatureAdapters | None, train_config: TrainConfig, identity_net: nn.Module | None = None,
             lambda_distill: float | None = None, options: Mapping[str, Any] | None = None,
             on_log: Callable[[int, dict[str, float]], None] | None = None) -> FinetuneResult:
    """Train the extracted `student` by eq. 5 against `teacher` with `discriminator` (the supernet's D).

    `adapters`: the supernet's adapters to continue from (None: fresh ones). Resumes from
    ``train_config.out_dir`` like every Trainer run.
    """
    seed_everything(train_config.seed)
    teacher = copy.deepcopy(teacher).eval()
    recipe = make_recipe(arch, student, discriminator, mode="feature", teacher=teacher,
                         lambda_distill=lambda_distill, identity_net=identity_net, options=options)
    if adapters is not None:
        continue_adapters(adapters, recipe.raw("A"))
    steps, history = fit_logged(recipe, train, train_config, on_log)
    return FinetuneResult(student.eval(), recipe, steps, history)

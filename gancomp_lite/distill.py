"""Distillation (eq. 4): feature taps, learnable 1x1 adapters, and the loss that ties them.

Generators return their taps explicitly from ``forward_all`` as ``"feat:<name>"`` entries (no
forward hooks: GAN Compression's hooks break under DataParallel). Each adapter f_t is a 1x1
convolution from the student's channels to the teacher's, on the student side as in GAN
Compression's code (which avoids the trivial all-zero mapping), initialised N(0, 0.02) and
trained with the generator.

Adapters read their input width from the tensor and use the first channels of their weight,
so the same adapters serve a once-for-all supernet whose active widths change every step.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gancomp_lite.losses import distillation_loss

TAP_PREFIX = "feat:"


def feature_taps(outputs: Mapping[str, torch.Tensor], names: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The ``feat:<name>`` entries of a `forward_all` result as ``{name: tensor}`` (optionally only `names`)."""
    taps = {key[len(TAP_PREFIX):]: value for key, value in outputs.items() if key.startswith(TAP_PREFIX)}
    if names is None:
        return taps
    names = list(names)
    missing = [n for n in names if n not in taps]
    if missing:
        raise KeyError(f"feature taps {missing} not returned by the generator; it returns {sorted(taps)}")
    return {n: taps[n] for n in names}


class Adapter1x1(nn.Conv2d):
    """f_t: a 1x1 conv student_ch -> teacher_ch; a narrower input uses the first columns of the weight."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__(student_channels, teacher_channels, kernel_size=1, bias=True)
        nn.init.normal_(self.weight, 0.0, 0.02)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[1]
        if width > self.in_channels:
            raise ValueError(f"adapter built for at most {self.in_channels} student channels got {width}")
        return F.conv2d(x, self.weight[:, :width], self.bias)


class FeatureAdapters(nn.ModuleDict):
    """One `Adapter1x1` per tap: ``FeatureAdapters({"res3": 32}, {"res3": 128})``."""

    def __init__(self, student_channels: Mapping[str, int], teacher_channels: Mapping[str, int]):
        if set(student_channels) != set(teacher_channels) or not student_channels:
            raise ValueError(f"adapter taps differ: student {sorted(student_channels)} vs teacher {sorted(teacher_channels)}")
        super().__init__({name: Adapter1x1(student_channels[name], teacher_channels[name]) for name in sorted(student_channels)})

    @classmethod
    def from_features(cls, student_feats: Mapping[str, torch.Tensor], teacher_feats: Mapping[str, torch.Tensor]) -> "FeatureAdapters":
        """Size the adapters from one forward pass of each network (channel dimension 1)."""
        return cls({n: f.shape[1] for n, f in student_feats.items()}, {n: f.shape[1] for n, f in teacher_feats.items()})

    def forward(self, student_feats: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: self[name](feat) for name, feat in student_feats.items()}


def distill_loss(teacher_feats: Mapping[str, torch.Tensor], student_feats: Mapping[str, torch.Tensor],
                 adapters: FeatureAdapters | nn.Module) -> torch.Tensor:
    """Eq. 4: sum over taps of MSE(teacher feature, adapter(student feature)).

    `adapters` is a `FeatureAdapters` or anything mapping a feature dict to a feature dict
    (a DDP-wrapped one goes through `Recipe.run`; see `Pix2PixRecipe`).
    """
    return distillation_loss(teacher_feats, adapters(student_feats))


@torch.no_grad()
def build_adapters(student: nn.Module, teacher: nn.Module, sample: torch.Tensor, taps: Iterable[str] | None = None) -> FeatureAdapters:
    """Adapters sized by one `forward_all` of each generator on `sample` (taps: all the teacher's, or `taps`)."""
    teacher_feats = feature_taps(teacher.forward_all(sample), taps)
    student_feats = feature_taps(student.forward_all(sample), list(teacher_feats))
    return FeatureAdapters.from_features(student_feats, teacher_feats)

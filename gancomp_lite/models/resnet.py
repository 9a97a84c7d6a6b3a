"""The pix2pix / CycleGAN ResNet-9 generator (Johnson et al. 2016; Isola et al. 2017; Zhu et al. 2017),
with GAN Compression's eight channel groups, so teacher, supernet and sub-networks are one class.

Layer table (input 3 x S x S in [-1, 1]; S divisible by 4; InstanceNorm affine=False; every conv
has a bias, as pix2pix does with InstanceNorm):

    stem    reflect-pad 3, conv 7x7   3 -> c0          IN, ReLU      S
    down1   conv 3x3 stride 2        c0 -> 2*c1        IN, ReLU      S/2
    down2   conv 3x3 stride 2      2*c1 -> 4*c2        IN, ReLU      S/4   trunk width 4*c2
    blocks  9 residual blocks 4*c2 -> hidden -> 4*c2  (hidden = 4*c3 in blocks 1-3, 4*c4 in 4-6, 4*c5 in 7-9)
    up1     conv-transpose 3x3 s2  4*c2 -> 2*c6        IN, ReLU      S/2
    up2     conv-transpose 3x3 s2  2*c6 -> c7          IN, ReLU      S
    out     reflect-pad 3, conv 7x7  c7 -> 3           tanh

The config stores GAN Compression's values c0..c7 (teacher: all equal to ngf); the multipliers
1, 2, 4, 4, 4, 4, 2, 1 turn them into channel counts, so ``16_16_32_16_32_32_16_16`` means a
16-channel stem, 32-channel down1, 128-channel trunk and so on. The elastic layers are built on
the real counts: a supernet runs a config with ``set_active(model, model.space.widths(config))``.
At ngf 64 and 256 x 256 this network has 11,378,179 parameters and 56.8 GMACs (GAN Compression's
counting convention, see ``gancomp_lite.cost``).

Distillation taps (GAN Compression): the trunk after down2 and after blocks 3, 6 and 9.
``separable`` builds any of the groups' convs depthwise + pointwise ("out" = the final 7x7
conv); ``mobile_resnet.py`` is this class with the residual blocks separable.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping

import torch
from torch import nn

from gancomp_lite.nn.blocks import ConvNormAct, ResidualBlock, conv
from gancomp_lite.space import ChannelSpace

ARCH = "resnet9"
GROUPS = ("c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7")
MULTIPLIERS = {"c0": 1, "c1": 2, "c2": 4, "c3": 4, "c4": 4, "c5": 4, "c6": 2, "c7": 1}
LAYER_GROUPS = GROUPS + ("out",)           # what `separable` may name
BLOCK_HIDDEN = ("c3",) * 3 + ("c4",) * 3 + ("c5",) * 3
TAPS = ("down2", "block3", "block6", "block9")


def resnet_space(arch: str, ngf: int, step: int, min_width: int | None = None) -> ChannelSpace:
    """c0..c7 each from ngf down to `min_width` (default `step`) in steps of `step` (GAN Compression:
    multiples of 8)."""
    if ngf < 1 or step < 1:
        raise ValueError(f"{arch}: ngf and step must be positive, got ngf={ngf}, step={step}")
    return ChannelSpace.uniform(arch, {g: ngf for g in GROUPS}, step=step, min_width=min_width,
                              multipliers=MULTIPLIERS)


def check_separable(arch: str, separable: Collection[str]) -> frozenset[str]:
    unknown = sorted(set(separable) - set(LAYER_GROUPS))
    if unknown:
        raise ValueError(f"{arch}: cannot make {unknown} separable; layer groups are {list(LAYER_GROUPS)}")
    return frozenset(separable)


class ResnetGenerator(nn.Module):
    """ResNet-9 encoder / 9 residual blocks / decoder; one class for teacher, supernet and sub-network."""

    def __init__(self, space: ChannelSpace, config: Mapping[str, int] | None = None, size: int = 256,
                 separable: Collection[str] = ()) -> None:
        super().__init__()
        if size < 4 or size % 4:
            raise ValueError(f"{space.arch}: image size must be a multiple of 4 (two stride-2 downsamples), got {size}")
        self.space = space
        self.config = space.validate(config) if config is not None else space.teacher()
        self.size = size
        self.separable = check_separable(space.arch, separable)
        self.taps = TAPS
        full = space.widths(self.config)
        sep = self.separable

        self.stem = ConvNormAct(3, "c0", full, 7, separable="c0" in sep, padding_mode="reflect")
        self.down1 = ConvNormAct("c0", "c1", full, 3, stride=2, separable="c1" in sep)
        self.down2 = ConvNormAct("c1", "c2", full, 3, stride=2, separable="c2" in sep)
        self.blocks = nn.ModuleList(ResidualBlock("c2", hidden, full, separable=hidden in sep)
                                    for hidden in BLOCK_HIDDEN)
        self.up1 = ConvNormAct("c2", "c6", full, 3, stride=2, transposed=True, separable="c6" in sep)
        self.up2 = ConvNormAct("c6", "c7", full, 3, stride=2, transposed=True, separable="c7" in sep)
        self.out = conv("c7", 3, full, 7, separable="out" in sep, padding_mode="reflect")

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (self.size, self.size):
            raise ValueError(f"{self.space.arch} expects images of shape (N, 3, {self.size}, {self.size}), "
                             f"got {tuple(x.shape)}")

    def forward_all(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The image and the four trunk features used for distillation."""
        self._check(x)
        outputs = {}
        h = self.down2(self.down1(self.stem(x)))
        outputs["feat:down2"] = h
        for i, block in enumerate(self.blocks, start=1):
            h = block(h)
            if i % 3 == 0:
                outputs[f"feat:block{i}"] = h
        outputs["image"] = torch.tanh(self.out(self.up2(self.up1(h))))
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)["image"]

    def tap_channels(self, config: Mapping[str, int] | None = None) -> dict[str, int]:
        """Channels of every tap: the trunk width 4*c2 at `config` (stored values; None = this model's own)."""
        trunk = self.space.widths(config if config is not None else self.config)["c2"]
        return {tap: trunk for tap in self.taps}


def space(ngf: int = 64, step: int = 8, separable: Collection[str] = (), min_width: int | None = None) -> ChannelSpace:
    check_separable(ARCH, separable)
    return resnet_space(ARCH, ngf, step, min_width)


def build(config: Mapping[str, int] | None, size: int, ngf: int = 64, step: int = 8,
          separable: Collection[str] = (), min_width: int | None = None) -> ResnetGenerator:
    """The dense ResNet-9 at `config` (None: the teacher, every group = ngf)."""
    return ResnetGenerator(space(ngf, step, separable, min_width), config, size, separable)

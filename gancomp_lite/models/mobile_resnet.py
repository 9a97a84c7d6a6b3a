"""GAN Compression's mobile ResNet-9 generator (``MobileResnetGenerator``): the ResNet-9 of
``resnet.py`` with every residual block built from separable convolutions.

Layer table (as resnet.py; only the blocks differ):

    blocks  9 x [reflect-pad 1, separable(4*c2 -> hidden), IN, ReLU,
                 reflect-pad 1, separable(hidden -> 4*c2), IN] + skip
            separable(a -> b) = depthwise 3x3 on a, IN(a), pointwise 1x1 a -> b

The residual blocks hold most of a dense ResNet's MACs and are the least sensitive to the swap
(GAN Compression section 3.2), which is why the mobile teacher is built this way. Same eight
groups c0..c7 (multipliers 1, 2, 4, 4, 4, 4, 2, 1) and config strings as GAN Compression:
``16_16_32_16_32_32_16_16`` is the released CycleGAN horse2zebra student (2.55 GMACs, 0.357M
parameters at 256 x 256).
"""
from __future__ import annotations

from collections.abc import Mapping

from gancomp_lite.models.resnet import ResnetGenerator, resnet_space
from gancomp_lite.space import ChannelSpace

ARCH = "mobile-resnet9"
SEPARABLE = ("c3", "c4", "c5")           # the residual blocks' groups


def space(ngf: int = 64, step: int = 8, min_width: int | None = None) -> ChannelSpace:
    return resnet_space(ARCH, ngf, step, min_width)


def build(config: Mapping[str, int] | None, size: int, ngf: int = 64, step: int = 8,
          min_width: int | None = None) -> ResnetGenerator:
    """The mobile ResNet-9 at `config` (None: the teacher, every group = ngf)."""
    return ResnetGenerator(space(ngf, step, min_width), config, size, separable=SEPARABLE)

"""Reusable blocks made of elastic layers: conv-norm-act, separable convs and residual blocks.

Every block takes channel *layouts* (group names, fixed ints or tuples, see ``elastic.py``) and
the ``full`` widths dict, so any block can later run narrower as part of a supernet, and the
cost model can read its layers.

Separable convolution (MobileNet; GAN Compression's ``SeparableConv2d``)::

    depthwise k x k conv (each channel alone, stride here)  ->  norm  ->  pointwise 1 x 1 conv

A dense k x k conv C_in -> C_out costs C_in*C_out*k^2 per output pixel; the separable one costs
C_in*k^2 + C_in*C_out, about 1/C_out + 1/k^2 of it. ``conv(..., separable=True)`` swaps any conv
(transposed ones included: the depthwise half then upsamples) for its separable version, which is
how the layer-sensitivity study of GAN Compression section 3.2 is built.
"""
from __future__ import annotations

from torch import nn

from gancomp_lite.nn.elastic import (
    Config,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticConvTranspose2d,
    ElasticInstanceNorm2d,
    Layout,
)

NORMS = ("instance", "batch", "none")
ACTIVATIONS = ("relu", "lrelu", "tanh", "none")


def norm2d(kind: str, layout: Layout, full: Config) -> nn.Module:
    """InstanceNorm (affine=False, as pix2pix/CycleGAN), BatchNorm, or nothing."""
    if kind == "instance":
        return ElasticInstanceNorm2d(layout, full)
    if kind == "batch":
        return ElasticBatchNorm2d(layout, full)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {NORMS}")


def activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if kind == "tanh":
        return nn.Tanh()
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {kind!r}; choose one of {ACTIVATIONS}")


def _upsampling_padding(kernel_size: int, stride: int) -> tuple[int, int]:
    """(padding, output_padding) that make a transposed conv output exactly `stride` times its input."""
    padding = (kernel_size - stride + 1) // 2
    return padding, stride + 2 * padding - kernel_size


class SeparableConv2d(nn.Sequential):
    """Depthwise k x k -> norm -> pointwise 1 x 1 (``transposed=True``: the depthwise part upsamples)."""

    def __init__(self, in_layout: Layout, out_layout: Layout, full: Config, kernel_size: int,
                 stride: int = 1, *, transposed: bool = False, norm: str = "instance", bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        if transposed:
            depthwise = ElasticConvTranspose2d(in_layout, in_layout, full, kernel_size, stride,
                                               *_upsampling_padding(kernel_size, stride), bias=bias,
                                               depthwise=True)
        else:
            depthwise = ElasticConv2d(in_layout, in_layout, full, kernel_size, stride, bias=bias,
                                      depthwise=True, padding_mode=padding_mode)
        super().__init__(depthwise, norm2d(norm, in_layout, full),
                         ElasticConv2d(in_layout, out_layout, full, 1, bias=bias))


def conv(in_layout: Layout, out_layout: Layout, full: Config, kernel_size: int, stride: int = 1, *,
         transposed: bool = False, separable: bool = False, norm: str = "instance", bias: bool = True,
         padding_mode: str = "zeros") -> nn.Module:
    """A 'same'-padded conv (or a stride-s transposed conv that upsamples s times), dense or separable.

    `norm` is the norm inside a separable conv (the family's own norm); a dense conv has none.
    """
    if separable:
        return SeparableConv2d(in_layout, out_layout, full, kernel_size, stride, transposed=transposed,
                               norm=norm, bias=bias, padding_mode=padding_mode)
    if transposed:
        return ElasticConvTranspose2d(in_layout, out_layout, full, kernel_size, stride,
                                      *_upsampling_padding(kernel_size, stride), bias=bias)
    return ElasticConv2d(in_layout, out_layout, full, kernel_size, stride, bias=bias, padding_mode=padding_mode)


class ConvNormAct(nn.Sequential):
    """conv -> norm -> activation: the unit of every encoder/decoder stage."""

    def __init__(self, in_layout: Layout, out_layout: Layout, full: Config, kernel_size: int,
                 stride: int = 1, *, transposed: bool = False, separable: bool = False,
                 norm: str = "instance", act: str = "relu", bias: bool = True,
                 padding_mode: str = "zeros") -> None:
        super().__init__(
            conv(in_layout, out_layout, full, kernel_size, stride, transposed=transposed, separable=separable,
                 norm=norm, bias=bias, padding_mode=padding_mode),
            norm2d(norm, out_layout, full),
            activation(act),
        )


class ResidualBlock(nn.Module):
    """x + [conv3x3 -> norm -> ReLU -> conv3x3 -> norm](x), reflection padded (pix2pix/CycleGAN).

    The trunk width is kept (the add needs it); the hidden width between the two convs is its own
    group, so a sub-network may thin it (GAN Compression's c3..c5).
    """

    def __init__(self, trunk: Layout, hidden: Layout, full: Config, *, separable: bool = False,
                 norm: str = "instance", bias: bool = True) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct(trunk, hidden, full, 3, separable=separable, norm=norm, bias=bias, padding_mode="reflect"),
            ConvNormAct(hidden, trunk, full, 3, separable=separable, norm=norm, act="none", bias=bias,
                        padding_mode="reflect"),
        )

    def forward(self, x):
        return x + self.body(x)


class MobileResidualBlock(ResidualBlock):
    """GAN Compression's MobileResnetBlock: the residual block with both convs separable."""

    def __init__(self, trunk: Layout, hidden: Layout, full: Config, *, norm: str = "instance",
                 bias: bool = True) -> None:
        super().__init__(trunk, hidden, full, separable=True, norm=norm, bias=bias)

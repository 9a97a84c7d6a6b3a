"""Discriminators: the conditional PatchGAN D(x, y) of eq. 3 and TP-GAN's own patch discriminator.

They are plain torch modules, not elastic: a compressed student keeps (inherits) its teacher's D.
Both take one tensor and return a map of patch logits (no sigmoid); the conditional D's input is
the profile stacked with the image, ``gancomp_lite.losses.conditional_pair(x, y)`` (6 channels).

PatchGAN (pix2pix's N-layer discriminator; 70x70 receptive field at n_layers = 3)
    conv 4x4 s2  in -> ndf, lrelu(0.2)
    n_layers-1 x conv 4x4 s2 -> ndf * min(2^i, 8), norm, lrelu
    conv 4x4 s1 -> ndf * min(2^n_layers, 8), norm, lrelu
    conv 4x4 s1 -> 1                           (30x30 logits at 256, 14x14 at 128, 6x6 at 64)

TP-GAN's discriminatorLocal (official code; a 4x4 logit map at 128x128)
    conv 3x3 s2 -> ndf, lrelu; -> 2ndf, BN, lrelu; -> 4ndf, BN, lrelu; -> 8ndf, BN, lrelu  (S/16)
    resblock; conv 3x3 s2 -> 8ndf, BN, lrelu (S/32); resblock; conv 1x1 -> 1
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

NORMS = ("batch", "instance", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)
    return nn.Identity()


@torch.no_grad()
def _init_weights(model: nn.Module) -> None:
    """pix2pix / TP-GAN initialisation: conv weights N(0, 0.02), biases 0, norm scales 1."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _apply_spectral_norm(model: nn.Module) -> None:
    for module in list(model.modules()):
        if isinstance(module, nn.Conv2d):
            spectral_norm(module)


class _InputCheck(nn.Module):
    in_channels: int

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects (N, {self.in_channels}, H, W) input, got {tuple(x.shape)}")


class PatchGAN(_InputCheck):
    """pix2pix's N-layer PatchGAN; `in_channels` 6 makes it the conditional D(x, y) of eq. 3.

    `norm`: "batch" (pix2pix), "instance" or "none"; `spectral` wraps every conv in spectral norm.
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch",
                 spectral: bool = False) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"PatchGAN norm must be one of {NORMS}, got {norm!r}")
        if n_layers < 1:
            raise ValueError(f"PatchGAN n_layers must be >= 1, got {n_layers}")
        self.in_channels = in_channels
        bias = norm != "batch"              # BN has its own shift
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ndf
        for i in range(1, n_layers + 1):
            out = ndf * min(2 ** i, 8)
            stride = 2 if i < n_layers else 1
            layers += [nn.Conv2d(width, out, 4, stride, 1, bias=bias), _norm(norm, out), nn.LeakyReLU(0.2)]
            width = out
        layers.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)
        _init_weights(self)
        if spectral:
            _apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.model(x)


class _ResBlock(nn.Module):
    """conv 3x3 - BN - lrelu - conv 3x3 - BN, add the input, lrelu (TP-GAN's resblock)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels)
        self.conv2, self.bn2 = nn.Conv2d(channels, channels, 3, 1, 1), nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn1(self.conv1(x)), 0.2)
        return F.leaky_relu(x + self.bn2(self.conv2(h)), 0.2)


class TPGANDiscriminator(_InputCheck):
    """TP-GAN's patch discriminator: (N, in_channels, S, S) -> (N, 1, S/32, S/32) logits (4x4 at 128).

    `ndf` is the official df_dim (64); `in_channels` 3 judges the image alone, as the official code.
    """

    def __init__(self, ndf: int = 64, size: int = 128, in_channels: int = 3, spectral: bool = False) -> None:
        super().__init__()
        if size < 32 or size % 32:
            raise ValueError(f"TPGANDiscriminator size must be a multiple of 32 (five stride-2 convs), got {size}")
        self.in_channels, self.size = in_channels, size

        def down(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, 2, 1)] + ([nn.BatchNorm2d(cout)] if bn else []) + [nn.LeakyReLU(0.2)]

        self.model = nn.Sequential(
            *down(in_channels, ndf, bn=False), *down(ndf, 2 * ndf), *down(2 * ndf, 4 * ndf), *down(4 * ndf, 8 * ndf),
            _ResBlock(8 * ndf),
            *down(8 * ndf, 8 * ndf),
            _ResBlock(8 * ndf),
            nn.Conv2d(8 * ndf, 1, 1),
        )
        _init_weights(self)
        if spectral:
            _apply_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"TPGANDiscriminator expects (N, {self.in_channels}, {self.size}, {self.size}) input, "
                             f"got {tuple(x.shape)}")
        return self.model(x)


DISCRIMINATORS: dict[str, type[nn.Module]] = {"patchgan": PatchGAN, "tpgan": TPGANDiscriminator}


def build(kind: str, **knobs) -> nn.Module:
    """A discriminator by name ("patchgan" or "tpgan") with its knobs (ndf, n_layers, norm, size, ...)."""
    if kind not in DISCRIMINATORS:
        raise ValueError(f"unknown discriminator {kind!r}; choose one of {sorted(DISCRIMINATORS)}")
    return DISCRIMINATORS[kind](**knobs)

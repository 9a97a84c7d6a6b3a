"""CR-GAN (Tian, Peng, Zhao, Zhang, Metaxas, IJCAI 2018): an encoder E, a view-conditioned generator G
and a view-classifying critic D, all built from residual blocks.

Layer table at 128x128 and the official widths (`base` = 64; five blocks = log2(128/4)):

    E (encoder, no BN)            conv 3x3 3 -> 64 @128
                                  down-blocks 64->64, 64->128, 128->256, 256->512, 512->512 -> 4x4x512
                                  fc_v: 4*4*512 -> views (view logits; softmax gives v-bar)
                                  fc_z: 4*4*512 -> z_dim (latent z-bar, no activation)
    G (generator / decoder)       fc([v || z]) -> 4*4*512
                                  up-blocks 512->512, 512->256, 256->128, 128->64, 64->64 -> 128x128x64
                                  BN, ReLU, conv 3x3 64 -> 3, tanh
    D (critic, E-like trunk)      conv + the same down-blocks; fc_v -> views (view logits), fc_s -> 1 (WGAN score)

    down-block(in, out): shortcut = avgpool2, conv 3x3;  main = ReLU, conv 3x3 (in->out), ReLU, conv 3x3 (out->out), avgpool2
    up-block(in, out):   shortcut = upsample x2, conv 3x3; main = BN, ReLU, upsample x2, conv 3x3 (in->out), BN, ReLU, conv 3x3

At other sizes the number of blocks is log2(size/4) and stage i (0-based) of E has min(2^i, 8) * base
channels (G mirrors E), which reproduces the official table at 128.

Our choices, beyond the official code: view conditioning keeps the paper's plain concatenation of a
one-hot view with z, but the view set defaults to Multi-PIE's 13 cameras (``views=9`` gives CR-GAN's
+-60 set); the fc layers flatten position-major (a fixed permutation of the official channel-major
flatten) so that a narrower channel config keeps the first channels at every position; logits are
returned instead of the official softmaxed views (the losses take logits).

The registry's "crgan" generator is the frontalizer x -> E -> (v-bar, z-bar) -> G(v_frontal, z-bar).
Channel groups: "e0" (stem) ... "eN" (down-block outputs) and "g0" (fc output) ... "gN" (up-block
outputs), one width per stage; distillation taps are the up-block outputs "up1" ... "upN".
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from data_tools.protocol import CAMERAS
from gancomp_lite.nn.elastic import (
    Config,
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticLinear,
)
from gancomp_lite.space import ChannelSpace

SIZES = (64, 128)
BOTTLENECK = 4          # spatial size of E's output and G's fc map
MAX_MULT = 8            # widest stage = 8 * base


def view_yaws(views: int) -> tuple[int, ...]:
    """Yaw (degrees) of each view label: Multi-PIE's 13 cameras (+90 ... -90) or CR-GAN's 9 (+60 ... -60)."""
    if views == 13:
        return tuple(cam.yaw for cam in CAMERAS)
    if views == 9:
        return tuple(cam.yaw for cam in CAMERAS if abs(cam.yaw) <= 60)
    raise ValueError(f"views must be 13 (Multi-PIE cameras) or 9 (CR-GAN's +-60 set), got {views}")


def yaw_to_view(yaw: torch.Tensor, views: int = 13) -> torch.Tensor:
    """View labels (N,) long for yaws (N,) in degrees; every yaw must be one of the view set's cameras."""
    table = torch.tensor(view_yaws(views), device=yaw.device)
    match = yaw.to(table.dtype).reshape(-1, 1) == table.reshape(1, -1)
    if not bool(match.any(dim=1).all()):
        bad = sorted({int(y) for y, ok in zip(yaw.reshape(-1).tolist(), match.any(dim=1).tolist()) if not ok})
        raise ValueError(f"yaws {bad} are not views of the {views}-view set {list(view_yaws(views))}")
    return match.int().argmax(dim=1)


def stage_multipliers(size: int) -> tuple[int, ...]:
    """Widths of E's stem and down-blocks in units of `base`: (1, 1, 2, 4, 8, 8) at 128, (1, 1, 2, 4, 8) at 64."""
    if size not in SIZES:
        raise ValueError(f"CR-GAN size must be one of {SIZES} (the number of blocks is log2(size/4)), got {size}")
    blocks = int(math.log2(size // BOTTLENECK))
    return (1,) + tuple(min(2 ** i, MAX_MULT) for i in range(blocks))


class DownBlock(nn.Module):
    """CR-GAN's residualBlock_down (no normalisation): halves the resolution."""

    def __init__(self, cin: str, cout: str, full: Config):
        super().__init__()
        self.shortcut = ElasticConv2d(cin, cout, full, 3)
        self.conv1 = ElasticConv2d(cin, cout, full, 3)
        self.conv2 = ElasticConv2d(cout, cout, full, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(F.avg_pool2d(x, 2))
        out = self.conv2(F.relu(self.conv1(F.relu(x))))
        return shortcut + F.avg_pool2d(out, 2)


class UpBlock(nn.Module):
    """CR-GAN's residualBlock_up (BN, nearest upsampling): doubles the resolution."""

    def __init__(self, cin: str, cout: str, full: Config):
        super().__init__()
        self.shortcut = ElasticConv2d(cin, cout, full, 3)
        self.bn1 = ElasticBatchNorm2d(cin, full)
        self.conv1 = ElasticConv2d(cin, cout, full, 3)
        self.bn2 = ElasticBatchNorm2d(cout, full)
        self.conv2 = ElasticConv2d(cout, cout, full, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        out = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return shortcut + out


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, C, 4, 4) -> (N, 16*C), position-major: the layout ``(group,) * 16`` of the fc layers."""
    return x.permute(0, 2, 3, 1).flatten(1)


class DownTrunk(nn.Module):
    """conv 3x3 stem + down-blocks to 4x4: the shared trunk of E and D."""

    def __init__(self, prefix: str, blocks: int, full: Config):
        super().__init__()
        self.groups = tuple(f"{prefix}{i}" for i in range(blocks + 1))
        self.stem = ElasticConv2d(3, self.groups[0], full, 3)
        self.blocks = nn.ModuleList(DownBlock(a, b, full) for a, b in zip(self.groups, self.groups[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        for block in self.blocks:
            out = block(out)
        return _flatten(out)


class Encoder(nn.Module):
    """E: image -> (view logits, latent z-bar)."""

    def __init__(self, blocks: int, full: Config, views: int, z_dim: int):
        super().__init__()
        self.trunk = DownTrunk("e", blocks, full)
        flat = (self.trunk.groups[-1],) * BOTTLENECK ** 2
        self.fc_v = ElasticLinear(flat, views, full)
        self.fc_z = ElasticLinear(flat, z_dim, full)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.fc_v(h), self.fc_z(h)


class Decoder(nn.Module):
    """G: (one-hot view, latent) -> image, with every up-block output kept as a distillation tap."""

    def __init__(self, blocks: int, full: Config, views: int, z_dim: int):
        super().__init__()
        self.groups = tuple(f"g{i}" for i in range(blocks + 1))
        self.views, self.z_dim = views, z_dim
        self.fc = ElasticLinear((views, z_dim), (self.groups[0],) * BOTTLENECK ** 2, full)
        self.blocks = nn.ModuleList(UpBlock(a, b, full) for a, b in zip(self.groups, self.groups[1:]))
        self.bn = ElasticBatchNorm2d(self.groups[-1], full)
        self.to_rgb = ElasticConv2d(self.groups[-1], 3, full, 3)

    def forward_all(self, v: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        if v.ndim != 2 or v.shape[1] != self.views or z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"CR-GAN G expects v (N, {self.views}) and z (N, {self.z_dim}), "
                             f"got {tuple(v.shape)} and {tuple(z.shape)}")
        out = self.fc(torch.cat([v, z], dim=1))
        out = out.reshape(out.shape[0], BOTTLENECK, BOTTLENECK, -1).permute(0, 3, 1, 2)
        taps = {}
        for i, block in enumerate(self.blocks, start=1):
            out = block(out)
            taps[f"feat:up{i}"] = out
        return {"image": torch.tanh(self.to_rgb(F.relu(self.bn(out)))), **taps}

    def forward(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.forward_all(v, z)["image"]


class CRGAN(nn.Module):
    """The CR-GAN frontalizer G(v_frontal, E(x)); `encoder` (E) and `decoder` (G) are used on their own in training."""

    def __init__(self, full: Config, size: int = 128, views: int = 13, z_dim: int | None = None,
                 frontal_view: int | None = None):
        super().__init__()
        blocks = len(stage_multipliers(size)) - 1
        self.size, self.views = size, views
        self.yaws = view_yaws(views)
        self.z_dim = 128 - views if z_dim is None else z_dim
        self.frontal_view = self.yaws.index(0) if frontal_view is None else frontal_view
        if not 0 <= self.frontal_view < views:
            raise ValueError(f"frontal_view must be a view index in 0..{views - 1}, got {self.frontal_view}")
        self.encoder = Encoder(blocks, full, views, self.z_dim)
        self.decoder = Decoder(blocks, full, views, self.z_dim)
        self.taps = tuple(f"up{i}" for i in range(1, blocks + 1))
        self.full = dict(full)
        self.apply(init_weights)

    def tap_channels(self, config: Mapping[str, int] | None = None) -> dict[str, int]:
        widths = self.full if config is None else config
        return {tap: int(widths[f"g{i}"]) for i, tap in enumerate(self.taps, start=1)}

    def one_hot(self, view: int | torch.Tensor, n: int, device: torch.device | None = None) -> torch.Tensor:
        """One-hot views (n, views) for a view index or a (n,) tensor of indices."""
        index = torch.full((n,), int(view), device=device) if isinstance(view, int) else view.to(device).long()
        if index.shape != (n,) or bool(((index < 0) | (index >= self.views)).any()):
            raise ValueError(f"views must be {n} indices in 0..{self.views - 1}, got {index.tolist()}")
        return F.one_hot(index, self.views).float()

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.size, self.size) or x.shape[0] == 0:
            raise ValueError(f"CR-GAN expects a non-empty batch of images of shape (N, 3, {self.size}, {self.size}) "
                             f"in [-1, 1], got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E alone: (view logits (N, views), latent z-bar (N, z_dim))."""
        self._check_input(x)
        return self.encoder(x)

    def generate(self, view: int | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """G alone: the image of latent `z` (N, z_dim) at `view` (an index or (N,) indices); the generation path."""
        return self.decoder(self.one_hot(view, z.shape[0], z.device), z)

    def forward_all(self, x: torch.Tensor, view: int | torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """E then G at `view` (default: the frontal view): "image", "view_logits", "latent" and the taps."""
        view_logits, latent = self.encode(x)
        target = self.frontal_view if view is None else view
        out = self.decoder.forward_all(self.one_hot(target, x.shape[0], x.device), latent)
        return {**out, "view_logits": view_logits, "latent": latent}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)["image"]


class CRGANDiscriminator(nn.Module):
    """D_xvs: E-like trunk with a view-classification head (logits) and a WGAN critic head."""

    def __init__(self, size: int = 128, base: int = 64, views: int = 13):
        super().__init__()
        mults = stage_multipliers(size)
        full = {f"d{i}": m * base for i, m in enumerate(mults)}
        self.size, self.views = size, views
        self.trunk = DownTrunk("d", len(mults) - 1, full)
        flat = (self.trunk.groups[-1],) * BOTTLENECK ** 2
        self.fc_v = ElasticLinear(flat, views, full)
        self.fc_s = ElasticLinear(flat, 1, full)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(view logits (N, views), critic score (N,))."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(f"CR-GAN D expects images of shape (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        h = self.trunk(x)
        return self.fc_v(h), self.fc_s(h).squeeze(1)


def init_weights(module: nn.Module) -> None:
    """CR-GAN's initialisation: conv/linear weights N(0, 0.02), zero biases; BN gamma N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def space(base: int = 64, size: int = 128, views: int = 13, z_dim: int | None = None,
          frontal_view: int | None = None, step: int = 8, min_width: int | None = None) -> ChannelSpace:
    """E's stages "e0".."eN" and G's "g0".."gN"; each may take any multiple of `step` from `min_width`
    (default `step`) up to its teacher width.

    `views`, `z_dim` and `frontal_view` shape the model but no channel group (the registry passes
    the same knobs to `space` and `build`).
    """
    if base < 1 or step < 1:
        raise ValueError(f"base and step must be positive, got base={base}, step={step}")
    mults = stage_multipliers(size)
    teacher = {f"e{i}": m * base for i, m in enumerate(mults)}
    teacher.update({f"g{i}": m * base for i, m in enumerate(reversed(mults))})
    return ChannelSpace.uniform("crgan", teacher, step=step, min_width=min_width)


def build(config: Mapping[str, int] | None, size: int = 128, base: int = 64, views: int = 13,
          z_dim: int | None = None, frontal_view: int | None = None, step: int = 8,
          min_width: int | None = None) -> CRGAN:
    """The CR-GAN frontalizer at `config` (None: the teacher widths of `base`)."""
    channel_space = space(base=base, size=size, views=views, z_dim=z_dim, frontal_view=frontal_view, step=step,
                          min_width=min_width)
    full = channel_space.teacher() if config is None else channel_space.validate(config)
    return CRGAN(full, size=size, views=views, z_dim=z_dim, frontal_view=frontal_view)

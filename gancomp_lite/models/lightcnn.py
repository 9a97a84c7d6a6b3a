"""Light-CNN (Wu, He, Sun, Tan, TIFS 2018): the identity network behind TP-GAN's identity loss
and behind the rank-1 evaluation of every frontalizer.

Layer table (input 1 x S x S grayscale in [0, 1]; paper widths at width=1, S=128):

    conv1   MFM 5x5, 1 -> 48          pool1 (2x2 max)
    res1    LightCNN-29 only: 1 residual block (48)
    group1  MFM 1x1 48 -> 48, MFM 3x3 48 -> 96     pool2
    res2    LightCNN-29 only: 2 residual blocks (96)
    group2  MFM 1x1, MFM 3x3 96 -> 192             pool3
    res3    LightCNN-29 only: 3 residual blocks (192)
    group3  MFM 1x1, MFM 3x3 192 -> 128
    res4    LightCNN-29 only: 4 residual blocks (128)
    group4  MFM 1x1, MFM 3x3 128 -> 128            pool4 -> 128 x S/16 x S/16
    fc      MFM linear (S/16)^2*128 -> 256         the identity feature
    fc2     dropout, linear 256 -> classes         identity logits

`width` scales every channel count (the quick preset trains a narrow one on the CPU) and
`input_size` sets S. TP-GAN's identity loss compares the last two layers: pool4 ("last_conv")
and the fc feature ("fc"), both returned by `features`.
"""
from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gancomp_lite.nn.mfm import MFMConv2d, MFMGroup, MFMLinear, MFMResBlock
from gancomp_lite.seeding import seed_everything

STAGE_WIDTHS: tuple[int, ...] = (48, 96, 192, 128, 128)   # conv1, group1..group4 outputs at width=1
RESIDUAL_BLOCKS: dict[str, tuple[int, int, int, int]] = {"9": (0, 0, 0, 0), "29": (1, 2, 3, 4)}
ARCH = "lightcnn"


def to_identity_input(img: torch.Tensor, size: int) -> torch.Tensor:
    """RGB in [-1, 1] (N, 3, H, W) -> what Light-CNN sees: gray = mean of RGB, in [0, 1], bilinear-resized to size x size."""
    if img.ndim != 4 or img.shape[1] != 3:
        raise ValueError(f"to_identity_input expects RGB images of shape (N, 3, H, W) in [-1, 1], got {tuple(img.shape)}")
    gray = ((img + 1) / 2).mean(dim=1, keepdim=True)
    if gray.shape[-2:] != (size, size):
        gray = F.interpolate(gray, size=(size, size), mode="bilinear", align_corners=False)
    return gray.clamp(0, 1)


class LightCNN(nn.Module):
    """Light-CNN-9 or -29; `forward(x)` returns `(logits, feature)` like the official model."""

    def __init__(self, variant: str = "9", num_classes: int = 0, width: float = 1.0,
                 input_size: int = 128, feature_dim: int = 256):
        super().__init__()
        if variant not in RESIDUAL_BLOCKS:
            raise ValueError(f"unknown Light-CNN variant {variant!r}; choose one of {sorted(RESIDUAL_BLOCKS)}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1 (the number of training identities), got {num_classes}")
        if input_size < 16 or input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16 (four 2x2 poolings), got {input_size}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.config = {"variant": variant, "num_classes": num_classes, "width": width,
                       "input_size": input_size, "feature_dim": feature_dim}
        self.input_size = input_size
        self.feature_dim = feature_dim
        c0, c1, c2, c3, c4 = (max(1, round(c * width)) for c in STAGE_WIDTHS)
        n1, n2, n3, n4 = RESIDUAL_BLOCKS[variant]

        def res(channels: int, blocks: int) -> list[nn.Module]:
            return [MFMResBlock(channels) for _ in range(blocks)]

        def pool() -> nn.Module:
            return nn.MaxPool2d(2, 2, ceil_mode=True)

        self.body = nn.Sequential(
            MFMConv2d(1, c0, 5, padding=2), pool(),
            *res(c0, n1), MFMGroup(c0, c1), pool(),
            *res(c1, n2), MFMGroup(c1, c2), pool(),
            *res(c2, n3), MFMGroup(c2, c3),
            *res(c3, n4), MFMGroup(c3, c4), pool(),
        )
        self.fc = MFMLinear(c4 * (input_size // 16) ** 2, feature_dim)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(feature_dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Our choice, not the official code's (PyTorch defaults, fine for 5M training faces): with
        the defaults the identity signal fades to ~1e-3 of the feature by the fc layer and a small
        CPU run stays at chance. Weights ~ N(0, 1/fan_in), zero biases, and the second conv of each
        residual block at zero so that Light-CNN-29 starts as its plain path and does not blow up.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="linear")
                nn.init.zeros_(module.bias)
        for module in self.modules():
            if isinstance(module, MFMResBlock):
                nn.init.zeros_(module.conv2.conv.weight)

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (1, self.input_size, self.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"LightCNN expects grayscale input of shape (N, {', '.join(map(str, expected))}) in [0, 1] "
                f"(use to_identity_input), got {tuple(x.shape)}"
            )

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The last two layers: "last_conv" = pool4 output (N, C, S/16, S/16), "fc" = identity feature (N, feature_dim)."""
        self._check_input(x)
        last_conv = self.body(x)
        return {"last_conv": last_conv, "fc": self.fc(last_conv.flatten(1))}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.features(x)["fc"]
        return self.fc2(self.dropout(feature)), feature


def save_identity_network(path: str | os.PathLike, net: LightCNN, half: bool = False, **manifest: Any) -> dict:
    """Save `net` with its constructor config in the manifest (optionally in half precision to save space)."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in net.state_dict().items()}
    return save_checkpoint(path, state, {**manifest, "arch": ARCH, "lightcnn": net.config})


def load_identity_network(path: str | os.PathLike) -> LightCNN:
    """Rebuild a LightCNN from a checkpoint written by `save_identity_network` (hash checked, no code run); eval mode."""
    state, manifest = load_checkpoint(path, expect={"arch": ARCH})
    config = manifest.get("lightcnn")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: manifest has no 'lightcnn' config; it was not written by save_identity_network")
    net = LightCNN(**config)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not match the Light-CNN config {config} ({err})") from err
    return net.eval()


def _collate_views(items: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Both views of every sample, each labelled with its identity: images (2B, 3, H, W), labels (2B,)."""
    images = torch.stack([item[view] for view in ("profile", "frontal") for item in items])
    labels = torch.tensor([int(item["identity"]) for _ in range(2) for item in items])
    return images, labels


def train_identity_network(
    dataset: Dataset,
    *,
    num_classes: int,
    steps: int,
    seed: int,
    variant: str = "9",
    width: float = 1.0,
    input_size: int = 128,
    feature_dim: int = 256,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> LightCNN:
    """Train a Light-CNN to classify identities from both images of every pair it is given.

    Each sample of `dataset` is a dict with "profile" and "frontal" RGB images in [-1, 1] and an
    integer "identity" label in [0, num_classes). Both views go into every batch (plus random
    horizontal flips). Which poses it learns from is the caller's choice: the quick preset gives it
    near-frontal pairs only, like the web faces the real Light-CNN learns from
    (`gancomp_lite.teachers.IdentitySpec.max_yaw`). Cross-entropy, Adam, seeded; the model is
    returned in eval mode.
    """
    generator = seed_everything(seed)
    net = LightCNN(variant, num_classes, width, input_size, feature_dim).to(device)
    if steps <= 0:
        return net.eval()
    if len(dataset) == 0:
        raise ValueError("train_identity_network: the data set is empty")
    sampler = RandomSampler(dataset, replacement=True, num_samples=steps * batch_size, generator=generator)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=_collate_views)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    bar = tqdm(loader, total=steps, desc=f"Light-CNN-{variant}", disable=not progress)
    for images, labels in bar:
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"identity labels must lie in [0, {num_classes}), got a batch spanning "
                             f"[{labels.min().item()}, {labels.max().item()}]")
        flip = torch.rand(len(images), generator=generator) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
        x = to_identity_input(images.to(device), input_size)
        logits, _ = net(x)
        loss = F.cross_entropy(logits, labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return net.eval()

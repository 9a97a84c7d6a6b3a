"""PIM, "Towards Pose Invariant Face Recognition in the Wild" (Zhao et al., CVPR 2018), as a light
teaching re-implementation ("PIM-lite"). No public code exists; this is built from the paper's
abstract-level description (reference/frontalization.md, section 3).

From the paper:
- two sub-nets learned jointly end to end: a Face Frontalization sub-Net (FFN) and a
  Discriminative Learning sub-Net (DLN, a generic recognition CNN trained with cross-entropy);
- the FFN is a dual-path GAN: a global pathway for the structure and local pathways for details
  (TP-GAN-like), trained with TP-GAN's terms plus adversarial learning;
- "unsupervised cross-domain adversarial training": a domain term that makes features of the two
  domains indistinguishable.

Our choices:
- the FFN's global pathway is a lighter TP-GAN encoder-decoder (3x3 kernels, one resblock per
  stage, no noise branch, no select resblocks, 3-channel input without the mirror);
- the local pathway is TP-GAN's part rotator (`gancomp_lite.models.tpgan.PartRotator`) at lighter
  widths, every part seeing its own 3-channel patch; the part outputs are merged on the canvas at
  the template positions (`combine_parts`) and fused at full resolution. Knob `template` (a data
  set's mean frontal landmarks) moves those positions and cuts the patches around the profile's
  landmarks (as TP-GAN is trained and tested, `frontalize`); without it the patches are cut at
  TP-GAN's official boxes (the shipped quick PIM);
- the domain term is a small classifier (`DomainClassifier`) on the FFN's identity feature that
  tells frontal inputs from profile inputs, trained through gradient reversal (recipe
  `gancomp_lite.recipes.pim`), so the encoder's features become pose invariant;
- the DLN is `gancomp_lite.models.lightcnn.LightCNN`; "learning to learn" and "enforced
  cross-entropy" are left out (plain cross-entropy).

Layer table (S = 64 or 128, g = `base`; `res` = TP-GAN's resblock; widths are the teacher's):

    enc0  conv 3x3 -> g, lrelu; res                 S       enc0
    enc1  conv 3x3 s2 -> g, BN, lrelu; res          S/2     enc1
    enc2  conv s2 -> 2g; res                        S/4     enc2
    enc3  conv s2 -> 4g; res                        S/8     enc3
    enc4  conv s2 -> 8g; res                        S/16    enc4
    fc    linear (S/16)^2*8g -> 2F, maxout -> F = 4g: the identity feature
    init  linear F -> (S/16)^2*g, ReLU              S/16    init
    dec16 res on [init || enc4]                     S/16    (trunk of concatenated groups)
    dec8  deconv -> 4g, BN, ReLU; res on [up3 || enc3]                         S/8   up3
    dec4  deconv -> 2g; res on [up2 || enc2]; image_s4 = tanh(conv -> 3)       S/4   up2
    dec2  deconv -> g; res on [up1 || enc1 || up(image_s4)]; image_s2          S/2   up1
    fuse  deconv -> g; conv 3x3 on [up0 || enc0 || part features || part images || up(image_s2)]
          -> g, BN, lrelu; res; image = tanh(conv -> 3)                        S     up0, fuse
    parts TP-GAN part rotators, groups part64/128/256/512 = g, 2g, 2g, 4g

Distillation taps: the decoder stages "dec8", "dec4", "dec2", "fuse".
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from gancomp_lite.models.tpgan import (
    PARTS,
    ConvBlock,
    PartRotator,
    ResBlock,
    Template,
    combine_parts,
    crop_parts,
    init_weights,
    landmark_boxes,
    part_boxes,
)
from gancomp_lite.nn.elastic import ElasticLinear, Layout
from gancomp_lite.space import ChannelSpace

ARCH = "pim"
SIZES = (64, 128)
# teacher widths in units of base
MULTIPLIERS: dict[str, int] = {
    "enc0": 1, "enc1": 1, "enc2": 2, "enc3": 4, "enc4": 8, "init": 1,
    "up3": 4, "up2": 2, "up1": 1, "up0": 1, "fuse": 1,
    "part64": 1, "part128": 2, "part256": 2, "part512": 4,
}
TAPS: tuple[str, ...] = ("dec8", "dec4", "dec2", "fuse")
# tap -> its layout (the concatenated groups, ints for image channels)
TAP_LAYOUTS: dict[str, tuple] = {
    "dec8": ("up3", "enc3"), "dec4": ("up2", "enc2"), "dec2": ("up1", "enc1", 3), "fuse": ("fuse",),
}


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def _flatten(x: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) -> (N, h*w*C), position-major: the layout ``(group,) * (h*w)`` of the fc layers."""
    return x.permute(0, 2, 3, 1).flatten(1)


class GlobalPathway(nn.Module):
    """Encoder to the maxout identity feature, decoder with skips, three output scales, part fusion."""

    def __init__(self, full: Mapping[str, int], size: int, feature_dim: int):
        super().__init__()
        self.cells = (size // 16) ** 2
        self.c0 = nn.Sequential(ConvBlock(3, "enc0", full, bn=False), ResBlock("enc0", full))
        self.c1 = nn.Sequential(ConvBlock("enc0", "enc1", full, stride=2), ResBlock("enc1", full))
        self.c2 = nn.Sequential(ConvBlock("enc1", "enc2", full, stride=2), ResBlock("enc2", full))
        self.c3 = nn.Sequential(ConvBlock("enc2", "enc3", full, stride=2), ResBlock("enc3", full))
        self.c4 = nn.Sequential(ConvBlock("enc3", "enc4", full, stride=2), ResBlock("enc4", full))
        self.fc = ElasticLinear(("enc4",) * self.cells, 2 * feature_dim, full)
        self.initial = ElasticLinear(feature_dim, ("init",) * self.cells, full)

        t16 = ("init", "enc4")
        self.dec16 = ResBlock(t16, full)
        self.up3 = ConvBlock(t16, "up3", full, act="relu", transposed=True)
        self.dec8 = ResBlock(TAP_LAYOUTS["dec8"], full)
        self.up2 = ConvBlock(TAP_LAYOUTS["dec8"], "up2", full, act="relu", transposed=True)
        self.dec4 = ResBlock(TAP_LAYOUTS["dec4"], full)
        self.img4 = ConvBlock(TAP_LAYOUTS["dec4"], 3, full, bn=False, act="tanh")
        self.up1 = ConvBlock(TAP_LAYOUTS["dec4"], "up1", full, act="relu", transposed=True)
        self.dec2 = ResBlock(TAP_LAYOUTS["dec2"], full)
        self.img2 = ConvBlock(TAP_LAYOUTS["dec2"], 3, full, bn=False, act="tanh")
        self.up0 = ConvBlock(TAP_LAYOUTS["dec2"], "up0", full, act="relu", transposed=True)
        fused: Layout = ("up0", "enc0", "part64", 3, 3)
        self.fuse = nn.Sequential(ConvBlock(fused, "fuse", full), ResBlock("fuse", full))
        self.to_image = ConvBlock("fuse", 3, full, bn=False, act="tanh")

    def encode(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = []
        for stage in (self.c0, self.c1, self.c2, self.c3, self.c4):
            x = stage(x)
            feats.append(x)
        first, second = self.fc(_flatten(x)).chunk(2, dim=1)
        return feats, torch.maximum(first, second)

    def decode(self, feats: list[torch.Tensor], identity: torch.Tensor, part_features: torch.Tensor,
               part_images: torch.Tensor) -> dict[str, torch.Tensor]:
        e0, e1, e2, e3, e4 = feats
        side = e4.shape[-1]
        init = F.relu(self.initial(identity)).reshape(identity.shape[0], side, side, -1).permute(0, 3, 1, 2)
        h = self.dec16(torch.cat([init, e4], 1))
        h8 = self.dec8(torch.cat([self.up3(h), e3], 1))
        h4 = self.dec4(torch.cat([self.up2(h8), e2], 1))
        image_s4 = self.img4(h4)
        h2 = self.dec2(torch.cat([self.up1(h4), e1, _up(image_s4)], 1))
        image_s2 = self.img2(h2)
        h1 = self.fuse(torch.cat([self.up0(h2), e0, part_features, part_images, _up(image_s2)], 1))
        return {"image": self.to_image(h1), "image_s2": image_s2, "image_s4": image_s4,
                "feat:dec8": h8, "feat:dec4": h4, "feat:dec2": h2, "feat:fuse": h1}


class PIM(nn.Module):
    """PIM's frontalization sub-net (FFN): `forward(x, boxes=None)` -> frontal image.

    `boxes` (N, 4, 4) are per-sample part boxes on the input (top, left, h, w for left eye, right
    eye, nose, mouth); without them the parts are cut at the template boxes. `template` (5 frontal
    landmarks at 128x128, see `gancomp_lite.models.tpgan.part_boxes`) places the template boxes and
    the part outputs on the canvas; None keeps TP-GAN's official positions.
    """

    taps = TAPS

    def __init__(self, full: Mapping[str, int], size: int = 128, feature_dim: int = 256,
                 template: Template | None = None):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"{ARCH} size must be one of {SIZES}, got {size}")
        self.size, self.feature_dim, self.full = size, feature_dim, dict(full)
        self.template = None if template is None else tuple(float(v) for v in template)
        self.template_boxes = part_boxes(size, self.template)
        self.rotators = nn.ModuleDict({part: PartRotator(full) for part in PARTS})
        self.pathway = GlobalPathway(full, size, feature_dim)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """TP-GAN's initialisation: weights N(0, 0.02), zero biases, BN at identity."""
        init_weights(self)

    def tap_channels(self, config: Mapping[str, int] | None = None) -> dict[str, int]:
        widths = self.full if config is None else config
        return {tap: sum(p if isinstance(p, int) else int(widths[p]) for p in TAP_LAYOUTS[tap]) for tap in TAPS}

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.size, self.size) or x.shape[0] == 0:
            raise ValueError(f"{ARCH} expects a non-empty batch of images of shape (N, 3, {self.size}, {self.size}) "
                             f"in [-1, 1], got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The identity feature (N, feature_dim) of the global encoder alone."""
        self._check_input(x)
        return self.pathway.encode(x)[1]

    def forward_all(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Images at S, S/2, S/4, the four part images ("patch_<part>"), "identity_feature" and the taps."""
        self._check_input(x)
        patches = crop_parts(x, boxes, self.template_boxes)
        part_features, part_images = {}, {}
        for part in PARTS:
            part_features[part], part_images[part] = self.rotators[part](patches[part])
        feats, identity = self.pathway.encode(x)
        out = self.pathway.decode(feats, identity, combine_parts(part_features, self.size, self.template_boxes),
                                  combine_parts(part_images, self.size, self.template_boxes))
        out.update({f"patch_{part}": part_images[part] for part in PARTS})
        out["identity_feature"] = identity
        return out

    def forward_pair(self, x: torch.Tensor, frontal: torch.Tensor, boxes: torch.Tensor | None = None
                     ) -> dict[str, torch.Tensor]:
        """`forward_all(x)` plus "frontal_identity_feature" = encode(frontal): one call for the domain term."""
        return {**self.forward_all(x, boxes), "frontal_identity_feature": self.encode(frontal)}

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, boxes)["image"]

    def profile_boxes(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        """With a `template`: part boxes around the profiles' landmarks (batch "landmarks"; template boxes
        where unknown), as TP-GAN. Without one: None, the parts at TP-GAN's official boxes, as the shipped
        quick PIM was trained (docs/teachers.md: landmark crops did not make a better quick teacher)."""
        landmarks = batch.get("landmarks")
        if self.template is None or landmarks is None:
            return None
        return landmark_boxes(landmarks, self.size, self.template)

    def frontalize(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Frontalize a data batch as PIM is trained: parts cut around the profile's landmarks.
        The evaluation protocol calls this."""
        return self(batch["profile"], self.profile_boxes(batch))


class DomainClassifier(nn.Module):
    """The domain agent: a small MLP on identity features, logit > 0 = frontal (source) domain."""

    def __init__(self, feature_dim: int = 256, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        self.feature_dim = feature_dim

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        if feature.ndim != 2 or feature.shape[1] != self.feature_dim:
            raise ValueError(f"DomainClassifier expects features (N, {self.feature_dim}), got {tuple(feature.shape)}")
        return self.net(feature).squeeze(1)


def space(base: int = 64, step: int = 8, feature_dim: int | None = None, template: Template | None = None,
          min_width: int | None = None) -> ChannelSpace:
    """PIM's channel groups (see the layer table); each takes multiples of `step` from `min_width` (default
    `step`) up to its teacher width.

    `feature_dim` (the identity feature's fixed width, default 4 * base) and `template` shape the
    model but no channel group.
    """
    if base < 1 or step < 1:
        raise ValueError(f"base and step must be positive, got base={base}, step={step}")
    return ChannelSpace.uniform(ARCH, {name: m * base for name, m in MULTIPLIERS.items()}, step=step,
                                min_width=min_width)


def build(config: Mapping[str, int] | None, size: int = 128, base: int = 64, step: int = 8,
          feature_dim: int | None = None, template: Template | None = None, min_width: int | None = None) -> PIM:
    """The PIM frontalizer at `config` (None: the teacher widths of `base`)."""
    channel_space = space(base=base, step=step, feature_dim=feature_dim, min_width=min_width)
    full = channel_space.teacher() if config is None else channel_space.validate(config)
    return PIM(full, size=size, feature_dim=4 * base if feature_dim is None else feature_dim, template=template)

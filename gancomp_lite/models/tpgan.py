"""TP-GAN (Huang, Zhang, Li, He, ICCV 2017): a global pathway and four local part rotators.

Layer tables of the official code (HRLTY/TP-GAN ``TP_GAN-Mar6FS.py``), written for S = 128 and
g = ``base`` (the official ``gf_dim`` = 64). Every width scales with g and every resolution with S;
group names follow the 128x128 table ("enc128" is the full-resolution stage at any S).
``res(k)`` is conv k - BN - lrelu(0.2) - conv k - BN - add - lrelu; the input image is
``[x, mirror(x)]`` (6 channels, ``mirror_input=True``) as in the official code.

Encoder (global pathway)                                    group
    c0    conv 7x7 -> g, lrelu; res(7)                       enc128   -> feat128
    c1    conv 5x5 s2 -> g, BN, lrelu; res(5)                enc64    -> feat64
    c2    conv 3x3 s2 -> 2g, BN, lrelu; res(3)               enc32    -> feat32
    c3    conv 3x3 s2 -> 4g, BN, lrelu; res(3)               enc16    -> feat16
    c4    conv 3x3 s2 -> 8g, BN, lrelu; 4x res(3)            enc8     -> feat8  (S/16)
    fc    linear (S/16)^2*8g -> 2F, maxout -> F = 4g (256): the identity feature

Noise branch: [F || z (100-d, N(0, 0.02))] -> linear -> g x S/16 x S/16 (initial_8), deconvs to
g/2 at S/4 (stride 4), g/4 at S/2, g/8 at S, each with ReLU (fixed widths, not searched).

Decoder (global pathway)                                    trunk (official widths)      hidden group
    8     res(2) on [initial_8 || feat8], 2x res(2)          576
    16    deconv -> up16, BN, ReLU; res(feat16);             [up16 || enc16] = 768         dec16
          2x res on the concat
    32    deconv -> up32; res([feat32 || img/4 || init32]);  [up32 || 166] = 422           dec32
          2x res; img32 = tanh(conv 3x3 -> 3)
    64    deconv -> up64; res5([feat64 || img/2 || init64]); [up64 || 86 || img32] = 217   dec64
          2x res; img64 = tanh(conv -> 3)
    128   deconv -> up128; select128 = res7([feat128 || init128 || img]) (78)             sel128
          fuse = res5([up128 || select128 || part features (g) || part images (3)
                       || up(img64)])                         212                          dec128
          recon128 = conv 5x5 -> g, BN, lrelu; res(3)         recon128
          conv 3x3 -> g/2, BN, lrelu; img128 = tanh(conv 3x3 -> 3)

Local pathway: one U-Net per part (left eye, right eye, nose, mouth; separate weights, shared
width groups part64..part512). The right-eye rotator sees [right eye || left eye] (6 channels).
    conv 3x3 -> g, lrelu, res; conv s2 -> 2g, BN, res; conv s2 -> 4g, res; conv s2 -> 8g, 2x res
    up: deconv -> 4g, BN, lrelu; conv 3x3 on [up || skip] -> 4g, BN, lrelu; res  (then 2g, then g)
    part feature (g channels) and part image tanh(conv 3x3 -> 3)
Patches (128x128: eyes 40x40, nose 32x40, mouth 32x48, scaled by S/128) are cut from the INPUT
profile at fixed template boxes, or at per-sample ``boxes`` (N, 4, 4: top, left, h, w for left
eye, right eye, nose, mouth, e.g. from the profile's landmarks via
``data_tools.protocol.patch_boxes``). The part outputs are zero-padded onto an S x S canvas at the
template positions (partCombiner) and merged by element-wise max (so, as in the official code,
negative values are clipped at 0 outside overlaps), then fused at full resolution. The template is
the official one unless ``template`` gives a data set's mean frontal landmarks (its faces are not
cropped like TP-GAN's aligned Multi-PIE, e.g. SynthPIE).

Our choices, for the elastic (sliceable) design: the two fully connected layers are written as
convolutions that compute exactly the same function (the identity fc as a valid S/16 x S/16
conv over the feat8 map; initial_8 as an S/16 x S/16 transposed conv on the 1x1 code, with one
bias per channel instead of one per output element: 4032 fewer parameters at g=64); the
official TF "SAME" padding is used (k2 at S/16 pads one pixel after); U-Net upsamplings are
cropped to their skip's size so odd patch sizes (20x20 eyes at 64x64) work.
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from data_tools.protocol import PATCH_SIZES_128, patch_boxes
from gancomp_lite.losses import crop_patches
from gancomp_lite.nn.blocks import SeparableConv2d
from gancomp_lite.nn.elastic import (ElasticBatchNorm2d, ElasticConv2d, ElasticConvTranspose2d, ElasticLinear,
                                     ElasticMixin, Layout)
from gancomp_lite.space import ChannelSpace, ConfigError

ARCH = "tpgan"
PARTS: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth")
# partCombiner's template centres (x, y) at 128x128 (official code); box top-left = centre - size/2 - 1.
TEMPLATE_CENTRES_128: dict[str, tuple[int, int]] = {
    "left_eye": (44, 41), "right_eye": (86, 41), "nose": (64, 65), "mouth": (65, 89),
}
TAPS: tuple[str, ...] = ("dec16", "dec32", "dec64", "recon128")
# Knobs of the two presets: the quick teacher trains on a 2-core CPU at 64x64 (1.83 GMACs, 9.2 M params;
# its smallest sub-network is 21x cheaper). The full one is the official 128x128 model (92.9 GMACs, 157.4 M).
PRESET_KNOBS: dict[str, dict[str, int]] = {"quick": {"base": 16, "step": 4}, "full": {"base": 64, "step": 8}}
# Layer groups the `separable` knob may name (seed paper section 3.2: any conv group may be depthwise +
# pointwise), each named after its channel group: an encoder stage's resblocks (enc*), a decoder stage's
# resblocks (dec16..dec64: its select resblock and two resblocks; sel128 = select128, dec128 = fuse128,
# recon128 = recon128's resblock), the part rotators' resblocks at one width (part64: c0, d3; part128: c1,
# d2; part256: c2, d1; part512: c3) or an upsampling deconv (up*). ``separable=True`` = every resblock group.
# The k2 resblocks at S/16 (TF-style asymmetric padding), the strided encoder convs, the to-image heads,
# the noise branch and the identity fc stay dense.
RESBLOCK_GROUPS: tuple[str, ...] = ("enc128", "enc64", "enc32", "enc16", "enc8", "dec16", "dec32", "dec64", "sel128",
                                    "dec128", "recon128", "part64", "part128", "part256", "part512")
UP_GROUPS: tuple[str, ...] = ("up16", "up32", "up64", "up128")
LAYER_GROUPS = RESBLOCK_GROUPS + UP_GROUPS


# --------------------------------------------------------------------------- widths
def separable_groups(separable: bool | str | Collection[str]) -> frozenset[str]:
    """The layer groups built separable: True = every resblock group, False = none, else the named groups."""
    if isinstance(separable, bool):
        return frozenset(RESBLOCK_GROUPS if separable else ())
    names = {separable} if isinstance(separable, str) else set(separable)
    unknown = sorted(names - set(LAYER_GROUPS))
    if unknown:
        raise ValueError(f"{ARCH}: cannot make {unknown} separable; layer groups are {list(LAYER_GROUPS)}")
    return frozenset(names)


def _noise_widths(base: int) -> tuple[int, int, int, int]:
    """initial_8, initial_32, initial_64, initial_128 widths (g, g/2, g/4, g/8): fixed, not searched."""
    return base, base // 2, base // 4, base // 8


def teacher_widths(base: int = 64, mirror_input: bool = True) -> dict[str, int]:
    """The official widths of every channel group at gf_dim = `base`."""
    if base < 8 or base % 8:
        raise ConfigError(f"{ARCH}: base (gf_dim) must be a positive multiple of 8, got {base}")
    g, img = base, 6 if mirror_input else 3
    _, n32, n64, n128 = _noise_widths(g)
    return {
        "enc128": g, "enc64": g, "enc32": 2 * g, "enc16": 4 * g, "enc8": 8 * g,
        "up16": 8 * g, "up32": 4 * g, "up64": 2 * g, "up128": g,
        "dec16": 12 * g,                               # [up16 || enc16]
        "dec32": 6 * g + img + n32,                    # [up32 || enc32 || img/4 || init32]
        "dec64": 3 * g + img + n64 + 3,                # [up64 || enc64 || img/2 || init64 || img32]
        "sel128": g + n128 + img,                      # [enc128 || init128 || img]
        "dec128": 3 * g + n128 + img + 6,              # [up128 || sel128 || parts || part images || img64]
        "recon128": g,
        "part64": g, "part128": 2 * g, "part256": 4 * g, "part512": 8 * g,
    }


def space(base: int = 64, mirror_input: bool = True, step: int = 8, min_width: int | None = None,
          **build_knobs) -> ChannelSpace:
    """TP-GAN's channel space: every group takes multiples of `step` from `min_width` (default `step`)
    up to its teacher width.

    `build_knobs` (z_dim, noise_std, num_classes, separable, template) shape the generator but not its channel groups.
    """
    return ChannelSpace.uniform(ARCH, teacher_widths(base, mirror_input), step=step, min_width=min_width)


Box = tuple[int, int, int, int]
Template = Sequence[float]


def part_boxes(size: int, template: Template | None = None) -> dict[str, Box]:
    """Template boxes (top, left, height, width) at `size`: the official 128x128 ones scaled by size/128.

    `template` replaces the official positions by 5 frontal landmarks (x1, y1, ..., x5, y5 in pixels at
    128x128: eyes, nose, mouth corners), e.g. the mean frontal landmarks of a data set that is not
    aligned like TP-GAN's Multi-PIE crops; boxes are then centred as in ``protocol.patch_boxes``.
    """
    scale = size / 128
    if template is not None:
        values = [float(v) for v in template]
        if len(values) != 10 or not all(math.isfinite(v) for v in values):
            raise ValueError(f"{ARCH} template must be 10 finite numbers (5 landmarks x, y at 128x128), got {template}")
        return patch_boxes([(values[2 * i] * scale, values[2 * i + 1] * scale) for i in range(5)], size)
    boxes = {}
    for part in PARTS:
        h128, w128 = PATCH_SIZES_128[part]
        cx, cy = TEMPLATE_CENTRES_128[part]
        h, w = round(h128 * scale), round(w128 * scale)
        top = min(max(round((cy - h128 / 2 - 1) * scale), 0), size - h)
        left = min(max(round((cx - w128 / 2 - 1) * scale), 0), size - w)
        boxes[part] = (top, left, h, w)
    return boxes


def template_from_landmarks(landmarks: torch.Tensor, size: int) -> tuple[float, ...]:
    """The `template` knob for a data set: the mean of its frontal 5-point landmarks (N, 5, 2) at `size`,
    rescaled to 128x128 and flattened (x1, y1, ..., x5, y5). Samples with unknown (NaN) points are skipped."""
    if landmarks.dim() != 3 or tuple(landmarks.shape[1:]) != (5, 2):
        raise ValueError(f"landmarks must have shape (N, 5, 2), got {tuple(landmarks.shape)}")
    known = landmarks[torch.isfinite(landmarks).all(dim=(1, 2))]
    if len(known) == 0:
        raise ValueError("no sample has all 5 landmarks; cannot compute a template")
    return tuple(round(v, 2) for v in (known.double().mean(0) * (128 / size)).flatten().tolist())


# --------------------------------------------------------------------------- patches and canvas
def landmark_boxes(landmarks: torch.Tensor, size: int, template: Template | None = None) -> torch.Tensor:
    """Per-sample part boxes (N, 4, 4) from 5-point landmarks (N, 5, 2) in pixels, for `crop_parts`.

    Boxes are centred on the points as in ``data_tools.protocol.patch_boxes``; a sample with an
    unknown (NaN) point gets the template boxes.
    """
    if landmarks.dim() != 3 or tuple(landmarks.shape[1:]) != (5, 2):
        raise ValueError(f"landmarks must have shape (N, 5, 2), got {tuple(landmarks.shape)}")
    fallback = [list(part_boxes(size, template)[p]) for p in PARTS]
    rows = []
    for points in landmarks.detach().cpu().tolist():
        if all(math.isfinite(v) for point in points for v in point):
            boxes = patch_boxes([tuple(point) for point in points], size)
            rows.append([list(boxes[p]) for p in PARTS])
        else:
            rows.append(fallback)
    return torch.tensor(rows, dtype=torch.long, device=landmarks.device)


def crop_parts(images: torch.Tensor, boxes: torch.Tensor | None = None,
               template: Mapping[str, Box] | None = None) -> dict[str, torch.Tensor]:
    """Cut the four part patches out of `images` (N, C, S, S).

    Without `boxes` every sample is cut at the template boxes (`template`, default `part_boxes(S)`);
    `boxes` (N, 4, 4) gives per-sample (top, left, h, w) for left eye, right eye, nose, mouth, whose
    sizes must be the template ones.
    """
    template = part_boxes(int(images.shape[-1])) if template is None else template
    if boxes is None:
        return {p: images[:, :, t:t + h, l:l + w] for p, (t, l, h, w) in template.items()}
    patches = crop_patches(images, boxes, PARTS)
    for part, patch in patches.items():
        _, _, h, w = template[part]
        if patch.shape[-2:] != (h, w):
            raise ValueError(f"{part} boxes are {tuple(patch.shape[-2:])}; TP-GAN's {part} patch is {h}x{w}")
    return patches


def combine_parts(parts: Mapping[str, torch.Tensor], size: int,
                  template: Mapping[str, Box] | None = None) -> torch.Tensor:
    """partCombiner: zero-pad each part onto an S x S canvas at its template box, merge by element-wise max."""
    merged = None
    for part, (top, left, h, w) in (part_boxes(size) if template is None else template).items():
        tensor = parts[part]
        if tensor.shape[-2:] != (h, w):
            raise ValueError(f"{part} output is {tuple(tensor.shape[-2:])}, expected {(h, w)} at size {size}")
        padded = F.pad(tensor, (left, size - left - w, top, size - top - h))
        merged = padded if merged is None else torch.maximum(merged, padded)
    return merged


# --------------------------------------------------------------------------- blocks
def conv(cin: Layout, cout: Layout, full: Mapping[str, int], k: int, stride: int = 1) -> nn.Module:
    """Conv with TF 'SAME' padding: even kernels (the k2 resblocks at S/16) pad one more pixel after."""
    if k % 2:
        return ElasticConv2d(cin, cout, full, k, stride, padding=k // 2)
    before = (k - 1) // 2
    return nn.Sequential(nn.ZeroPad2d((before, k - 1 - before, before, k - 1 - before)),
                         ElasticConv2d(cin, cout, full, k, stride, padding=0))


class ConvBlock(nn.Sequential):
    """conv -> optional BN -> activation ("lrelu", "relu", "tanh" or None)."""

    def __init__(self, cin: Layout, cout: Layout, full: Mapping[str, int], k: int = 3, stride: int = 1,
                 bn: bool = True, act: str | None = "lrelu", transposed: bool = False, separable: bool = False) -> None:
        if separable:    # depthwise k x k (transposed: it upsamples 2x) - BN - pointwise 1x1
            layers: list[nn.Module] = [SeparableConv2d(cin, cout, full, k, 2 if transposed else stride,
                                                       transposed=transposed, norm="batch")]
        elif transposed:   # 3x3, stride 2: doubles the resolution
            layers = [ElasticConvTranspose2d(cin, cout, full, k, stride=2, padding=1, output_padding=1)]
        else:
            layers = [conv(cin, cout, full, k, stride)]
        if bn:
            layers.append(ElasticBatchNorm2d(cout, full))
        layers += {"lrelu": [nn.LeakyReLU(0.2)], "relu": [nn.ReLU()], "tanh": [nn.Tanh()], None: []}[act]
        super().__init__(*layers)


class ResBlock(nn.Module):
    """TP-GAN's resblock: conv-BN-lrelu-conv-BN, add the input, lrelu. `hidden` is the inner width group.

    `separable` builds both convs as depthwise k x k - BN - pointwise 1x1 (the design-space option of
    the seed paper section 3.2); the tiny k2 blocks at S/16 stay dense.
    """

    def __init__(self, trunk: Layout, full: Mapping[str, int], k: int = 3, hidden: Layout | None = None,
                 separable: bool = False) -> None:
        super().__init__()
        hidden = trunk if hidden is None else hidden
        if separable and k % 2:
            self.conv1 = SeparableConv2d(trunk, hidden, full, k, norm="batch")
            self.conv2 = SeparableConv2d(hidden, trunk, full, k, norm="batch")
        else:
            self.conv1, self.conv2 = conv(trunk, hidden, full, k), conv(hidden, trunk, full, k)
        self.bn1 = ElasticBatchNorm2d(hidden, full)
        self.bn2 = ElasticBatchNorm2d(trunk, full)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn1(self.conv1(x)), 0.2)
        return F.leaky_relu(x + self.bn2(self.conv2(h)), 0.2)


def _crop_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x[..., :like.shape[-2], :like.shape[-1]]


class PartRotator(nn.Module):
    """One local pathway: a U-Net from a profile part patch to (part feature, frontal part image)."""

    def __init__(self, full: Mapping[str, int], in_channels: int = 3, separable: Collection[str] = ()) -> None:
        super().__init__()

        def res(width: str) -> ResBlock:
            return ResBlock(width, full, separable=width in separable)

        self.c0 = nn.Sequential(ConvBlock(in_channels, "part64", full, bn=False), res("part64"))
        self.c1 = nn.Sequential(ConvBlock("part64", "part128", full, stride=2), res("part128"))
        self.c2 = nn.Sequential(ConvBlock("part128", "part256", full, stride=2), res("part256"))
        self.c3 = nn.Sequential(ConvBlock("part256", "part512", full, stride=2),
                                res("part512"), res("part512"))
        self.up1 = ConvBlock("part512", "part256", full, transposed=True)
        self.d1 = nn.Sequential(ConvBlock(("part256", "part256"), "part256", full), res("part256"))
        self.up2 = ConvBlock("part256", "part128", full, transposed=True)
        self.d2 = nn.Sequential(ConvBlock(("part128", "part128"), "part128", full), res("part128"))
        self.up3 = ConvBlock("part128", "part64", full, transposed=True)
        self.d3 = nn.Sequential(ConvBlock(("part64", "part64"), "part64", full), res("part64"))
        self.to_image = ConvBlock("part64", 3, full, bn=False, act="tanh")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s0 = self.c0(x)
        s1 = self.c1(s0)
        s2 = self.c2(s1)
        h = self.c3(s2)
        h = self.d1(torch.cat([_crop_to(self.up1(h), s2), s2], 1))
        h = self.d2(torch.cat([_crop_to(self.up2(h), s1), s1], 1))
        feature = self.d3(torch.cat([_crop_to(self.up3(h), s0), s0], 1))
        return feature, self.to_image(feature)


class Encoder(nn.Module):
    """Global encoder: one resblock per stage, four at S/16, then the maxout identity feature."""

    def __init__(self, full: Mapping[str, int], size: int, in_channels: int, feature_dim: int,
                 separable: Collection[str] = ()) -> None:
        super().__init__()

        def res(width: str, k: int = 3) -> ResBlock:
            return ResBlock(width, full, k, separable=width in separable)

        self.c0 = nn.Sequential(ConvBlock(in_channels, "enc128", full, 7, bn=False), res("enc128", 7))
        self.c1 = nn.Sequential(ConvBlock("enc128", "enc64", full, 5, stride=2), res("enc64", 5))
        self.c2 = nn.Sequential(ConvBlock("enc64", "enc32", full, stride=2), res("enc32"))
        self.c3 = nn.Sequential(ConvBlock("enc32", "enc16", full, stride=2), res("enc16"))
        self.c4 = nn.Sequential(ConvBlock("enc16", "enc8", full, stride=2), *[res("enc8") for _ in range(4)])
        # the official linear over the flattened S/16 x S/16 map, as a valid conv covering the whole map
        self.fc = ElasticConv2d("enc8", 2 * feature_dim, full, size // 16, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = []
        for stage in (self.c0, self.c1, self.c2, self.c3, self.c4):
            x = stage(x)
            feats.append(x)
        code = self.fc(x).flatten(1)
        first, second = code.chunk(2, dim=1)
        return feats, torch.maximum(first, second)    # maxout: the identity feature


class Decoder(nn.Module):
    """Global decoder with the noise branch, the select resblocks and the fusion of the local pathway."""

    def __init__(self, full: Mapping[str, int], size: int, base: int, img: int, feature_dim: int, z_dim: int,
                 separable: Collection[str] = ()) -> None:
        super().__init__()

        def res(group: str, trunk: Layout, k: int = 3, hidden: Layout | None = None) -> ResBlock:
            return ResBlock(trunk, full, k, hidden, separable=group in separable)

        def up(cin: Layout, group: str) -> ConvBlock:
            return ConvBlock(cin, group, full, act="relu", transposed=True, separable=group in separable)

        n8, n32, n64, n128 = _noise_widths(base)
        self.initial8 = ElasticConvTranspose2d(feature_dim + z_dim, n8, full, size // 16, stride=1, padding=0,
                                               output_padding=0)
        self.initial32 = ElasticConvTranspose2d(n8, n32, full, 3, stride=4, padding=0, output_padding=1)
        self.initial64 = ElasticConvTranspose2d(n32, n64, full, 3)
        self.initial128 = ElasticConvTranspose2d(n64, n128, full, 3)

        t8 = (n8, "enc8")
        self.dec8 = nn.Sequential(*[ResBlock(t8, full, 2) for _ in range(3)])     # select8 + 2 resblocks
        self.up16 = up(t8, "up16")
        self.select16 = res("dec16", "enc16")
        t16 = ("up16", "enc16")
        self.dec16 = nn.Sequential(res("dec16", t16, hidden="dec16"), res("dec16", t16, hidden="dec16"))

        self.up32 = up(t16, "up32")
        s32 = ("enc32", img, n32)
        self.select32 = res("dec32", s32)
        t32 = ("up32",) + s32
        self.dec32 = nn.Sequential(res("dec32", t32, hidden="dec32"), res("dec32", t32, hidden="dec32"))
        self.img32 = ConvBlock(t32, 3, full, bn=False, act="tanh")

        self.up64 = up(t32, "up64")
        s64 = ("enc64", img, n64)
        self.select64 = res("dec64", s64, 5)
        t64 = ("up64",) + s64 + (3,)
        self.dec64 = nn.Sequential(res("dec64", t64, hidden="dec64"), res("dec64", t64, hidden="dec64"))
        self.img64 = ConvBlock(t64, 3, full, bn=False, act="tanh")

        self.up128 = up(t64, "up128")
        s128 = ("enc128", n128, img)
        self.select128 = res("sel128", s128, 7, hidden="sel128")
        t128 = ("up128",) + s128 + ("part64", 3, 3)
        self.fuse128 = res("dec128", t128, 5, hidden="dec128")
        self.recon128 = nn.Sequential(ConvBlock(t128, "recon128", full, 5), res("recon128", "recon128"))
        self.tail = ConvBlock("recon128", base // 2, full)
        self.img128 = ConvBlock(base // 2, 3, full, bn=False, act="tanh")

    def forward(self, feats: list[torch.Tensor], code: torch.Tensor, images: list[torch.Tensor],
                part_features: torch.Tensor, part_images: torch.Tensor) -> dict[str, torch.Tensor]:
        feat128, feat64, feat32, feat16, feat8 = feats
        img128in, img64in, img32in = images
        initial8 = F.relu(self.initial8(code[:, :, None, None]))
        initial32 = F.relu(self.initial32(initial8))
        initial64 = F.relu(self.initial64(initial32))
        initial128 = F.relu(self.initial128(initial64))

        h8 = self.dec8(torch.cat([initial8, feat8], 1))
        h16 = self.dec16(torch.cat([self.up16(h8), self.select16(feat16)], 1))
        h32 = self.dec32(torch.cat([self.up32(h16), self.select32(torch.cat([feat32, img32in, initial32], 1))], 1))
        img32 = self.img32(h32)
        up_img32 = F.interpolate(img32, scale_factor=2, mode="bilinear", align_corners=False)
        h64 = self.dec64(torch.cat([self.up64(h32), self.select64(torch.cat([feat64, img64in, initial64], 1)),
                                    up_img32], 1))
        img64 = self.img64(h64)
        up_img64 = F.interpolate(img64, scale_factor=2, mode="bilinear", align_corners=False)
        sel128 = self.select128(torch.cat([feat128, initial128, img128in], 1))
        h128 = self.fuse128(torch.cat([self.up128(h64), sel128, part_features, part_images, up_img64], 1))
        recon = self.recon128(h128)
        image = self.img128(self.tail(recon))
        return {"image": image, "image_s2": img64, "image_s4": img32,
                "feat:dec16": h16, "feat:dec32": h32, "feat:dec64": h64, "feat:recon128": recon}


# --------------------------------------------------------------------------- the generator
@torch.no_grad()
def init_weights(model: nn.Module) -> None:
    """TP-GAN's initialisation: conv/linear weights N(0, 0.02) and zero biases, BN at identity."""
    for module in model.modules():
        if isinstance(module, (ElasticConv2d, ElasticConvTranspose2d, ElasticLinear)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, ElasticBatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class TPGAN(nn.Module):
    """TP-GAN generator: `forward(x, boxes=None)` -> frontal image; `forward_all` -> every named output.

    Args:
        config: width per channel group (None: the official widths at `base`).
        size: image side S (a multiple of 16, at least 32).
        base: gf_dim (official 64); every width scales with it.
        mirror_input: feed [x || mirror(x)] (6 channels) to the global pathway, as the official code.
        z_dim, noise_std: the noise vector (official 100-d, N(0, 0.02)); zero in eval mode so that
            evaluation is deterministic, or pass `z` explicitly.
        num_classes: > 0 adds the identity classifier head (dropout 0.7 + linear) on the identity feature.
        separable: layer groups (`LAYER_GROUPS`) whose convs become depthwise + BN + pointwise, or True for
            every resblock group (not in the official model; the design space of the seed paper section 3.2).
        template: 5 frontal landmarks at 128x128 (10 numbers) placing the part boxes instead of the
            official positions (see `part_boxes`).
    """

    taps = TAPS

    def __init__(self, config: Mapping[str, int] | None = None, size: int = 128, base: int = 64,
                 mirror_input: bool = True, z_dim: int = 100, noise_std: float = 0.02, num_classes: int = 0,
                 separable: bool | Collection[str] = False, template: Template | None = None) -> None:
        super().__init__()
        self.separable = separable_groups(separable)
        if size < 32 or size % 16:
            raise ValueError(f"{ARCH}: size must be a multiple of 16 and at least 32, got {size}")
        teacher = teacher_widths(base, mirror_input)
        full = dict(teacher if config is None else config)
        missing = sorted(set(teacher) - set(full))
        if missing:
            raise ConfigError(f"{ARCH} config is missing channel groups {missing}")
        self.size, self.base, self.mirror_input = size, base, mirror_input
        self.z_dim, self.noise_std, self.feature_dim = z_dim, noise_std, 4 * base
        self.template = None if template is None else tuple(float(v) for v in template)
        self.template_boxes = part_boxes(size, self.template)
        self.config = {name: int(full[name]) for name in teacher}
        img = 6 if mirror_input else 3
        self.rotators = nn.ModuleDict({p: PartRotator(full, 6 if p == "right_eye" else 3, self.separable) for p in PARTS})
        self.encoder = Encoder(full, size, img, self.feature_dim, self.separable)
        self.decoder = Decoder(full, size, base, img, self.feature_dim, z_dim, self.separable)
        self.classifier = (nn.Sequential(nn.Dropout(0.7), ElasticLinear(self.feature_dim, num_classes, full))
                           if num_classes > 0 else None)
        self._tap_layers: dict[str, ElasticMixin] = {
            "dec16": self.decoder.dec16[-1].bn2, "dec32": self.decoder.dec32[-1].bn2,
            "dec64": self.decoder.dec64[-1].bn2, "recon128": self.decoder.recon128[-1].bn2,
        }
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Official initialisation: weights N(0, 0.02), biases 0 (0.1 for the two fully connected layers).

        Skipped on the meta device (shapes only, for cost counting), where random init is slow.
        """
        if self.encoder.fc.weight.is_meta:
            return
        init_weights(self)
        nn.init.constant_(self.encoder.fc.bias, 0.1)
        nn.init.constant_(self.decoder.initial8.bias, 0.1)

    def tap_channels(self, config: Mapping[str, int] | None = None) -> dict[str, int]:
        """Channels of each distillation tap at `config` (None: this model's own widths)."""
        widths = {}
        for name, layer in self._tap_layers.items():
            widths[name] = (sum(w for _, w in layer.out_parts) if config is None
                                      else layer.out_width(config))
        return widths

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (3, self.size, self.size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"{ARCH} expects images of shape (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return torch.randn(x.shape[0], self.z_dim, device=x.device, dtype=x.dtype) * self.noise_std
        return x.new_zeros(x.shape[0], self.z_dim)

    def forward_all(self, x: torch.Tensor, boxes: torch.Tensor | None = None,
                    z: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """All outputs: images at S, S/2, S/4, the four part images, the identity feature (and logits), taps."""
        self._check_input(x)
        patches = crop_parts(x, boxes, self.template_boxes)
        part_features, part_images = {}, {}
        for part in PARTS:
            patch = patches[part]
            if part == "right_eye":
                patch = torch.cat([patch, patches["left_eye"]], 1)
            part_features[part], part_images[part] = self.rotators[part](patch)

        full_in = torch.cat([x, x.flip(-1)], 1) if self.mirror_input else x
        half_in = F.interpolate(full_in, scale_factor=0.5, mode="bilinear", align_corners=False)
        quarter_in = F.interpolate(full_in, scale_factor=0.25, mode="bilinear", align_corners=False)
        feats, identity = self.encoder(full_in)
        z = self._noise(x) if z is None else z
        if tuple(z.shape) != (x.shape[0], self.z_dim):
            raise ValueError(f"{ARCH}: z must have shape ({x.shape[0]}, {self.z_dim}), got {tuple(z.shape)}")
        out = self.decoder(feats, torch.cat([identity, z], 1), [full_in, half_in, quarter_in],
                           combine_parts(part_features, self.size, self.template_boxes),
                           combine_parts(part_images, self.size, self.template_boxes))
        out.update({f"patch_{part}": part_images[part] for part in PARTS})
        out["identity_feature"] = identity
        if self.classifier is not None:
            out["identity_logits"] = self.classifier(identity)
        return out

    def forward(self, x: torch.Tensor, boxes: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_all(x, boxes)["image"]

    def frontalize(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Frontalize a data batch as TP-GAN is trained and tested: the parts are cropped around the
        profile's own landmarks (batch "landmarks"; template boxes where a point is unknown or the
        batch has none). The evaluation protocol calls this."""
        landmarks = batch.get("landmarks")
        boxes = None if landmarks is None else landmark_boxes(landmarks, self.size, self.template)
        return self(batch["profile"], boxes)


def build(config: Mapping[str, int] | None, size: int, base: int = 64, mirror_input: bool = True, step: int = 8,
          z_dim: int = 100, noise_std: float = 0.02, num_classes: int = 0, separable: bool | Collection[str] = False,
          template: Template | None = None, min_width: int | None = None) -> TPGAN:
    """TP-GAN at `config` (validated against `space(base, mirror_input, step, min_width)`; None: the official
    widths)."""
    if config is not None:
        config = space(base, mirror_input, step, min_width).validate(config)
    return TPGAN(config, size, base, mirror_input, z_dim, noise_std, num_classes, separable, template)

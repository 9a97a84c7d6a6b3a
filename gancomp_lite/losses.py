"""Losses, one small function per equation.

Numbering follows the seed paper (Wei, Qiu, Zhang 2021, section 3.1; see seed-notes.md):

- eq. 1  GAN minimax            `discriminator_loss`, `generator_loss` (modes bce / lsgan / hinge / wgan)
- eq. 2  paired reconstruction  `reconstruction_loss` (L1)
- eq. 3  conditional GAN        the same two functions on D(x, y) logits; `conditional_pair` builds (x, y)
- eq. 4  distillation           `distillation_loss` (the 1x1 adapters live in `gancomp_lite.distill`)
- eq. 5  total                  assembled by the recipes (`gancomp_lite.recipes`)

Then the teachers' own terms: TP-GAN (Huang et al. 2017) multi-scale pixel, symmetry, identity
preserving, identity cross-entropy, total variation, local patch L1 with `TPGANLossWeights`;
CR-GAN (Tian et al. 2018) WGAN-GP gradient penalty and view classification; PIM (Zhao et al.
2018) domain-adversarial alignment through gradient reversal. Sources: reference/frontalization.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

GAN_MODES = ("bce", "lsgan", "hinge", "wgan")
PATCH_PARTS = ("left_eye", "right_eye", "nose", "mouth")  # order of the 4 boxes in a batch's "boxes"


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown GAN loss mode {mode!r}; choose one of {GAN_MODES}")


# ============================================================ eq. 1-3: the adversarial game
def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, mode: str = "bce", real_label: float = 1.0) -> torch.Tensor:
    """D's side of eq. 1 / eq. 3: minimise -[log D(real) + log(1 - D(fake))] and its variants.

    - ``bce``: sigmoid cross-entropy, the equation itself. `real_label` < 1 is one-sided label
      smoothing (TP-GAN uses 0.9); fake targets stay 0.
    - ``lsgan``: (D(real) - real_label)^2 + D(fake)^2 (Mao et al.).
    - ``hinge``: relu(1 - D(real)) + relu(1 + D(fake)) (GAN Compression's pix2pix default).
    - ``wgan``: D(fake) - D(real), the critic of WGAN(-GP); add `gradient_penalty` yourself.

    Logits may be per-image (N,) or a PatchGAN map (N,1,h,w); all entries are averaged.
    """
    _check_mode(mode)
    if mode == "bce":
        real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
    if mode == "lsgan":
        return ((real_logits - real_label) ** 2).mean() + (fake_logits ** 2).mean()
    if mode == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    return fake_logits.mean() - real_logits.mean()


def generator_loss(fake_logits: torch.Tensor, mode: str = "bce", real_label: float = 1.0) -> torch.Tensor:
    """G's side of eq. 1 / eq. 3, in the non-saturating form: make D call the fakes real.

    Minimising log(1 - D(G(x))) as written in eq. 1 gives vanishing gradients early on, so,
    as Goodfellow et al. advise and every frontalization code does, G minimises -log D(G(x))
    (``bce``, target `real_label`, 0.9 in TP-GAN), (D(G(x)) - 1)^2 (``lsgan``) or -D(G(x))
    (``hinge`` and ``wgan``).
    """
    _check_mode(mode)
    if mode == "bce":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.full_like(fake_logits, real_label))
    if mode == "lsgan":
        return ((fake_logits - real_label) ** 2).mean()
    return -fake_logits.mean()


def conditional_pair(condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The input of the conditional D(x, y) of eq. 3: the profile x and an image y stacked on channels."""
    if condition.shape[0] != image.shape[0] or condition.shape[2:] != image.shape[2:]:
        raise ValueError(f"conditional pair: condition {tuple(condition.shape)} and image {tuple(image.shape)} must share N, H, W")
    return torch.cat([condition, image], dim=1)


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 2: E ||G(x) - y||_1, the mean absolute difference to the paired frontal face."""
    _same_shape("reconstruction", output, target)
    return F.l1_loss(output, target)


# ============================================================ eq. 4: distillation
def distillation_loss(teacher_feats: Mapping[str, torch.Tensor], mapped_student_feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 4: sum over taps t of MSE(G_t(x), f_t(G'_t(x))); the student features are already mapped by f_t.

    MSE with mean reduction per tap, as GAN Compression's code (the paper writes an L2 norm).
    Teacher features are detached: the teacher is fixed.
    """
    if set(teacher_feats) != set(mapped_student_feats) or not teacher_feats:
        raise ValueError(f"distillation taps differ: teacher {sorted(teacher_feats)} vs student {sorted(mapped_student_feats)}")
    total = 0.0
    for name, teacher in teacher_feats.items():
        student = mapped_student_feats[name]
        _same_shape(f"distillation tap {name!r}", student, teacher)
        total = total + F.mse_loss(student, teacher.detach())
    return total


# ============================================================ TP-GAN
@dataclass(frozen=True)
class TPGANLossWeights:
    """TP-GAN's loss weights: L_syn = L_pixel + λ1 L_sym + λ2 L_adv + λ3 L_ip + λ4 L_tv (+ λ_ce L_ce).

    Sources (reference/frontalization.md 1.7):
    - ``sym`` 0.3, ``adv`` 1e-3, ``ip`` 3e-3, ``tv`` 1e-4: the paper's λ1..λ4 (as corroborated by
      sumandroid12/pytorch-TP-GAN config.py; the paper text itself is unverified here).
    - ``scales`` (1, 1, 1.5) for the 128/64/32 outputs, ``ce`` 10, ``local`` 3: the official code
      (HRLTY/TP-GAN TP_GAN-Mar6FS.py), also used by the sumandroid12 config.
    The official code's own adv 20 / ip 40 / tv 1e-3 go with its sum-over-pixels normalisation;
    our terms are means as in the paper's equations, so the paper's λ are the defaults.
    """

    scales: tuple[float, float, float] = (1.0, 1.0, 1.5)
    sym: float = 0.3
    adv: float = 1e-3
    ip: float = 3e-3
    tv: float = 1e-4
    ce: float = 10.0
    local: float = 3.0


def multiscale_pixel_loss(outputs: Sequence[torch.Tensor], target: torch.Tensor, weights: Sequence[float] = (1.0, 1.0, 1.5)) -> torch.Tensor:
    """TP-GAN's L_pixel: weighted L1 of each output scale (S, S/2, S/4) to the bilinearly resized frontal."""
    if len(outputs) != len(weights):
        raise ValueError(f"multi-scale pixel loss: {len(outputs)} outputs but {len(weights)} scale weights")
    total = 0.0
    for output, weight in zip(outputs, weights):
        resized = _resize(target, output.shape[-2:])
        total = total + weight * reconstruction_loss(output, resized)
    return total


LAPLACIAN_KERNEL = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """The fixed 3x3 Laplacian (official `ops.gradientweight`) applied to each channel, zero padding."""
    channels = image.shape[1]
    kernel = LAPLACIAN_KERNEL.to(image).expand(channels, 1, 3, 3)
    return F.conv2d(image, kernel, padding=1, groups=channels)


def symmetry_loss(image: torch.Tensor) -> torch.Tensor:
    """TP-GAN's L_sym: mean |I(x, y) - I(W - 1 - x, y)| over the left half.

    As in the official `symL1`, the left half is a stop-gradient target and the mirrored right
    half is pulled towards it.
    """
    width = image.shape[-1]
    half = width // 2
    left = image[..., :half].detach()
    mirrored_right = image.flip(-1)[..., :half]
    return F.l1_loss(mirrored_right, left)


def tpgan_symmetry_loss(outputs: Sequence[torch.Tensor], weights: Sequence[float] = (1.0, 1.0, 1.5)) -> torch.Tensor:
    """Symmetry over TP-GAN's three scales, as the official code applies it.

    Full scale: on ``avg_pool2x2(image)``. The two smaller scales: on the image concatenated with
    its Laplacian ("symmetry in Laplacian space", robust to illumination). Scale weights as L_pixel.
    """
    if len(outputs) != len(weights):
        raise ValueError(f"symmetry loss: {len(outputs)} outputs but {len(weights)} scale weights")
    total = weights[0] * symmetry_loss(F.avg_pool2d(outputs[0], 2))
    for output, weight in zip(outputs[1:], weights[1:]):
        total = total + weight * symmetry_loss(torch.cat([output, laplacian(output)], dim=1))
    return total


def identity_preserving_loss(fake_feats: Mapping[str, torch.Tensor], real_feats: Mapping[str, torch.Tensor], layers: Sequence[str] = ("fc", "last_conv")) -> torch.Tensor:
    """TP-GAN's L_ip: L1 between the identity network's features of G(x) and of the frontal y.

    The last two layers ("fc" and "last_conv" of `LightCNN.features`). As in the paper, each layer
    contributes the L1 distance between the feature *vectors* at each position (a sum over
    channels), averaged over its W_i x H_i positions (and the batch); the fc layer has one
    position. The paper's lambda_ip = 3e-3 goes with this scale: averaging over channels as well
    would shrink the term by the channel count (256 for fc) to well under 1% of L_syn, and the
    generator would all but ignore identity. Real features are detached.
    """
    total = 0.0
    for layer in layers:
        if layer not in fake_feats or layer not in real_feats:
            raise KeyError(f"identity-preserving loss needs feature {layer!r}; got {sorted(fake_feats)} and {sorted(real_feats)}")
        _same_shape(f"identity feature {layer!r}", fake_feats[layer], real_feats[layer])
        total = total + (fake_feats[layer] - real_feats[layer].detach()).abs().sum(dim=1).mean()
    return total


def identity_ce_loss(logits: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
    """TP-GAN's identity cross-entropy on the encoder's identity classifier (official weight 10)."""
    return F.cross_entropy(logits, identity)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """TP-GAN's L_tv: anisotropic total variation, summed over C, H, W as in the paper, mean over the batch."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().sum(dim=(1, 2, 3))
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().sum(dim=(1, 2, 3))
    return (dx + dy).mean()


def crop_patches(image: torch.Tensor, boxes: torch.Tensor, parts: Sequence[str] = PATCH_PARTS) -> dict[str, torch.Tensor]:
    """Cut each part's box (top, left, h, w) out of every image: ``{part: (N, C, h, w)}``.

    `boxes` is (N, 4, 4) int in `PATCH_PARTS` order; boxes of one part must share h and w.
    """
    if boxes.dim() != 3 or boxes.shape[0] != image.shape[0] or boxes.shape[1:] != (len(parts), 4):
        raise ValueError(f"boxes must be (N={image.shape[0]}, {len(parts)}, 4) as (top, left, h, w); got {tuple(boxes.shape)}")
    size_h, size_w = image.shape[-2:]
    crops: dict[str, torch.Tensor] = {}
    for k, part in enumerate(parts):
        part_boxes = boxes[:, k].tolist()
        heights = {b[2] for b in part_boxes}
        widths = {b[3] for b in part_boxes}
        if len(heights) != 1 or len(widths) != 1:
            raise ValueError(f"{part} boxes must share one size in a batch; got heights {heights}, widths {widths}")
        for top, left, h, w in part_boxes:
            if top < 0 or left < 0 or top + h > size_h or left + w > size_w:
                raise ValueError(f"{part} box (top={top}, left={left}, h={h}, w={w}) leaves the {size_h}x{size_w} image")
        crops[part] = torch.stack([image[i, :, t:t + h, l:l + w] for i, (t, l, h, w) in enumerate(part_boxes)])
    return crops


def local_patch_loss(outputs: Mapping[str, torch.Tensor], frontal: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """TP-GAN's local pathway loss: sum over the 4 parts of L1(patch output, frontal cropped by its box).

    `outputs` holds ``patch_left_eye``, ``patch_right_eye``, ``patch_nose``, ``patch_mouth``
    (the generator's `forward_all`); weight it with `TPGANLossWeights.local` (3, official).
    """
    targets = crop_patches(frontal, boxes)
    total = 0.0
    for part, target in targets.items():
        key = f"patch_{part}"
        if key not in outputs:
            raise KeyError(f"local patch loss needs output {key!r}; the generator returned {sorted(outputs)}")
        _same_shape(f"patch {part!r} (output vs frontal crop)", outputs[key], target)
        total = total + F.l1_loss(outputs[key], target)
    return total


# ============================================================ CR-GAN
def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al.), CR-GAN's D regulariser: E[(||grad_x D(x_hat)||_2 - 1)^2].

    x_hat is a random per-sample interpolation of real and fake; the norm is per sample (CR-GAN's
    code takes one norm over the whole batch, a quirk we do not copy). Weight 10 in CR-GAN.
    Under DDP pass the critic's raw module (`Recipe.raw`), see `Recipe.raw`.
    """
    _same_shape("gradient penalty", real, fake)
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    if generator is None:
        alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
    else:
        alpha = torch.rand(shape, generator=generator).to(real)
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grads.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()


def view_classification_loss(view_logits: torch.Tensor, view_index: torch.Tensor) -> torch.Tensor:
    """CR-GAN's view loss: cross-entropy of D's (or E's) view classifier against the view index."""
    return F.cross_entropy(view_logits, view_index)


# ============================================================ PIM
class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def grad_reverse(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient times -`scale` backward (Ganin & Lempitsky): one loss trains both sides."""
    return _GradientReversal.apply(x, scale)


def domain_adversarial_loss(source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """PIM's cross-domain term (our generic form): a domain classifier tells source (1) from target (0).

    Feed it features passed through `grad_reverse`, so minimising this loss trains the classifier
    while pushing the feature extractor to make the two domains indistinguishable.
    """
    return discriminator_loss(source_logits, target_logits, mode="bce")


# ============================================================ helpers
def _resize(image: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=tuple(size), mode="bilinear", align_corners=False)


def _same_shape(what: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")

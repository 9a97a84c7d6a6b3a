"""TP-GAN's objective (Huang et al., ICCV 2017), with an optional distillation term (eq. 4).

    L_D   = BCE(D(y), 0.9) + BCE(D(G(x)), 0)                                 (one-sided smoothing)
    L_syn = sum_s w_s (L1_s + lambda_sym Sym_s)        s = S, S/2, S/4; w = 1, 1, 1.5
          + lambda_adv BCE(D(G(x)), 0.9) + lambda_ip L_ip + lambda_tv TV(G(x))
          + lambda_ce CE(identity logits, id) + lambda_local sum_parts L1(part, frontal part)
          [+ lambda_distill sum_t MSE(T_t(x), f_t(G_t(x)))]

Terms come from `gancomp_lite.losses` with `TPGANLossWeights` (the paper's lambdas; means, not
the official code's pixel sums). From the official code (HRLTY/TP-GAN): the label smoothing, the
symmetry in Laplacian space, the identity-preserving L1 on the identity net's last two layers, G
updated `g_steps` = 2 times per D update, Adam lr 1e-4, beta1 0.9 (`OFFICIAL_OPTIM`).

Our choices: the official code steps a second Adam on the rotators with the local loss alone;
here the local loss joins L_syn in one backward and one Adam (the rotators get the same
gradients, only Adam's per-parameter scaling differs), which keeps DistributedDataParallel's
single reduction per step. Profile patches are cut at the profile's landmarks when the batch has
them (``landmarks``, NaN = unknown -> template boxes), frontal target patches at the batch's
``patch_boxes``. The identity-preserving and cross-entropy terms are used when an identity net
is given and when G has an identity classifier (``num_classes``), respectively.

The quick teacher deviates from the paper's lambdas (`gancomp_lite.teachers.PIXEL_LED_TPGAN`):
with ip 3e-3 the identity term was three times the pixel term on our small identity network and
TP-GAN drew grey, striped faces that the loss network liked; a tenth of it, with the part and TV
terms at the official code's balance, draws the person in colour (docs/teachers.md, section 2).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from gancomp_lite.distill import FeatureAdapters, distill_loss, feature_taps
from gancomp_lite.losses import (
    TPGANLossWeights,
    conditional_pair,
    discriminator_loss,
    generator_loss,
    identity_ce_loss,
    identity_preserving_loss,
    local_patch_loss,
    multiscale_pixel_loss,
    total_variation,
    tpgan_symmetry_loss,
)
from gancomp_lite.models.lightcnn import to_identity_input
from gancomp_lite.models.tpgan import TPGAN, landmark_boxes
from gancomp_lite.recipes.base import OptimConfig, Recipe

OFFICIAL_OPTIM = OptimConfig(lr=1e-4, betas=(0.9, 0.999))
BOX_KEYS = ("patch_boxes", "boxes")       # the dataset's name, then the generator contract's


class TPGANRecipe(Recipe):
    """Modules "G" (TPGAN), "D" (a patch discriminator), optional frozen "I" (identity net), "T" + "A".

    Batches need "profile", "frontal" and the frontal part boxes ("patch_boxes" or "boxes");
    "landmarks" (profile points) and "identity" are used when present.
    `conditional_d` feeds D the pair [profile || image] (eq. 3) instead of the image alone (TP-GAN).
    """

    name = "tpgan"

    def __init__(self, generator: TPGAN, discriminator: nn.Module, identity_net: nn.Module | None = None, *,
                 weights: TPGANLossWeights = TPGANLossWeights(), gan_mode: str = "bce", real_label: float = 0.9,
                 g_steps: int = 2, conditional_d: bool = False, teacher: nn.Module | None = None,
                 adapters: FeatureAdapters | None = None, lambda_distill: float = 1.0):
        super().__init__()
        if (teacher is None) != (adapters is None):
            raise ValueError("distillation needs both a teacher and its adapters (see gancomp_lite.distill.build_adapters)")
        if g_steps < 1:
            raise ValueError(f"g_steps must be >= 1, got {g_steps}")
        self.weights, self.gan_mode, self.real_label = weights, gan_mode, float(real_label)
        self.g_steps, self.conditional_d, self.lambda_distill = int(g_steps), bool(conditional_d), float(lambda_distill)
        self.size = generator.size
        self.add_module("G", generator)
        self.add_module("D", discriminator)
        self.use_identity = identity_net is not None
        if self.use_identity:
            self.add_module("I", identity_net, trainable=False)
        self.distilling = teacher is not None
        self.taps: list[str] = []
        if self.distilling:
            self.add_module("T", teacher, trainable=False)
            self.add_module("A", adapters)
            self.taps = list(adapters.keys())

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G", "A"] if self.distilling else ["G"], optim)
        self.add_optimizer("D", ["D"], optim)

    # ----------------------------------------------------------------- pieces
    def _frontal_boxes(self, batch: dict[str, Any]) -> torch.Tensor:
        for key in BOX_KEYS:
            if key in batch:
                return batch[key]
        raise KeyError(f"TP-GAN's local loss needs the frontal part boxes under one of {BOX_KEYS}; "
                       f"the batch has {sorted(batch)}")

    def _profile_boxes(self, batch: dict[str, Any]) -> torch.Tensor | None:
        landmarks = batch.get("landmarks")
        return None if landmarks is None else landmark_boxes(landmarks, self.size, self.raw("G").template)

    def _d_input(self, profile: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return conditional_pair(profile, image) if self.conditional_d else image

    def _identity_features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.raw("I")
        return net.features(to_identity_input(image, net.input_size))

    def _generator_terms(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any],
                         frontal_boxes: torch.Tensor, profile_boxes: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Each weighted term of L_syn (and of eq. 4), by name."""
        w = self.weights
        profile, frontal, fake = batch["profile"], batch["frontal"], outputs["image"]
        scales = [fake, outputs["image_s2"], outputs["image_s4"]]
        terms = {
            "pixel": multiscale_pixel_loss(scales, frontal, w.scales),
            "sym": w.sym * tpgan_symmetry_loss(scales, w.scales),
            "adv": w.adv * generator_loss(self.run("D", self._d_input(profile, fake)), self.gan_mode, self.real_label),
            "tv": w.tv * total_variation(fake),
            "local": w.local * local_patch_loss(outputs, frontal, frontal_boxes),
        }
        if self.use_identity:
            with torch.no_grad():
                real_feats = self._identity_features(frontal)
            terms["ip"] = w.ip * identity_preserving_loss(self._identity_features(fake), real_feats)
        if "identity_logits" in outputs and "identity" in batch:
            terms["ce"] = w.ce * identity_ce_loss(outputs["identity_logits"], batch["identity"])
        if self.distilling:
            with torch.no_grad():
                teacher_feats = feature_taps(self.run("T", profile, profile_boxes, method="forward_all"), self.taps)
            student_feats = feature_taps(outputs, self.taps)
            terms["distill"] = self.lambda_distill * distill_loss(teacher_feats, student_feats,
                                                                  lambda feats: self.run("A", feats))
        return terms

    # ----------------------------------------------------------------- a step
    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        profile, frontal = batch["profile"], batch["frontal"]
        frontal_boxes, profile_boxes = self._frontal_boxes(batch), self._profile_boxes(batch)
        with self.autocast():
            outputs = self.run("G", profile, profile_boxes, method="forward_all")
            real_logits = self.run("D", self._d_input(profile, frontal))
            fake_logits = self.run("D", self._d_input(profile, outputs["image"].detach()))
            loss_d = discriminator_loss(real_logits, fake_logits, self.gan_mode, self.real_label)
        self.optimize(loss_d, "D")

        metrics = {"loss_D": loss_d.item()}
        for g_step in range(self.g_steps):
            if g_step > 0:                       # G changed: a fresh forward for the next G update
                with self.autocast():
                    outputs = self.run("G", profile, profile_boxes, method="forward_all")
            with self.autocast():
                terms = self._generator_terms(outputs, batch, frontal_boxes, profile_boxes)
                loss_g = sum(terms.values())
            self.optimize(loss_g, "G")
        metrics.update({f"loss_G_{name}": value.item() for name, value in terms.items()})
        metrics["loss_G"] = loss_g.item()
        return metrics

    def manifest(self) -> dict[str, Any]:
        generator: TPGAN = self.raw("G")
        return {
            **super().manifest(),
            "generator": type(generator).__name__,
            "config": generator.config,
            "discriminator": type(self.raw("D")).__name__,
            "weights": asdict(self.weights),
            "gan_mode": self.gan_mode,
            "real_label": self.real_label,
            "g_steps": self.g_steps,
            "conditional_d": self.conditional_d,
            "lambda_distill": self.lambda_distill if self.distilling else None,
            "taps": self.taps or None,
        }

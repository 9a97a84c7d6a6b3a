"""The paper's generic paired frontalization objective (eq. 3 + eq. 2, optionally + eq. 4 = eq. 5).

    L_G = L_cGAN(G, D) + lambda_recon * ||G(x) - y||_1 [+ lambda_distill * sum_t MSE(T_t(x), f_t(G_t(x)))]
                                                     [+ lambda_identity * L_ip(G(x), y)]

with a conditional discriminator D(x, y) that sees the profile x stacked with a frontal y (real)
or G(x) (fake), e.g. a PatchGAN. Without a teacher this trains a teacher (or any paired
frontalizer); with a teacher, taps and adapters it is GAN Compression's distillation stage.
Defaults follow GAN Compression's pix2pix setting (hinge loss, lambda_recon 100, lambda_distill 1).
The optional L_ip is TP-GAN's identity-preserving term (a frozen identity network's last two
layers, TP-GAN's weight 3e-3); pix2pix has no such term, so it is off unless an identity network
is given.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gancomp_lite.distill import FeatureAdapters, distill_loss, feature_taps
from gancomp_lite.losses import (
    conditional_pair,
    discriminator_loss,
    generator_loss,
    identity_preserving_loss,
    reconstruction_loss,
)
from gancomp_lite.models.lightcnn import to_identity_input
from gancomp_lite.recipes.base import OptimConfig, Recipe


class Pix2PixRecipe(Recipe):
    """Paired cGAN frontalization; modules "G", "D" (trainable), optional frozen "T" (teacher) with "A"
    (adapters) and optional frozen "I" (identity network for L_ip).

    Batches need "profile" (x) and "frontal" (y), (N, 3, S, S) in [-1, 1]. The D loss is halved,
    as in pix2pix and GAN Compression, to slow D relative to G. Logged: "loss_G_recon" is the plain
    L1 of eq. 2; the other "loss_G_*" terms are weighted as they enter L_G. G and the adapters share one Adam.
    """

    name = "pix2pix"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *,
        gan_mode: str = "hinge",
        lambda_recon: float = 100.0,
        teacher: nn.Module | None = None,
        adapters: FeatureAdapters | None = None,
        lambda_distill: float = 1.0,
        identity_net: nn.Module | None = None,
        lambda_identity: float = 3e-3,
    ):
        super().__init__()
        if (teacher is None) != (adapters is None):
            raise ValueError("distillation needs both a teacher and its adapters (see gancomp_lite.distill.build_adapters)")
        self.gan_mode, self.lambda_recon, self.lambda_distill = gan_mode, float(lambda_recon), float(lambda_distill)
        self.lambda_identity = float(lambda_identity)
        self.add_module("G", generator)
        self.add_module("D", discriminator)
        self.distilling = teacher is not None
        if self.distilling:
            self.add_module("T", teacher, trainable=False)
            self.add_module("A", adapters)
            self.taps = list(adapters.keys())
        self.use_identity = identity_net is not None
        if self.use_identity:
            self.add_module("I", identity_net, trainable=False)

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G", "A"] if self.distilling else ["G"], optim)
        self.add_optimizer("D", ["D"], optim)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        profile, frontal = batch["profile"], batch["frontal"]
        with self.autocast():
            outputs = self.run("G", profile, method="forward_all")
            fake = outputs["image"]
            real_logits = self.run("D", conditional_pair(profile, frontal))
            fake_logits = self.run("D", conditional_pair(profile, fake.detach()))
            loss_d = 0.5 * discriminator_loss(real_logits, fake_logits, self.gan_mode)
        self.optimize(loss_d, "D")

        with self.autocast():
            loss_gan = generator_loss(self.run("D", conditional_pair(profile, fake)), self.gan_mode)
            loss_recon = reconstruction_loss(fake, frontal)
            extra = self._extra_terms(outputs, batch)
            loss_g = loss_gan + self.lambda_recon * loss_recon + sum(extra.values())
        self.optimize(loss_g, "G")
        return {"loss_D": loss_d.item(), "loss_G_gan": loss_gan.item(), "loss_G_recon": loss_recon.item(),
                **{f"loss_G_{name}": term.item() for name, term in extra.items()}, "loss_G": loss_g.item()}

    def _extra_terms(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weighted generator terms beyond eq. 2-3, by name: L_ip and the built-in eq. 4 distillation."""
        terms = {}
        if self.use_identity:
            terms["ip"] = self.lambda_identity * self._identity_loss(outputs["image"], batch["frontal"])
        if self.distilling:
            with torch.no_grad():
                teacher_feats = feature_taps(self.run("T", batch["profile"], method="forward_all"), self.taps)
            student_feats = feature_taps(outputs, self.taps)
            terms["distill"] = self.lambda_distill * distill_loss(teacher_feats, student_feats,
                                                                  lambda feats: self.run("A", feats))
        return terms

    def _identity_loss(self, fake: torch.Tensor, frontal: torch.Tensor) -> torch.Tensor:
        net = self.raw("I")
        with torch.no_grad():
            real_feats = net.features(to_identity_input(frontal, net.input_size))
        return identity_preserving_loss(net.features(to_identity_input(fake, net.input_size)), real_feats)

    def manifest(self) -> dict[str, Any]:
        return {
            **super().manifest(),
            "generator": type(self.raw("G")).__name__,
            "discriminator": type(self.raw("D")).__name__,
            "gan_mode": self.gan_mode,
            "lambda_recon": self.lambda_recon,
            "lambda_distill": self.lambda_distill if self.distilling else None,
            "taps": self.taps if self.distilling else None,
            "lambda_identity": self.lambda_identity if self.use_identity else None,
        }

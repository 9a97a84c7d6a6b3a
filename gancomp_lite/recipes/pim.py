"""PIM's joint objective (Zhao et al., CVPR 2018), as our PIM-lite (see `gancomp_lite.models.pim`).

Four agents learn together every step:

- the FFN "G" (frontalizer) minimises TP-GAN's synthesis loss
      L_G = L_pixel(S, S/2, S/4) + w.sym L_sym + w.adv L_adv + w.ip L_ip + w.tv L_tv + w.local L_local
            + w.ce CE(DLN(G(x)), id) + w.domain L_domain
  with L_ip the L1 between the DLN's features of G(x) and of the real frontal;
- the image discriminator "D" tells real frontal faces from frontalized ones (sigmoid
  cross-entropy, one-sided label smoothing 0.9 as TP-GAN);
- the domain classifier "C" tells the FFN's identity features of frontal inputs (source) from
  those of profile inputs (target); it sees them through gradient reversal, so the one loss
  L_domain trains C and pushes the FFN's encoder towards pose-invariant features;
- the DLN "R" (a Light-CNN) learns identities with cross-entropy on real frontal, real profile
  and frontalized faces, the "discriminative learning sub-net" that the FFN's outputs serve.

From the paper: the FFN/DLN split, joint end-to-end learning, TP-GAN-style synthesis terms and
adversarial learning, a cross-domain adversarial term. Our choices: the weights below (TP-GAN's
paper weights for the TP-GAN terms, `gancomp_lite.losses.TPGANLossWeights`; ce 0.1 and domain
0.1 ours), the DLN's identity-preserving term on its fc feature only (one DLN call per loss, so
DistributedDataParallel stays valid), plain cross-entropy for the DLN, no "learning to learn".
The local pathway reads its parts where the generator's `profile_boxes` puts them: around the
profile's landmarks (batch "landmarks", as TP-GAN's recipe) when the generator has a template, at
TP-GAN's official boxes otherwise (the shipped quick PIM); its targets are the batch's "patch_boxes"
on the frontal.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from gancomp_lite.losses import (
    TPGANLossWeights,
    discriminator_loss,
    domain_adversarial_loss,
    generator_loss,
    grad_reverse,
    identity_ce_loss,
    identity_preserving_loss,
    local_patch_loss,
    multiscale_pixel_loss,
    total_variation,
    tpgan_symmetry_loss,
)
from gancomp_lite.models.lightcnn import LightCNN, to_identity_input
from gancomp_lite.models.pim import PIM, DomainClassifier
from gancomp_lite.recipes.base import OptimConfig, Recipe


@dataclass(frozen=True)
class PIMLossWeights(TPGANLossWeights):
    """Weights of L_G: TP-GAN's for its terms, with our identity cross-entropy and domain weights."""

    ce: float = 0.1
    domain: float = 0.1


class PIMRecipe(Recipe):
    """Modules "G" (PIM FFN), "D" (image discriminator), "C" (domain classifier), "R" (DLN); all trainable."""

    name = "pim"

    def __init__(self, generator: PIM, discriminator: nn.Module, recognizer: LightCNN,
                 domain: DomainClassifier | None = None, *, weights: PIMLossWeights = PIMLossWeights(),
                 real_label: float = 0.9):
        super().__init__()
        domain = DomainClassifier(generator.feature_dim) if domain is None else domain
        if domain.feature_dim != generator.feature_dim:
            raise ValueError(f"domain classifier reads {domain.feature_dim}-d features but the FFN's identity "
                             f"feature has {generator.feature_dim}")
        self.weights, self.real_label = weights, float(real_label)
        self.add_module("G", generator)
        self.add_module("D", discriminator)
        self.add_module("C", domain)
        self.add_module("R", recognizer)

    def configure_optimizers(self, optim: OptimConfig) -> None:
        for name in ("G", "D", "C", "R"):
            self.add_optimizer(name, [name], optim)

    def _identity_input(self, images: torch.Tensor) -> torch.Tensor:
        return to_identity_input(images, self.raw("R").input_size)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        w = self.weights
        profile, frontal, identity = batch["profile"], batch["frontal"], batch["identity"]
        if "patch_boxes" not in batch:
            raise KeyError("the PIM recipe needs the frontal's part boxes, batch key 'patch_boxes' (N, 4, 4)")
        n = profile.shape[0]
        with self.autocast():
            out = self.run("G", profile, frontal, self.raw("G").profile_boxes(batch), method="forward_pair")
            fake = out["image"]
            logits = self.run("D", torch.cat([frontal, fake.detach()]))
            loss_d = discriminator_loss(logits[:n], logits[n:], "bce", self.real_label)
        self.optimize(loss_d, "D")

        with self.autocast():
            r_logits, _ = self.run("R", self._identity_input(torch.cat([frontal, profile, fake.detach()])))
            loss_r = identity_ce_loss(r_logits, identity.repeat(3))
        self.optimize(loss_r, "R")

        with self.autocast():
            adv = generator_loss(self.run("D", fake), "bce", self.real_label)
            id_logits, id_feats = self.run("R", self._identity_input(torch.cat([fake, frontal])))
            ip = identity_preserving_loss({"fc": id_feats[:n]}, {"fc": id_feats[n:]}, layers=("fc",))
            ce = identity_ce_loss(id_logits[:n], identity)
            domain_logits = self.run("C", grad_reverse(torch.cat([out["frontal_identity_feature"], out["identity_feature"]])))
            domain = domain_adversarial_loss(domain_logits[:n], domain_logits[n:])
            images = [out["image"], out["image_s2"], out["image_s4"]]
            pixel = multiscale_pixel_loss(images, frontal, w.scales)
            sym = tpgan_symmetry_loss(images, w.scales)
            local = local_patch_loss(out, frontal, batch["patch_boxes"])
            tv = total_variation(fake)
            extra = self._extra_terms(out, batch)
            loss_g = (pixel + w.sym * sym + w.adv * adv + w.ip * ip + w.tv * tv + w.local * local
                      + w.ce * ce + w.domain * domain + sum(extra.values()))
        self.optimize(loss_g, "G", "C")
        return {"loss_D": loss_d.item(), "loss_R": loss_r.item(), "loss_G": loss_g.item(), "pixel": pixel.item(),
                "sym": sym.item(), "adv": adv.item(), "ip": ip.item(), "ce": ce.item(), "local": local.item(),
                "tv": tv.item(), "domain": domain.item(), **{name: term.item() for name, term in extra.items()}}

    def _extra_terms(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Weighted generator terms beyond PIM's own (none here; distillation adds its own)."""
        return {}

    def manifest(self) -> dict[str, Any]:
        gen: PIM = self.raw("G")
        return {**super().manifest(), "arch": "pim", "size": gen.size, "weights": asdict(self.weights),
                "real_label": self.real_label, "discriminator": type(self.raw("D")).__name__}

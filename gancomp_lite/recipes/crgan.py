"""CR-GAN's objective (Tian et al., IJCAI 2018): a generation path and a reconstruction path every step.

Generation path (random z ~ U(-1, 1), x-bar = G(v1, z), x1 a real image of view v1):

    L_D = D_s(x-bar) - D_s(x1) + 10 GP + CE(D_v(x1), v1)              (D)
    L_G = -D_s(x-bar) + CE(D_v(x-bar), v1)                             (G)

Reconstruction path, with probability 1/2 "reconstruct the fake" (self-supervised), otherwise the
paired case; for our paired data x2 is the frontal of x1's identity, so this case IS frontalization:

    fake:   (v-bar, z-bar) = E(x-bar),  x-bar-bar = G(v1, z-bar),  target x-bar,  only E is updated
    paired: (v-bar, z-bar) = E(x1),     x-bar-bar = G(v2, z-bar),  target x2,     E and G are updated
    L_D = D_s(x-bar-bar) - D_s(x2) + 10 GP + CE(D_v(x2), v2)          (D; x2 in both cases, as the code)
    L_EG = -D_s(x-bar-bar) + 4 L1(x-bar-bar, target) + CE(D_v(x-bar-bar), v_target) + 0.01 CE(v-bar, v1)

From the official code (bluer555/CR-GAN train.py): the terms and weights above, Adam betas (0, 0.9)
(lr 1e-4 there; the Trainer's OptimConfig sets lr), separate optimizers for E, G and D.
Our choices: x1 is the batch's profile with its camera's view, x2 its frontal; the L1 is the
per-element mean, so the official 4 x (channel-summed L1) becomes `lambda_recon` = 12; view losses
take logits (the official code applies cross-entropy to softmaxed views); the gradient penalty is
per sample and interpolates with the real image being scored (`gancomp_lite.losses.gradient_penalty`).

Deviations, each off by default (the defaults are the official objective) and each measured in
docs/teachers.md, section 4. The quick teacher uses the first three; with the official objective its
latent carried no person (rank-1 at chance), and after the warm-up the official objective erased
most of what the latent had learned within 500 steps, while either of the next two changes kept it:

- ``warmup_steps``: the first steps run the paired reconstruction alone (E and G, L1 and E's view
  term, no critic): the latent learns the person sooner (at 4000 steps the quick teacher without
  it ends at the same rank-1);
- ``p_reconstruct_fake`` = 0: every reconstruction is the paired one (none reconstructs G's
  random-z images);
- ``lambda_recon`` = 100 (official 12): the L1 leads the critic's terms;
- ``lambda_ip`` > 0, with an identity network: TP-GAN's identity-preserving term on the paired
  reconstruction ``lambda_ip L_ip(x-bar-bar, x2)``.

Under DistributedDataParallel the generation path leaves E unused, so the recipe asks the Trainer
for ``find_unused_parameters``. The coin of the reconstruction path depends on (seed, step) only,
so all ranks take the same path.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gancomp_lite.losses import (
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    identity_preserving_loss,
    reconstruction_loss,
    view_classification_loss,
)
from gancomp_lite.models.crgan import CRGAN, CRGANDiscriminator, yaw_to_view
from gancomp_lite.models.lightcnn import to_identity_input
from gancomp_lite.recipes.base import OptimConfig, Recipe


class CRGANRecipe(Recipe):
    """Modules "G" (the CRGAN frontalizer: E and G), "D" (the view critic), optional frozen "I" (identity
    net, with ``lambda_ip`` > 0); optimizers "E", "G", "D"."""

    name = "crgan"
    ddp_options = {"find_unused_parameters": True}   # the generation path leaves the encoder unused

    def __init__(self, generator: CRGAN, discriminator: CRGANDiscriminator, *, lambda_gp: float = 10.0,
                 lambda_recon: float = 12.0, lambda_view_encoder: float = 0.01, p_reconstruct_fake: float = 0.5,
                 betas: tuple[float, float] = (0.0, 0.9), seed: int = 0,
                 identity_net: nn.Module | None = None, lambda_ip: float = 0.0, warmup_steps: int = 0):
        super().__init__()
        if discriminator.views != generator.views or discriminator.size != generator.size:
            raise ValueError(f"CR-GAN D ({discriminator.views} views, {discriminator.size}px) does not match "
                             f"G ({generator.views} views, {generator.size}px)")
        if not 0.0 <= p_reconstruct_fake <= 1.0:
            raise ValueError(f"p_reconstruct_fake must be a probability, got {p_reconstruct_fake}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.warmup_steps = int(warmup_steps)
        self.lambda_gp, self.lambda_recon = float(lambda_gp), float(lambda_recon)
        self.lambda_view_encoder, self.p_reconstruct_fake = float(lambda_view_encoder), float(p_reconstruct_fake)
        self.betas, self.seed = tuple(betas), int(seed)
        self.add_module("G", generator)
        self.add_module("D", discriminator)
        if lambda_ip < 0 or (lambda_ip > 0 and identity_net is None):
            raise ValueError(f"lambda_ip must be >= 0 and needs an identity network when > 0, got {lambda_ip}")
        self.lambda_ip = float(lambda_ip)
        if self.lambda_ip > 0:
            self.add_module("I", identity_net, trainable=False)

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("E", ["G.encoder"], optim, betas=self.betas)
        self.add_optimizer("G", ["G.decoder"], optim, betas=self.betas)
        self.add_optimizer("D", ["D"], optim, betas=self.betas)

    def _critic_loss(self, real: torch.Tensor, real_view: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """WGAN-GP critic loss plus the view classification of the real images (one D call for both)."""
        view_logits, scores = self.run("D", torch.cat([real, fake.detach()]))
        n = real.shape[0]
        penalty = gradient_penalty(lambda x: self.raw("D")(x)[1], real, fake)
        return (discriminator_loss(scores[:n], scores[n:], "wgan") + self.lambda_gp * penalty
                + view_classification_loss(view_logits[:n], real_view))

    def _reconstruct_fake(self, step: int) -> bool:
        """The coin of the reconstruction path: a function of (seed, step), so every DDP rank and a resumed run agree."""
        coin = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return bool(torch.rand((), generator=coin) < self.p_reconstruct_fake)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        gen: CRGAN = self.raw("G")
        x1, x2 = batch["profile"], batch["frontal"]
        n = x1.shape[0]
        v1 = yaw_to_view(batch["yaw"], gen.views).to(x1.device)
        v2 = torch.full_like(v1, gen.frontal_view)
        if step < self.warmup_steps:
            return self._warmup_step(x1, v1, x2, v2)

        # --- generation path
        with self.autocast():
            z = torch.rand(n, gen.z_dim, device=x1.device) * 2 - 1
            x_bar = self.run("G", v1, z, method="generate")
            loss_d_gen = self._critic_loss(x1, v1, x_bar)
        self.optimize(loss_d_gen, "D")
        with self.autocast():
            view_logits, scores = self.run("D", x_bar)
            loss_g_gen = generator_loss(scores, "wgan") + view_classification_loss(view_logits, v1)
        self.optimize(loss_g_gen, "G")

        # --- reconstruction path
        fake_case = self._reconstruct_fake(step)
        source, view, target = (x_bar.detach(), v1, x_bar.detach()) if fake_case else (x1, v2, x2)
        with self.autocast():
            out = self.run("G", source, view, method="forward_all")
            x_bar_bar = out["image"]
            loss_d_rec = self._critic_loss(x2, v2, x_bar_bar)
        self.optimize(loss_d_rec, "D")
        with self.autocast():
            view_logits, scores = self.run("D", x_bar_bar)
            l1, encoder_view, extra = self._reconstruction_terms(out, source, view, target, v1, paired=not fake_case)
            loss_eg = (generator_loss(scores, "wgan") + self.lambda_recon * l1
                       + view_classification_loss(view_logits, view)
                       + self.lambda_view_encoder * encoder_view + sum(extra.values()))
        self.optimize(loss_eg, *(("E",) if fake_case else ("E", "G")))
        return {"loss_D_gen": loss_d_gen.item(), "loss_G_gen": loss_g_gen.item(), "loss_D_rec": loss_d_rec.item(),
                **self._reconstruction_metrics(loss_eg, l1, extra), "reconstruct_fake": float(fake_case)}

    def _warmup_step(self, x1: torch.Tensor, v1: torch.Tensor, x2: torch.Tensor,
                     v2: torch.Tensor) -> dict[str, float]:
        """The paired reconstruction path without the critic: E and G learn to carry the person through
        the latent before the generation path and the adversarial terms join."""
        with self.autocast():
            out = self.run("G", x1, v2, method="forward_all")
            l1, encoder_view, extra = self._reconstruction_terms(out, x1, v2, x2, v1, paired=True)
            loss = self.lambda_recon * l1 + self.lambda_view_encoder * encoder_view + sum(extra.values())
        self.optimize(loss, "E", "G")
        return self._reconstruction_metrics(loss, l1, extra)

    def _reconstruction_terms(self, out: dict[str, torch.Tensor], source: torch.Tensor, view: torch.Tensor,
                              target: torch.Tensor, source_view: torch.Tensor, paired: bool
                              ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The reconstruction's critic-free terms: L1 to `target`, E's view term on `source_view` and the
        weighted extra terms (L_ip on a paired reconstruction only: a fake has no frontal to match)."""
        l1 = reconstruction_loss(out["image"], target)
        extra = self._extra_terms(out, source, view)
        if self.lambda_ip > 0:
            extra["ip"] = (self.lambda_ip * self._identity_loss(out["image"], target) if paired
                           else out["image"].new_zeros(()))
        return l1, view_classification_loss(out["view_logits"], source_view), extra

    @staticmethod
    def _reconstruction_metrics(loss: torch.Tensor, l1: torch.Tensor, extra: dict[str, torch.Tensor]) -> dict[str, float]:
        return {"loss_EG_rec": loss.item(), "recon_l1": l1.item(),
                **{f"loss_EG_{name}": term.item() for name, term in extra.items()}}

    def _identity_loss(self, image: torch.Tensor, frontal: torch.Tensor) -> torch.Tensor:
        net = self.raw("I")
        with torch.no_grad():
            real = net.features(to_identity_input(frontal, net.input_size))
        return identity_preserving_loss(net.features(to_identity_input(image, net.input_size)), real)

    def _extra_terms(self, outputs: dict[str, torch.Tensor], source: torch.Tensor,
                     view: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weighted terms added to the reconstruction path's E/G loss (none here; distillation adds its own)."""
        return {}

    def manifest(self) -> dict[str, Any]:
        gen: CRGAN = self.raw("G")
        return {**super().manifest(), "arch": "crgan", "size": gen.size, "views": gen.views,
                "lambda_gp": self.lambda_gp, "lambda_recon": self.lambda_recon,
                "lambda_view_encoder": self.lambda_view_encoder, "p_reconstruct_fake": self.p_reconstruct_fake,
                "lambda_ip": self.lambda_ip, "warmup_steps": self.warmup_steps}

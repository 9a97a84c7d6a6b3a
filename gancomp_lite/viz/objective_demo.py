"""Small, seeded frontalization runs that show what each term of the objective does (notebook 01).

Eq. 2 alone (L1 to the paired frontal) is minimised by the per-pixel median of the plausible
frontal faces, an averaged face, so its outputs are blurry; the conditional GAN term of eq. 3 penalises outputs that a
patch discriminator D(x, y) can tell from real frontals, which pushes detail back in. A run here
trains a small ResNet generator on a subset of the quick SynthPIE set with either

- ``adversarial=False``: eq. 2 only (`ReconstructionRecipe`), or
- ``adversarial=True``: eq. 3 + lambda_recon * eq. 2 (`gancomp_lite.recipes.Pix2PixRecipe`),

and scores it on held-out test identities by L1 (eq. 2's own units: images in [-1, 1]) and by
*relative sharpness*: the mean gradient magnitude of the outputs divided by that of the ground
truth frontals (1 = as much fine detail as the real faces; blurry outputs score below 1); and by
*output diversity*: how much the outputs differ between inputs, relative to the real frontals (near 0 =
one face for everybody, which is what the short quick runs draw: see `output_diversity`).

Every run starts from the same seeded initial weights and sees the same batches, so runs differ
only in their objective. Results are plain dicts (rows, see `train_run`) that the plots in
`gancomp_lite.viz` and the lambda_recon explorer read.
"""
from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from data_tools.dataset import FaceDataset, load_records
from data_tools.multipie import split_multipie
from data_tools.protocol import NEUTRAL_ILLUMINATION
from data_tools.records import FaceRecord
from data_tools.synthpie import ensure_synthpie
from gancomp_lite.losses import reconstruction_loss
from gancomp_lite.models import discriminator as discriminators
from gancomp_lite.models import registry
from gancomp_lite.presets import Preset
from gancomp_lite.recipes import OptimConfig, Pix2PixRecipe, Recipe
from gancomp_lite.seeding import cpu_threads, seed_everything
from gancomp_lite.train import TrainConfig, run_training

OnLog = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo: data subset, generator / discriminator widths, steps per run."""

    preset: str = "quick"         # which SynthPIE set to render or read from the cache
    size: int = 32                # image side fed to the networks
    train_ids: int = 30           # training identities (all 13 yaws, neutral light)
    test_images: int = 24         # held-out non-frontal test images used for scoring
    arch: str = "resnet9"
    ngf: int = 8                  # generator width (ResNet-9 c0..c7 all = ngf)
    ndf: int = 16                 # discriminator width
    d_layers: int = 2             # PatchGAN depth: 34x34-pixel patches (a 6x6 logit map at 32 px)
    steps: int = 100              # optimisation steps per run
    batch_size: int = 8
    lr: float = 1e-3              # Adam; higher than pix2pix's 2e-4 so 100 steps already draw a frontal face
    gan_mode: str = "bce"         # eq. 1 / 3 as written (non-saturating G loss)
    seed: int = 0                 # weights and batch order
    data_seed: int = 0            # which SynthPIE set (a new seed renders a new set, about a minute)
    threads: int | None = 1       # torch CPU threads during a run (None: leave as is); see `cpu_threads`

    @classmethod
    def from_preset(cls, preset: Preset, **overrides: Any) -> "DemoConfig":
        """The quick sizes for the quick preset (CPU, minutes); wider, longer runs for the full one.

        Quick runs use half the preset's image side (32 px): steps are about 3x cheaper than at 64 px,
        and 100 of them turn a random ResNet into a generator that draws a frontal face layout, but
        nearly the same (average) face for every input: identity takes far longer (measured with
        `output_diversity`; a trial at 300 steps was still one face with less speckle).
        """
        if preset.name == "quick":
            base = cls(preset="quick", size=preset.image_size // 2)
        else:
            base = cls(preset=preset.name, size=preset.image_size, train_ids=min(preset.train_ids, 200),
                       test_images=128, ngf=32, ndf=64, d_layers=3, steps=2000, batch_size=16, lr=2e-4,
                       threads=None)
        return replace(base, **overrides)


@dataclass
class DemoData:
    train: FaceDataset
    test: dict[str, torch.Tensor]     # "profile", "frontal" (N, 3, S, S) and "yaw" (N,)


def load_demo_data(cfg: DemoConfig, root: str | os.PathLike | None = None) -> DemoData:
    """A small paired subset of SynthPIE: `train_ids` identities x 13 yaws (neutral light) to train
    on, and `test_images` non-frontal images of unseen identities, spread over the yaws, to score.

    `root`: a SynthPIE/Multi-PIE tree (default: the cached SynthPIE set of `cfg.preset`, rendered if
    missing). Profiles are mirrored to face one side (TP-GAN's MIRROR_TO_ONE_SIDE), halving what G
    must learn.
    """
    root = root if root is not None else ensure_synthpie(cfg.preset, seed=cfg.data_seed)
    records = load_records(Path(root), "multipie")
    train, test = (
        [r for r in part if r.illumination == NEUTRAL_ILLUMINATION] for part in split_multipie(records, "auto")
    )
    train_names = sorted({r.identity for r in train})[: cfg.train_ids]
    train = [r for r in train if r.identity in train_names]
    test = [r for r in test if r.yaw != 0]
    if not train or len(test) < cfg.test_images:
        raise ValueError(f"SynthPIE {cfg.preset!r} has {len(train)} train and {len(test)} non-frontal test records "
                         f"at illumination {NEUTRAL_ILLUMINATION}; the demo needs train_ids >= 1 and "
                         f"{cfg.test_images} test images")
    test_set = FaceDataset(spread_over_poses(test, cfg.test_images), cfg.size, mirror=True)
    items = [test_set[i] for i in range(len(test_set))]
    batch = {key: torch.stack([item[key] for item in items]) for key in ("profile", "frontal")}
    batch["yaw"] = torch.tensor([item["yaw"] for item in items])
    return DemoData(FaceDataset(train, cfg.size, mirror=True), batch)


def spread_over_poses(records: Sequence[FaceRecord], n: int) -> list[FaceRecord]:
    """`n` records that cycle through the |yaw| values (15, 30, ..., 90) and through the identities,
    one side of the face per round, so even the first few show every pose."""
    yaws = sorted({abs(r.yaw) for r in records})
    names = sorted({r.identity for r in records})
    index = {(r.identity, r.yaw): r for r in records}
    keys = [(names[i % len(names)], yaws[i % len(yaws)] * (-1) ** (i // len(yaws))) for i in range(n)]
    picked = [index[key] for key in dict.fromkeys(keys) if key in index]
    if len(picked) < n:
        raise ValueError(f"only {len(picked)} of the {n} requested test images have distinct identity/yaw pairs "
                         f"({len(names)} identities x yaws {yaws}); ask for fewer test images")
    return picked


class ReconstructionRecipe(Recipe):
    """Eq. 2 alone: G minimises ||G(x) - y||_1; no discriminator (the "without adversarial term" run)."""

    name = "recon-only"

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.add_module("G", generator)

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G"], optim)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        with self.autocast():
            loss = reconstruction_loss(self.run("G", batch["profile"]), batch["frontal"])
        self.optimize(loss, "G")
        return {"loss_G_recon": loss.item()}


def build_models(cfg: DemoConfig) -> tuple[nn.Module, nn.Module]:
    """The seeded generator and conditional PatchGAN D(x, y); the same seed gives the same weights."""
    seed_everything(cfg.seed)
    generator = registry.build(cfg.arch, None, cfg.size, ngf=cfg.ngf)
    discriminator = discriminators.build("patchgan", in_channels=6, ndf=cfg.ndf, n_layers=cfg.d_layers)
    return generator, discriminator


def build_recipe(cfg: DemoConfig, lambda_recon: float, adversarial: bool) -> Recipe:
    """Eq. 3 + lambda_recon * eq. 2 when `adversarial`, else eq. 2 alone (lambda_recon is then irrelevant)."""
    generator, discriminator = build_models(cfg)
    if not adversarial:
        return ReconstructionRecipe(generator)
    return Pix2PixRecipe(generator, discriminator, gan_mode=cfg.gan_mode, lambda_recon=lambda_recon)


# ------------------------------------------------------------------ scores
def gradient_magnitude(images: torch.Tensor) -> torch.Tensor:
    """Per-image mean |grad| of the grayscale image (forward differences), (N,) for (N, 3, H, W) input."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"gradient_magnitude expects (N, 3, H, W) images, got {tuple(images.shape)}")
    gray = images.float().mean(dim=1)
    dx = gray[:, :-1, 1:] - gray[:, :-1, :-1]
    dy = gray[:, 1:, :-1] - gray[:, :-1, :-1]
    return (dx.square() + dy.square()).sqrt().mean(dim=(1, 2))


def relative_sharpness(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean gradient magnitude of `outputs` over that of `targets`: 1 = as detailed as the real faces."""
    if outputs.shape != targets.shape:
        raise ValueError(f"relative_sharpness: outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} differ")
    return (gradient_magnitude(outputs).mean() / gradient_magnitude(targets).mean().clamp_min(1e-12)).item()


def output_diversity(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """How much the outputs differ from one input to the next, relative to the ground truth frontals.

    The per-pixel standard deviation across the stack (N, 3, H, W), averaged over pixels, of `outputs`
    over that of `targets`: 1 = the outputs vary between people as much as the real frontals do; near
    0 = one face for every input (the average face an under-trained L1 generator draws).
    """
    if outputs.shape != targets.shape or outputs.dim() != 4 or len(outputs) < 2:
        raise ValueError(f"output_diversity expects two equal (N >= 2, C, H, W) stacks, got {tuple(outputs.shape)} "
                         f"and {tuple(targets.shape)}")
    spread = outputs.float().std(dim=0).mean()
    return (spread / targets.float().std(dim=0).mean().clamp_min(1e-12)).item()


@torch.no_grad()
def frontalize(generator: nn.Module, profiles: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """G(x) for a stack of profiles, on the generator's device, returned on the CPU."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    outputs = torch.cat([generator(chunk.to(device)).cpu() for chunk in profiles.split(batch_size)])
    generator.train(was_training)
    return outputs


def score(generator: nn.Module, test: dict[str, torch.Tensor]) -> dict[str, Any]:
    """L1 to the ground truth (eq. 2, [-1, 1] units), relative sharpness, output diversity, and the outputs."""
    outputs = frontalize(generator, test["profile"])
    return {"l1": reconstruction_loss(outputs, test["frontal"]).item(),
            "sharpness": relative_sharpness(outputs, test["frontal"]),
            "diversity": output_diversity(outputs, test["frontal"]), "outputs": outputs}


# ------------------------------------------------------------------ runs
def run_label(lambda_recon: float, adversarial: bool) -> str:
    return f"cGAN + {lambda_recon:g} L1" if adversarial else "L1 only"


def train_run(cfg: DemoConfig, data: DemoData, lambda_recon: float = 100.0, adversarial: bool = True,
              on_log: OnLog | None = None, progress: bool = True) -> dict[str, Any]:
    """Train one seeded run and return its summary row (see module docstring); `on_log` sees live losses.

    Row keys: label, lambda_recon (inf for the L1-only run: no adversarial term at all), adversarial,
    steps, l1_init, sharpness_init, l1, sharpness, diversity (`output_diversity`), history ({"step": [...], loss name: [...]}),
    outputs (the test outputs, (N, 3, S, S)).
    """
    with cpu_threads(cfg.threads):
        return _train_run(cfg, data, lambda_recon, adversarial, on_log, progress)


def _train_run(cfg: DemoConfig, data: DemoData, lambda_recon: float, adversarial: bool, on_log: OnLog | None,
               progress: bool) -> dict[str, Any]:
    recipe = build_recipe(cfg, lambda_recon, adversarial)
    generator = recipe.raw("G")
    before = score(generator, data.test)
    history: dict[str, list[float]] = {"step": []}

    def log(step: int, metrics: dict[str, float]) -> None:
        history["step"].append(step)
        for key, value in metrics.items():
            history.setdefault(key, []).append(value)
        if on_log is not None:
            on_log(step, metrics)

    with tempfile.TemporaryDirectory(prefix="gancomp-objective-") as out_dir:
        train_cfg = TrainConfig(out_dir=out_dir, steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                seed=cfg.seed, log_every=max(cfg.steps // 20, 1), ckpt_every=cfg.steps + 1,
                                resume=False, progress=progress)
        run_training(recipe, data.train, train_cfg, on_log=log)
    after = score(generator, data.test)
    return {
        "label": run_label(lambda_recon, adversarial),
        "lambda_recon": float(lambda_recon) if adversarial else math.inf,
        "adversarial": adversarial,
        "steps": cfg.steps,
        "l1_init": before["l1"], "sharpness_init": before["sharpness"],
        "l1": after["l1"], "sharpness": after["sharpness"], "diversity": after["diversity"],
        "history": history,
        "outputs": after["outputs"],
    }


def sweep(cfg: DemoConfig, data: DemoData, lambdas: Sequence[float], include_l1_only: bool = True,
          done: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The lambda_recon sweep: one cGAN run per lambda (+ the L1-only run), reusing rows in `done`.

    Returns rows sorted by lambda_recon (L1-only last, lambda = inf), each as `train_run` returns.
    """
    wanted = [(float(lam), True) for lam in lambdas] + ([(math.inf, False)] if include_l1_only else [])
    have = {(row["lambda_recon"], row["adversarial"]): row for row in done}
    rows = []
    for lam, adversarial in tqdm(wanted, desc="lambda_recon sweep"):
        row = have.get((lam, adversarial))
        if row is None:
            row = train_run(cfg, data, lam, adversarial, progress=False)
        rows.append(row)
    return sorted(rows, key=lambda row: row["lambda_recon"])


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The sweep as aligned text: run, lambda_recon, test L1 before/after, relative sharpness (and output
    diversity, when the rows have it)."""
    diversity = all("diversity" in row for row in rows)
    lines = [f"{'run':<16}{'lambda_recon':>13}{'L1 at init':>12}{'L1':>8}{'sharpness':>11}"
             + (f"{'diversity':>11}" if diversity else "")]
    for row in rows:
        lines.append(f"{row['label']:<16}{row['lambda_recon']:>13g}{row['l1_init']:>12.3f}{row['l1']:>8.3f}"
                     f"{row['sharpness']:>11.2f}" + (f"{row['diversity']:>11.2f}" if diversity else ""))
    return "\n".join(lines)

"""The distillation stage (eq. 4-5) and ``gancomp-lite distill``: train a narrower student from a teacher.

    L = L_cGAN + lambda_recon L_recon + lambda_distill L_distill                          (eq. 5)

Three modes, identical except for the last term, so that they can be compared at equal MACs:

``scratch``   no teacher term: the student is trained with the teacher's own objective.
``output``    L_distill = ||G'(x) - G(x)||_1, the student's image against the teacher's image.
``feature``   L_distill = sum_t MSE(G_t(x), f_t(G'_t(x))) over the feature taps, f_t a learnable
              1x1 conv from the student's channels to the teacher's (eq. 4, `gancomp_lite.distill`).

The student's discriminator has the teacher's architecture and starts from the teacher's
discriminator weights ("inherited D", paper section 3.1; shipped teacher checkpoints hold both
G and D); ``inherit_d=False`` starts it from random weights instead, to show the difference.

Families: TP-GAN (its full objective, `TPGANRecipe`), the ResNet generators (the pix2pix
objective of their teachers, `Pix2PixRecipe`), CR-GAN (its two-path objective; the teacher term joins
the reconstruction path, the teacher seeing the same source image and target view) and PIM (its
objective; the teacher sees the same profile). The teacher always sees what the student sees and
runs once per step in eval mode, without gradients.

The same recipes train a once-for-all supernet (`gancomp_lite.compress.supernet`): given a sampler,
each step first sets the student's active widths, so that the family objective, the teacher term and
the inherited D all act on the sampled sub-network. The 1x1 adapters read the first channels of their
weight, so one set of adapters serves every width.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from gancomp_lite.checkpoint import CheckpointError, move_aside, save_checkpoint
from gancomp_lite.nn.elastic import set_active
from gancomp_lite.distill import FeatureAdapters, distill_loss, feature_taps
from gancomp_lite.losses import reconstruction_loss
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.models.tpgan import TPGAN
from gancomp_lite.recipes.base import Recipe
from gancomp_lite.recipes.crgan import CRGANRecipe
from gancomp_lite.recipes.pim import PIMRecipe
from gancomp_lite.recipes.pix2pix import Pix2PixRecipe
from gancomp_lite.recipes.tpgan import TPGANRecipe
from gancomp_lite.seeding import seed_everything
from gancomp_lite.train import TrainConfig, Trainer

MODES = ("scratch", "output", "feature")
ARCHS = ("tpgan", "resnet9", "mobile-resnet9", "crgan", "pim")
CONVENTION = "gancomp"
# lambda_distill when none is given. Feature: GAN Compression's pix2pix default (1). Output: the weight
# of the ground-truth pixel term, so the teacher's image counts as much as the real frontal face.
DEFAULT_LAMBDA = {("feature", "pix2pix"): 1.0, ("feature", "tpgan"): 1.0, ("feature", "crgan"): 1.0,
                  ("feature", "pim"): 1.0, ("output", "pix2pix"): 100.0, ("output", "tpgan"): 1.0,
                  ("output", "crgan"): 12.0, ("output", "pim"): 1.0}
Sampler = Callable[[int], Mapping[str, int]]   # step -> real channel widths of the sub-network to train


def objective(arch: str) -> str:
    """The teacher objective a family is trained with: "tpgan", "crgan", "pim" or "pix2pix"."""
    if arch not in ARCHS:
        raise ValueError(f"distillation supports {list(ARCHS)}; got {arch!r}")
    return arch if arch in ("tpgan", "crgan", "pim") else "pix2pix"


def default_lambda(arch: str, mode: str) -> float:
    """lambda_distill of `mode` for `arch` when none is given (0 for scratch)."""
    check_mode(mode)
    return 0.0 if mode == "scratch" else DEFAULT_LAMBDA[(mode, objective(arch))]


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown distillation mode {mode!r}; choose one of {list(MODES)}")


def make_adapters(student: nn.Module, teacher: nn.Module, taps: Iterable[str] | None = None) -> FeatureAdapters:
    """One 1x1 adapter per tap (all the teacher's taps by default), student channels -> teacher channels."""
    teacher_ch, student_ch = teacher.tap_channels(), student.tap_channels()
    names = list(teacher_ch) if taps is None else list(taps)
    unknown = [n for n in names if n not in teacher_ch or n not in student_ch]
    if unknown or not names:
        raise ValueError(f"taps {unknown or names} are not feature taps of both generators; "
                         f"the teacher has {sorted(teacher_ch)}")
    return FeatureAdapters({n: student_ch[n] for n in names}, {n: teacher_ch[n] for n in names})


def scaled_config(arch: str, size: int, knobs: Mapping[str, Any], width: float) -> str:
    """A student config string: every group at the allowed width nearest to `width` x the teacher's."""
    space = channel_space(arch, size, **knobs)
    return space.encode({g.name: min(g.choices, key=lambda c: (abs(c - width * g.teacher), -c)) for g in space.groups})


# ----------------------------------------------------------------------------- recipes
class _TeacherTerms:
    """The mode's teacher term, with the teacher run once per training step (eval mode, no gradients)."""

    mode: str
    taps: list[str]
    lambda_distill: float

    def _attach(self, mode: str, teacher: nn.Module | None, adapters: FeatureAdapters | None,
                lambda_distill: float) -> None:
        check_mode(mode)
        if (mode == "scratch") != (teacher is None):
            raise ValueError(f"mode {mode!r} {'takes no' if mode == 'scratch' else 'needs a'} teacher")
        if (mode == "feature") != (adapters is not None):
            raise ValueError(f"mode {mode!r} {'needs' if mode == 'feature' else 'takes no'} 1x1 adapters")
        self.mode, self.lambda_distill, self.taps = mode, float(lambda_distill), []
        self._teacher_out: dict[str, torch.Tensor] | None = None
        self.sampler: Sampler | None = None
        if teacher is not None:
            self.add_module("T", teacher, trainable=False)
        if adapters is not None:
            self.add_module("A", adapters)
            self.taps = list(adapters.keys())

    def sample_widths(self, sampler: Sampler | None) -> None:
        """Train a once-for-all supernet: before each step, run the student at ``sampler(step)`` (None: full width)."""
        self.sampler = sampler
        if sampler is None:
            set_active(self.raw("G"), None)

    def _activate(self, step: int) -> None:
        if self.sampler is not None:
            set_active(self.raw("G"), self.sampler(step))

    def _run_teacher(self, *args: Any) -> None:
        self._teacher_out = None
        if self.mode != "scratch":
            with torch.no_grad(), self.autocast():
                self._teacher_out = self.run("T", *args, method="forward_all")

    def _teacher_term(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"distill": lambda_distill * L_distill}`` for the mode (empty for scratch)."""
        if self.mode == "output":
            return {"distill": self.lambda_distill * reconstruction_loss(outputs["image"], self._teacher_out["image"])}
        if self.mode == "feature":
            teacher_feats = feature_taps(self._teacher_out, self.taps)
            loss = distill_loss(teacher_feats, feature_taps(outputs, self.taps), lambda feats: self.run("A", feats))
            return {"distill": self.lambda_distill * loss}
        return {}

    def distill_manifest(self) -> dict[str, Any]:
        return {"mode": self.mode, "lambda_distill": self.lambda_distill, "taps": self.taps or None}

    def manifest(self) -> dict[str, Any]:
        return {**super().manifest(), **self.distill_manifest()}

    def configure_optimizers(self, optim) -> None:
        """G (with the adapters) and D; families with other optimizers (CR-GAN, PIM) define their own."""
        self.add_optimizer("G", self._with_adapters("G"), optim)
        self.add_optimizer("D", ["D"], optim)

    def _with_adapters(self, *modules: str) -> list[str]:
        """The generator's optimizer group: `modules`, plus the 1x1 adapters in feature mode."""
        return [*modules, "A"] if self.mode == "feature" else list(modules)


class TPGANDistillRecipe(_TeacherTerms, TPGANRecipe):
    """TP-GAN's objective plus the mode's teacher term; modules "G", "D", "I", and "T" / "A" by mode."""

    name = "tpgan-distill"

    def __init__(self, student: TPGAN, discriminator: nn.Module, identity_net: nn.Module | None = None, *,
                 mode: str = "feature", teacher: TPGAN | None = None, adapters: FeatureAdapters | None = None,
                 lambda_distill: float = 1.0, **tpgan_kwargs: Any):
        TPGANRecipe.__init__(self, student, discriminator, identity_net, **tpgan_kwargs)
        self._attach(mode, teacher, adapters, lambda_distill)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        self._activate(step)
        self._run_teacher(batch["profile"], self._profile_boxes(batch))
        return super().train_step(batch, step)

    def _generator_terms(self, outputs, batch, frontal_boxes, profile_boxes) -> dict[str, torch.Tensor]:
        return {**super()._generator_terms(outputs, batch, frontal_boxes, profile_boxes), **self._teacher_term(outputs)}


class Pix2PixDistillRecipe(_TeacherTerms, Pix2PixRecipe):
    """The pix2pix objective (eq. 3 + 2) plus the mode's teacher term (eq. 5); D is halved as in pix2pix."""

    name = "pix2pix-distill"

    def __init__(self, student: nn.Module, discriminator: nn.Module, *, mode: str = "feature",
                 teacher: nn.Module | None = None, adapters: FeatureAdapters | None = None,
                 lambda_distill: float = 1.0, gan_mode: str = "hinge", lambda_recon: float = 100.0):
        Pix2PixRecipe.__init__(self, student, discriminator, gan_mode=gan_mode, lambda_recon=lambda_recon)
        self._attach(mode, teacher, adapters, lambda_distill)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        self._activate(step)
        self._run_teacher(batch["profile"])
        return super().train_step(batch, step)

    def _extra_terms(self, outputs, batch) -> dict[str, torch.Tensor]:
        return {**super()._extra_terms(outputs, batch), **self._teacher_term(outputs)}


class CRGANDistillRecipe(_TeacherTerms, CRGANRecipe):
    """CR-GAN's objective; the teacher term joins the reconstruction path (the adapters train with E)."""

    name = "crgan-distill"

    def __init__(self, student: nn.Module, discriminator: nn.Module, *, mode: str = "feature",
                 teacher: nn.Module | None = None, adapters: FeatureAdapters | None = None,
                 lambda_distill: float = 1.0, **crgan_kwargs: Any):
        CRGANRecipe.__init__(self, student, discriminator, **crgan_kwargs)
        self._attach(mode, teacher, adapters, lambda_distill)

    def configure_optimizers(self, optim) -> None:
        self.add_optimizer("E", self._with_adapters("G.encoder"), optim, betas=self.betas)
        self.add_optimizer("G", ["G.decoder"], optim, betas=self.betas)
        self.add_optimizer("D", ["D"], optim, betas=self.betas)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        self._activate(step)
        return super().train_step(batch, step)

    def _extra_terms(self, outputs, source, view) -> dict[str, torch.Tensor]:
        self._run_teacher(source, view)
        return self._teacher_term(outputs)


class PIMDistillRecipe(_TeacherTerms, PIMRecipe):
    """PIM's objective plus the mode's teacher term (the adapters train with G)."""

    name = "pim-distill"

    def __init__(self, student: nn.Module, discriminator: nn.Module, recognizer: nn.Module, *,
                 mode: str = "feature", teacher: nn.Module | None = None, adapters: FeatureAdapters | None = None,
                 lambda_distill: float = 1.0, **pim_kwargs: Any):
        PIMRecipe.__init__(self, student, discriminator, recognizer, **pim_kwargs)
        self._attach(mode, teacher, adapters, lambda_distill)

    def configure_optimizers(self, optim) -> None:
        self.add_optimizer("G", self._with_adapters("G"), optim)
        for name in ("D", "C", "R"):
            self.add_optimizer(name, [name], optim)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        self._activate(step)
        self._run_teacher(batch["profile"], self.raw("G").profile_boxes(batch))
        return super().train_step(batch, step)

    def _extra_terms(self, outputs, batch) -> dict[str, torch.Tensor]:
        return self._teacher_term(outputs)


def make_recipe(arch: str, student: nn.Module, discriminator: nn.Module, *, mode: str = "feature",
                teacher: nn.Module | None = None, taps: Iterable[str] | None = None,
                lambda_distill: float | None = None, identity_net: nn.Module | None = None,
                options: Mapping[str, Any] | None = None) -> Recipe:
    """The distillation recipe of `arch` in `mode` (adapters built here for the feature mode).

    `options`: keyword options of the family's recipe (a teacher's `TeacherSpec.options`). PIM's
    recognizer starts from a copy of `identity_net`, as its teacher's did.
    """
    check_mode(mode)
    if mode != "scratch" and teacher is None:
        raise ValueError(f"mode {mode!r} needs a teacher")
    adapters = make_adapters(student, teacher, taps) if mode == "feature" else None
    lam = default_lambda(arch, mode) if lambda_distill is None else float(lambda_distill)
    if mode == "scratch":
        teacher = None
    terms = {"mode": mode, "teacher": teacher, "adapters": adapters, "lambda_distill": lam, **(options or {})}
    family = objective(arch)
    if family == "tpgan":
        return TPGANDistillRecipe(student, discriminator, identity_net, **terms)
    if family == "crgan":
        return CRGANDistillRecipe(student, discriminator, **terms)
    if family == "pim":
        if identity_net is None:
            raise ValueError("PIM's objective needs the identity network (its recognizer starts from it)")
        return PIMDistillRecipe(student, discriminator, copy.deepcopy(identity_net).requires_grad_(True), **terms)
    return Pix2PixDistillRecipe(student, discriminator, **terms)


# ----------------------------------------------------------------------------- the stage as a function
@dataclass
class DistillResult:
    """The trained student (eval mode), its recipe (adapters, D), steps done and the losses logged in this call."""

    student: nn.Module
    recipe: Recipe
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)   # one dict per log step, with "step"
    d_source: str = ""


def student_discriminator(make_d: Callable[[], nn.Module], teacher_d_state: Mapping[str, torch.Tensor] | None,
                          inherit_d: bool = True) -> tuple[nn.Module, str]:
    """A fresh D of the teacher's architecture, loaded with the teacher's D when inheriting; and where it came from."""
    discriminator = make_d()
    if not inherit_d:
        return discriminator, "random (inherit_d=False)"
    if teacher_d_state is None:
        warnings.warn("the teacher's discriminator is not available: the student's D starts from random weights "
                      "(the paper inherits the teacher's D; see gancomp_lite.compress.distillation)", stacklevel=2)
        return discriminator, "random (teacher D not available)"
    try:
        discriminator.load_state_dict(teacher_d_state)
    except RuntimeError as err:
        raise CheckpointError(f"the teacher's D state does not fit {type(discriminator).__name__}: {err}") from err
    return discriminator, "inherited from the teacher"


def distill(arch: str, config: Mapping[str, int] | str, teacher: nn.Module, train: Dataset, *, size: int,
            knobs: Mapping[str, Any], make_d: Callable[[], nn.Module],
            teacher_d_state: Mapping[str, torch.Tensor] | None = None, train_config: TrainConfig, mode: str = "feature",
            taps: Iterable[str] | None = None, lambda_distill: float | None = None, inherit_d: bool = True,
            identity_net: nn.Module | None = None,
            on_log: Callable[[int, dict[str, float]], None] | None = None) -> DistillResult:
    """Build the student of `arch` at `config`, train it in `mode` with the Trainer, return it (eval mode).

    `teacher` is frozen (a deep copy is trained against, the caller's module is left untouched);
    `make_d()` builds a D of the teacher's architecture, `teacher_d_state` its trained weights.
    """
    check_mode(mode)
    seed_everything(train_config.seed)
    student = build(arch, config, size, **knobs)
    discriminator, d_source = student_discriminator(make_d, teacher_d_state, inherit_d)
    teacher = copy.deepcopy(teacher).eval()
    recipe = make_recipe(arch, student, discriminator, mode=mode, teacher=teacher, taps=taps,
                         lambda_distill=lambda_distill, identity_net=identity_net)
    steps, history = fit_logged(recipe, train, train_config, on_log)
    return DistillResult(student.eval(), recipe, steps, history, d_source)


def fit_logged(recipe: Recipe, train: Dataset, train_config: TrainConfig,
               on_log: Callable[[int, dict[str, float]], None] | None = None) -> tuple[int, list[dict[str, float]]]:
    """Run the Trainer; return the steps done and every loss row logged in this call (also passed to `on_log`)."""
    history: list[dict[str, float]] = []

    def log(step: int, metrics: dict[str, float]) -> None:
        history.append({"step": step, **metrics})
        if on_log is not None:
            on_log(step, metrics)

    return Trainer(recipe, train, train_config, on_log=log).fit().step, history


# ----------------------------------------------------------------------------- the stage on shipped teachers
def sources_fingerprint(teacher_manifest: Mapping[str, Any], root: Path, train: Dataset) -> dict[str, Any]:
    """The teacher (its weights' sha256) and the data (root, training pairs) a run learns from: a resumed
    run with other ones is refused."""
    return {"teacher": teacher_manifest.get("sha256"), "data": str(Path(root).resolve()), "train_pairs": len(train)}


def macs_and_params(arch: str, config: Mapping[str, int] | str | None, size: int, knobs: Mapping[str, Any]) -> dict[str, int]:
    from gancomp_lite.cost import CostModel

    model = CostModel.for_arch(arch, size, **knobs)
    return {"macs": model.macs(config, CONVENTION), "params": model.params(config)}


def run_stage(arch: str, config: str, *, mode: str = "feature", steps: int = 300, seed: int = 0,
              out_dir: Path | None = None, lambda_distill: float | None = None, inherit_d: bool = True,
              taps: Iterable[str] | None = None, batch_size: int | None = None, preset: str = "quick",
              data: Path | None = None,
              weights_dir: Path | None = None, progress: bool = True, ckpt_every: int = 50,
              ckpt_minutes: float | None = 5.0, fresh: bool = False) -> dict[str, Any]:
    """Distill the shipped `arch` teacher into a student at `config`, evaluate it on the test split, save it.

    Checkpoints every `ckpt_every` steps and `ckpt_minutes` of work; a re-run into the same `out_dir`
    resumes, and is refused when a setting that shapes the result differs (naming it). `fresh` moves an
    existing `out_dir` aside (``<out_dir>.old-<time>``, nothing is deleted) and starts again.

    `data`: a Multi-PIE-format tree (default: the preset's SynthPIE set); `weights_dir`: where the
    shipped teacher and identity network are (default: the package's ``weights/``).

    Writes ``student.pt``/``.json`` (loadable by `gancomp_lite.evaluate.load_generator`), the Trainer's
    ``last.pt`` and ``metrics.csv``, and ``summary.json`` (settings, MACs, test metrics, logged losses)
    into `out_dir`; returns the summary.
    """
    from data_tools.dataset import load_splits
    from data_tools.synthpie import ensure_synthpie
    from gancomp_lite.evaluate import evaluate
    from gancomp_lite.checkpoint import atomic_write_bytes
    from gancomp_lite.errors import InputError, check_range
    from gancomp_lite.teachers import (QUICK_TEACHERS, WEIGHTS_DIR, build_discriminator, judge_sha256, load_identity,
                                       load_judge, load_teacher)

    check_mode(mode)
    objective(arch)
    if preset != "quick" or arch not in QUICK_TEACHERS:
        raise InputError(f"no shipped {preset} teacher for {arch!r}; quick teachers: {sorted(QUICK_TEACHERS)}")
    check_range("steps", steps, 1)
    check_range("batch size", batch_size, 1)
    check_range("ckpt_every", ckpt_every, 1)
    check_range("ckpt_minutes", ckpt_minutes, 0)
    if lambda_distill is not None and not 0 <= lambda_distill < float("inf"):
        raise InputError(f"lambda_distill must be a finite number >= 0, got {lambda_distill!r}")
    spec = QUICK_TEACHERS[arch]
    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    teacher, teacher_d, manifest = load_teacher(arch, preset, weights_dir, with_discriminator=True)
    size, knobs = manifest["size"], dict(manifest["knobs"])
    space = channel_space(arch, size, **knobs)
    config_str = space.encode(space.decode(config))
    if taps is not None and not set(taps) <= set(teacher.tap_channels()):
        raise InputError(f"taps {sorted(set(taps) - set(teacher.tap_channels()))} are not feature taps of {arch}; "
                         f"choose from {sorted(teacher.tap_channels())}")
    identity = load_identity(preset, weights_dir)
    out_dir = Path(out_dir or f"runs/distill/{arch}-{config_str}-{mode}{'' if inherit_d else '-randomD'}-seed{seed}")
    if fresh and out_dir.exists():
        move_aside(out_dir)
    root = Path(data) if data is not None else ensure_synthpie(preset, seed=0, progress=progress)
    train, test = load_splits(root, "multipie", size=size)

    d_spec = manifest["discriminator"]

    def make_d() -> nn.Module:
        return build_discriminator(d_spec["kind"], size, **d_spec["knobs"])

    train_config = TrainConfig(out_dir=str(out_dir), steps=steps, batch_size=batch_size or spec.batch_size,
                               lr=spec.lr, betas=spec.betas, seed=seed, log_every=10, ckpt_every=min(ckpt_every, steps),
                               ckpt_minutes=ckpt_minutes, amp=False, progress=progress,   # full precision, as the teachers
                               fingerprint={"arch": arch, "config": config_str, "inherit_d": inherit_d,
                                            **sources_fingerprint(manifest, root, train)})
    start = time.perf_counter()
    run = distill(arch, config_str, teacher, train, size=size, knobs=knobs, make_d=make_d,
                  teacher_d_state=teacher_d.state_dict(),
                  train_config=train_config, mode=mode, taps=taps, lambda_distill=lambda_distill,
                  inherit_d=inherit_d, identity_net=identity)
    train_seconds = time.perf_counter() - start
    device = next(run.student.parameters()).device
    metrics = evaluate(test, load_judge(preset, weights_dir).to(device), run.student, device=device,
                       progress=progress)   # scored by the judge, which no objective uses
    summary = {
        "arch": arch, "config": config_str, "size": size, "knobs": knobs, "mode": mode,
        **run.recipe.distill_manifest(), "d_source": run.d_source, "steps": run.steps, "seed": seed,
        "batch_size": train_config.batch_size, "train_seconds_last_call": round(train_seconds, 1),
        "convention": CONVENTION, **macs_and_params(arch, config_str, size, knobs),
        "teacher": {"config": manifest["config"], "taps": list(teacher.taps), **macs_and_params(arch, None, size, knobs),
                    "metrics": manifest.get("metrics")},
        "metrics": metrics, "judge_sha256": judge_sha256(preset, weights_dir), "history": _logged(out_dir),
    }
    save_checkpoint(out_dir / "student.pt", run.student.state_dict(), {k: v for k, v in summary.items() if k != "history"})
    atomic_write_bytes(out_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    return summary


def _logged(out_dir: Path) -> list[dict[str, float]]:
    """Every logged loss row of a run, also the rows of earlier calls when it was resumed."""
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines() if line]
    return [{k: v for k, v in row.items() if k != "epoch"} for row in rows]


# ----------------------------------------------------------------------------- command line
def register(subparsers: argparse._SubParsersAction) -> None:
    from gancomp_lite.errors import int_in

    cmd = subparsers.add_parser("distill", help="distill a shipped teacher into a narrower student (eq. 4-5)")
    cmd.add_argument("--arch", choices=["tpgan", "resnet9"], required=True)
    cmd.add_argument("--config", required=True, help="the student's channel config string (see `gancomp-lite macs`)")
    cmd.add_argument("--mode", choices=MODES, default="feature")
    cmd.add_argument("--steps", type=int_in(1), default=300)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--out", type=Path, default=None, help="output folder (default runs/distill/<arch>-<config>-<mode>-seed<N>)")
    cmd.add_argument("--lambda-distill", type=float, default=None,
                     help="weight of the teacher term (default: 1 for feature; the pixel-loss weight for output)")
    cmd.add_argument("--taps", default=None, help="comma list of feature taps (default: all the teacher's)")
    cmd.add_argument("--random-d", action="store_true", help="start the student's D from random weights, not the teacher's")
    cmd.add_argument("--batch-size", type=int_in(1), default=None)
    cmd.add_argument("--ckpt-every", type=int_in(1), default=50, help="checkpoint every N steps (default 50)")
    cmd.add_argument("--ckpt-minutes", type=float, default=5.0, help="and every M minutes of work (default 5)")
    cmd.add_argument("--fresh", action="store_true",
                     help="start afresh: move an existing --out folder aside (<out>.old-<time>) instead of resuming it")
    cmd.add_argument("--data", type=Path, default=None, help="Multi-PIE-format data tree (default: SynthPIE quick)")
    cmd.add_argument("--weights", type=Path, default=None, help="folder of the shipped teacher and identity network")
    cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    summary = run_stage(args.arch, args.config, mode=args.mode, steps=args.steps, seed=args.seed, out_dir=args.out,
                        lambda_distill=args.lambda_distill, inherit_d=not args.random_d,
                        taps=args.taps.split(",") if args.taps else None, batch_size=args.batch_size,
                        data=args.data, weights_dir=args.weights, ckpt_every=args.ckpt_every,
                        ckpt_minutes=args.ckpt_minutes, fresh=args.fresh)
    m = summary["metrics"]
    print(f"{summary['arch']} {summary['config']} ({summary['mode']}, D {summary['d_source']}): "
          f"{summary['macs'] / 1e6:.1f}M MACs ({CONVENTION}), {summary['params'] / 1e6:.3f}M params; "
          f"L1 {m['l1']:.4f}, SSIM {m['ssim']:.3f}, rank-1 {m['rank1']['mean']:.1%}")
    return 0

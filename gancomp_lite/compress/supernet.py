"""The once-for-all student supernet (GAN Compression section 3.3; seed paper section 3.2-3.3).

The student design space may differ from the teacher (paper section 3.2): some layer groups are built
depthwise + pointwise, and every channel group may shrink in finer steps than the teacher's own space.
`student_design(arch, teacher_knobs, preset)` gives the knobs that build it; the supernet is that
family built at the teacher's widths, so its largest config has the teacher's channels:

    family    separable groups (why: docs/compression.md)          width step (quick / full)
    resnet9   residual blocks 4-9 (groups c4, c5)                     4 / 8
    tpgan     every resblock group                                  2 / 8
    crgan     none (no separable switch; widths alone reach 27x)    4 / 8
    pim       none (no separable switch; widths reach 41x at step 1) 1 / 4

Training (eq. 5) is the distillation stage's recipe for the family in feature mode, with one change:
before each step a sampler picks the sub-network to train (`ConfigSampler`: uniform per group,
"single-path one-shot", or the sandwich rule: largest, smallest, random in turn). The sampled config
is a function of (seed, step) alone, so DDP ranks agree and a resumed run samples what an
uninterrupted one would.

The supernet starts from the teacher: every tensor of the same name and shape is copied, and each
separable layer starts as the best separable approximation of the teacher's dense one
(`sensitivity.init_from_teacher`). GAN Compression trains its supernet from scratch; on a CPU budget
starting from the teacher is what makes a few hundred steps enough (docs/compression.md).

Normalisation: ResNet-9 uses InstanceNorm (statistics of the image itself: any sub-network is ready
to run), while TP-GAN, CR-GAN and PIM use BatchNorm, whose running statistics the supernet mixes over
all sampled widths; `recalibrate_bn` re-estimates them for one candidate before it is evaluated or
extracted (as GAN Compression does for its BatchNorm models).
"""
from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from gancomp_lite.compress.distillation import fit_logged, make_recipe, student_discriminator
from gancomp_lite.compress.sensitivity import init_from_teacher
from gancomp_lite.evaluate import frontalize_batch
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.nn.elastic import extract
from gancomp_lite.recipes.base import Recipe
from gancomp_lite.seeding import seed_everything
from gancomp_lite.space import ChannelSpace
from gancomp_lite.train import TrainConfig

SAMPLING_RULES = ("uniform", "sandwich")
# Knob overrides that turn a teacher family into its student design space, per preset.
STUDENT_DESIGN: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {"resnet9": {"step": 4, "separable": ("c4", "c5")}, "tpgan": {"step": 2, "separable": True},
              "crgan": {"step": 4}, "pim": {"step": 1}},
    "full": {"resnet9": {"step": 8, "separable": ("c4", "c5")}, "tpgan": {"step": 8, "separable": True},
             "crgan": {"step": 8}, "pim": {"step": 4}},
}


def student_design(arch: str, teacher_knobs: Mapping[str, Any], preset: str = "quick",
                   min_width: int | None = None) -> dict[str, Any]:
    """The knobs that build `arch`'s student supernet (the teacher's knobs plus the design overrides; with
    `min_width`, no group narrower than that)."""
    if preset not in STUDENT_DESIGN or arch not in STUDENT_DESIGN[preset]:
        raise ValueError(f"no student design for {arch!r} in preset {preset!r}; "
                         f"known: {sorted(STUDENT_DESIGN.get(preset, STUDENT_DESIGN['quick']))}")
    return {**teacher_knobs, **STUDENT_DESIGN[preset][arch], **({"min_width": min_width} if min_width else {})}


def uses_batchnorm(model: nn.Module) -> bool:
    """True when the generator has BatchNorm layers (their statistics need recalibrating per sub-network)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@dataclass(frozen=True)
class ConfigSampler:
    """Step -> stored config: uniform per group, or the sandwich rule (largest, smallest, random in turn)."""

    space: ChannelSpace
    seed: int = 0
    rule: str = "uniform"

    def __post_init__(self) -> None:
        if self.rule not in SAMPLING_RULES:
            raise ValueError(f"unknown sampling rule {self.rule!r}; choose one of {list(SAMPLING_RULES)}")

    def config(self, step: int) -> dict[str, int]:
        if self.rule == "sandwich" and step % 3 < 2:
            return self.space.largest() if step % 3 == 0 else self.space.smallest()
        return self.space.sample(random.Random(self.seed * 1_000_003 + step))

    def __call__(self, step: int) -> dict[str, int]:
        """Real channel widths of the step's sub-network (what `set_active` takes)."""
        return self.space.widths(self.config(step))


# ----------------------------------------------------------------------------- building
def build_supernet(arch: str, teacher: nn.Module, size: int, knobs: Mapping[str, Any],
                   calibration: torch.Tensor) -> nn.Module:
    """The student design at the teacher's widths, initialised from the teacher (copy + separable SVD)."""
    supernet = build(arch, None, size, **knobs)
    source = teacher.state_dict()
    target = supernet.state_dict()
    copied = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    supernet.load_state_dict(copied, strict=False)
    init_from_teacher(teacher, supernet, calibration)
    return supernet


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]]) -> None:
    """Re-estimate every BatchNorm's running statistics for the active sub-network (cumulative average)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [(m, m.momentum) for m in norms]
    training = model.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for batch in batches:
            frontalize_batch(model, dict(batch))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(training)


def extract_subnet(supernet: nn.Module, arch: str, config: Mapping[str, int] | str, size: int,
                   knobs: Mapping[str, Any]) -> nn.Module:
    """The plain model at `config` (stored values) with the supernet's weight slices; eval mode."""
    space = channel_space(arch, size, **knobs)
    stored = space.decode(config) if isinstance(config, str) else space.validate(config)
    subnet = build(arch, stored, size, **knobs)
    extract(supernet, subnet, space.widths(stored))
    return subnet.eval()


# ----------------------------------------------------------------------------- training
@dataclass
class SupernetResult:
    supernet: nn.Module          # eval mode, full width active
    recipe: Recipe               # holds the adapters ("A") and the supernet's D ("D")
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)


def train_supernet(arch: str, teacher: nn.Module, train: Dataset, *, size: int, knobs: Mapping[str, Any],
                   make_d: Callable[[], nn.Module], teacher_d_state: Mapping[str, torch.Tensor] | None,
                   train_config: TrainConfig, identity_net: nn.Module | None = None, rule: str = "uniform",
                   lambda_distill: float | None = None, options: Mapping[str, Any] | None = None,
                   calibration: torch.Tensor | None = None,
                   on_log: Callable[[int, dict[str, float]], None] | None = None) -> SupernetResult:
    """Train `arch`'s once-for-all supernet (design `knobs`) by eq. 5 with uniform channel sampling.

    The teacher is frozen (a copy is used); the supernet's D starts as the teacher's D. Resumes from
    ``train_config.out_dir`` like every Trainer run.
    """
    seed_everything(train_config.seed)
    teacher = copy.deepcopy(teacher).eval()
    if calibration is None:
        calibration = torch.stack([train[i]["profile"] for i in range(min(16, len(train)))])
    supernet = build_supernet(arch, teacher, size, knobs, calibration)
    discriminator, _ = student_discriminator(make_d, teacher_d_state)
    recipe = make_recipe(arch, supernet, discriminator, mode="feature", teacher=teacher,
                         lambda_distill=lambda_distill, identity_net=identity_net, options=options)
    recipe.sample_widths(ConfigSampler(channel_space(arch, size, **knobs), train_config.seed, rule))
    steps, history = fit_logged(recipe, train, train_config, on_log)
    recipe.sample_widths(None)
    return SupernetResult(supernet.eval(), recipe, steps, history)

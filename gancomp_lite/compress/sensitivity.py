"""Which layers tolerate separable convolutions? GAN Compression's per-layer study (section 3.2).

A separable convolution (depthwise k x k, norm, pointwise 1 x 1; ``gancomp_lite.nn.blocks``) costs
about 1/C_out + 1/k^2 of a dense one, but it is not equally harmless everywhere: the paper finds
the residual blocks (most of the MACs) insensitive and the upsampling layers (few parameters) very
sensitive. This module measures that on a trained teacher, one layer group at a time:

1. build the student: the teacher's architecture with that one group separable
   (``separable=(group,)``), every other tensor copied from the teacher;
2. initialise the separable layers as the best separable approximation of the teacher's dense
   ones (``init="svd"``: per input channel, the rank-1 SVD of the (C_out x k^2) kernel slice gives
   the depthwise kernel and the pointwise column; one calibration batch folds the norm that sits
   between the two halves into the neighbouring weights), or leave them as built (``init="fresh"``);
3. re-train briefly with distillation from the teacher (eq. 4 on the family's taps, through 1x1
   adapters that start as the identity, plus lambda_recon * L1 to the ground truth; no GAN term),
   a fixed number of seeded steps through the project's Trainer;
4. evaluate L1/SSIM/rank-1 and compare with the teacher; count the MACs saved with the analytic
   cost model in a stated convention.

A "none" control row re-trains the unchanged teacher the same way, separating the effect of the
brief re-training from the effect of the swap.
"""
from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from data_tools.protocol import NEUTRAL_ILLUMINATION
from gancomp_lite.cost import CONVENTIONS, Cost, count
from gancomp_lite.distill import FeatureAdapters, build_adapters, distill_loss, feature_taps
from gancomp_lite.losses import reconstruction_loss
from gancomp_lite.models.registry import _family, build
from gancomp_lite.nn.blocks import ResidualBlock, SeparableConv2d
from gancomp_lite.nn.elastic import ElasticConvTranspose2d
from gancomp_lite.recipes.base import OptimConfig, Recipe
from gancomp_lite.seeding import seed_everything

CONTROL = "none"                      # the row that re-trains the unchanged teacher
INITS = ("svd", "fresh")
ROLES = ("residual", "upsampling", "other")


# ------------------------------------------------------------------ building the students
def separable_groups(arch: str) -> tuple[str, ...]:
    """The layer groups of `arch` that ``separable=(...)`` may name (the family's ``LAYER_GROUPS``)."""
    groups = getattr(_family(arch), "LAYER_GROUPS", None)
    if groups is None:
        raise ValueError(f"{arch} has no per-group separable switch (no LAYER_GROUPS in its family module)")
    return tuple(groups)


def check_groups(arch: str, groups: Collection[str]) -> tuple[str, ...]:
    allowed = separable_groups(arch)
    unknown = [g for g in groups if g not in allowed]
    if unknown:
        raise ValueError(f"{arch}: no layer groups {unknown}; separable layer groups are {list(allowed)}")
    return tuple(groups)


def _knobs(knobs: Mapping[str, Any], groups: Collection[str]) -> dict[str, Any]:
    """`knobs` with `groups` added to any separable groups the teacher already has."""
    already = knobs.get("separable", ())
    return {**knobs, "separable": tuple(sorted(set(already) | set(groups)))}


def build_variant(arch: str, teacher: nn.Module, knobs: Mapping[str, Any], groups: Collection[str]) -> nn.Module:
    """The teacher's architecture (same widths and size) with `groups` separable, freshly initialised."""
    check_groups(arch, groups)
    return build(arch, getattr(teacher, "config", None), teacher.size, **_knobs(knobs, groups))


def separable_cost(arch: str, size: int, knobs: Mapping[str, Any], groups: Collection[str] = (),
                   config: Mapping[str, int] | str | None = None, convention: str = "gancomp") -> Cost:
    """MACs and parameters of `arch` at `config` with `groups` separable (analytic, no weights)."""
    check_groups(arch, groups)
    return count(arch, config, size, convention, **_knobs(knobs, groups))


@torch.no_grad()
def transfer_weights(teacher: nn.Module, student: nn.Module) -> list[str]:
    """Copy every teacher tensor the student has under the same name and shape; return the keys left as built."""
    source = teacher.state_dict()
    fresh = []
    for key, tensor in student.state_dict().items():
        if key in source and source[key].shape == tensor.shape:
            tensor.copy_(source[key])
        else:
            fresh.append(key)
    return fresh


def swapped_layers(teacher: nn.Module, student: nn.Module) -> list[str]:
    """Names of the student's separable convs whose teacher counterpart is a dense conv."""
    modules = dict(teacher.named_modules())
    return [name for name, module in student.named_modules()
            if isinstance(module, SeparableConv2d) and not isinstance(modules.get(name), SeparableConv2d)]


def layer_role(model: nn.Module, names: Sequence[str]) -> str:
    """"upsampling" if a layer upsamples, "residual" if all sit inside residual blocks, else "other"."""
    from gancomp_lite.models.tpgan import ResBlock

    if not names:
        return "other"
    if any(isinstance(model.get_submodule(n)[0], ElasticConvTranspose2d) for n in names):
        return "upsampling"
    residual = [name for name, m in model.named_modules() if isinstance(m, (ResidualBlock, ResBlock))]
    inside = all(any(n.startswith(r + ".") for r in residual) for n in names)
    return "residual" if inside else "other"


def group_layers(arch: str, size: int, knobs: Mapping[str, Any]) -> dict[str, list[str]]:
    """{group: names of the conv layers it makes separable}, read off models built on the meta device."""
    with torch.device("meta"):
        dense = build(arch, None, size, **knobs)
        return {g: swapped_layers(dense, build(arch, None, size, **_knobs(knobs, (g,)))) for g in separable_groups(arch)}


# ------------------------------------------------------------------ separable initialisation
@torch.no_grad()
def factorize(dense: nn.Module, separable: SeparableConv2d) -> None:
    """Set depthwise and pointwise weights to the best separable approximation of `dense`'s kernel.

    A separable kernel is W[o, i] = P[o, i] * D[i] (a k x k map D per input channel), i.e. for each
    input channel i the (C_out x k^2) slice of W has rank one; its truncated SVD is the closest such
    slice in Frobenius norm. The dense bias moves to the pointwise conv.
    """
    depthwise, _, pointwise = separable
    weight = dense.weight
    transposed = isinstance(dense, nn.ConvTranspose2d)
    per_input = weight if transposed else weight.transpose(0, 1)          # (C_in, C_out, k, k)
    if depthwise.weight.shape[0] != per_input.shape[0] or pointwise.weight.shape[0] != per_input.shape[1]:
        raise ValueError(f"cannot factorize a {tuple(weight.shape)} kernel into depthwise "
                         f"{tuple(depthwise.weight.shape)} + pointwise {tuple(pointwise.weight.shape)}")
    u, s, vh = torch.linalg.svd(per_input.flatten(2).double(), full_matrices=False)
    depthwise.weight.copy_(vh[:, 0].reshape(depthwise.weight.shape))
    pointwise.weight.copy_((u[:, :, 0] * s[:, :1]).T.reshape(pointwise.weight.shape))
    if depthwise.bias is not None:
        depthwise.bias.zero_()
    if pointwise.bias is not None:
        pointwise.bias.copy_(dense.bias if dense.bias is not None else torch.zeros_like(pointwise.bias))


def _fold_norm(separable: SeparableConv2d) -> Callable:
    """A forward pre-hook for the norm inside `separable` that undoes it on the batch it sees.

    BatchNorm (affine): scale and shift set to the batch's std and mean (running stats too), so the
    norm passes its input through. InstanceNorm without affine: the pointwise weights are scaled by
    the channels' mean per-image std and its bias absorbs their mean, so norm + pointwise still
    compute what the un-normalised pointwise conv would.
    """
    norm, pointwise = separable[1], separable[2]

    def hook(module: nn.Module, args: tuple[torch.Tensor]) -> None:
        x = args[0]
        if isinstance(norm, nn.BatchNorm2d):
            mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), unbiased=False)
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_((var + norm.eps).sqrt())
            norm.bias.copy_(mean)
        elif isinstance(norm, nn.InstanceNorm2d) and not norm.affine:
            mean = x.mean((2, 3)).mean(0)
            std = (x.var((2, 3), unbiased=False) + norm.eps).sqrt().mean(0)
            if pointwise.bias is not None:
                pointwise.bias.add_(pointwise.weight.flatten(1) @ mean)
            pointwise.weight.mul_(std[None, :, None, None])
        elif not isinstance(norm, nn.Identity):
            raise TypeError(f"cannot fold a {type(norm).__name__} inside a separable conv")

    return hook


@torch.no_grad()
def init_from_teacher(teacher: nn.Module, student: nn.Module, calibration: torch.Tensor) -> list[str]:
    """Factorize every swapped layer from the teacher's dense one, then fold the norms on `calibration`.

    The norms are folded in one eval-mode forward pass, in network order, so each layer is
    calibrated on the output of the already initialised layers before it. Returns the layer names.
    """
    names = swapped_layers(teacher, student)
    handles = []
    for name in names:
        separable = student.get_submodule(name)
        factorize(teacher.get_submodule(name), separable)
        handles.append(separable[1].register_forward_pre_hook(_fold_norm(separable)))
    training = student.training
    try:
        student.eval()(calibration)
    finally:
        for handle in handles:
            handle.remove()
        student.train(training)
    return names


# ------------------------------------------------------------------ brief re-training (eq. 4 + L1)
class SeparableDistillRecipe(Recipe):
    """L = lambda_recon * ||G(x) - y||_1 + lambda_distill * sum_t MSE(T_t(x), f_t(G_t(x))); no discriminator.

    Modules "G" (the student) and "A" (adapters) share one Adam; "T" is the frozen teacher.
    """

    name = "separable-distill"

    def __init__(self, student: nn.Module, teacher: nn.Module, adapters: FeatureAdapters,
                 lambda_recon: float = 100.0, lambda_distill: float = 1.0) -> None:
        super().__init__()
        self.lambda_recon, self.lambda_distill = float(lambda_recon), float(lambda_distill)
        self.add_module("G", student)
        self.add_module("T", teacher, trainable=False)
        self.add_module("A", adapters)
        self.taps = list(adapters.keys())

    def configure_optimizers(self, optim: OptimConfig) -> None:
        self.add_optimizer("G", ["G", "A"], optim)

    def train_step(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        profile = batch["profile"]
        with self.autocast():
            outputs = self.run("G", profile, method="forward_all")
            with torch.no_grad():
                teacher_feats = feature_taps(self.run("T", profile, method="forward_all"), self.taps)
            loss_recon = reconstruction_loss(outputs["image"], batch["frontal"])
            loss_distill = distill_loss(teacher_feats, feature_taps(outputs, self.taps), lambda f: self.run("A", f))
            loss = self.lambda_recon * loss_recon + self.lambda_distill * loss_distill
        self.optimize(loss, "G")
        return {"loss_G_recon": loss_recon.item(), "loss_G_distill": loss_distill.item(), "loss_G": loss.item()}


@torch.no_grad()
def identity_adapters(student: nn.Module, teacher: nn.Module, sample: torch.Tensor) -> FeatureAdapters:
    """1x1 adapters on every teacher tap; where widths match they start as the identity map.

    The student is the teacher with one group swapped, so at the start its features are the
    teacher's: the identity is the exact adapter, and the distillation loss measures only the swap.
    """
    adapters = build_adapters(student, teacher, sample)
    for adapter in adapters.values():
        if adapter.in_channels == adapter.out_channels:
            adapter.weight.copy_(torch.eye(adapter.out_channels)[:, :, None, None])
    return adapters


@dataclass(frozen=True)
class RetrainSettings:
    """How each student is re-trained (the same for every group, so the rows compare)."""

    steps: int = 30
    batch_size: int = 8
    lr: float = 2e-4
    lambda_recon: float = 100.0
    lambda_distill: float = 1.0
    init: str = "svd"             # "svd": best separable approximation of the teacher; "fresh": as built
    calibration: int = 16         # training profiles used to fold the norms (init="svd")
    seed: int = 0

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {INITS}")
        if self.steps < 0 or self.batch_size < 1 or self.calibration < 1:
            raise ValueError(f"steps must be >= 0 and batch_size, calibration >= 1; got {self}")


def calibration_batch(dataset: Dataset, n: int, seed: int) -> torch.Tensor:
    """`n` training profiles chosen by `seed` (the same ones for every group)."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.stack([dataset[int(i)]["profile"] for i in order])


def make_student(arch: str, teacher: nn.Module, knobs: Mapping[str, Any], groups: Collection[str],
                 calibration: torch.Tensor, init: str = "svd", seed: int = 0) -> tuple[nn.Module, list[str]]:
    """The student for `groups` with the teacher's weights everywhere else; returns (student, swapped layer names)."""
    seed_everything(seed)
    student = build_variant(arch, teacher, knobs, groups)
    transfer_weights(teacher, student)
    if init == "svd":
        return student, init_from_teacher(teacher, student, calibration)
    return student, swapped_layers(teacher, student)


def retrain(student: nn.Module, teacher: nn.Module, train_set: Dataset, settings: RetrainSettings,
            sample: torch.Tensor, progress: bool = False) -> dict[str, list[float]]:
    """Distil `student` from `teacher` for `settings.steps` seeded steps; return the logged loss history."""
    from gancomp_lite.train import TrainConfig, Trainer

    history: dict[str, list[float]] = {"step": []}

    def on_log(step: int, metrics: Mapping[str, float]) -> None:
        history["step"].append(step)
        for key, value in metrics.items():
            history.setdefault(key, []).append(float(value))

    if settings.steps == 0:
        return history
    recipe = SeparableDistillRecipe(student, teacher, identity_adapters(student, teacher, sample),
                                    settings.lambda_recon, settings.lambda_distill)
    with tempfile.TemporaryDirectory() as out_dir:
        config = TrainConfig(out_dir=out_dir, steps=settings.steps, batch_size=settings.batch_size, lr=settings.lr,
                             seed=settings.seed, log_every=max(1, settings.steps // 10), ckpt_every=settings.steps + 1,
                             device="cpu", resume=False, progress=progress)
        Trainer(recipe, train_set, config, on_log=on_log).fit()
    student.eval()
    teacher.eval()
    return history


# ------------------------------------------------------------------ the study
def neutral_subset(dataset: Dataset, illumination: str = NEUTRAL_ILLUMINATION, identities: int | None = None) -> Subset:
    """The samples at one illumination (optionally of the first `identities` only): a smaller evaluation
    set that keeps every yaw and a gallery image per identity."""
    names = sorted({record.identity for record in dataset.records})[:identities]
    keep = [i for i, record in enumerate(dataset.records)
            if record.illumination == illumination and record.identity in names]
    if not keep:
        raise ValueError(f"no sample at illumination {illumination!r} in the evaluation set")
    return Subset(dataset, keep)


def quality(generator: nn.Module, eval_set: Dataset, identity: nn.Module) -> dict[str, float]:
    """L1, SSIM and mean rank-1 of `generator` on `eval_set` (``gancomp_lite.evaluate``)."""
    from gancomp_lite.evaluate import evaluate

    result = evaluate(eval_set, identity, generator, batch_size=64, progress=False)
    return {"l1": result["l1"], "ssim": result["ssim"], "rank1": result["rank1"]["mean"]}


def sensitivity(arch: str, teacher: nn.Module, knobs: Mapping[str, Any], train_set: Dataset, eval_set: Dataset,
                identity: nn.Module, groups: Sequence[str] | None = None, settings: RetrainSettings = RetrainSettings(),
                convention: str = "gancomp", control: bool = True, eval_before: bool = True,
                progress: bool = True) -> dict[str, Any]:
    """Swap each group alone to separable, re-train briefly, and measure quality against MACs saved.

    Returns a JSON-ready dict: the setting ("arch", "size", "knobs", "config", "convention",
    "settings"), "teacher" (macs, params, l1, ssim, rank1) and "rows", one per group (plus the
    "none" control first when `control`): group, role, layers, macs, macs_saved, macs_saved_pct
    (in `convention`), macs_saved_pct_physical, params_saved, l1/ssim/rank1 after re-training and,
    with `eval_before`, right after the swap (``*_init``), their changes against the teacher
    (d_l1, d_ssim, d_rank1, d_*_init) and the distillation loss history.
    """
    from tqdm.auto import tqdm

    if convention not in CONVENTIONS:
        raise ValueError(f"unknown MACs convention {convention!r}; choose one of {CONVENTIONS}")
    groups = check_groups(arch, separable_groups(arch) if groups is None else groups)
    size, config = teacher.size, getattr(teacher, "config", None)
    teacher.eval()
    costs = {conv: separable_cost(arch, size, knobs, (), config, conv) for conv in CONVENTIONS}
    base = quality(teacher, eval_set, identity)
    calibration = calibration_batch(train_set, settings.calibration, settings.seed)
    rows = []
    for group in tqdm(([CONTROL] if control else []) + list(groups), desc="sensitivity", disable=not progress):
        start = time.perf_counter()
        swap = () if group == CONTROL else (group,)
        student, layers = make_student(arch, teacher, knobs, swap, calibration, settings.init, settings.seed)
        before = quality(student, eval_set, identity) if eval_before else {}
        history = retrain(student, teacher, train_set, settings, calibration[:2], progress=False)
        after = quality(student, eval_set, identity)
        cost = {conv: separable_cost(arch, size, knobs, swap, config, conv) for conv in CONVENTIONS}
        saved = costs[convention].macs - cost[convention].macs
        rows.append({
            "group": group, "role": "control" if group == CONTROL else layer_role(student, layers), "layers": layers,
            "macs": cost[convention].macs, "macs_saved": saved, "macs_saved_pct": 100 * saved / costs[convention].macs,
            "macs_saved_pct_physical": 100 * (1 - cost["physical"].macs / costs["physical"].macs),
            "params_saved": costs[convention].params - cost[convention].params,
            **after, **{f"{k}_init": v for k, v in before.items()},
            **{f"d_{k}": after[k] - base[k] for k in after}, **{f"d_{k}_init": before[k] - base[k] for k in before},
            "history": history, "seconds": round(time.perf_counter() - start, 1),
        })
    return {"arch": arch, "size": size, "knobs": dict(knobs), "config": config, "convention": convention,
            "settings": asdict(settings), "eval_samples": len(eval_set),
            "teacher": {"macs": costs[convention].macs, "params": costs[convention].params, **base}, "rows": rows}


def save_results(results: Mapping[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    return path


def load_results(path: str | Path) -> dict[str, Any]:
    """A saved study; refuses a file without the keys the plots read."""
    results = json.loads(Path(path).read_text())
    missing = [k for k in ("arch", "size", "knobs", "convention", "teacher", "rows") if k not in results]
    if missing:
        raise ValueError(f"{path}: not a sensitivity result (missing {missing})")
    return results

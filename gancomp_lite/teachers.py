"""The quick teachers: train, ship and load the identity network and the four teacher generators.

`gancomp-lite teachers train` reproduces every shipped checkpoint in ``gancomp_lite/weights/``:
first the Light-CNN identity network (near-frontal views of the training identities), then each teacher
generator with its own paper's objective, then the evaluation protocol on the test identities.
A teacher checkpoint is the generator's state dict in half precision plus a manifest holding
everything needed to rebuild it (arch, knobs, size, config string) and to trust it (command,
seed, data split, metrics, sha256). `load_teacher` checks the hash and loads with
``weights_only=True``.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, read_manifest, save_checkpoint
from gancomp_lite.models import discriminator as discriminators
from gancomp_lite.models.lightcnn import LightCNN, load_identity_network, save_identity_network, train_identity_network
from gancomp_lite.models.registry import build, channel_space
from gancomp_lite.presets import get_preset
from gancomp_lite.recipes.base import Recipe
from gancomp_lite.seeding import seed_everything

if TYPE_CHECKING:
    from data_tools.dataset import FaceDataset

WEIGHTS_DIR = Path(__file__).parent / "weights"
IDENTITY_FILE = "lightcnn-{preset}.pt"
TEACHER_FILE = "{arch}-{preset}.pt"


@dataclass(frozen=True)
class IdentitySpec:
    """How the preset's identity network is trained (Light-CNN on grayscale faces).

    max_yaw: the largest |yaw| it trains on. The real Light-CNN learns from web faces (MS-Celeb-1M,
    CASIA-WebFace), which are mostly near-frontal, and is weak on profiles; that weakness is what
    frontalization repairs and what the rank-1 benchmark measures. A recognizer trained on every
    pose of the same identities would already be pose-invariant and leave nothing to repair.
    """
    variant: str
    width: float
    input_size: int
    steps: int
    max_yaw: int = 30
    batch_size: int = 32
    lr: float = 1e-3


@dataclass(frozen=True)
class TeacherSpec:
    """How one teacher generator and its discriminator are built and trained for a preset."""
    arch: str
    knobs: dict[str, Any]
    discriminator: tuple[str, dict[str, Any]]     # (kind, knobs) for `build_discriminator`
    recipe: Callable[..., Recipe]                  # (G, D, identity net or None, **options) -> Recipe
    steps: int
    options: dict[str, Any] = field(default_factory=dict)   # keyword options of the recipe
    needs_identity: bool = False                   # the objective itself uses the identity network
    face_template: bool = False                    # place the local pathway's parts at the data's mean frontal landmarks
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)


def build_discriminator(kind: str, size: int, **knobs: Any) -> nn.Module:
    """A teacher's discriminator by kind: "patchgan" (eq. 3's D(x, y)), "tpgan" or "crgan" (view critic)."""
    if kind == "crgan":
        from gancomp_lite.models.crgan import CRGANDiscriminator

        return CRGANDiscriminator(size=size, **knobs)
    if kind == "tpgan":
        knobs = {**knobs, "size": size}
    return discriminators.build(kind, **knobs)


def _pix2pix(generator: nn.Module, discriminator: nn.Module, identity: LightCNN | None, **options: Any) -> Recipe:
    from gancomp_lite.recipes.pix2pix import Pix2PixRecipe

    return Pix2PixRecipe(generator, discriminator, gan_mode="hinge", lambda_recon=100.0, identity_net=identity, **options)


def _tpgan(generator: nn.Module, discriminator: nn.Module, identity: LightCNN | None, **options: Any) -> Recipe:
    from gancomp_lite.recipes.tpgan import TPGANRecipe

    return TPGANRecipe(generator, discriminator, identity, **{"g_steps": 1, **options})   # official: 2 G updates per D update


def _crgan(generator: nn.Module, discriminator: nn.Module, identity: LightCNN | None, **options: Any) -> Recipe:
    from gancomp_lite.recipes.crgan import CRGANRecipe

    return CRGANRecipe(generator, discriminator, **options)


def _pim(generator: nn.Module, discriminator: nn.Module, identity: LightCNN | None, **options: Any) -> Recipe:
    from gancomp_lite.recipes.pim import PIMRecipe

    recognizer = copy.deepcopy(identity).requires_grad_(True)   # PIM's DLN starts from the trained identity net
    return PIMRecipe(generator, discriminator, recognizer, **options)


QUICK_IDENTITY = IdentitySpec(variant="9", width=0.25, input_size=64, steps=400)
# Sized so each teacher trains in at most about 40 minutes on one CPU core (5-11 epochs of the quick
# set), with room to compress (>= 6x in MACs between the teacher and the smallest sub-network).
# docs/teachers.md has the rank-1 curves behind these step counts.
QUICK_TEACHERS: dict[str, TeacherSpec] = {
    "resnet9": TeacherSpec("resnet9", {"ngf": 24, "step": 4}, ("patchgan", {"in_channels": 6, "ndf": 16, "n_layers": 2}),
                           _pix2pix, steps=2400),
    "tpgan": TeacherSpec("tpgan", {"base": 8, "step": 4}, ("tpgan", {"ndf": 8}), _tpgan, steps=3000,
                         needs_identity=True, face_template=True),
    "crgan": TeacherSpec("crgan", {"base": 16, "step": 4}, ("crgan", {"base": 8}), _crgan, steps=1500,
                         betas=(0.0, 0.9)),
    "pim": TeacherSpec("pim", {"base": 8, "step": 4}, ("tpgan", {"ndf": 8}), _pim, steps=3000,
                       needs_identity=True),
}


def _data(preset: str, seed: int):
    from data_tools.dataset import load_splits
    from data_tools.synthpie import ensure_synthpie

    root = ensure_synthpie(preset=preset, seed=seed)
    train, test = load_splits(root, "multipie", size=get_preset(preset).image_size)
    return root, train, test


VALIDATION_IDENTITIES = {"quick": 10, "full": 30}


@dataclass(frozen=True)
class Splits:
    """Identity-disjoint splits: `train` for training, `val` for search and model selection, `test` for reports."""
    root: Path
    train: "FaceDataset"
    val: "FaceDataset"
    test: "FaceDataset"


def quick_splits(preset: str = "quick", seed: int = 0) -> Splits:
    """The preset's SynthPIE set as train / validation / test.

    Validation = the last identities of the renderer's training split (the teachers trained on them;
    the compression stages do not). Test = the renderer's test split, used for final reports only.
    """
    from data_tools.dataset import hold_out_identities

    root, train, test = _data(preset, seed)
    rest, val = hold_out_identities(train, VALIDATION_IDENTITIES[preset])
    return Splits(root, rest, val, test)


def _split_note(root: Path, train, test) -> dict[str, Any]:
    return {"root_name": root.name, "train_identities": len(train.identities), "test_identities": len(test.identities),
            "train_pairs": len(train), "test_pairs": len(test)}


def near_frontal(dataset: FaceDataset, max_yaw: int) -> FaceDataset:
    """The pairs of a FaceDataset whose profile lies within +-max_yaw, keeping its identity labels."""
    from data_tools.dataset import FaceDataset

    return FaceDataset([r for r in dataset.records if abs(r.yaw) <= max_yaw], dataset.size,
                       align=dataset.align, mirror=dataset.mirror, identities=dataset.identities)


def train_identity(preset: str = "quick", seed: int = 0, out_dir: Path = WEIGHTS_DIR, progress: bool = True) -> Path:
    """Train the preset's Light-CNN on the near-frontal views of the training identities (see
    `IdentitySpec.max_yaw`) and save it (half precision)."""
    if preset != "quick":
        raise ValueError("only the quick identity network is specified here; full-size training runs on a GPU "
                         "with the same function and a larger IdentitySpec")
    spec = QUICK_IDENTITY
    root, train, test = _data(preset, seed)
    start = time.perf_counter()
    net = train_identity_network(near_frontal(train, spec.max_yaw), num_classes=len(train.identities), steps=spec.steps, seed=seed,
                                 variant=spec.variant, width=spec.width, input_size=spec.input_size,
                                 batch_size=spec.batch_size, lr=spec.lr, progress=progress)
    from gancomp_lite.evaluate import evaluate

    metrics = evaluate(test, net, None, progress=progress)
    path = Path(out_dir) / IDENTITY_FILE.format(preset=preset)
    save_identity_network(path, net, half=True, preset=preset, seed=seed, command=_command(),
                          data=_split_note(root, train, test), train_seconds=round(time.perf_counter() - start, 1),
                          spec=spec.__dict__, metrics={"rank1_raw": metrics["rank1_raw"]})
    return path


@dataclass
class TeacherRun:
    """Everything one teacher's training needs, built from its spec (see `prepare_teacher`)."""
    arch: str
    spec: TeacherSpec
    preset: str
    size: int
    knobs: dict[str, Any]
    generator: nn.Module
    discriminator: nn.Module
    d_spec: tuple[str, dict[str, Any]]
    recipe: Recipe
    identity: LightCNN | None
    root: Path
    train: Any
    test: Any


def prepare_teacher(arch: str, preset: str = "quick", seed: int = 0, out_dir: Path = WEIGHTS_DIR,
                    spec: TeacherSpec | None = None) -> TeacherRun:
    """Data, models and recipe of one teacher, seeded; `spec` overrides the preset's (e.g. for a study)."""
    if preset != "quick" or arch not in QUICK_TEACHERS:
        raise ValueError(f"no {preset} teacher spec for {arch!r}; quick teachers: {sorted(QUICK_TEACHERS)}")
    spec = spec or QUICK_TEACHERS[arch]
    size = get_preset(preset).image_size
    root, train, test = _data(preset, seed)
    identity = load_identity(preset, out_dir) if spec.needs_identity else None
    knobs = dict(spec.knobs)
    if spec.face_template:   # SynthPIE's faces sit lower in the frame than TP-GAN's aligned crops
        from gancomp_lite.models.tpgan import template_from_landmarks

        knobs["template"] = template_from_landmarks(torch.stack([s["frontal_landmarks"] for s in train]), size)
    seed_everything(seed)
    generator = build(arch, None, size, **knobs)
    d_kind, d_knobs = spec.discriminator
    if d_kind == "crgan":
        d_knobs = {**d_knobs, "views": generator.views}
    discriminator = build_discriminator(d_kind, size, **d_knobs)
    recipe = spec.recipe(generator, discriminator, identity, **spec.options)
    return TeacherRun(arch, spec, preset, size, knobs, generator, discriminator, (d_kind, d_knobs), recipe,
                      identity, root, train, test)


def evaluate_teacher(run: TeacherRun, out_dir: Path = WEIGHTS_DIR, progress: bool = True) -> dict[str, Any]:
    """The evaluation protocol on the test identities for the run's generator (left in eval mode)."""
    from gancomp_lite.evaluate import evaluate

    run.generator.eval()
    device = next(run.generator.parameters()).device
    identity = (run.identity or load_identity(run.preset, out_dir)).to(device)
    return evaluate(run.test, identity, run.generator, device=device, progress=progress)


def train_teacher(arch: str, preset: str = "quick", seed: int = 0, work_dir: Path = Path("runs/teachers"),
                  out_dir: Path = WEIGHTS_DIR, time_budget_s: float | None = None, progress: bool = True,
                  device: str = "auto") -> Path | None:
    """Train (or resume) one teacher; when its schedule is complete, evaluate and ship it. Returns the shipped path."""
    from gancomp_lite.train import TrainConfig, Trainer

    run = prepare_teacher(arch, preset, seed, out_dir)
    spec = run.spec
    config = TrainConfig(out_dir=str(Path(work_dir) / arch), steps=spec.steps, batch_size=spec.batch_size,
                         lr=spec.lr, betas=spec.betas, seed=seed, log_every=25, ckpt_every=250,
                         time_budget_s=time_budget_s, progress=progress, device=device)
    start = time.perf_counter()
    result = Trainer(run.recipe, run.train, config).fit()
    if not result.finished:
        return None
    metrics = evaluate_teacher(run, out_dir, progress)
    return ship_teacher(Path(out_dir) / TEACHER_FILE.format(arch=arch, preset=preset), arch, preset, run.size,
                        run.knobs, run.generator, run.d_spec, run.discriminator,
                        seed=seed, command=_command(), data=_split_note(run.root, run.train, run.test),
                        steps=result.step, batch_size=spec.batch_size, lr=spec.lr, recipe=run.recipe.name,
                        recipe_options=spec.options, device=next(run.generator.parameters()).device.type,
                        identity_sha256=identity_sha256(preset, out_dir),
                        train_seconds_last_call=round(time.perf_counter() - start, 1), metrics=metrics)


def ship_teacher(path: Path, arch: str, preset: str, size: int, knobs: dict[str, Any], generator: nn.Module,
                 d_spec: tuple[str, dict[str, Any]], discriminator: nn.Module, **manifest: Any) -> Path:
    """Write a teacher's G and D (half precision) with a manifest that rebuilds both; see `load_teacher`."""
    space = channel_space(arch, size, **knobs)
    state = {"G": _half(generator.state_dict()), "D": _half(discriminator.state_dict())}
    save_checkpoint(path, state, {
        **manifest, "arch": arch, "preset": preset, "size": size, "knobs": knobs,
        "config": space.encode(space.teacher()), "discriminator": {"kind": d_spec[0], "knobs": d_spec[1]},
    })
    return path


def rescore_teacher(arch: str, preset: str = "quick", weights_dir: Path = WEIGHTS_DIR,
                    progress: bool = True) -> dict[str, Any]:
    """Re-run the evaluation protocol on a shipped teacher with the shipped identity network and
    rewrite the metrics in its manifest; the weights stay as they are. Run it after the protocol
    or the identity network changed; a teacher whose objective uses the identity network must have
    been trained with the current one (else its weights are no longer what its command produces).
    Returns the new metrics.
    """
    from gancomp_lite.evaluate import evaluate

    path = Path(weights_dir) / TEACHER_FILE.format(arch=arch, preset=preset)
    state, manifest = load_checkpoint(path, expect={"arch": arch, "preset": preset})
    if QUICK_TEACHERS[arch].needs_identity and manifest.get("identity_sha256") != identity_sha256(preset, weights_dir):
        raise ValueError(f"{arch}'s objective uses the identity network, which changed since it was trained: "
                         f"retrain it (`gancomp-lite teachers train --arch {arch}`) instead of rescoring")
    generator, _ = load_teacher(arch, preset, weights_dir)
    _, _, test = _data(preset, manifest["seed"])
    metrics = evaluate(test, load_identity(preset, weights_dir), generator, progress=progress)
    save_checkpoint(path, state, {**manifest, "metrics": metrics, "identity_sha256": identity_sha256(preset, weights_dir)})
    return metrics


def identity_sha256(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> str:
    """The sha256 of the shipped identity network: teacher manifests record which one scored them."""
    return read_manifest(Path(weights_dir) / IDENTITY_FILE.format(preset=preset))["sha256"]


def load_identity(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> LightCNN:
    """The shipped identity network of a preset (hash-checked, frozen, eval mode)."""
    path = Path(weights_dir) / IDENTITY_FILE.format(preset=preset)
    net = load_identity_network(path).float()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def load_teacher(arch: str, preset: str = "quick", weights_dir: Path = WEIGHTS_DIR,
                 with_discriminator: bool = False) -> tuple[nn.Module, ...]:
    """``(generator, manifest)`` of a shipped teacher, or ``(generator, discriminator, manifest)``.

    Refuses a tampered file or a manifest written for another arch or preset. The discriminator is
    what a distilled student inherits (the paper's "inherited discriminator").
    """
    path = Path(weights_dir) / TEACHER_FILE.format(arch=arch, preset=preset)
    state, manifest = load_checkpoint(path, expect={"arch": arch, "preset": preset})
    generator = _load_into(build(arch, manifest["config"], manifest["size"], **manifest["knobs"]), state, "G", path)
    if not with_discriminator:
        return generator, manifest
    d = manifest["discriminator"]
    discriminator = _load_into(build_discriminator(d["kind"], manifest["size"], **d["knobs"]), state, "D", path)
    return generator, discriminator, manifest


def _load_into(module: nn.Module, state: dict, key: str, path: Path) -> nn.Module:
    if key not in state:
        raise CheckpointError(f"{path}: no {key!r} weights in the checkpoint")
    try:
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state[key].items()})
    except RuntimeError as err:
        raise CheckpointError(f"{path}: {key} weights do not fit the architecture in its manifest ({err})") from err
    return module.eval()


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Half-precision CPU storage for shipped weights (the repository keeps them small); loading restores float32."""
    return {k: (v.half() if v.is_floating_point() else v).cpu() for k, v in state.items()}


FULL_KNOBS: dict[str, dict[str, Any]] = {   # the paper's widths at 128x128, for the size columns
    "resnet9": {"ngf": 64}, "tpgan": {"base": 64}, "crgan": {"base": 64}, "pim": {"base": 64},
}


def teachers_table(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> str:
    """Table 1 of the paper for the shipped teachers: rank-1 per |yaw| (raw profiles first), L1, SSIM,
    ID-FID, and MACs/params of each generator at the quick size and at the full (paper) size.

    The scores are those measured on the test identities when each teacher was shipped (its manifest).
    """
    from gancomp_lite.cost import count
    from gancomp_lite.evaluate import format_table

    results, sizes = {}, {}
    for arch in QUICK_TEACHERS:
        path = Path(weights_dir) / TEACHER_FILE.format(arch=arch, preset=preset)
        if not path.is_file():
            continue
        _, manifest = load_teacher(arch, preset, weights_dir)
        results[arch] = manifest["metrics"]
        quick = count(arch, None, size=manifest["size"], convention="physical", **manifest["knobs"])
        full = count(arch, None, size=get_preset("full").image_size, convention="physical", **FULL_KNOBS[arch])
        sizes[arch] = {"steps": str(manifest["steps"]), "MACs quick": f"{quick.macs / 1e9:.2f} G", "params quick": f"{quick.params / 1e6:.2f} M",
                       "MACs full": f"{full.macs / 1e9:.1f} G", "params full": f"{full.params / 1e6:.1f} M"}
    if not results:
        raise FileNotFoundError(f"no shipped {preset} teachers in {weights_dir}; run `gancomp-lite teachers train`")
    return format_table(results, extra_columns=sizes) + " MACs in the physical convention."


def _command() -> str:
    return "gancomp-lite " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "python API"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("teachers", help="train and ship the identity network and the teachers")
    sub = parser.add_subparsers(dest="teachers_command", required=True)
    train = sub.add_parser("train", help="train (or resume) and ship; reproduces gancomp_lite/weights/")
    train.add_argument("--arch", default="all", help=f"'identity', 'all' or a comma list of {sorted(QUICK_TEACHERS)}")
    train.add_argument("--preset", choices=["quick"], default="quick")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--work-dir", type=Path, default=Path("runs/teachers"))
    train.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    train.add_argument("--minutes", type=float, default=None, help="stop (resumably) after this much time per teacher")
    train.set_defaults(func=_train)
    rescore = sub.add_parser("rescore", help="re-evaluate shipped teachers (after a protocol or identity-network change)")
    rescore.add_argument("--arch", default=",".join(QUICK_TEACHERS), help="comma list of shipped teachers")
    rescore.add_argument("--preset", choices=["quick"], default="quick")
    rescore.set_defaults(func=_rescore)
    table = sub.add_parser("table", help="Table 1 for the shipped teachers (markdown)")
    table.add_argument("--preset", choices=["quick"], default="quick")
    table.set_defaults(func=lambda args: print(teachers_table(args.preset)))


def _train(args: argparse.Namespace) -> int:
    names = list(QUICK_TEACHERS) if args.arch == "all" else args.arch.split(",")
    identity_path = Path(args.out) / IDENTITY_FILE.format(preset=args.preset)
    if args.arch == "identity" or (args.arch == "all" and not identity_path.exists()):
        print("identity network:", train_identity(args.preset, args.seed, args.out))
    budget = None if args.minutes is None else args.minutes * 60
    for arch in (n for n in names if n != "identity"):
        shipped = train_teacher(arch, args.preset, args.seed, args.work_dir, args.out, budget)
        print(f"{arch}:", shipped or "stopped early; run the same command again to resume")
    return 0


def _rescore(args: argparse.Namespace) -> int:
    for arch in args.arch.split(","):
        rescore_teacher(arch, args.preset)
        print(f"{arch}: rescored")
    return 0

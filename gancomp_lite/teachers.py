"""The quick teachers: train, ship and load the identity network and the four teacher generators.

`gancomp-lite teachers train` reproduces every shipped checkpoint in ``gancomp_lite/weights/``:
first the Light-CNN identity network (near-frontal views of the training identities), then each teacher
generator with its own paper's objective, then the evaluation protocol on the test identities.

Two recognizers play two roles. The *identity network* (Light-CNN-9) is the loss network: TP-GAN's
L_ip, PIM's recognizer and distillation may use it. The *judge* (Light-CNN-29, wider, trained the same
way, `gancomp-lite teachers train --arch judge`) scores every reported rank-1 and is used by no
training objective, so a generator cannot score well by matching the features it was trained against.
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
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from gancomp_lite.checkpoint import CheckpointError, load_checkpoint, read_manifest, save_checkpoint
from gancomp_lite.errors import InputError
from gancomp_lite.losses import TPGANLossWeights
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
JUDGE_FILE = "judge-{preset}.pt"
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
    face_template: bool = False                    # place the local pathway's parts at the data's mean frontal landmarks (TP-GAN, PIM)
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

    return CRGANRecipe(generator, discriminator, identity_net=identity, **options)


def _pim(generator: nn.Module, discriminator: nn.Module, identity: LightCNN | None, **options: Any) -> Recipe:
    from gancomp_lite.recipes.pim import PIMRecipe

    recognizer = copy.deepcopy(identity).requires_grad_(True)   # PIM's DLN starts from the trained identity net
    return PIMRecipe(generator, discriminator, recognizer, **options)


QUICK_IDENTITY = IdentitySpec(variant="9", width=0.25, input_size=64, steps=400)
# The judge: Light-CNN-29 (residual blocks, 2.2x the loss network's parameters), same data and pose
# range, about 3 minutes on one CPU core; at lr 1e-3 it diverged, at width 0.375 it cost too much CPU.
# It must never appear in a training objective.
QUICK_JUDGE = IdentitySpec(variant="29", width=0.25, input_size=64, steps=600, lr=5e-4)
ROLES: dict[str, tuple[IdentitySpec, str, str]] = {   # role -> (spec, file pattern, what it is for)
    "identity": (QUICK_IDENTITY, IDENTITY_FILE, "loss network: TP-GAN's L_ip, PIM's recognizer, distillation"),
    "judge": (QUICK_JUDGE, JUDGE_FILE, "judge: scores every reported rank-1; no training objective uses it"),
}
# The quick TP-GAN's weights: the pixel terms lead, as in the official code (which sums its pixel, part
# and TV losses over pixels). On our per-pixel means that balance is local 0.3 (3 x part area / image
# area), tv 8e-8 (1e-3 / (3 x 64^2) on the summed TV), ce 6e-4 (10 / 128^2), and L_ip at a tenth of the
# paper's 3e-3: at 3e-3 the identity term was three times the pixel term and drew grey, striped faces.
PIXEL_LED_TPGAN = TPGANLossWeights(ip=3e-4, tv=8e-8, local=0.3, ce=6e-4)
# The quick CR-GAN: the paired reconstruction alone first (3000 steps, which gets there sooner), then the
# two-path objective with every reconstruction paired and the L1 at 100. With the official objective
# from scratch (or after the warm-up) the latent carries no person (docs/teachers.md, section 4).
IDENTITY_CARRYING_CRGAN = {"warmup_steps": 3000, "p_reconstruct_fake": 0.0, "lambda_recon": 100.0}
# Sized so each teacher trains in at most about 40 minutes on one CPU core (5-11 epochs of the quick
# set), with room to compress (>= 6x in MACs between the teacher and the smallest sub-network).
# docs/teachers.md has the rank-1 curves behind these step counts.
QUICK_TEACHERS: dict[str, TeacherSpec] = {
    "resnet9": TeacherSpec("resnet9", {"ngf": 24, "step": 4}, ("patchgan", {"in_channels": 6, "ndf": 16, "n_layers": 2}),
                           _pix2pix, steps=2400),
    "tpgan": TeacherSpec("tpgan", {"base": 8, "step": 4}, ("tpgan", {"ndf": 8}), _tpgan, steps=1500,
                         options={"weights": PIXEL_LED_TPGAN},
                         needs_identity=True, face_template=True),
    "crgan": TeacherSpec("crgan", {"base": 16, "step": 4}, ("crgan", {"base": 8}), _crgan, steps=4000,
                         options=IDENTITY_CARRYING_CRGAN, betas=(0.0, 0.9)),
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


REPORT_TEST_IDENTITIES = 500


def large_test_split(preset: str = "quick", seed: int = 0, identities: int = REPORT_TEST_IDENTITIES) -> "FaceDataset":
    """A test split of `identities` new identities beside the preset's training identities.

    The standard quick test split (20 identities) gives intervals of +-8 to +-12 points on a mean
    rank-1; this one resolves paired differences to about a point. SynthPIE renders identity i from
    its own seed whatever the count, so the training identities are byte-identical to the standard
    set's and nothing needs retraining; the gallery grows with the split, so rank-1 is lower than on
    20 identities and the two are not comparable.
    """
    from data_tools.dataset import load_splits
    from data_tools.synthpie import ensure_synthpie

    pre = get_preset(preset)
    if identities < 2:
        raise InputError(f"a test split needs at least 2 identities, got {identities}")
    root = ensure_synthpie(preset=preset, seed=seed, ids=pre.train_ids + identities)
    _, test = load_splits(root, "multipie", size=pre.image_size, split=f"first:{pre.train_ids}")
    return test


def _split_note(root: Path, train, test) -> dict[str, Any]:
    return {"root_name": root.name, "train_identities": len(train.identities), "test_identities": len(test.identities),
            "train_pairs": len(train), "test_pairs": len(test)}


def near_frontal(dataset: FaceDataset, max_yaw: int) -> FaceDataset:
    """The pairs of a FaceDataset whose profile lies within +-max_yaw, keeping its identity labels."""
    from data_tools.dataset import FaceDataset

    return FaceDataset([r for r in dataset.records if abs(r.yaw) <= max_yaw], dataset.size,
                       align=dataset.align, mirror=dataset.mirror, identities=dataset.identities)


def train_identity(preset: str = "quick", seed: int = 0, out_dir: Path = WEIGHTS_DIR, progress: bool = True,
                   role: str = "identity") -> Path:
    """Train the preset's identity network (role "identity", the loss network) or its judge (role
    "judge", the scorer) on the near-frontal views of the training identities (see
    `IdentitySpec.max_yaw`) and save it (half precision)."""
    if preset != "quick":
        raise ValueError("only the quick identity network is specified here; full-size training runs on a GPU "
                         "with the same function and a larger IdentitySpec")
    if role not in ROLES:
        raise ValueError(f"role must be one of {sorted(ROLES)}, got {role!r}")
    spec, file, purpose = ROLES[role]
    root, train, test = _data(preset, seed)
    start = time.perf_counter()
    net = train_identity_network(near_frontal(train, spec.max_yaw), num_classes=len(train.identities), steps=spec.steps, seed=seed,
                                 variant=spec.variant, width=spec.width, input_size=spec.input_size,
                                 batch_size=spec.batch_size, lr=spec.lr, progress=progress)
    from gancomp_lite.evaluate import evaluate

    seconds = round(time.perf_counter() - start, 1)
    metrics = evaluate(test, net, None, progress=progress)
    path = Path(out_dir) / file.format(preset=preset)
    save_identity_network(path, net, half=True, preset=preset, seed=seed, command=_command(), role=role,
                          purpose=purpose, trained_on=f"near-frontal views (|yaw| <= {spec.max_yaw}) of the "
                          f"{len(train.identities)} training identities, both images of each pair, random flips",
                          data=_split_note(root, train, test), train_seconds=seconds, torch_threads=torch.get_num_threads(),
                          spec=spec.__dict__, metrics={k: metrics[k] for k in ("rank1_raw", "rank1_raw_ci", "interval")})
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
    if spec.face_template:   # SynthPIE's faces sit lower in the frame than TP-GAN's aligned Multi-PIE crops
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
    """The evaluation protocol on the test identities for the run's generator (left in eval mode), scored by the judge."""
    from gancomp_lite.evaluate import evaluate

    run.generator.eval()
    device = next(run.generator.parameters()).device
    return evaluate(run.test, load_judge(run.preset, out_dir).to(device), run.generator, device=device, progress=progress)


def score_teacher(generator: nn.Module, test: "FaceDataset", train: "FaceDataset", preset: str = "quick",
                  weights_dir: Path = WEIGHTS_DIR, progress: bool = True) -> dict[str, Any]:
    """The manifest fields that score a teacher, each naming its scorer: "metrics" (the protocol,
    scored by the judge, "judge_sha256"), "metrics_identity" (the same protocol under the loss
    network, as the paper scores it, "identity_sha256") and "crosscheck" (rank-1 under the classical
    recognizer of `gancomp_lite.fisherfaces`, fit on `train`'s near-frontal views)."""
    from gancomp_lite.evaluate import evaluate

    generator.eval()
    device = next(generator.parameters()).device
    judge = evaluate(test, load_judge(preset, weights_dir).to(device), generator, device=device, progress=progress)
    loss_net = evaluate(test, load_identity(preset, weights_dir).to(device), generator, device=device, progress=progress)
    classical = evaluate(test, crosscheck_recognizer(train).to(device), generator, device=device, progress=progress)
    from gancomp_lite.fisherfaces import NAME

    return {"metrics": judge, "judge_sha256": judge_sha256(preset, weights_dir),
            "metrics_identity": loss_net, "identity_sha256": identity_sha256(preset, weights_dir),
            "crosscheck": {"recognizer": NAME, **{k: v for k, v in classical.items() if k.startswith("rank1")}}}


def crosscheck_recognizer(train: "FaceDataset") -> nn.Module:
    """The classical cross-check (HOG + Fisherfaces), fit in closed form on the near-frontal training views."""
    from gancomp_lite.fisherfaces import fit_hog_fisher

    return fit_hog_fisher(near_frontal(train, QUICK_JUDGE.max_yaw), input_size=QUICK_JUDGE.input_size)


def train_teacher(arch: str, preset: str = "quick", seed: int = 0, work_dir: Path = Path("runs/teachers"),
                  out_dir: Path = WEIGHTS_DIR, time_budget_s: float | None = None, progress: bool = True,
                  device: str = "auto") -> Path | None:
    """Train (or resume) one teacher; when its schedule is complete, evaluate and ship it. Returns the shipped path."""
    from gancomp_lite.train import TrainConfig, Trainer

    run = prepare_teacher(arch, preset, seed, out_dir)
    spec = run.spec
    config = TrainConfig(out_dir=str(Path(work_dir) / arch), steps=spec.steps, batch_size=spec.batch_size,
                         lr=spec.lr, betas=spec.betas, seed=seed, log_every=25,
                         ckpt_every=max(1, min(250, spec.steps // 4)),   # 250 for every quick spec; short runs too
                         time_budget_s=time_budget_s, progress=progress, device=device,
                         fingerprint=_sources(run, out_dir))
    start = time.perf_counter()
    result = Trainer(run.recipe, run.train, config).fit()
    if not result.finished:
        return None
    seconds = round(time.perf_counter() - start, 1)
    scores = score_teacher(run.generator, run.test, run.train, preset, out_dir, progress)
    return ship_teacher(Path(out_dir) / TEACHER_FILE.format(arch=arch, preset=preset), arch, preset, run.size,
                        run.knobs, run.generator, run.d_spec, run.discriminator,
                        seed=seed, command=_command(), data=_split_note(run.root, run.train, run.test),
                        steps=result.step, batch_size=spec.batch_size, lr=spec.lr, recipe=run.recipe.name,
                        recipe_options=options_manifest(spec.options), device=next(run.generator.parameters()).device.type,
                        train_seconds_last_call=seconds, **scores)


def _sources(run: TeacherRun, weights_dir: Path) -> dict[str, Any]:
    """The data (root, training pairs) and loss network a teacher learns from: a resume with others is refused."""
    identity = identity_sha256(run.preset, weights_dir) if run.spec.needs_identity else None
    return {"data": str(Path(run.root).resolve()), "train_pairs": len(run.train), "identity": identity}


def options_manifest(options: dict[str, Any]) -> dict[str, Any]:
    """Recipe options as JSON: loss-weight dataclasses become dicts."""
    return {key: asdict(value) if is_dataclass(value) else value for key, value in options.items()}


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
    """Re-score a shipped teacher (`score_teacher`: the judge, the loss network, the cross-check) and
    rewrite those fields of its manifest; the weights stay as they are. Run it after the protocol,
    the judge or the identity network changed; a teacher whose objective uses the identity network
    must have been trained with the current one (else its weights are no longer what its command
    produces). Returns the judge's metrics.
    """
    path = Path(weights_dir) / TEACHER_FILE.format(arch=arch, preset=preset)
    state, manifest = load_checkpoint(path, expect={"arch": arch, "preset": preset})
    if QUICK_TEACHERS[arch].needs_identity and manifest.get("identity_sha256") != identity_sha256(preset, weights_dir):
        raise InputError(f"{arch}'s objective uses the identity network, which changed since it was trained: "
                         f"retrain it (`gancomp-lite teachers train --arch {arch}`) instead of rescoring")
    generator, _ = load_teacher(arch, preset, weights_dir)
    _, train, test = _data(preset, manifest["seed"])
    scores = score_teacher(generator, test, train, preset, weights_dir, progress)
    save_checkpoint(path, state, {**manifest, **scores})
    return scores["metrics"]


def identity_sha256(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> str:
    """The sha256 of the shipped identity (loss) network: teacher manifests record which one they used."""
    return read_manifest(Path(weights_dir) / IDENTITY_FILE.format(preset=preset))["sha256"]


def judge_sha256(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> str:
    """The sha256 of the shipped judge: every reported rank-1 records which judge scored it."""
    return read_manifest(Path(weights_dir) / JUDGE_FILE.format(preset=preset))["sha256"]


def load_identity(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> LightCNN:
    """The shipped identity (loss) network of a preset (hash-checked, frozen, eval mode)."""
    return _load_frozen(Path(weights_dir) / IDENTITY_FILE.format(preset=preset), "identity")


def load_judge(preset: str = "quick", weights_dir: Path = WEIGHTS_DIR) -> LightCNN:
    """The shipped judge of a preset (hash-checked, frozen, eval mode): for scoring only, never in a loss."""
    return _load_frozen(Path(weights_dir) / JUDGE_FILE.format(preset=preset), "judge")


def _load_frozen(path: Path, role: str) -> LightCNN:
    """A shipped recognizer, refused when its manifest gives it another role (e.g. the loss network as judge)."""
    found = read_manifest(path).get("role", "identity")
    if found != role:
        raise CheckpointError(f"{path}: manifest role={found!r} but {role!r} is required")
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
    """Table 1 of the paper for the shipped teachers, scored by the judge: rank-1 per |yaw| with 95%
    intervals (raw profiles first), L1, SSIM, ID-FID, MACs/params at the quick and the full (paper)
    size; then each teacher's mean rank-1 under the three recognizers (loss network, judge, cross-check).

    The scores are those in each teacher's manifest (`gancomp-lite teachers rescore` rewrites them).
    """
    from gancomp_lite.cost import count
    from gancomp_lite.evaluate import format_table

    results, sizes, manifests = {}, {}, {}
    for arch in QUICK_TEACHERS:
        path = Path(weights_dir) / TEACHER_FILE.format(arch=arch, preset=preset)
        if not path.is_file():
            continue
        _, manifest = load_teacher(arch, preset, weights_dir)
        results[arch], manifests[arch] = manifest["metrics"], manifest
        quick = count(arch, None, size=manifest["size"], convention="physical", **manifest["knobs"])
        full = count(arch, None, size=get_preset("full").image_size, convention="physical", **FULL_KNOBS[arch])
        sizes[arch] = {"steps": str(manifest["steps"]), "MACs quick": f"{quick.macs / 1e9:.2f} G", "params quick": f"{quick.params / 1e6:.2f} M",
                       "MACs full": f"{full.macs / 1e9:.1f} G", "params full": f"{full.params / 1e6:.1f} M"}
    if not results:
        raise FileNotFoundError(f"no shipped {preset} teachers in {weights_dir}; run `gancomp-lite teachers train`")
    judge = read_manifest(Path(weights_dir) / JUDGE_FILE.format(preset=preset))
    scorer = (f"the judge {judge['file']} (Light-CNN-{judge['lightcnn']['variant']}, width {judge['lightcnn']['width']}, "
              f"sha256 {judge['sha256'][:16]}...)")
    table = format_table(results, extra_columns=sizes, intervals=True, scored_by=scorer) + " MACs in the physical convention."
    return table + "\n\n" + _scorer_summary(manifests)


def _scorer_summary(manifests: dict[str, dict[str, Any]]) -> str:
    """Mean rank-1 (%) of the raw profiles and of each teacher under each recognizer, with 95% intervals."""
    def cell(rank1: dict[str, float], ci: dict[str, list[float]] | None) -> str:
        text = f"{100 * rank1['mean']:.1f}"
        return text + (f" [{100 * ci['mean'][0]:.1f}, {100 * ci['mean'][1]:.1f}]" if ci else "")

    first = next(iter(manifests.values()))
    scorers = [("metrics_identity", "loss network (Light-CNN-9)"), ("metrics", "judge (Light-CNN-29)"),
               ("crosscheck", "cross-check (HOG + Fisherfaces)")]
    lines = ["| mean rank-1 (%) | " + " | ".join(name for _, name in scorers) + " |", "|---|" + "---|" * len(scorers),
             "| raw profiles | " + " | ".join(cell(first[k]["rank1_raw"], first[k].get("rank1_raw_ci")) for k, _ in scorers) + " |"]
    lines += [f"| {arch} | " + " | ".join(cell(m[k]["rank1"], m[k].get("rank1_ci")) for k, _ in scorers) + " |"
              for arch, m in manifests.items()]
    return "\n".join(lines)


def _command() -> str:
    return "gancomp-lite " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "python API"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("teachers", help="train and ship the identity network and the teachers")
    sub = parser.add_subparsers(dest="teachers_command", required=True)
    train = sub.add_parser("train", help="train (or resume) and ship; reproduces gancomp_lite/weights/")
    train.add_argument("--arch", default="all", help=f"'all' or a comma list of {sorted(ROLES) + sorted(QUICK_TEACHERS)}")
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


def _arch_list(text: str, allowed: list[str]) -> list[str]:
    """The names of a comma-separated ``--arch``; `InputError` naming the allowed ones unless each is one."""
    names = text.split(",")
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise InputError(f"--arch must be a comma list of {allowed}, got {text!r} (unknown: {unknown})")
    return names


def _train(args: argparse.Namespace) -> int:
    names = list(QUICK_TEACHERS) if args.arch == "all" else _arch_list(args.arch, sorted(ROLES) + sorted(QUICK_TEACHERS))
    for role, (_, file, _) in ROLES.items():
        missing = not (Path(args.out) / file.format(preset=args.preset)).exists()
        if role in names or (args.arch == "all" and missing):
            print(f"{role} network:", train_identity(args.preset, args.seed, args.out, role=role))
    budget = None if args.minutes is None else args.minutes * 60
    for arch in (n for n in names if n not in ROLES):
        shipped = train_teacher(arch, args.preset, args.seed, args.work_dir, args.out, budget)
        print(f"{arch}:", shipped or "stopped early; run the same command again to resume")
    return 0


def _rescore(args: argparse.Namespace) -> int:
    for arch in _arch_list(args.arch, sorted(QUICK_TEACHERS)):
        rescore_teacher(arch, args.preset)
        print(f"{arch}: rescored")
    return 0

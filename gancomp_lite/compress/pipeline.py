"""`gancomp-lite compress`: teacher -> supernet -> search -> fine-tune -> export -> report, resumable.

    gancomp-lite compress --teacher tpgan --ratio 10 --out runs/compress/tpgan

Everything lands in the output folder; re-running the same command continues where a killed run
stopped (the two training stages resume from their last checkpoint, the search reuses the candidates
it scored, finished stages are skipped):

    settings.json           what shapes the result (the settings, the teacher's sha256, the data); a re-run
                            with another one is refused, naming it, unless it asks for a fresh start
    supernet/               the supernet's Trainer run (last.pt, metrics.jsonl)
    search_scores.json      the search's scores so far, saved as it goes: a re-run reuses them, not rescoring
    search.json, search.png every candidate (config, MACs, params, metrics), the best, the Pareto front
    finetune/               the fine-tuning Trainer run
    student.pt/.json/.ts/.onnx   the exported student (manifest: arch, config, size, knobs, teacher sha256, metrics)
    report.json, report.md, faces.png   Table 3 (MACs, params, ratios), Table 1 (rank-1 per |yaw|,
                            teacher vs student, paired differences with 95% intervals), Figure 3 (faces)

``--fresh`` starts afresh instead of resuming: an existing output folder is moved aside to
``<out>.old-<time>`` (nothing is deleted), as ``gancomp-lite distill --fresh`` does. The two training
stages checkpoint every quarter of their steps (at most 100) and after every ``--ckpt-minutes`` of
work (default 5); when checkpoints are written does not shape the result, so ``--ckpt-minutes`` is
not in settings.json and a resumed run may change it. ``--threads`` (default 1) is: on a CPU, float
sums are split per thread, so a run repeats bit for bit only at the same thread count.

Data: the preset's SynthPIE set as train / validation / test identities (`teachers.quick_splits`):
the supernet and the fine-tuning train on the training identities, the search scores candidates on
the validation identities, the report scores teacher and student on the test identities only, with
the judge identity network that no objective uses. An impossible budget is refused before any
training, naming the achievable range.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gancomp_lite.checkpoint import atomic_write_bytes, move_aside, sha256_file
from gancomp_lite.compress.distillation import sources_fingerprint
from gancomp_lite.compress.export import export_all
from gancomp_lite.compress.finetune import finetune, subnet_from_supernet
from gancomp_lite.compress.report import build_report, markdown as report_markdown, plot_search, score_on_test
from gancomp_lite.figures import save_figure
from gancomp_lite.compress.search import METRICS, STRATEGIES, CandidateScorer, SearchError, search, validation_subset
from gancomp_lite.compress.supernet import SAMPLING_RULES, student_design, train_supernet
from gancomp_lite.cost import CostModel
from gancomp_lite.errors import InputError
from gancomp_lite.models.registry import channel_space
from gancomp_lite.seeding import cpu_threads
from gancomp_lite.train import TrainConfig

CONVENTION = "gancomp"
TEACHERS = ("tpgan", "crgan", "pim", "resnet9")
# Schedules of the quick preset (CPU) and the full preset (one GPU).
DEFAULT_STEPS = {"quick": {"supernet": 300, "finetune": 300}, "full": {"supernet": 20000, "finetune": 10000}}


class CompressError(InputError):
    """The compression cannot run as asked (budget out of range, settings differ from the run being resumed)."""


@dataclass(frozen=True)
class CompressSettings:
    """Everything that shapes a compression's result (saved as settings.json and checked on resume),
    and how often its training stages checkpoint (`ckpt_minutes`, which does not shape it)."""

    teacher: str
    budget: float | None = None          # MACs per image (gancomp convention)
    ratio: float | None = None           # or: the teacher's MACs divided by this
    latency_budget: float | None = None  # or: predicted eager CPU latency at batch 1 (ms), hardware-aware
    preset: str = "quick"
    search: str = "evolution"
    metric: str = "rank1"
    candidates: int = 60
    steps_supernet: int | None = None
    steps_finetune: int | None = None
    sampling: str = "uniform"
    min_width: int | None = None          # the student space's narrowest channel group (default: its width step)
    batch_size: int | None = None
    val_limit: int | None = 240           # validation probes the search scores each candidate on
    seed: int = 0
    threads: int = 1                      # torch CPU threads: a run repeats bit for bit only at the same count
    ckpt_minutes: float | None = field(default=5.0, compare=False)   # also checkpoint after this much work

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise CompressError(f"--teacher must be one of {list(TEACHERS)}, got {self.teacher!r}")
        if sum(v is not None for v in (self.budget, self.ratio, self.latency_budget)) != 1:
            raise CompressError("give exactly one of --budget (MACs), --ratio (teacher MACs / student MACs) "
                                "and --latency-budget (ms)")
        if self.latency_budget is not None and not self.latency_budget > 0:
            raise CompressError(f"--latency-budget must be a positive number of milliseconds, got {self.latency_budget}")
        if self.budget is not None and not self.budget > 0:
            raise CompressError(f"--budget must be a positive number of MACs, got {self.budget}")
        if self.ratio is not None and not self.ratio >= 1:
            raise CompressError(f"--ratio must be at least 1 (the teacher itself), got {self.ratio}")
        if self.search not in STRATEGIES:
            raise CompressError(f"--search must be one of {list(STRATEGIES)}, got {self.search!r}")
        if self.metric not in METRICS:
            raise CompressError(f"--metric must be one of {list(METRICS)}, got {self.metric!r}")
        if self.sampling not in SAMPLING_RULES:
            raise CompressError(f"--sampling must be one of {list(SAMPLING_RULES)}, got {self.sampling!r}")
        for name in ("steps_supernet", "steps_finetune", "min_width", "batch_size", "candidates", "val_limit",
                     "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise CompressError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.ckpt_minutes is not None and not self.ckpt_minutes >= 0:
            raise CompressError(f"--ckpt-minutes must be at least 0, got {self.ckpt_minutes}")

    def steps(self, stage: str) -> int:
        given = self.steps_supernet if stage == "supernet" else self.steps_finetune
        return given if given is not None else DEFAULT_STEPS[self.preset][stage]

    def resolved(self) -> "CompressSettings":
        """These settings with the preset's default schedules written out (what settings.json records)."""
        return replace(self, steps_supernet=self.steps("supernet"), steps_finetune=self.steps("finetune"))

    def record(self) -> dict[str, Any]:
        """The settings that shape the result (settings.json, the student's manifest): all but `ckpt_minutes`."""
        return {k: v for k, v in asdict(self).items() if k != "ckpt_minutes"}


# ----------------------------------------------------------------------------- the teacher and its student space
@dataclass
class TeacherBundle:
    arch: str
    generator: nn.Module
    discriminator: nn.Module
    manifest: dict[str, Any]
    path: Path
    size: int
    teacher_knobs: dict[str, Any]
    student_knobs: dict[str, Any]

    def cost_models(self) -> tuple[CostModel, CostModel]:
        """(teacher's, student design's) analytic cost models."""
        return (CostModel.for_arch(self.arch, self.size, **self.teacher_knobs),
                CostModel.for_arch(self.arch, self.size, **self.student_knobs))


def load_bundle(arch: str, preset: str, weights_dir: Path | None = None, min_width: int | None = None) -> TeacherBundle:
    """The shipped teacher with its D, and the student design space (narrowest group `min_width`, default its step)."""
    from gancomp_lite.teachers import TEACHER_FILE, WEIGHTS_DIR, load_teacher

    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    generator, discriminator, manifest = load_teacher(arch, preset, weights_dir, with_discriminator=True)
    knobs = dict(manifest["knobs"])
    return TeacherBundle(arch, generator.float().eval(), discriminator.float(), manifest,
                         weights_dir / TEACHER_FILE.format(arch=arch, preset=preset), manifest["size"], knobs,
                         student_design(arch, knobs, preset, min_width))


def budget_range(bundle: TeacherBundle) -> tuple[int, int]:
    """(smallest sub-network's MACs, teacher's MACs): the budgets a compression can meet."""
    teacher_cost, student_cost = bundle.cost_models()
    space = channel_space(bundle.arch, bundle.size, **bundle.student_knobs)
    return student_cost.macs(space.smallest(), CONVENTION), teacher_cost.macs(None, CONVENTION)


def resolve_budget(settings: CompressSettings, bundle: TeacherBundle) -> int:
    """The MACs budget of `settings`, refused (naming the achievable range) when no sub-network can meet it;
    with a latency budget, the MACs of the largest config (the latency is checked by the search)."""
    low, high = budget_range(bundle)
    if settings.latency_budget is not None:
        return high
    budget = settings.budget if settings.budget is not None else high / settings.ratio
    if not low <= budget <= high:
        raise CompressError(
            f"a budget of {budget:,.0f} MACs is outside what {bundle.arch}'s student space can meet: "
            f"{low:,} (smallest sub-network, {high / low:.1f}x fewer than the teacher) to {high:,} (the teacher); "
            f"ratios 1 to {high / low:.1f}")
    return int(budget)


# ----------------------------------------------------------------------------- the stages
def _settings_check(out: Path, settings: CompressSettings, fingerprint: dict[str, Any]) -> None:
    """Record the settings and the teacher and data `fingerprint` in `out`, or refuse when the ones there differ."""
    path = out / "settings.json"
    record = {**settings.record(), "fingerprint": fingerprint}
    if path.exists():
        saved, wanted = _flat(json.loads(path.read_text())), _flat(record)
        differing = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if differing:
            details = ", ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differing)
            raise CompressError(f"{out} holds a compression with other settings ({details}); "
                                f"use another --out, the same settings to resume it, or --fresh")
        return
    _write_json(path, record)


def _flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` with the entries of its nested dicts as "outer.inner" keys."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        flat.update({f"{key}.{k}": v for k, v in value.items()} if isinstance(value, dict) else {key: value})
    return flat


def _write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _train_config(settings: CompressSettings, bundle: TeacherBundle, out_dir: Path, steps: int,
                  progress: bool, fingerprint: dict[str, Any]) -> TrainConfig:
    from gancomp_lite.teachers import QUICK_TEACHERS

    spec = QUICK_TEACHERS[bundle.arch]
    return TrainConfig(out_dir=str(out_dir), steps=steps, batch_size=settings.batch_size or spec.batch_size,
                       lr=spec.lr, betas=spec.betas, seed=settings.seed, log_every=10,
                       ckpt_every=max(1, min(100, steps // 4)), ckpt_minutes=settings.ckpt_minutes, amp=False,
                       progress=progress, fingerprint=fingerprint)


def _recipe_options(arch: str) -> dict[str, Any]:
    """The family recipe's options as its quick teacher was trained with them, less the warm-up from
    scratch (a student starts from its teacher's weights)."""
    from gancomp_lite.teachers import QUICK_TEACHERS

    options = {k: v for k, v in QUICK_TEACHERS[arch].options.items() if k != "warmup_steps"}
    return {"g_steps": 1, **options} if arch == "tpgan" else options


def _make_d(bundle: TeacherBundle):
    from gancomp_lite.teachers import build_discriminator

    spec = bundle.manifest["discriminator"]
    return lambda: build_discriminator(spec["kind"], bundle.size, **spec["knobs"])


def _gallery(dataset):
    from data_tools.dataset import FaceDataset, gallery_records

    return FaceDataset(gallery_records(dataset.records), dataset.size, identities=dataset.identities)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def compress(settings: CompressSettings, out: Path, *, weights_dir: Path | None = None,
             progress: bool = True, log=_stderr, fresh: bool = False) -> dict[str, Any]:
    """Run (or resume) every stage of a compression into `out`; return the report (stage messages go to `log`).

    `fresh`: move an existing `out` aside (``<out>.old-<time>``, nothing is deleted) and start again.
    """
    with cpu_threads(settings.threads):
        return _compress(settings.resolved(), Path(out), weights_dir, progress, log, fresh)


def _compress(settings: CompressSettings, out: Path, weights_dir: Path | None, progress: bool, log,
              fresh: bool) -> dict[str, Any]:
    from gancomp_lite.teachers import WEIGHTS_DIR, load_identity, quick_splits

    bundle = load_bundle(settings.teacher, settings.preset, weights_dir, settings.min_width)
    budget = resolve_budget(settings, bundle)               # refuse before any training
    splits = quick_splits(settings.preset, seed=0)
    fingerprint = sources_fingerprint(bundle.manifest, splits.root, splits.train)
    if fresh and out.exists():
        log(f"--fresh: moved the old {out} aside to {move_aside(out)}")
    out.mkdir(parents=True, exist_ok=True)
    _settings_check(out, settings, fingerprint)
    if (out / "report.json").exists():                      # written last: the compression is complete
        log(f"{out} holds a finished compression with these settings; its report:")
        return json.loads((out / "report.json").read_text())
    started = time.perf_counter()
    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    identity = load_identity(settings.preset, weights_dir)
    options, arch, knobs = _recipe_options(bundle.arch), bundle.arch, bundle.student_knobs
    space = channel_space(arch, bundle.size, **knobs)
    _, student_cost = bundle.cost_models()
    needs_identity = arch in ("tpgan", "pim")

    log(f"[1/5] supernet: {settings.steps('supernet')} steps of {arch}'s student design {knobs}")
    supernet = train_supernet(
        arch, bundle.generator, splits.train, size=bundle.size, knobs=knobs, make_d=_make_d(bundle),
        teacher_d_state=bundle.discriminator.state_dict(),
        train_config=_train_config(settings, bundle, out / "supernet", settings.steps("supernet"), progress,
                                   fingerprint),
        identity_net=identity if needs_identity else None, rule=settings.sampling, options=options)

    device = next(supernet.supernet.parameters()).device      # the Trainer's (a GPU when there is one)
    cost, limit, unit = (lambda c: student_cost.macs(c, CONVENTION)), budget, f"MACs ({CONVENTION})"
    if settings.latency_budget is not None:
        predictor = latency_predictor(bundle, out)
        cost, limit, unit = predictor.predict, settings.latency_budget, f"ms predicted ({predictor.threads} threads)"
    log(f"[2/5] search: {settings.search}, metric {settings.metric}, budget {limit:,} {unit}")
    search_path = out / "search.json"
    if search_path.exists():
        found = json.loads(search_path.read_text())
    else:
        val = validation_subset(splits.val, settings.val_limit, settings.seed)
        scorer = CandidateScorer(supernet.supernet, space, val, identity_net=identity, gallery=_gallery(splits.val),
                                 device=device)
        try:
            result = search(space, scorer, cost, limit, metric=settings.metric, strategy=settings.search,
                            candidates=settings.candidates, seed=settings.seed, params=student_cost.params,
                            progress=progress, scores_path=out / "search_scores.json")
        except SearchError as err:
            raise CompressError(f"{err} ({unit})") from err
        found = result.as_dict()
        found["validation"] = {"identities": len(splits.val.identities), "probes": len(val)}
        found["cost_unit"] = unit
        found["teacher_on_validation"] = scorer.score_model(bundle.generator.to(device), "the teacher")
        _write_json(search_path, found)
        save_figure(plot_search(found), out / "search.png", dpi=110)
    best = space.decode(found["best"]["config"])

    log(f"[3/5] fine-tune {found['best']['config']}: {settings.steps('finetune')} steps")
    calibration = [{k: v.to(device) if isinstance(v, torch.Tensor) else v
                    for k, v in _batch(splits.train, settings.seed, i).items()} for i in range(2)]
    student = subnet_from_supernet(supernet.supernet, arch, best, bundle.size, knobs, calibration)
    discriminator = _make_d(bundle)()
    discriminator.load_state_dict(supernet.recipe.raw("D").state_dict())
    tuned = finetune(arch, student, bundle.generator, splits.train, discriminator=discriminator,
                     adapters=supernet.recipe.raw("A"),
                     train_config=_train_config(settings, bundle, out / "finetune", settings.steps("finetune"), progress,
                                                fingerprint),
                     identity_net=identity if needs_identity else None, options=options)

    log("[4/5] export")
    for model in (bundle.generator, tuned.student):           # the report and the export run on the CPU
        model.cpu()
    report = build_report(settings, bundle, tuned.student, best, budget, splits, out, found,
                          weights_dir=weights_dir, progress=progress)
    manifest = {"arch": arch, "config": space.encode(best), "size": bundle.size, "knobs": knobs,
                "preset": settings.preset, "teacher": {"file": bundle.path.name, "sha256": sha256_file(bundle.path)},
                "settings": settings.record(), "macs": report["table3"]["student"]["macs"],
                "params": report["table3"]["student"]["params"], "convention": CONVENTION,
                "metrics": report["student"], "scored_by": report["scored_by"], "command": _command()}
    example = torch.stack([splits.test[i]["profile"] for i in range(2)])
    report["export"] = export_all(tuned.student, out, manifest, example)
    report["seconds_this_call"] = round(time.perf_counter() - started, 1)
    log("[5/5] report")
    _write_json(out / "report.json", report)
    atomic_write_bytes(out / "report.md", report_markdown(report).encode())
    return report


def latency_predictor(bundle: TeacherBundle, out: Path):
    """The student design's latency predictor on this machine (its table measured once, kept in `out`)."""
    from gancomp_lite.latency import LatencyPredictor

    return LatencyPredictor.for_arch(bundle.arch, bundle.size, bundle.student_knobs,
                                     table_path=out / "latency_table.json", threads=torch.get_num_threads())


def _batch(dataset, seed: int, index: int, size: int = 32) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed * 7919 + index)
    picks = torch.randperm(len(dataset), generator=generator)[:size].tolist()
    items = [dataset[i] for i in picks]
    return {k: torch.stack([it[k] for it in items]) if isinstance(items[0][k], torch.Tensor) else [it[k] for it in items]
            for k in items[0]}


def _command() -> str:
    return "gancomp-lite " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[0].endswith("gancomp-lite") else ""


# ----------------------------------------------------------------------------- shipped students
SHIPPED_FILE = "{arch}-{preset}-compressed.pt"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def ship(out: Path, weights_dir: Path | None = None, results_dir: Path = RESULTS_DIR) -> Path:
    """Copy a finished compression's student into the weights folder and its report and search table
    into the results folder (package data), where `load_generator` and `shipped_table` find them."""
    from gancomp_lite.checkpoint import load_checkpoint, save_checkpoint
    from gancomp_lite.teachers import WEIGHTS_DIR

    out = Path(out)
    if not (out / "report.json").exists():
        raise CompressError(f"{out} holds no finished compression (no report.json): run it to the end first")
    report = json.loads((out / "report.json").read_text())
    state, manifest = load_checkpoint(out / "student.pt")
    name = f"{report['arch']}-{report['preset']}"
    target = Path(weights_dir or WEIGHTS_DIR) / SHIPPED_FILE.format(arch=report["arch"], preset=report["preset"])
    save_checkpoint(target, state, {**manifest, "results": f"compress_{name}.json"})   # file, sha256: rewritten
    _write_json(Path(results_dir) / f"compress_{name}.json", report)
    _write_json(Path(results_dir) / f"search_{name}.json", json.loads((out / "search.json").read_text()))
    return target


def rescore_shipped(arch: str, preset: str = "quick", weights_dir: Path | None = None,
                    results_dir: Path = RESULTS_DIR, progress: bool = True) -> dict[str, Any]:
    """Score a shipped student and its teacher again on today's test split with today's judge.

    For when the measurement changes (more test identities, a new judge) and the weights do not: the
    shipped report's scoring fields and the student's manifest metrics are rewritten; cost, search
    and command stay as the compression wrote them.
    """
    from gancomp_lite.checkpoint import load_checkpoint, save_checkpoint
    from gancomp_lite.evaluate import load_generator
    from gancomp_lite.teachers import WEIGHTS_DIR, quick_splits

    student_path = Path(weights_dir or WEIGHTS_DIR) / SHIPPED_FILE.format(arch=arch, preset=preset)
    report_path = Path(results_dir) / f"compress_{arch}-{preset}.json"
    if not (student_path.exists() and report_path.exists()):
        raise CompressError(f"no shipped {preset} {arch} student to rescore ({student_path.name} and {report_path.name})")
    bundle = load_bundle(arch, preset, weights_dir)
    state, manifest = load_checkpoint(student_path)
    if manifest.get("teacher", {}).get("sha256") != sha256_file(bundle.path):
        raise CompressError(f"{student_path.name} was compressed from another {arch} teacher than the shipped one: "
                            "compress it again instead of rescoring it")
    scores = score_on_test(preset, bundle.generator, load_generator(student_path), quick_splits(preset, seed=0).test,
                           weights_dir, progress)
    report = {**json.loads(report_path.read_text()), **scores}
    _write_json(report_path, report)
    save_checkpoint(student_path, state, {**manifest, "metrics": scores["student"], "scored_by": scores["scored_by"]})
    return report


def shipped_reports(preset: str = "quick", results_dir: Path = RESULTS_DIR) -> dict[str, dict[str, Any]]:
    """{arch: report} of the shipped compressed students, in `TEACHERS` order."""
    found = {}
    for arch in TEACHERS:
        path = Path(results_dir) / f"compress_{arch}-{preset}.json"
        if path.exists():
            found[arch] = json.loads(path.read_text())
    return found


def shipped_table(preset: str = "quick", results_dir: Path = RESULTS_DIR) -> str:
    """Table 3 and Table 1 rows of every shipped compressed student (teacher vs compressed, paired intervals)."""
    reports = shipped_reports(preset, results_dir)
    if not reports:
        return f"no compressed {preset} students are shipped yet"
    lines = ["| family | student config | MACs teacher -> student (ratio) | params (ratio) | rank-1 mean teacher | "
             "rank-1 mean compressed | paired difference [95% CI] | L1 teacher -> compressed | SSIM |",
             "|---|---|---|---|---|---|---|---|---|"]
    for arch, r in reports.items():
        t3, d = r["table3"], r["paired_difference"]
        lines.append(
            f"| {arch} | `{t3['student']['config']}` | {t3['teacher']['macs'] / 1e6:.1f} M -> "
            f"{t3['student']['macs'] / 1e6:.1f} M ({t3['macs_ratio']:.1f}x) | {t3['params_ratio']:.1f}x | "
            f"{100 * r['teacher']['rank1']['mean']:.1f} | {100 * r['student']['rank1']['mean']:.1f} | "
            f"{100 * d['diff']['mean']:+.1f} [{100 * d['ci']['mean'][0]:+.1f}, {100 * d['ci']['mean'][1]:+.1f}] | "
            f"{r['teacher']['l1']:.4f} -> {r['student']['l1']:.4f} | {r['teacher']['ssim']:.3f} -> {r['student']['ssim']:.3f} |")
    judge = next(iter(reports.values()))["scored_by"]
    lines += ["", f"MACs per image in the {CONVENTION} convention; rank-1 (%) on the test identities, scored by the "
              f"{judge['role']} `{judge['file']}` (sha256 {judge['sha256'][:12]}); paired difference = compressed "
              f"minus teacher on the same probes, bootstrap over identities."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
def register(subparsers: argparse._SubParsersAction) -> None:
    cmd = subparsers.add_parser("compress", help="compress a shipped teacher: supernet, search, fine-tune, export, report")
    cmd.add_argument("--teacher", choices=TEACHERS, required=True)
    budget = cmd.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget", type=float, help=f"MACs per image ({CONVENTION} convention)")
    budget.add_argument("--ratio", type=float, help="teacher MACs / student MACs, e.g. 10")
    budget.add_argument("--latency-budget", type=float,
                        help="predicted batch-1 eager latency on this machine's CPU (ms): a hardware-aware search")
    cmd.add_argument("--preset", choices=["quick", "full"], default="quick")
    cmd.add_argument("--search", choices=STRATEGIES, default="evolution")
    cmd.add_argument("--metric", choices=sorted(METRICS), default="rank1",
                     help="what the search maximises on the validation identities")
    cmd.add_argument("--candidates", type=int, default=60, help="sub-networks the search scores")
    cmd.add_argument("--val-limit", type=int, default=240, help="validation probes each candidate is scored on")
    cmd.add_argument("--steps-supernet", type=int, default=None)
    cmd.add_argument("--steps-finetune", type=int, default=None)
    cmd.add_argument("--sampling", choices=SAMPLING_RULES, default="uniform")
    cmd.add_argument("--min-width", type=int, default=None, metavar="C",
                     help="no channel group of the student narrower than C (default: the design space's width step); "
                          "narrows the supernet's sampling, the search and the smallest reachable budget")
    cmd.add_argument("--batch-size", type=int, default=None)
    cmd.add_argument("--seed", type=int, default=0)
    cmd.add_argument("--threads", type=int, default=1,
                     help="torch CPU threads (default 1: fastest for the quick models, and a run repeats bit for bit "
                          "only at the same count)")
    cmd.add_argument("--out", type=Path, required=True)
    cmd.add_argument("--fresh", action="store_true",
                     help="start afresh: move an existing --out folder aside (<out>.old-<time>) instead of resuming it "
                          "(or refusing its other settings)")
    cmd.add_argument("--ckpt-minutes", type=float, default=5.0, metavar="M",
                     help="checkpoint the supernet and fine-tuning also every M minutes of work (default 5); "
                          "a resumed run may change it")
    cmd.add_argument("--weights", type=Path, default=None, help="folder of the shipped teachers and identity networks")
    cmd.add_argument("--ship", action="store_true",
                     help="when finished, copy the student into the weights folder and its report into the package's results")
    cmd.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = CompressSettings(teacher=args.teacher, budget=args.budget, ratio=args.ratio,
                                latency_budget=args.latency_budget, preset=args.preset,
                                search=args.search, metric=args.metric, candidates=args.candidates,
                                steps_supernet=args.steps_supernet, steps_finetune=args.steps_finetune,
                                sampling=args.sampling, min_width=args.min_width, batch_size=args.batch_size,
                                val_limit=args.val_limit,
                                seed=args.seed, threads=args.threads, ckpt_minutes=args.ckpt_minutes)
    report = compress(settings, args.out, weights_dir=args.weights, fresh=args.fresh)
    print(report_markdown(report))
    if args.ship:
        print(f"shipped {ship(args.out, args.weights)}")
    return 0

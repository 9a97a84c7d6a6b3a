"""At equal MACs: the searched-and-fine-tuned student against two baselines with the same total steps.

    python benchmarks/compress_baselines.py --run runs/compress/pim-quick --md docs/compress_baselines_pim.md

`--run` is a finished `gancomp-lite compress` folder. Its budget and schedule (supernet + fine-tuning
steps) fix the baselines:

- uniform: every channel group shrunk by the same fraction to fit the same budget, started from the
  teacher (dense layers copied, separable ones factorized, as the supernet is) and trained with the
  same eq. 5 objective (family losses, 1x1 feature distillation, inherited D) for the same total steps;
- scratch: the same uniform config from random weights, the family objective alone (no teacher term,
  random D), the same total steps.

All three are scored on the test identities by the judge; differences are paired (same probes) with
bootstrap intervals over identities. `--test-ids 500` scores them on the large test split
(`teachers.large_test_split`: the same training identities, 500 test identities) instead of the
standard 20, which resolves paired differences to about a point. Resumable: each baseline trains in its own Trainer folder.
`--md` rewrites the table and faces at the top of the file and keeps what follows its notes marker
(the first time, the whole earlier file).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from gancomp_lite.checkpoint import atomic_write_bytes
from gancomp_lite.compress.distillation import distill, sources_fingerprint
from gancomp_lite.compress.finetune import finetune
from gancomp_lite.compress.pipeline import (CONVENTION, CompressSettings, _make_d, _recipe_options, _train_config,
                                            load_bundle)
from gancomp_lite.compress.report import face_rows, faces_figure, scoring_network
from gancomp_lite.compress.search import uniform_config
from gancomp_lite.compress.supernet import build_supernet, extract_subnet
from gancomp_lite.evaluate import compare, evaluate, load_generator
from gancomp_lite.figures import save_figure
from gancomp_lite.models.registry import channel_space
from gancomp_lite.seeding import seed_everything
from gancomp_lite.teachers import large_test_split, load_identity, quick_splits

NOTES_MARKER = "<!-- notes: kept when the table is regenerated -->"


def write_markdown(path: Path, generated: str) -> None:
    """`generated` at the top of `path`, then the notes marker and what followed it (or the whole earlier file)."""
    old = path.read_text() if path.exists() else ""
    notes = old.split(NOTES_MARKER, 1)[1] if NOTES_MARKER in old else "\n" + old
    atomic_write_bytes(path, f"{generated}\n{NOTES_MARKER}{notes}".encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished `gancomp-lite compress` folder")
    parser.add_argument("--md", type=Path, default=None,
                        help="write the table here too, and the faces beside it (img/compress_baselines_ARCH_faces.png)")
    parser.add_argument("--test-ids", type=int, default=None,
                        help="score on a large test split of this many identities (e.g. 500) instead of the standard one")
    args = parser.parse_args()
    recorded = json.loads((args.run / "settings.json").read_text())
    fingerprint = recorded.pop("fingerprint")          # the run's teacher and data: the baselines learn from the same
    settings = CompressSettings(**recorded)
    torch.set_num_threads(settings.threads)            # the run's count: CPU float sums depend on it
    report = json.loads((args.run / "report.json").read_text())
    bundle = load_bundle(settings.teacher, settings.preset, min_width=settings.min_width)
    arch, knobs, size = bundle.arch, bundle.student_knobs, bundle.size
    space = channel_space(arch, size, **knobs)
    _, cost = bundle.cost_models()
    steps = settings.steps("supernet") + settings.steps("finetune")
    config = uniform_config(space, lambda c: cost.macs(c, CONVENTION), report["budget"])
    splits = quick_splits(settings.preset)
    if fingerprint != sources_fingerprint(bundle.manifest, splits.root, splits.train):
        raise SystemExit(f"{args.run} was compressed from another teacher or other data than the shipped ones")
    identity = load_identity(settings.preset)
    needs_identity = arch in ("tpgan", "pim")
    options = _recipe_options(arch)
    started = time.perf_counter()

    seed_everything(settings.seed)
    calibration = torch.stack([splits.train[i]["profile"] for i in range(16)])
    supernet = build_supernet(arch, bundle.generator, size, knobs, calibration)
    uniform = extract_subnet(supernet, arch, config, size, knobs).train()
    discriminator = _make_d(bundle)()
    discriminator.load_state_dict(bundle.discriminator.state_dict())
    tuned = finetune(arch, uniform, bundle.generator, splits.train, discriminator=discriminator, adapters=None,
                     train_config=_train_config(settings, bundle, args.run / "baseline-uniform", steps, True, fingerprint),
                     identity_net=identity if needs_identity else None, options=options)
    scratch = distill(arch, config, bundle.generator, splits.train, size=size, knobs=knobs, make_d=_make_d(bundle),
                      teacher_d_state=None, inherit_d=False, mode="scratch",
                      train_config=_train_config(settings, bundle, args.run / "baseline-scratch", steps, True, fingerprint),
                      identity_net=identity if needs_identity else None)

    judge, scored_by = scoring_network(settings.preset)
    models = {"searched + fine-tuned (compress)": load_generator(args.run / "student.pt"),
              "uniform widths, distilled": tuned.student, "uniform widths, from scratch": scratch.student}
    test = large_test_split(settings.preset, identities=args.test_ids) if args.test_ids else splits.test
    results = {name: evaluate(test, judge, model, per_probe=True, progress=True) for name, model in models.items()}
    searched = results["searched + fine-tuned (compress)"]
    configs = {"searched + fine-tuned (compress)": report["table3"]["student"]["config"],
               "uniform widths, distilled": space.encode(config), "uniform widths, from scratch": space.encode(config)}
    lines = [f"At equal MACs on {arch} (budget {report['budget'] / 1e6:.1f} M MACs, {CONVENTION} convention; "
             f"{steps} training steps each; {searched['n_identities']} test identities, {searched['n_probes']} probes, "
             f"scored by the {scored_by['role']} `{scored_by['file']}`)", "",
             "| student | config | MACs (M) | rank-1 mean [95% CI] | searched − this [95% CI] | L1 | SSIM |",
             "|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        ci = result["rank1_ci"]["mean"]
        if result is searched:
            paired = "–"
        else:
            diff = compare(result, searched)
            paired = (f"{100 * diff['diff']['mean']:+.1f} [{100 * diff['ci']['mean'][0]:+.1f}, "
                      f"{100 * diff['ci']['mean'][1]:+.1f}]")
        lines.append(f"| {name} | `{configs[name]}` | {cost.macs(space.decode(configs[name]), CONVENTION) / 1e6:.1f} | "
                     f"{100 * result['rank1']['mean']:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] | {paired} | "
                     f"{result['l1']:.4f} | {result['ssim']:.3f} |")
    flag = f" --test-ids {args.test_ids}" if args.test_ids else ""
    lines += ["", f"Command: `python benchmarks/compress_baselines.py --run {args.run}{flag}` "
              f"({time.perf_counter() - started:.0f} s in this call)."]
    table = "\n".join(lines)
    print(table)
    if args.md:
        faces = args.md.parent / "img" / f"compress_baselines_{arch}_faces.png"
        short = dict(zip(models, ("searched", "uniform distilled", "uniform scratch")))
        rows = face_rows(test, {"teacher": bundle.generator} | {short[n]: m for n, m in models.items()})
        save_figure(faces_figure(rows), faces, dpi=100)
        write_markdown(args.md, table + f"\n\n![faces per |yaw|: profile, ground truth, teacher and the three students]"
                                        f"(img/{faces.name})\n")


if __name__ == "__main__":
    main()

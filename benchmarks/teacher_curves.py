"""Rank-1 against training steps for a quick teacher, to size its `steps` (and try recipe options).

    python benchmarks/teacher_curves.py --arch resnet9 --steps 6000 --eval-every 1000 \
        [--identity --option lambda_identity=1] [--knob ngf=32] [--ship-dir DIR] [--seed 0] [--device auto]

Trains one teacher from its spec in ``gancomp_lite.teachers.QUICK_TEACHERS`` (with the given
overrides) in chunks of ``--eval-every`` steps and runs the evaluation protocol after each chunk.
The learning rate is constant, so the generator after N steps is the one a spec of N steps
ships. Prints one line per evaluation and appends it as JSON to ``--out``; ``--ship-dir`` keeps
the shipped-format checkpoint (as ``gancomp-lite teachers train`` writes it) of every evaluated
step under ``DIR/step-N/``. Resumes from ``--work-dir`` if stopped.
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from gancomp_lite.teachers import (
    QUICK_TEACHERS,
    TEACHER_FILE,
    _split_note,
    evaluate_teacher,
    identity_sha256,
    options_manifest,
    prepare_teacher,
    ship_teacher,
)
from gancomp_lite.train import TrainConfig, Trainer

YAWS = ("90", "75", "60", "45", "30", "15", "mean")


def _pairs(items: list[str]) -> dict[str, object]:
    """``key=value`` strings to a dict, values parsed as Python literals where they are ones."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"expected key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _loss_weights(arch: str) -> type:
    if arch == "tpgan":
        from gancomp_lite.losses import TPGANLossWeights

        return TPGANLossWeights
    if arch == "pim":
        from gancomp_lite.recipes.pim import PIMLossWeights

        return PIMLossWeights
    raise SystemExit(f"--weight applies to tpgan and pim, not {arch}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=sorted(QUICK_TEACHERS), required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--option", action="append", default=[], help="recipe option key=value")
    parser.add_argument("--knob", action="append", default=[], help="generator knob key=value")
    parser.add_argument("--weight", action="append", default=[], help="loss weight key=value (tpgan, pim)")
    parser.add_argument("--identity", action="store_true", help="give the recipe the identity network (L_ip)")
    parser.add_argument("--ship-dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--label", default=None)
    args = parser.parse_args()

    base = QUICK_TEACHERS[args.arch]
    options = {**base.options, **_pairs(args.option)}
    if args.weight:
        options["weights"] = _loss_weights(args.arch)(**_pairs(args.weight))
    spec = replace(base, steps=args.steps, knobs={**base.knobs, **_pairs(args.knob)}, options=options,
                   needs_identity=base.needs_identity or args.identity)
    label = args.label or args.arch
    work = args.work_dir or Path("runs/curves") / label
    run = prepare_teacher(args.arch, seed=args.seed, spec=spec)
    start = time.perf_counter()
    while True:
        config = TrainConfig(out_dir=str(work), steps=spec.steps, batch_size=spec.batch_size, lr=spec.lr,
                             betas=spec.betas, seed=args.seed, log_every=50, ckpt_every=args.eval_every,
                             stop_after=args.eval_every, progress=False, device=args.device)
        result = Trainer(run.recipe, run.train, config).fit()
        metrics = evaluate_teacher(run, progress=False)
        run.recipe.train()
        row = {"label": label, "arch": args.arch, "step": result.step, "seconds": round(time.perf_counter() - start, 1),
               "options": options_manifest(spec.options), "knobs": spec.knobs,
               "rank1": metrics["rank1"], "rank1_raw": metrics["rank1_raw"], "l1": metrics["l1"],
               "ssim": metrics["ssim"]}
        print(f"{label:24s} step {result.step:5d}  " + " ".join(f"{100 * metrics['rank1'][y]:5.1f}" for y in YAWS)
              + "  | raw " + " ".join(f"{100 * metrics['rank1_raw'][y]:5.1f}" for y in YAWS)
              + f"  l1 {metrics['l1']:.4f}  {row['seconds']:.0f}s", flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
        if args.ship_dir:
            path = args.ship_dir / f"step-{result.step}" / TEACHER_FILE.format(arch=args.arch, preset="quick")
            ship_teacher(path, args.arch, "quick", run.size, run.knobs, run.generator, run.d_spec, run.discriminator,
                         seed=args.seed, command="python " + " ".join(sys.argv), steps=result.step,
                         data=_split_note(run.root, run.train, run.test), identity_sha256=identity_sha256(),
                         batch_size=spec.batch_size, lr=spec.lr, recipe=run.recipe.name, recipe_options=row["options"],
                         device=next(run.generator.parameters()).device.type, metrics=metrics)
        if result.finished:
            break


if __name__ == "__main__":
    torch.backends.cudnn.benchmark = True
    main()

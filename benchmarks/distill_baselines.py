"""Distillation baselines at equal MACs: scratch, output-only and 1x1 feature distillation (eq. 4-5).

    python benchmarks/distill_baselines.py --arch tpgan --steps 600 [--seed 0] [--width 0.5] [--sweep]

One student config (every channel group at about `--width` of the shipped quick teacher's, rounded
to an allowed step) is trained four times with the same steps, batch and seed: from scratch (the
teacher's objective only), with an L1 term to the teacher's output, with 1x1-adapter feature
distillation at every tap, and the same with a random instead of the inherited discriminator.
Each is evaluated on the test identities. Prints a markdown table (MACs in the `gancomp`
convention, see `gancomp_lite.cost`) and writes it to ``docs/distill_baselines.md``.
``--sweep`` also writes the taps x lambda_distill sweep notebook 02 reads
(``gancomp_lite/results/distill_sweep_quick.json``).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from gancomp_lite.distillation import run_stage
from gancomp_lite.models.registry import channel_space
from gancomp_lite.teachers import load_teacher
from gancomp_lite.viz_distill import SWEEP_PATH, run_sweep, sweep_table

ROWS = (("scratch", "scratch", True), ("output", "output", True), ("feature", "feature", True),
        ("feature, random D", "feature", False))


def scaled_config(arch: str, size: int, knobs: dict, width: float) -> str:
    """Every group at the allowed choice nearest to `width` x its teacher width."""
    space = channel_space(arch, size, **knobs)
    config = {g.name: min(g.choices, key=lambda c: (abs(c - width * g.teacher), -c)) for g in space.groups}
    return space.encode(config)


def _rank1_cells(rank1: dict, yaws: list[str]) -> str:
    return " | ".join(f"{100 * rank1[y]:.1f}" for y in ["mean", *yaws])


def table(results: list[tuple[str, dict]]) -> str:
    first = results[0][1]
    yaws = sorted((k for k in first["metrics"]["rank1"] if k != "mean"), key=int)
    head = ["student", "D", "MACs (M)", "params (M)", "L1", "SSIM", "rank-1 mean", *[f"{y}°" for y in yaws]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    teacher = first["teacher"]
    tm = teacher.get("metrics") or {}
    if tm:
        lines.append(f"| teacher ({teacher['config']}) | – | {teacher['macs'] / 1e6:.1f} | {teacher['params'] / 1e6:.3f} | "
                     f"{tm['l1']:.4f} | {tm['ssim']:.3f} | {_rank1_cells(tm['rank1'], yaws)} |")
        lines.append(f"| raw profiles (no generator) | – | – | – | {tm['raw']['l1']:.4f} | {tm['raw']['ssim']:.3f} | "
                     f"{_rank1_cells(tm['rank1_raw'], yaws)} |")
    for label, s in results:
        m = s["metrics"]
        d = "inherited" if s["d_source"].startswith("inherited") else "random"
        lines.append(f"| {label} | {d} | {s['macs'] / 1e6:.1f} | {s['params'] / 1e6:.3f} | {m['l1']:.4f} | "
                     f"{m['ssim']:.3f} | {_rank1_cells(m['rank1'], yaws)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["tpgan", "resnet9"], default="tpgan")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=float, default=0.5, help="student width as a fraction of the teacher's")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--md", type=Path, default=Path("docs/distill_baselines.md"))
    parser.add_argument("--work-dir", type=Path, default=Path("runs/distill_baselines"))
    parser.add_argument("--sweep", action="store_true", help="also write notebook 02's taps x lambda sweep")
    parser.add_argument("--sweep-steps", type=int, default=300)
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    _, manifest = load_teacher(args.arch)
    config = scaled_config(args.arch, manifest["size"], manifest["knobs"], args.width)
    command = "python benchmarks/distill_baselines.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.arch} student {config}; {args.steps} steps, seed {args.seed}; {device}", flush=True)

    if not args.skip_baselines:
        results = []
        start = time.perf_counter()
        for label, mode, inherit in ROWS:
            summary = run_stage(args.arch, config, mode=mode, steps=args.steps, seed=args.seed, inherit_d=inherit,
                                batch_size=args.batch_size, out_dir=args.work_dir / label.replace(", ", "-").replace(" ", "-"),
                                progress=False)
            results.append((label, summary))
            print(f"  {label}: {summary['train_seconds']} s, rank-1 {summary['metrics']['rank1']['mean']:.1%}", flush=True)
        text = table(results)
        s = results[0][1]
        doc = "\n".join([
            f"# Distillation baselines at equal MACs ({args.arch}, quick preset)", "",
            f"Student `{config}` (every group at about {args.width:g} x the teacher's width), the shipped quick teacher "
            f"`{s['teacher']['config']}`. Every student: {args.steps} steps, batch {s['batch_size']}, seed {args.seed}, "
            f"the teacher's objective and optimizer; the feature rows distill all taps {s['teacher']['taps']} with "
            f"lambda_distill {results[2][1]['lambda_distill']:g}, the output row has an L1 term to the teacher's image "
            f"with weight {results[1][1]['lambda_distill']:g}. MACs per image in the `gancomp` convention "
            f"(`gancomp_lite.cost`), {s['size']}x{s['size']} input. Test identities of SynthPIE quick; rank-1 (%) "
            f"by cosine similarity of the shipped Light-CNN's features, ±yaw merged.", "",
            text, "",
            f"Command: `{command}` on {device}; {time.perf_counter() - start:.0f} s in total.", "",
            "Short runs on a synthetic data set: differences of a point or two in rank-1 are within seed noise.", "",
        ])
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(doc)
        (args.work_dir / "baselines.json").write_text(json.dumps({k: v for k, v in results}, indent=1))
        print(text)
    if args.sweep:
        taps = [[t] for t in ("dec16", "dec64", "recon128")] + [None] if args.arch == "tpgan" else \
               [[t] for t in ("down2", "block9")] + [None]
        sweep = run_sweep(args.arch, config, taps_options=taps, lambdas=(0.1, 1.0, 10.0), steps=args.sweep_steps,
                          seed=args.seed, batch_size=args.batch_size, out=SWEEP_PATH, work_dir=args.work_dir / "sweep")
        print(sweep_table(sweep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
